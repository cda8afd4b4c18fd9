"""Every third-party module the project imports is declared in pyproject.toml.

A module missing from ``pyproject.toml`` passes wherever it happens to be installed already
(CI once ran in the machine's own Python, which had scipy) and fails for a new user in a fresh
venv.  So every ``import`` in the project's Python files is parsed with :mod:`ast` (also the
lazy ones inside functions and ``try:`` blocks: they are imported when the feature runs) and
its top-level module mapped to the distribution that provides it:

* from the installed distributions' own file lists (``importlib.metadata.packages_distributions``),
* else from :data:`ALIASES`, for a module that is not installed here (then the import itself
  would fail; this test still says which declaration is missing).

Two rules: the ``test`` extra (with the extras it names) plus the core dependencies provide
every import anywhere (tests, bench, tools included), so ``pip install -e '.[test]'`` is enough
to run the suite; and the product's own packages use only core dependencies or a non-test
extra, so no user feature depends on a test-only package.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("dla", "golden", "quant", "rtl_bridge")
EVERYTHING = (*PRODUCT, "tests", "bench", "tools")
FIRST_PARTY = {*EVERYTHING, "conftest"}

ALIASES = {
    "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python-headless", "argon2": "argon2-cffi",
    "cocotb_tools": "cocotb", "sqlalchemy": "sqlalchemy", "jinja2": "jinja2", "psycopg": "psycopg",
    "dask": "dask", "graphviz": "graphviz", "skimage": "scikit-image", "sklearn": "scikit-learn",
}
"""Import name -> distribution, for modules not installed where the test runs."""

OWN_VENV = {"bench/scalesim_reference.py": {"scalesim"}}
"""Scripts that run in a venv of their own (documented in their docstring), not the project's."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(req: str) -> tuple[str, set[str]]:
    """``'dask[distributed]>=2024.1'`` -> ``('dask', {'distributed'})`` (PEP 508 name and extras)."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    assert m, req
    return _norm(m.group(1)), {_norm(e) for e in (m.group(2) or "").split(",") if e.strip()}


def declared(extras: set[str]) -> set[str]:
    """Distributions installed by ``pip install '.[extras]'``: the core dependencies, the named
    extras, and the extras those name by referring to this project itself."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    own, optional = _norm(project["name"]), project.get("optional-dependencies", {})
    names = {_requirement(r)[0] for r in project["dependencies"]}
    todo, seen = set(map(_norm, extras)), set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        assert extra in optional, f"pyproject.toml has no extra [{extra}]"
        for req in optional[extra]:
            name, sub = _requirement(req)
            if name == own:
                todo |= sub - seen
            else:
                names.add(name)
    return names


def imports(dirs: tuple[str, ...]) -> dict[str, set[str]]:
    """Third-party top-level module -> the files (relative paths) that import it."""
    found: dict[str, set[str]] = {}
    for d in dirs:
        for path in sorted((ROOT / d).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY or top in OWN_VENV.get(rel, ()):
                        continue
                    if (path.parent / f"{top}.py").is_file():  # a script's sibling (bench/harness.py)
                        continue
                    found.setdefault(top, set()).add(rel)
    return found


def providers(module: str) -> set[str]:
    """Distributions that provide the top-level ``module`` (installed ones, else the alias)."""
    dists = {_norm(d) for d in packages_distributions().get(module, [])}
    return dists or ({_norm(ALIASES[module])} if module in ALIASES else set())


def _undeclared(dirs: tuple[str, ...], extras: set[str]) -> list[str]:
    ok = declared(extras)
    problems = []
    for module, files in sorted(imports(dirs).items()):
        dists = providers(module)
        if not dists:
            problems.append(f"{module} (imported by {', '.join(sorted(files))}) is neither installed nor in ALIASES")
        elif not dists & ok:
            problems.append(f"{module} (distribution {'/'.join(sorted(dists))}, imported by "
                            f"{', '.join(sorted(files))}) is not declared")
    return problems


def test_the_test_extra_provides_every_import() -> None:
    assert _undeclared(EVERYTHING, {"test"}) == []


def test_the_product_needs_no_test_only_package() -> None:
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert _undeclared(PRODUCT, set(optional) - {"test"}) == []


def test_the_check_catches_a_missing_declaration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser sees lazy imports inside functions, and an undeclared one is reported by name
    (scipy in tests/ was the case that reached a user)."""
    fake = tmp_path / "tests"
    fake.mkdir()
    (fake / "test_x.py").write_text("import numpy\n\ndef f():\n    from scipy import stats\n    import json\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "dla-sim"\ndependencies = ["numpy>=1"]\n'
                                             '[project.optional-dependencies]\ntest = ["pytest"]\n')
    monkeypatch.setitem(ALIASES, "scipy", "scipy")
    assert set(imports(("tests",))) == {"numpy", "scipy"}
    problems = _undeclared(("tests",), {"test"})
    assert len(problems) == 1 and problems[0].startswith("scipy (") and "tests/test_x.py" in problems[0]


def test_extras_that_name_the_project_itself_are_followed() -> None:
    assert {"cocotb", "pyverilog", "torch", "onnxruntime", "scipy"} <= declared({"test"})
    assert "scipy" not in declared({"rtl", "bench", "train"})
