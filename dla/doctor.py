"""What this machine has and lacks for each feature: system tools and Python extras (`dla doctor`).

The project needs a few programs that pip cannot install (Graphviz, Icarus Verilog, ...).  This
module is the one place that names them: which command is looked for, which Debian package
provides it and which feature needs it.  The README's system line, ``.ci/run``'s install and
every "X is missing" hint are built from or tested against :data:`TOOLS` and :data:`APT_LINE`
(``tests/dla/cli/test_doctor.py``), so they cannot drift apart.

Python extras are read from the installed project's own metadata (``Requires-Dist: ...; extra
== "rtl"``), i.e. from ``pyproject.toml`` as installed, not from a copy of it here.
"""
from __future__ import annotations

import glob
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata

DIST = "dla-sim"
"""The project's distribution name (``pip install 'dla-sim[rtl]'``)."""


@dataclass(frozen=True)
class SystemTool:
    """A program found on ``PATH`` (any of ``commands``) or at one of ``paths`` (glob patterns)."""

    name: str
    package: str
    """The Debian/Ubuntu package that provides it."""
    needed_for: str
    commands: tuple[str, ...]
    paths: tuple[str, ...] = ()

    def found(self) -> str | None:
        """Path of the program, or None when it is missing."""
        for c in self.commands:
            if (p := shutil.which(c)) is not None:
                return p
        for pattern in self.paths:
            if hits := sorted(glob.glob(pattern)):
                return hits[-1]
        return None


TOOLS: tuple[SystemTool, ...] = (
    SystemTool("dot", "graphviz", "dla graph; the workbench's model graph", ("dot",)),
    SystemTool("iverilog", "iverilog", "dla rtl run; scenarios' rtl:; the RTL tests", ("iverilog",)),
    SystemTool("verilator", "verilator", "lint of the Verilog core (tests only)", ("verilator",)),
    SystemTool("chromium", "chromium", "browser tests of the report and the workbench (tests only)", ("chromium",)),
    SystemTool("node", "nodejs", "the workbench's JavaScript unit test (tests only)", ("node", "nodejs")),
    SystemTool("postgres", "postgresql", "dla serve --database-url postgresql+psycopg://...; its tests",
               ("postgres",), ("/usr/lib/postgresql/*/bin/postgres",)),
)
"""Every system program a command or a test of the project runs."""

APT_PACKAGES: tuple[str, ...] = tuple(t.package for t in TOOLS)
APT_LINE = "sudo apt-get install -y " + " ".join(APT_PACKAGES)
"""The README's one line that installs every system tool (Debian/Ubuntu)."""

EXTRA_USES = {
    "rtl": "dla rtl check / dla rtl run; scenarios' rtl:",
    "bench": "the benchmarks in bench/ (OpenCV DNN peer)",
    "train": "dla train; PyTorch parity checks",
    "test": "the test suite (python3 -m pytest)",
}


def apt_line(packages: Iterable[str]) -> str:
    """``sudo apt-get install -y P...`` for ``packages`` in :data:`TOOLS` order."""
    wanted = set(packages)
    return "sudo apt-get install -y " + " ".join(p for p in APT_PACKAGES if p in wanted)


def pip_line(extras: Iterable[str]) -> str:
    """``pip install 'dla-sim[a,b]'``: adds the extras' packages to an installed dla-sim
    (editable or not) without reinstalling it."""
    return f"pip install '{DIST}[{','.join(sorted(set(extras)))}]'"


def install_hint(extras: Sequence[str] = (), tools: Sequence[str] = ()) -> str:
    """The one install hint for a feature: pip line for ``extras``, apt line for the ``tools``
    (names in :data:`TOOLS`), joined with ``' and '``."""
    packages = [t.package for t in TOOLS if t.name in tools]
    unknown = set(tools) - {t.name for t in TOOLS}
    assert not unknown, f"not in dla.doctor.TOOLS: {unknown}"
    parts = ([pip_line(extras)] if extras else []) + ([apt_line(packages)] if packages else [])
    return " and ".join(parts)


