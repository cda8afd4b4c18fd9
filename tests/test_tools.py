"""tests/tools.py: a missing requirement fails in CI (``CI`` set) with the install hint and skips
elsewhere with the same message; a present one is returned."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tests.paths
from tests.tools import in_ci, require_file, require_module, require_tool

HINT = "apt-get install -y nodejs"


@pytest.fixture
def no_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """``node`` and ``nodejs`` look uninstalled, whatever the machine has."""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: None if c in ("node", "nodejs") else real(c, *a, **k))


def test_missing_tool_is_a_failure_in_ci_with_the_install_hint(monkeypatch, no_node) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"^node / nodejs is not installed: {HINT}$"):
        require_tool("node", "nodejs", hint=HINT)


@pytest.mark.parametrize("ci", [None, ""])
def test_missing_tool_is_a_skip_elsewhere_with_the_same_message(monkeypatch, no_node, ci: str | None) -> None:
    """Unset or empty ``CI`` is "not CI"."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match=f"^node / nodejs is not installed: {HINT}$"):
        require_tool("node", "nodejs", hint=HINT)


def test_a_present_tool_is_its_path_the_first_found_wins(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: {"nodejs": "/opt/bin/nodejs"}.get(c))
    assert require_tool("node", "nodejs", hint=HINT) == "/opt/bin/nodejs"
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: f"/usr/bin/{c}")
    assert require_tool("node", "nodejs", hint=HINT) == "/usr/bin/node"


@pytest.mark.parametrize("ci, outcome", [("1", pytest.fail.Exception), (None, pytest.skip.Exception)])
def test_missing_module_and_file(monkeypatch, tmp_path: Path, ci: str | None, outcome: type) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"^no_such_module_dla \(Python\) is missing: pip install x$"):
        require_module("no_such_module_dla", "pip install x")
    with pytest.raises(outcome, match=f"^{tmp_path / 'gone'} is missing: make it$"):
        require_file(tmp_path / "gone", "make it")
    monkeypatch.setattr(tests.paths, "SHARED", tmp_path)
    with pytest.raises(outcome, match="darknet-cfg is missing: the tests need ../shared .set DLA_SHARED"):
        tests.paths.shared_path("darknet-cfg")


def test_present_module_and_file_are_returned(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_module("json", "-").dumps([1]) == "[1]"
    (tmp_path / "here").write_text("x")
    assert require_file(tmp_path / "here", "-") == tmp_path / "here"
