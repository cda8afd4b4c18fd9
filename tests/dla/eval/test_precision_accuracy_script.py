"""bench/precision_accuracy.py: the spec files it writes are what `dla eval --precision` reads, and a
missing input is one error line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dla.catalog import shipped_model
from dla.eval.precision import load_options
from golden.network import load_network
from tests.paths import ROOT

SCRIPT = ROOT / "bench" / "precision_accuracy.py"


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT / "bench")


def test_write_specs_gives_the_options_dla_eval_takes(tmp_path: Path) -> None:
    res = _run("--write-specs", tmp_path / "specs", "--model", "shapes-yolo")
    assert res.returncode == 0, res.stderr
    opts = res.stdout.split()
    values = opts[1::2]
    assert opts[::2] == ["--precision"] * 5
    assert [v.split("=")[0] for v in values] == ["int16-heads", "int16-first-layer", "w4a8-body", "mixed-all-three",
                                                 "heads-on-host"]
    m = shipped_model("shapes-yolo")
    net = load_network(m.cfg, m.weights)
    specs = {p.name: p for p in load_options(values)}
    for p in specs.values():
        p.check_network(net)
    heads = specs["heads-on-host"].overrides
    assert len(heads) == 1 and heads[0].layers == (13, 20) and heads[0].host is True
    assert specs["int16-heads"].overrides[0].activation_bits == 16
    assert specs["int16-first-layer"].input_bits == 16


def test_missing_weights_is_one_error_line(tmp_path: Path) -> None:
    res = _run("--weights", tmp_path / "none.weights")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")] == [
        f"Error: {tmp_path / 'none.weights'}: weights file not found"]
