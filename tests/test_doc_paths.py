"""Every file path the docs, the README, CI and the code's docstrings name exists.

Why: moving files (issue K moved tests/{eval,web,scenario} under tests/dla/ and test data to
tests/data/) left docs and comments pointing at paths that no longer exist, which sends a
reader looking for a file that is not there.  Only explicit paths with a suffix are checked
(``tests/dla/eval/test_ap.py``, ``dla/scenario/demo.py``); placeholders (``bench/NAME_bench.py``)
and globs are not paths.
"""
from __future__ import annotations

import re
from pathlib import Path

from tests.paths import ROOT

PATH = re.compile(r"(?<![\w/.-])((?:tests|dla|golden|quant|rtl_bridge|bench|scenarios|docs)/[\w./-]*\.[a-z]{1,5})\b")
SOURCES = ("README.md", "docs/*.md", ".ci/run", "pyproject.toml", "dla/**/*.py", "golden/**/*.py", "quant/**/*.py",
           "rtl_bridge/**/*.py", "bench/*.py")


def named_paths() -> list[tuple[str, int, str]]:
    out = []
    for pattern in SOURCES:
        for f in sorted(ROOT.glob(pattern)):
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                for p in PATH.findall(line):
                    p = p.rstrip(".")
                    if "NAME" in p or "*" in p or "<" in p:
                        continue
                    out.append((str(f.relative_to(ROOT)), n, p))
    return out


def test_the_scan_finds_paths() -> None:
    found = {p for _, _, p in named_paths()}
    assert "dla/scenario/demo.py" in found  # README.md names it: the scan works


def test_every_named_path_exists() -> None:
    missing = [f"{f}:{n}: {p}" for f, n, p in named_paths() if not (ROOT / p).exists()]
    assert not missing, "paths named but not in the tree:\n" + "\n".join(missing)
