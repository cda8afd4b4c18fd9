"""`dla doctor` and the one list of system tools: the README's system line,
.ci/run's install and every missing-tool message come from or agree with ``dla.doctor``."""
from __future__ import annotations

import re
import shlex
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from dla import doctor
from tests.cli_helpers import fails, run
from tests.paths import ROOT



def _hide(monkeypatch: pytest.MonkeyPatch, *commands: str) -> None:
    """Make ``commands`` look uninstalled (shutil.which and the postgres glob)."""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: None if c in commands else real(c, *a, **k))
    if "postgres" in commands:
        monkeypatch.setattr(doctor.glob, "glob", lambda _p: [])


def test_readme_has_the_system_line_after_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[:readme.index("\n## ")]
    assert doctor.APT_LINE in head and "dla doctor" in head
    assert head.index("python3 -m pytest -q") < head.index(doctor.APT_LINE)


def test_ci_installs_exactly_the_documented_packages() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r'^SYSTEM_PACKAGES="([^"]*)"', ci, re.M)
    assert m, ".ci/run must define SYSTEM_PACKAGES"
    assert tuple(shlex.split(m.group(1))) == doctor.APT_PACKAGES


def test_all_present_exit_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "examine", lambda: doctor.Report([(t, "/usr/bin/x") for t in doctor.TOOLS],
                                                                 {"rtl": {"cocotb": "2.1.0"}}))
    res = run("doctor")
    assert res.exit_code == 0, res.output
    assert "everything is installed" in res.output and "apt-get" not in res.output


def test_missing_tools_and_extras_give_the_exact_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "dot", "iverilog", "postgres")
    real = metadata.version
    monkeypatch.setattr(doctor.metadata, "version",
                        lambda d: (_ for _ in ()).throw(metadata.PackageNotFoundError(d)) if d == "pyverilog"
                        else real(d))
    res = run("doctor")
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert "  sudo apt-get install -y graphviz iverilog postgresql" in lines
    extras_line = [x for x in lines if "pip install" in x]
    assert len(extras_line) == 1
    extras = set(re.search(r"\[(.*)\]'", extras_line[0]).group(1).split(","))
    assert extras == {"rtl", "test"}  # pyverilog is in [rtl] and, through it, in [test]
    assert any(x.startswith("  MISSING") and "dot" in x and "dla graph" in x for x in lines)
    assert "Traceback" not in res.output


def test_extras_are_read_from_the_installed_metadata() -> None:
    extras = doctor.extra_requirements()
    assert {"cocotb", "pyverilog"} == set(extras["rtl"])
    assert {"cocotb", "pyverilog", "torch", "scipy", "pytest"} <= set(extras["test"])


def test_one_rtl_hint() -> None:
    assert doctor.RTL_HINT == "pip install 'dla-sim[rtl]' and sudo apt-get install -y iverilog"


def test_graph_without_dot_is_one_error_before_any_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _hide(monkeypatch, "dot")
    import dla.cli.model

    monkeypatch.setattr(dla.cli.model, "model_args", lambda *a, **k: pytest.fail("loaded the model before checking dot"))
    out = tmp_path / "g.svg"
    fails("graph", "yolov3-tiny", "-o", out, needle="sudo apt-get install -y graphviz")
    assert not out.exists()
    monkeypatch.undo()
    _hide(monkeypatch, "dot")
    res = run("graph", "yolov3-tiny", "-o", tmp_path / "g.json")  # JSON needs no Graphviz
    assert res.exit_code == 0, res.output