RTL_HINT = install_hint(extras=("rtl",), tools=("iverilog",))
"""What every RTL feature says when pyverilog, cocotb or iverilog is missing."""


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1)).lower()


def extra_requirements() -> dict[str, list[str]]:
    """Extra -> distribution names it installs (self-references like ``dla-sim[rtl]`` expanded),
    from the installed metadata; empty when the project is not installed."""
    try:
        reqs = metadata.requires(DIST) or []
    except metadata.PackageNotFoundError:
        return {}
    direct: dict[str, list[str]] = {}
    for req in reqs:
        m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if m:
            direct.setdefault(m.group(1), []).append(req.split(";")[0].strip())
    out: dict[str, list[str]] = {}
    for extra in direct:
        seen, todo, names = set(), [extra], []
        while todo:
            e = todo.pop()
            if e in seen:
                continue
            seen.add(e)
            for req in direct.get(e, []):
                if _name(req) == DIST:
                    todo += [x.strip() for x in re.search(r"\[([^\]]*)\]", req).group(1).split(",")]
                elif _name(req) not in names:
                    names.append(_name(req))
        out[extra] = names
    return out


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Report:
    tools: list[tuple[SystemTool, str | None]]
    """Each tool and its path (None: missing)."""
    extras: dict[str, dict[str, str | None]]
    """Extra -> {distribution: installed version or None}."""
    int_backend: str = ""
    """The INT engine's exact-GEMM backend and why (``dla.int_backend.status``); informational."""

    @property
    def missing_tools(self) -> list[SystemTool]:
        return [t for t, p in self.tools if p is None]

    @property
    def missing_extras(self) -> list[str]:
        return [e for e, dists in self.extras.items() if any(v is None for v in dists.values())]

    @property
    def ok(self) -> bool:
        return not self.missing_tools and not self.missing_extras

    def lines(self) -> list[str]:
        """The report as printed by ``dla doctor``, ending with the exact install commands."""
        out = ["system tools (Debian/Ubuntu packages):"]
        for t, path in self.tools:
            out.append(f"  {'ok     ' if path else 'MISSING'}  {t.name:<10} {t.package:<11} {t.needed_for}")
        out.append("Python extras (pyproject.toml):")
        for extra, dists in self.extras.items():
            missing = [d for d, v in dists.items() if v is None]
            state = f"missing {', '.join(missing)}" if missing else "installed"
            out.append(f"  {'MISSING' if missing else 'ok     '}  [{extra}] {EXTRA_USES.get(extra, '')} ({state})")
        if self.int_backend:
            out.append(f"INT engine exact GEMM: {self.int_backend}")
        if self.ok:
            out.append("everything is installed")
        else:
            out.append("to install what is missing:")
            if self.missing_tools:
                out.append("  " + apt_line(t.package for t in self.missing_tools))
            if self.missing_extras:
                out.append("  " + pip_line(self.missing_extras))
        return out


def examine() -> Report:
    """Look for every tool of :data:`TOOLS` and every distribution of every extra."""
    found = extra_requirements()
    order = [e for e in EXTRA_USES if e in found] + sorted(set(found) - set(EXTRA_USES))
    extras = {e: {d: _installed(d) for d in found[e]} for e in order}
    return Report([(t, t.found()) for t in TOOLS], extras, _int_backend_line())


def _int_backend_line() -> str:
    """Which backend computes the INT engine's exact sums here (runs its self-test once)."""
    from dla import int_backend
    from golden.errors import UserInputError

    try:
        return int_backend.status().line()
    except UserInputError as exc:  # a bad DLA_INT_BACKEND: shown, not fatal for the doctor
        return f"error: {exc}"


__all__ = ["APT_LINE", "APT_PACKAGES", "DIST", "RTL_HINT", "Report", "SystemTool", "TOOLS", "apt_line", "examine",
           "extra_requirements", "install_hint", "pip_line"]
