"""Darknet ``.cfg`` reading: sections, options and Darknet's value parsing.

Semantics follow Darknet's ``parser.c: read_cfg`` and ``option_list.c``
(see docs/file-formats.md):

* every space, tab, CR and LF is removed from each line before anything else;
* empty lines and lines starting with ``#`` or ``;`` are skipped;
* ``[name]`` opens a section; other lines are ``key=value`` split at the first ``=``;
* a duplicated key: the **first** one wins (``option_find`` scans from the front);
* numbers use C ``atoi``/``atof`` prefix parsing, so ``filters=40#32`` is 40.
  Unlike Darknet (which silently reads ``size=abc`` as 0) a value with no numeric
  prefix at all is an error here, and a numeric prefix followed by anything but a
  ``#`` comment is a warning.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from golden.errors import CfgError, FileMissingError

_INT_PREFIX = re.compile(r"[+-]?\d+")
_FLOAT_PREFIX = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)")


@dataclass
class Option:
    """One ``key=value`` line; ``used`` is set when a layer builder reads it."""

    key: str
    value: str
    line: int
    used: bool = False


@dataclass
class Section:
    """One ``[name]`` block of a cfg, with its options in file order."""

    name: str
    line: int
    path: Path
    options: list[Option] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _find(self, key: str) -> Option | None:
        for opt in self.options:  # first occurrence wins, as in option_find()
            if opt.key == key:
                opt.used = True
                return opt
        return None

    def has(self, key: str) -> bool:
        return any(o.key == key for o in self.options)

    def error(self, msg: str, opt: Option | None = None) -> CfgError:
        return CfgError(self.path, opt.line if opt else self.line, f"[{self.name}] {msg}")

    def _number(self, opt: Option, pattern: re.Pattern[str], kind: str) -> str:
        m = pattern.match(opt.value)
        if not m:
            raise self.error(f"option '{opt.key}': expected {kind}, got '{opt.value}'", opt)
        rest = opt.value[m.end():]
        if rest and not rest.startswith("#"):
            self.warnings.append(
                f"{self.path}:{opt.line}: option '{opt.key}={opt.value}': "
                f"trailing '{rest}' ignored (read as {m.group(0)}, as Darknet's atoi/atof would)")
        return m.group(0)

    def get_int(self, key: str, default: int) -> int:
        opt = self._find(key)
        if opt is None:
            return default
        return int(self._number(opt, _INT_PREFIX, "an integer"))

    def get_float(self, key: str, default: float) -> float:
        opt = self._find(key)
        if opt is None:
            return default
        return self._finite(opt, float(self._number(opt, _FLOAT_PREFIX, "a number")))

    def _finite(self, opt: Option, value: float) -> float:
        """``value`` if finite; ``1e999`` reads as infinity in C and here, and is refused."""
        if not math.isfinite(value):
            raise self.error(f"option '{opt.key}': {opt.value} is not a finite number", opt)
        return value

    def get_str(self, key: str, default: str) -> str:
        opt = self._find(key)
        return default if opt is None else opt.value

    def get_list(self, key: str, kind: type, default: list | None = None) -> list:
        """A comma-separated list; each item parsed like a scalar (``atoi``/``atof``)."""
        opt = self._find(key)
        if opt is None:
            return list(default or [])
        pattern, what = (_INT_PREFIX, "integers") if kind is int else (_FLOAT_PREFIX, "numbers")
        value = opt.value.split("#", 1)[0]  # AlexeyAB stops reading a list at '#'
        items = []
        for item in value.split(","):
            if item == "":
                continue
            m = pattern.match(item)
            if not m:
                raise self.error(f"option '{key}': expected a list of {what}, got '{opt.value}'", opt)
            items.append(kind(m.group(0)) if kind is int else self._finite(opt, float(m.group(0))))
        return items

    def unused(self) -> list[Option]:
        return [o for o in self.options if not o.used]


def read_cfg(path: str | Path) -> list[Section]:
    """Read a cfg file into sections (no interpretation of the options yet)."""
    path = Path(path)
    if not path.is_file():
        raise FileMissingError(path, "cfg file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CfgError(path, None, f"not a text file ({exc.reason} at byte {exc.start})") from None
    return parse_cfg_text(text, path)


def parse_cfg_text(text: str, path: str | Path = "<cfg>") -> list[Section]:
    path = Path(path)
    sections: list[Section] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"[ \t\r\n]", "", raw)
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(path, lineno, f"malformed section header '{raw.strip()}'")
            sections.append(Section(line[1:-1], lineno, path))
            continue
        if "=" not in line:
            raise CfgError(path, lineno, f"expected 'key=value' or '[section]', got '{raw.strip()}'")
        if not sections:
            raise CfgError(path, lineno, "option before the first [section]")
        key, value = line.split("=", 1)
        sections[-1].options.append(Option(key, value, lineno))
    if not sections:
        raise CfgError(path, None, "no sections: not a Darknet cfg file")
    if sections[0].name not in ("net", "network"):
        raise CfgError(path, sections[0].line,
                       f"the first section must be [net] or [network], got [{sections[0].name}]")
    return sections
