"""``dla rtl run``: a yolov3-tiny conv layer (at a 32x32 input) through the RTL core under
cocotb + Icarus; per tile RTL cycles vs the cycle model and outputs vs the INT kernel."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import fails, ok, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rtl-run")
    text = (ROOT / "dla" / "data" / "cfg" / "yolov3-tiny.cfg").read_text()
    cfg = d / "small.cfg"
    cfg.write_text(text.replace("width=416", "width=32").replace("height=416", "height=32"))
    weights = d / "small.weights"
    ok("gen-weights", cfg, "--seed", 5, "-o", weights, "-q")
    hw = d / "hw8.yaml"
    hw.write_text("rows: 8\ncols: 8\n")
    return {"cfg": cfg, "weights": weights, "hw": hw, "dir": d}


def test_rtl_run_3x3_layer_matches(small: dict[str, Path]) -> None:
    """Layer 2 (3x3 s1 leaky, W = 144: 18 folds on 8 rows), first two tiles, with a VCD."""
    vcd = small["dir"] / "core.vcd"
    # A real process: the simulator writes to file descriptor 1 directly, which CliRunner would
    # not see; its GPI banner and log must stay out of the user's output (they go to sim.log).
    proc = subprocess.run([sys.executable, "-c", "from dla.cli import main; main()", "rtl", "run", str(small["cfg"]),
                           str(small["weights"]), "--layer", "2", "--tiles", "2", "--hw", str(small["hw"]),
                           "--calib-synthetic", "1", "--granularity", "per-channel", "--vcd", str(vcd), "-q"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "gpi" not in (out + proc.stderr).lower() and "cocotb" not in out.lower()
    assert "layer 2 on a 8x8 core at w8a8, int8 outputs: 2 of 4 tiles" in out
    assert out.count("outputs equal INT") == 2
    assert "RTL 5007 cycles = model 5007" in out  # 18 folds x (256 + 2*8 + 8 - 2) + 3
    assert "MACs/s" in out
    assert "all tiles: outputs equal the INT kernel" in out
    assert vcd.is_file() and "$enddefinitions" in vcd.read_text()[:100000]


def test_rtl_run_at_operand_widths(small: dict[str, Path]) -> None:
    """A .qnet quantized with width overrides: layer 22 (1x1, reads layer 21 at int16) runs at
    w8a16 in two digit passes per fold with int16 outputs, layer 15 (1x1) at w4a8 with 16
    filters per 8-column tile; outputs equal the INT engine, cycles the model."""
    spec = small["dir"] / "widths.yaml"
    spec.write_text("granularity: per_channel\noverrides:\n  - layers: [21, 22]\n    activation_bits: 16\n"
                    "  - layers: [15]\n    weight_bits: 4\n    activation_bits: 16\n")
    qnet = small["dir"] / "widths.qnet"
    ok("quantize", small["cfg"], small["weights"], "--calib-synthetic", 1, "--spec", spec, "-o", qnet, "-q")
    out = ok("rtl", "run", qnet, "--layer", 22, "--tiles", 1, "--hw", small["hw"], "-q").output
    assert "layer 22 on a 8x8 core at w8a16, 2 digit passes per fold, int16 outputs: 1 of 32 tiles" in out
    assert "RTL 1667 cycles = model 1667; outputs equal INT" in out  # 32 folds x 2 x (4 + 2*8 + 8 - 2) + 3
    out = ok("rtl", "run", qnet, "--layer", 15, "--tiles", 1, "--hw", small["hw"], "-q").output
    assert "layer 15 on a 8x8 core at w4a8, 2 filters per PE, int16 outputs: 1 of 16 tiles" in out
    assert "filters 0+16 pixels 0+1 folds 64: RTL 1475 cycles = model 1475; outputs equal INT" in out


def test_rtl_run_refuses_host_layers_and_pairs_without_a_mode(small: dict[str, Path]) -> None:
    """A layer the .qnet puts on the host, and a w16a16 layer (priced by the default config, but the
    core has no mode for it): one error naming the layer each, before any simulation."""
    spec = small["dir"] / "host.yaml"
    spec.write_text("overrides:\n  - layers: [22]\n    host: true\n  - layers: [15]\n    weight_bits: 16\n"
                    "  - layers: [14]\n    activation_bits: 16\n")
    qnet = small["dir"] / "host.qnet"
    ok("quantize", small["cfg"], small["weights"], "--calib-synthetic", 1, "--spec", spec, "-o", qnet, "-q")
    fails("rtl", "run", qnet, "--layer", 22, "--hw", small["hw"],
          needle="Error: layer 22 (convolutional) runs on the host (host: true in the model's quantization spec)")
    fails("rtl", "run", qnet, "--layer", 15, "--hw", small["hw"],
          needle="Error: layer 15 (convolutional): operands w16a16 have no mode in the core "
                 "(it runs w8a8, w8a16, w4a16, w4a8, w16a8)")


def test_rtl_run_mismatch_exits_1(small: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong reference (one INT output changed) is reported at its (c, y, x) with exit code 1."""
    import rtl_bridge.bench_core as bench

    real = bench.engine_layer

    def corrupted(engine, x, index):  # noqa: ANN001, ANN202
        x_q, rec = real(engine, x, index)
        out = rec.output.copy()
        out[1, 0, 0] = np.int8(out[1, 0, 0] ^ 1)
        rec.output = out
        return x_q, rec

    monkeypatch.setattr(bench, "engine_layer", corrupted)
    res = run("rtl", "run", small["cfg"], small["weights"], "--layer", 22, "--tiles", 1, "--hw", small["hw"],
              "--calib-synthetic", 1, "-q")
    assert res.exit_code == 1, res.output
    assert "1 outputs differ" in res.output
    assert "mismatch at (c=1, y=0, x=0)" in res.output
    assert "Error: layer 22: the RTL differs" in res.output


def test_rtl_run_refuses_non_conv_and_missing_simulator(small: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fails("rtl", "run", small["cfg"], small["weights"], "--layer", 1, needle="maxpool layer")
    import rtl_bridge.sim as sim

    monkeypatch.setattr(sim.shutil, "which", lambda name, *a, **k: None)
    fails("rtl", "run", small["cfg"], small["weights"], "--layer", 2, needle="apt-get install -y iverilog")
