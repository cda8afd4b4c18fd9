"""pyverilog introspection behind `dla rtl check`: parameters vs HardwareConfig, required ports."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from rtl_bridge.introspect import CORE, CORE_PORTS, check_against, read_interface
from dla.config import HardwareConfig
from tests.cli_helpers import fails, ok


def test_shipped_core_matches_the_default_config() -> None:
    iface = read_interface(CORE)
    assert iface.module == "dla_core"
    assert {k: iface.parameters[k] for k in ("ROWS", "COLS", "ACC_W", "MULT_W", "REQUANT_LATENCY")} == \
        {"ROWS": 16, "COLS": 16, "ACC_W": 32, "MULT_W": 32, "REQUANT_LATENCY": 3}
    assert set(CORE_PORTS) <= set(iface.ports) and iface.ports["out_data"] == "output"
    assert check_against(iface, HardwareConfig()) == []


def test_cli_check_and_mismatch_names_both_values(tmp_path: Path) -> None:
    before = set(os.listdir("."))
    res = ok("rtl", "check")
    assert "RTL parameters match" in res.output
    assert set(os.listdir(".")) == before  # pyverilog's parser tables stay out of the working directory
    hw = tmp_path / "hw.yaml"
    hw.write_text("cols: 8\nrequant_latency: 4\n")
    fails("rtl", "check", "--hw", hw, needle="parameter COLS = 16 in the RTL, but the hardware config has cols = 8")


def test_user_rtl_missing_a_port(tmp_path: Path) -> None:
    text = CORE.read_text().replace("    input  wire                     leaky_en,     // the layer's activation: fused LeakyReLU\n", "")
    assert "leaky_en," not in text.split(");")[0]
    v = tmp_path / "mine.v"
    v.write_text(text)
    fails("rtl", "check", "--rtl", v, needle="port 'leaky_en' is missing from module dla_core")


def test_unparsable_rtl(tmp_path: Path) -> None:
    v = tmp_path / "bad.v"
    v.write_text("module broken(input wire a\nendmodule\n")
    fails("rtl", "check", "--rtl", v, needle="bad.v: pyverilog cannot parse it")
    fails("rtl", "check", "--rtl", tmp_path / "none.v", needle="none.v: Verilog source not found")


def test_verilator_lints_the_rtl_clean() -> None:
    """Verilator's default lint (WIDTH etc.) accepts dla_core + dla_requant and dla_requant alone.
    Fails, never skips, without verilator (CI installs it: .ci/run)."""
    verilator = shutil.which("verilator")
    assert verilator, "verilator is not installed: apt-get install -y verilator"
    rtl = CORE.parent
    for cmd in ([verilator, "--lint-only", "dla_core.v", "dla_requant.v", "--top-module", "dla_core"],
                [verilator, "--lint-only", "dla_requant.v", "--top-module", "dla_requant"]):
        res = subprocess.run(cmd, cwd=rtl, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{' '.join(cmd[1:])} exited {res.returncode}:\n{res.stdout}{res.stderr}"
