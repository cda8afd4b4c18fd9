"""No test module imports another test module or a conftest.

Importing a test module collects its tests a second time (under the importer's name) and ties
two modules' private details together; importing a fixture hides where it comes from and
breaks when either module moves.  Shared plain code lives in helper modules (tests/paths.py,
tests/tools.py, tests/dla/web/helpers.py, ...); shared fixtures in the conftest.py of the
directory that needs them, where pytest finds them without an import.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import ROOT

TESTS = ROOT / "tests"


def _is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def forbidden_imports(path: Path, package: str) -> list[str]:
    """Each import statement in ``path`` (a module of the dotted ``package``) that names a
    ``test_*`` module or a ``conftest``, as "line N: dotted.name" (once per statement); relative imports are resolved against
    ``package``, and ``from pkg import test_x`` counts like ``import pkg.test_x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            hit = next((i for i, part in enumerate(parts) if _is_test_or_conftest(part)), None)
            if hit is not None:  # the module itself, not the name imported from it
                found.append(f"line {node.lineno}: {'.'.join(parts[:hit + 1])}")
                break
    return found


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "data" not in p.relative_to(TESTS).parts[:1])


def test_no_test_module_imports_a_test_module_or_a_conftest() -> None:
    problems = {}
    for path in _modules():
        package = ".".join(path.relative_to(ROOT).parent.parts)
        bad = forbidden_imports(path, package)
        if bad:
            problems[str(path.relative_to(ROOT))] = bad
    assert problems == {}, problems


def test_the_check_finds_every_spelling(tmp_path: Path) -> None:
    """The check itself: absolute, relative, `from pkg import test_x` and conftest imports are
    found; helper modules and names that merely contain 'test' are not."""
    bad = tmp_path / "bad.py"
    bad.write_text("import tests.dla.web.test_step\n"
                   "from tests.dla.web.test_step import opened\n"
                   "from .conftest import DATA\n"
                   "from . import test_jobs\n"
                   "from ..web import conftest\n"
                   "from tests.dla.web.helpers import Client\n"
                   "from tests.fuzz_helpers import FUZZ\n"
                   "import pytest\n")
    found = forbidden_imports(bad, "tests.dla.scenario")
    assert [f.split(":")[0] for f in found] == ["line 1", "line 2", "line 3", "line 4", "line 5"], found
    assert "line 3: tests.dla.scenario.conftest" in found and "line 5: tests.dla.web.conftest" in found
