"""The layout rules of docs/architecture.md, checked on the code's own imports.

* The **library** (golden/, quant/, and dla/ outside its faces) never imports a **face**
  (dla.cli, dla.debugger, dla.web, dla.scenario, dla.eval, dla.datasets) nor rtl_bridge.
* Layers point down only: golden imports neither quant nor dla; quant does not import dla;
  rtl_bridge uses the library but no face.
* No import circle: between the parts above, and between the modules of any one part.
* No module over the size budget, so each file keeps one job.

Every import counts, also one inside a function (hiding a dependency there does not remove it);
only ``if TYPE_CHECKING:`` blocks are left out, since they are never executed.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import ROOT

PACKAGES = ("golden", "quant", "dla", "rtl_bridge")
FACES = ("dla.cli", "dla.debugger", "dla.web", "dla.scenario", "dla.eval", "dla.datasets", "dla.tune")
#: What each part of the library may import (a face may import anything but a circle).
LIBRARY_MAY_IMPORT = {
    "golden": {"golden"},
    "quant": {"golden", "quant"},
    "dla": {"golden", "quant", "dla"},
    "rtl_bridge": {"golden", "quant", "dla", "rtl_bridge"},
}
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """``golden``, ``quant``, ``rtl_bridge``, ``dla`` (the library) or the face's package."""
    for face in FACES:
        if module == face or module.startswith(face + "."):
            return face
    return module.split(".")[0]


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            continue
        yield child
        yield from _walk(child)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """First-party modules ``path`` imports (``from a.b import c`` counts as ``a.b.c`` when that is
    a module, else ``a.b``)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in PACKAGES and n != me}
    return found


def product_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def import_graph() -> dict[str, set[str]]:
    files = product_files()
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_library_imports_no_face_and_points_down() -> None:
    bad = []
    for mod, deps in import_graph().items():
        allowed = LIBRARY_MAY_IMPORT.get(part_of(mod))
        if allowed is None:  # a face
            continue
        bad += [f"{mod} imports {d}" for d in sorted(deps) if part_of(d) not in allowed]
    assert bad == []


def test_faces_use_the_library_through_its_modules_not_rtl_bridge_from_the_library() -> None:
    """rtl_bridge is reached from faces only (dla rtl, scenario RTL sections)."""
    users = {part_of(m) for m, deps in import_graph().items() if any(part_of(d) == "rtl_bridge" for d in deps)}
    assert users - {"rtl_bridge"} <= set(FACES)


def test_no_circle_between_parts() -> None:
    graph: dict[str, set[str]] = {}
    for mod, deps in import_graph().items():
        graph.setdefault(part_of(mod), set()).update(part_of(d) for d in deps if part_of(d) != part_of(mod))
    assert find_cycle(graph) is None


def test_no_circle_between_modules() -> None:
    graph = import_graph()
    # a package's __init__ re-exporting its own modules is not a circle of the design
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    assert find_cycle(graph) is None


@pytest.mark.parametrize("top", ["dla", "golden", "quant", "rtl_bridge", "bench"])
def test_module_size_budget(top: str) -> None:
    big = {p.relative_to(ROOT).as_posix(): n for p in (ROOT / top).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}, f"over {MAX_LINES} lines: split by job"


def test_the_checks_see_what_they_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A library module importing a face inside a function, and a circle, are both found."""
    graph = import_graph()
    assert "dla.engine" in graph and "golden.engine" in graph["dla.engine"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    fake = tmp_path / "dla" / "x.py"
    fake.parent.mkdir()
    fake.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import dla.web\n"
                    "def f():\n    from dla.cli import common\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert imports_of(fake, {"dla.cli.common"}) == {"dla.cli.common"}
    assert part_of("dla.cli.common") == "dla.cli" and part_of("dla.engine") == "dla"


def test_import_dla_exports_the_public_api() -> None:
    import dla

    for name in dla.__all__:
        assert getattr(dla, name) is not None, name
    assert {"HardwareConfig", "Engine", "Mode", "Session", "load_qnet", "save_qnet", "network_cycles",
            "compare_modes"} <= set(dla.__all__)


def test_the_architecture_page_shows_every_folder_and_library_module() -> None:
    """docs/architecture.md's tree names each package folder and each module of the library, so
    'where is the rule for X' is answered by the page, and a new module cannot hide."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    tree = text[text.index("## Layout"):]
    tree = tree[tree.index("```"):]
    tree = tree[: tree.index("```", 3)]
    missing = []
    for pkg in PACKAGES:
        for d in sorted(p for p in (ROOT / pkg).rglob("*") if p.is_dir() and (p / "__init__.py").is_file()):
            if f"{d.name}/" not in tree:
                missing.append(d.relative_to(ROOT).as_posix() + "/")
    for path in product_files():
        mod = module_name(path)
        if part_of(mod) in LIBRARY_MAY_IMPORT and path.name != "__init__.py" and "/cycles/" not in path.as_posix() \
                and "/algorithms/" not in path.as_posix() and path.name not in tree:
            missing.append(path.relative_to(ROOT).as_posix())
    assert missing == []
