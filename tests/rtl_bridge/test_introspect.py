"""pyverilog introspection behind `dla rtl check`: parameters and operand pairs vs HardwareConfig,
required ports."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from rtl_bridge.introspect import CORE, CORE_PORTS, check_against, missing_pairs, read_interface, rtl_pairs
from rtl_bridge.tile import RTL_PASSES, core_parameters
from dla.config import HardwareConfig
from tests.cli_helpers import fails, ok

#: The default config without w16a16, which the shipped core does not build.
NO_W16 = HardwareConfig(passes_w16a16=0)
NO_W16_YAML = "passes_w16a16: 0\n"


def test_shipped_core_matches_the_default_config() -> None:
    iface = read_interface(CORE)
    assert iface.module == "dla_core"
    assert {k: iface.parameters[k] for k in ("ROWS", "COLS", "ACC_W", "MULT_W", "REQUANT_LATENCY")} == \
        {"ROWS": 16, "COLS": 16, "ACC_W": 32, "MULT_W": 32, "REQUANT_LATENCY": 3}
    assert set(CORE_PORTS) <= set(iface.ports) and iface.ports["out_data"] == "output"
    assert check_against(iface, NO_W16) == []


def test_pairs_are_read_back_from_the_verilog() -> None:
    """pyverilog reads the operand pairs the shipped core declares, at the cost the adapter uses,
    and the parameters the benches build it with are its defaults."""
    iface = read_interface(CORE)
    pairs = {p: c.passes for p, c in rtl_pairs(iface).items()}
    assert pairs == RTL_PASSES == {"w8a8": 1.0, "w8a16": 2.0, "w4a16": 2.0, "w4a8": 0.5, "w16a8": 2.0}
    assert rtl_pairs(iface)["w4a8"].parameter == "PACK_W4A8"
    built = core_parameters(HardwareConfig())
    assert {k: iface.parameters[k] for k in built} == built


def test_default_config_notes_the_pair_the_core_lacks() -> None:
    """The default config also prices w16a16, which the core has no mode for: not a disagreement
    (nothing runs differently; `dla rtl run` refuses such a layer), one note naming the config
    field and the missing parameter."""
    iface = read_interface(CORE)
    assert check_against(iface, HardwareConfig()) == []
    assert missing_pairs(iface, HardwareConfig()) == [
        "w16a16: the hardware config runs it (passes_w16a16 = 2) but the RTL core has no mode for it "
        "(no PASSES_W16A16 or PACK_W16A16 parameter); `dla rtl run` refuses such layers"]
    assert missing_pairs(iface, NO_W16) == []


def test_pair_cost_and_missing_mode_in_a_user_core(tmp_path: Path) -> None:
    """A core built without w4a8 (PACK_W4A8 = 0) and a config pricing w8a16 at 4 passes: the cost
    disagreement is an error line, the missing mode a note; a pair the RTL runs and the config
    does not is neither."""
    text = CORE.read_text().replace("parameter integer PACK_W4A8 = 2", "parameter integer PACK_W4A8 = 0")
    v = tmp_path / "no_w4.v"
    v.write_text(text)
    iface = read_interface(v)
    assert rtl_pairs(iface)["w4a8"].passes == 0.0
    hw = NO_W16.replace(passes_w8a16=4)
    assert check_against(iface, hw) == [
        "w8a16: the RTL core runs it at passes 2 (PASSES_W8A16 = 2), but the hardware config has passes_w8a16 = 4"]
    assert missing_pairs(iface, hw) == [
        "w4a8: the hardware config runs it (passes_w4a8 = 0.5) but the RTL core has no mode for it (PACK_W4A8 = 0); "
        "`dla rtl run` refuses such layers"]
    assert check_against(iface, NO_W16.replace(passes_w4a8=0, passes_w4a16=0)) == []
    y = tmp_path / "hw.yaml"
    y.write_text(NO_W16_YAML + "passes_w8a16: 4\n")
    res = fails("rtl", "check", "--rtl", v, "--hw", y, needle="the RTL does not match the hardware config:")
    assert "note: w4a8: the hardware config runs it (passes_w4a8 = 0.5) but the RTL core has no mode" in res.output
    assert "\n  w8a16: the RTL core runs it at passes 2 (PASSES_W8A16 = 2), but the hardware config has " \
        "passes_w8a16 = 4" in res.output
    assert "  w4a8    RTL 0      config 0.5" in res.output and "Traceback" not in res.output


def test_cli_check_and_mismatch_names_both_values(tmp_path: Path) -> None:
    before = set(os.listdir("."))
    hw0 = tmp_path / "no_w16.yaml"
    hw0.write_text(NO_W16_YAML)
    res = ok("rtl", "check", "--hw", hw0)
    assert "RTL parameters and operand pairs match" in res.output and "note:" not in res.output
    assert "  w4a8    RTL 0.5    config 0.5" in res.output and "  w8a16   RTL 2      config 2" in res.output
    assert set(os.listdir(".")) == before  # pyverilog's parser tables stay out of the working directory
    res = ok("rtl", "check")  # the default config: matches, with the one note
    assert "note: w16a16: the hardware config runs it (passes_w16a16 = 2) but the RTL core has no mode" in res.output
    assert "RTL parameters and operand pairs match" in res.output
    hw = tmp_path / "hw.yaml"
    hw.write_text(NO_W16_YAML + "cols: 8\nrequant_latency: 4\n")
    fails("rtl", "check", "--hw", hw, needle="parameter COLS = 16 in the RTL, but the hardware config has cols = 8")


def test_user_rtl_missing_a_port(tmp_path: Path) -> None:
    text = CORE.read_text().replace("    input  wire                     leaky_en,     // the layer's activation: fused LeakyReLU\n", "")
    assert "leaky_en," not in text.split(");")[0]
    v = tmp_path / "mine.v"
    v.write_text(text)
    fails("rtl", "check", "--rtl", v, needle="port 'leaky_en' is missing from module dla_core")
    hw = tmp_path / "hw.yaml"
    hw.write_text("cols: 8\n")
    res = fails("rtl", "check", "--rtl", v, "--hw", hw, needle="port 'leaky_en' is missing")
    assert "\n  parameter COLS = 16 in the RTL" in res.output  # every problem, one line each


def test_unparsable_rtl(tmp_path: Path) -> None:
    v = tmp_path / "bad.v"
    v.write_text("module broken(input wire a\nendmodule\n")
    fails("rtl", "check", "--rtl", v, needle="bad.v: pyverilog cannot parse it")
    fails("rtl", "check", "--rtl", tmp_path / "none.v", needle="none.v: Verilog source not found")


def test_verilator_lints_the_rtl_clean() -> None:
    """Verilator's default lint (WIDTH etc.) accepts dla_core + dla_requant (every mode built, and
    none: the w8a8/int8 core) and dla_requant alone (int8 and int16 results).
    Fails, never skips, without verilator (CI installs it: .ci/run)."""
    verilator = shutil.which("verilator")
    assert verilator, "verilator is not installed: apt-get install -y verilator"
    rtl = CORE.parent
    no_modes = ["-GPASSES_W8A16=0", "-GPASSES_W4A16=0", "-GPACK_W4A8=0", "-GPASSES_W16A8=0", "-GOUT_W=8"]
    for cmd in ([verilator, "--lint-only", "dla_core.v", "dla_requant.v", "--top-module", "dla_core"],
                [verilator, "--lint-only", "dla_core.v", "dla_requant.v", "--top-module", "dla_core", *no_modes],
                [verilator, "--lint-only", "dla_requant.v", "--top-module", "dla_requant"],
                [verilator, "--lint-only", "dla_requant.v", "--top-module", "dla_requant", "-GOUT_W=16"]):
        res = subprocess.run(cmd, cwd=rtl, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{' '.join(cmd[1:])} exited {res.returncode}:\n{res.stdout}{res.stderr}"
