"""Missing RTL tools: every RTL feature gives the same install hint, and names
every missing tool before it does any work (no calibration first, no partial output)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from dla.doctor import RTL_HINT
from rtl_bridge import sim
from tests.cli_helpers import fails

ROOT = Path(__file__).resolve().parents[2]


def _hide(monkeypatch: pytest.MonkeyPatch, *, modules: tuple[str, ...] = (), commands: tuple[str, ...] = ()) -> None:
    real_spec, real_which = importlib.util.find_spec, shutil.which
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] in modules else real_spec(name, *a, **k))
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: None if c in commands else real_which(c, *a, **k))


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import dla.cli.rtl

    monkeypatch.setattr(dla.cli.rtl, "model_args", lambda *a, **k: pytest.fail("loaded/quantized the model first"))
    monkeypatch.setattr(dla.cli.rtl, "engine_for", lambda *a, **k: pytest.fail("calibrated first"))


def test_the_hint_is_the_doctors() -> None:
    assert sim.INSTALL_HINT == RTL_HINT and "dla-sim[rtl]" in RTL_HINT and "iverilog" in RTL_HINT


def test_rtl_run_without_cocotb_fails_before_calibrating(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, modules=("cocotb_tools",))
    _no_work(monkeypatch)
    res = fails("rtl", "run", "yolov3-tiny", "x.weights", "--layer", 2, needle=RTL_HINT)
    assert "dla rtl run needs cocotb," in res.output


def test_rtl_run_names_every_missing_tool_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, modules=("cocotb_tools",), commands=("iverilog",))
    _no_work(monkeypatch)
    fails("rtl", "run", "yolov3-tiny", "x.weights", "--layer", 2, needle="needs cocotb, iverilog, not installed")


def test_rtl_check_without_pyverilog_same_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, modules=("pyverilog",))
    res = fails("rtl", "check", needle=RTL_HINT)
    assert "dla rtl check needs pyverilog," in res.output and "module dla_core" not in res.output


def test_scenario_rtl_section_without_iverilog_names_its_line_before_building(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import dla.scenario.runner as runner

    _hide(monkeypatch, commands=("iverilog",))
    monkeypatch.setattr(runner, "build", lambda *a, **k: pytest.fail("built and calibrated first"))
    out = tmp_path / "out"
    res = fails("run", ROOT / "scenarios" / "rtl-regression.yaml", "-o", out, "-q", needle=RTL_HINT)
    assert "rtl-regression.yaml:15" in res.output and "needs iverilog" in res.output
    assert not out.exists()


def test_a_crashed_simulation_shows_the_end_of_its_log(tmp_path: Path) -> None:
    (tmp_path / sim.SIM_LOG).write_text("".join(f"line {i}\n" for i in range(100)))
    tail = sim.sim_log_tail(tmp_path, 3)
    assert tail.endswith("line 97\nline 98\nline 99") and str(tmp_path / sim.SIM_LOG) in tail
    assert sim.sim_log_tail(tmp_path / "none") == ""
