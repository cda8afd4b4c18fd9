"""Operand widths from the command line: a spec with ``activation_bits: 16`` on yolov3-tiny's
heads → ``dla quantize`` → an INT run whose dump holds int16 heads and int8 everywhere else;
spec and hardware mistakes about widths are one ``Error:`` line naming the layer and field."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dla.catalog import DEFAULT_IMAGE
from tests.cli_helpers import fails, ok

HEADS = {15, 22}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLA_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    out = tmp_path / "yolov3-tiny.weights"
    ok("gen-weights", "yolov3-tiny", "--seed", "3", "-o", out, "-q")
    return out


def test_int16_heads_are_dumped_as_int16(tmp_path: Path, weights: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("activations: max\noverrides:\n  - layers: [15, 22]\n    activation_bits: 16\n")
    qnet = tmp_path / "m.qnet"
    printed = ok("quantize", "yolov3-tiny", weights, "--calib-synthetic", 1, "--spec", spec, "-o", qnet, "-q").output
    meta = json.loads((qnet / "model.json").read_text())
    assert {t["index"] for t in meta["tensors"] if t.get("bits") == 16} == HEADS
    # the tensor table shows each width (a 258x finer scale alone would look like a calibration bug)
    header, *rows = [r.split() for r in printed.splitlines() if r.split()[:1] and r.split()[0].lstrip("-").isdigit()
                     or r.lstrip().startswith("tensor")]
    assert header[4] == "bits"
    assert {int(r[0]) for r in rows if r[4] == "16"} == HEADS and all(r[4] in ("8", "16") for r in rows)
    dump = tmp_path / "dump"
    ok("infer", qnet, DEFAULT_IMAGE, "--mode", "int", "--dump", dump)
    manifest = json.loads((dump / "manifest.json").read_text())
    for layer in manifest["layers"]:
        arr = np.load(dump / layer["file"])
        assert layer["dtype"] == str(arr.dtype)
        if layer["type"] == "yolo":
            assert layer["dtype"] == "float32" and layer["scale"] is None
        elif layer["index"] in HEADS:
            assert layer["dtype"] == "int16" and layer["scale"] > 0
            assert np.abs(arr).max() > 127  # the int16 range is used
        else:
            assert layer["dtype"] == "int8" and layer["scale"] > 0, layer
    scales = {t["index"]: t["scale"] for t in meta["tensors"]}
    assert all(layer["scale"] == scales[layer["index"]] for layer in manifest["layers"] if layer["scale"])


@pytest.mark.parametrize("text,needle", [
    ("overrides:\n  - layers: [15]\n    activation_bits: 12\n", "'activation_bits' must be one of 8, 16, got 12"),
    ("overrides:\n  - layers: [15]\n    weight_bits: 2\n", "'weight_bits' must be one of 4, 8, 16, got 2"),
    ("input_bits: 32\n", "'input_bits' must be one of 8, 16, got 32"),
    ("overrides:\n  - layers: [15]\n    host: maybe\n", "'host' must be true or false"),
    # the file and the entry are named, not only the key (a spec may set weight_bits in several entries)
    ("overrides:\n  - layers: [0]\n    activations: max\n  - layers: [15]\n    weight_bits: 5\n",
     "spec.yaml: override 'weight_bits' must be one of 4, 8, 16, got 5 (override 2: layers [15])"),
    # an override that selects nothing would silently write an all-int8 model
    ("overrides:\n  - layers: [15, 99]\n    activation_bits: 16\n",
     "spec.yaml: override 1: layer 99 does not exist (yolov3-tiny has layers 0-23)"),
    ("overrides:\n  - layers: [1]\n    weight_bits: 4\n",
     "spec.yaml: override 1: weight_bits on layer 1 (maxpool), which has no weights"),
])
def test_spec_mistake_is_one_error_naming_file_entry_and_layer(tmp_path: Path, weights: Path, text: str,
                                                              needle: str) -> None:
    """A bad width, or an override that would change nothing: one error, nothing written."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "x.qnet"
    fails("quantize", "yolov3-tiny", weights, "--calib-synthetic", 1, "--spec", spec, "-o", out, needle=needle)
    assert not out.exists()


def test_width_the_hardware_lacks_is_one_error(tmp_path: Path, weights: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("overrides:\n  - layers: [2]\n    weight_bits: 4\n")
    hw = tmp_path / "hw.yaml"
    hw.write_text("passes_w4a8: 0\n")
    out = tmp_path / "x.qnet"
    fails("quantize", "yolov3-tiny", weights, "--calib-synthetic", 1, "--spec", spec, "--hw", hw, "-o", out,
          needle="layer 2 (convolutional): w4a8")
    assert not out.exists()
