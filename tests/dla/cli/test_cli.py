"""The `dla` command through click's runner: outputs, the dump contract, and every bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import fails, ok, run  # noqa: F401

from dla.dump import read_dump
from golden.engine import forward
from golden.image import load_image, prepare_input
from golden.network import load_network

DET_CFG = """[net]
width=64
height=64
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=18
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=10,14,23,27,37,58
classes=1
num=3
"""

CLS_CFG = """[net]
width=32
height=32
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky
[avgpool]
[convolutional]
filters=10
size=1
activation=linear
[softmax]
groups=1
"""


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "det.cfg"
    cfg.write_text(DET_CFG)
    weights = tmp_path / "det.weights"
    ok("gen-weights", cfg, "--seed", "1", "-o", weights, "-q")
    return cfg, weights


@pytest.fixture
def image(tmp_path: Path) -> Path:
    from PIL import Image

    p = tmp_path / "img.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(p)
    return p


def _all_commands(group=None, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    import click

    from dla.cli import cli

    group = group or cli
    out = [list(prefix)]
    for name, cmd in group.commands.items():
        out += _all_commands(cmd, (*prefix, name)) if isinstance(cmd, click.Group) else [[*prefix, name]]
    return out


def test_the_command_list_is_walked() -> None:
    names = {" ".join(c) for c in _all_commands()}
    assert {"", "info", "demo", "rtl run", "eval", "serve", "doctor"} <= names and len(names) > 20


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c) or "dla")
def test_every_command_has_help(command: list[str]) -> None:
    res = ok(*command, "--help")
    assert "Usage:" in res.output and res.output.count("\n") > 3


def test_info_shipped_model() -> None:
    res = ok("info", "yolov3-tiny")
    assert "24 layers" in res.output and "8,858,734 parameters" in res.output
    assert "2,782,480,896 MACs" in res.output


def test_gen_weights_is_deterministic(tmp_path: Path, model: tuple[Path, Path]) -> None:
    cfg, weights = model
    again = tmp_path / "again.weights"
    ok("gen-weights", cfg, "--seed", "1", "-o", again)
    assert again.read_bytes() == weights.read_bytes()
    ok("info", cfg, weights)


def test_infer_writes_dump_png_and_json(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    dump, png, js = tmp_path / "dump", tmp_path / "out.png", tmp_path / "det.json"
    res = ok("infer", cfg, weights, image, "--mode", "float", "--dump", dump, "-o", png, "--json", js,
             "--thresh", "0.05", "-q")
    assert "mode float" in res.output
    manifest, arrays = read_dump(dump)
    assert manifest["mode"] == "float" and manifest["format"] == "dla-dump"
    assert [(m["index"], m["type"], m["dtype"], m["file"]) for m in manifest["layers"]] == [
        (0, "convolutional", "float32", "000.npy"), (1, "maxpool", "float32", "001.npy"),
        (2, "convolutional", "float32", "002.npy"), (3, "yolo", "float32", "003.npy")]
    net = load_network(cfg, weights)
    expected = forward(net, prepare_input(load_image(image), net.input_shape))
    for i, arr in expected.items():
        assert np.array_equal(arrays[i], arr)
        if i >= 0:
            assert manifest["layers"][i]["shape"] == list(arr.shape)
    dets = json.loads(js.read_text())
    assert isinstance(dets, list)
    for d in dets:
        assert set(d) == {"class", "prob", "box"} and len(d["box"]) == 4 and d["prob"] > 0.05
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_infer_classifier_prints_top5(tmp_path: Path, image: Path) -> None:
    cfg = tmp_path / "cls.cfg"
    cfg.write_text(CLS_CFG)
    weights = tmp_path / "cls.weights"
    ok("gen-weights", cfg, "-o", weights, "-q")
    js = tmp_path / "top.json"
    res = ok("infer", cfg, weights, image, "--json", js, "-q")
    top = json.loads(js.read_text())
    assert len(top) == 5 and top[0]["prob"] >= top[-1]["prob"]
    assert top[0]["class"] in res.output


def test_demo_runs_on_builtin_default(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = ok("demo", "-o", out)
    assert "shapes-yolo" in res.output and "INT mse/per_channel" in res.output and "fps" in res.output
    assert "square" in res.output  # the trained detector finds the shapes
    assert {p.name for p in out.iterdir()} == {"report.html", "layers.csv", "summary.json", "junit.xml", "plots", "timing.json"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "demo" and summary["passed"] and summary["modes"] == ["float", "hybrid", "int"]
    ok("demo", "-o", out, "-q")  # re-running replaces its own earlier output
    fails("demo", "--model", "nope", "-o", tmp_path / "x", needle="nope: no such cfg file")


# ------------------------------------------------------------------ bad input


def no_outputs(tmp_path: Path) -> None:
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith((".", "dump", "out"))]
    assert leftovers == [], leftovers


def test_missing_cfg(tmp_path: Path) -> None:
    fails("info", tmp_path / "nope.cfg", needle="nope.cfg: cfg file not found")


def test_unknown_model_name_lists_shipped() -> None:
    fails("info", "yolov9", needle="not a shipped model (shipped: darknet,")


@pytest.mark.parametrize("body,needle", [
    ("[convolutionnal]\nfilters=2\n", ":5: [convolutionnal] unknown layer type"),
    ("[convolutional]\nsize=abc\n", ":6: [convolutional] option 'size': expected an integer, got 'abc'"),
    ("[route]\nlayers=-3\n", ":6: [route] option 'layers': layer -3 resolves to index -3"),
])
def test_bad_cfg(tmp_path: Path, body: str, needle: str) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n" + body)
    fails("info", cfg, needle=f"bad.cfg{needle}")


def test_truncated_weights(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    short = tmp_path / "short.weights"
    short.write_bytes(weights.read_bytes()[:-100])
    fails("infer", cfg, short, image, "--dump", tmp_path / "dump", "-o", tmp_path / "out.png",
          needle="layer 2 (convolutional): 100 bytes missing")
    no_outputs(tmp_path)


def test_too_long_weights(tmp_path: Path, model: tuple[Path, Path]) -> None:
    cfg, weights = model
    long = tmp_path / "long.weights"
    long.write_bytes(weights.read_bytes() + b"1234")
    fails("info", cfg, long, needle="4 bytes left over after the last layer")


def test_weights_of_another_cfg(tmp_path: Path, model: tuple[Path, Path]) -> None:
    cfg, weights = model
    other = tmp_path / "other.cfg"
    other.write_text(CLS_CFG)
    fails("info", other, weights, needle="wrong cfg for these weights?")


def test_image_not_an_image(tmp_path: Path, model: tuple[Path, Path]) -> None:
    cfg, weights = model
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is not a JPEG")
    fails("infer", cfg, weights, fake, "--dump", tmp_path / "dump", "-o", tmp_path / "out.png",
          "--json", tmp_path / "out.json", needle="fake.jpg: not a readable image")
    no_outputs(tmp_path)


def test_missing_image(tmp_path: Path, model: tuple[Path, Path]) -> None:
    cfg, weights = model
    fails("infer", cfg, weights, tmp_path / "none.png", needle="none.png: image not found")


def test_output_into_missing_directory(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    fails("infer", cfg, weights, image, "-o", tmp_path / "no" / "where.png", needle="does not exist")


def test_dump_refuses_foreign_nonempty_directory(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    target = tmp_path / "mine"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    fails("infer", cfg, weights, image, "--dump", target, needle="directory exists and is not empty")
    assert (target / "precious.txt").read_text() == "keep me"


# ------------------------------------------------------------------ HYBRID / INT from the command line


@pytest.mark.parametrize("mode", ["hybrid", "int"])
def test_infer_quantized_modes_and_int_dump(tmp_path: Path, model: tuple[Path, Path], image: Path, mode: str) -> None:
    cfg, weights = model
    dump = tmp_path / "dump"
    res = ok("infer", cfg, weights, image, "--mode", mode, "--dump", dump, "--granularity", "per-channel", "-q")
    assert f"mode {mode}" in res.output
    manifest, arrays = read_dump(dump)
    assert manifest["mode"] == mode
    conv = manifest["layers"][0]
    if mode == "int":
        assert conv["dtype"] == "int8" and conv["scale"] > 0 and arrays[0].dtype == np.int8
        assert manifest["input"]["scale"] > 0 and arrays[-1].dtype == np.int8
        assert manifest["layers"][3]["dtype"] == "float32" and manifest["layers"][3]["scale"] is None  # yolo: host
    else:
        assert conv["dtype"] == "float32" and conv["scale"] is None


def test_compare_table_csv_json(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    csv_path, js = tmp_path / "layers.csv", tmp_path / "cmp.json"
    res = ok("compare", cfg, weights, image, "--csv", csv_path, "--json", js, "--thresh", "0.05", "-q")
    assert "INT SQNR" in res.output and "hybrid vs float: recall" in res.output
    head, conv = res.output.splitlines()[:2]
    assert head.split()[3] == "precision" and conv.split()[3] == "w8a8"  # all int8: the default network
    header = csv_path.read_text().splitlines()[0]
    assert header.startswith("index,type,shape,precision,hybrid_sqnr_db")
    data = json.loads(js.read_text())
    assert len(data["layers"]) == 4 and set(data["detections"]) == {"float", "hybrid", "int"}
    assert data["layers"][0]["precision"]["label"] == "w8a8" and data["layers"][3]["precision"]["host"]


def test_compare_with_calibration_folder_and_hw(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "a.png").write_bytes(image.read_bytes())
    hw = tmp_path / "hw.yaml"
    hw.write_text("acc_bits: 16\nrequant: scale_shift\nmultiplier_bits: 16\n")
    ok("compare", cfg, weights, image, "--calib", calib, "--hw", hw, "-q")


def test_hw_typo_names_file_and_line(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    hw = tmp_path / "hw.yaml"
    hw.write_text("acc_bits: 32\nrequnt: gemmlowp\n")
    fails("infer", cfg, weights, image, "--mode", "int", "--hw", hw,
          needle="hw.yaml:2: unknown key 'requnt' (did you mean 'requant'?)")


def test_hw_invalid_yaml(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    hw = tmp_path / "hw.yaml"
    hw.write_text("acc_bits: [32\n")
    fails("compare", cfg, weights, image, "--hw", hw, needle="hw.yaml:2: invalid YAML")


def test_empty_calibration_folder(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    empty = tmp_path / "empty"
    empty.mkdir()
    fails("infer", cfg, weights, image, "--mode", "int", "--calib", empty, "--dump", tmp_path / "dump",
          needle="calibration set is empty")
    assert not (tmp_path / "dump").exists()


def test_unreadable_calibration_image(tmp_path: Path, model: tuple[Path, Path], image: Path) -> None:
    cfg, weights = model
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "broken.jpg").write_text("not an image")
    fails("compare", cfg, weights, image, "--calib", calib, needle="broken.jpg: not a readable image")


def test_int_mode_unsupported_activation(tmp_path: Path, image: Path) -> None:
    cfg = tmp_path / "mish.cfg"
    cfg.write_text("[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
                   "activation=mish\n")
    weights = tmp_path / "mish.weights"
    ok("gen-weights", cfg, "-o", weights, "-q")
    fails("infer", cfg, weights, image, "--mode", "int", "-o", tmp_path / "out.png",
          needle="layer 0 (convolutional): activation 'mish' has no integer implementation")
    assert not (tmp_path / "out.png").exists()
    hw = tmp_path / "lut.yaml"
    hw.write_text("activation_lut: true\n")
    ok("infer", cfg, weights, image, "--mode", "int", "--hw", hw, "-q")


def test_missing_image_fails_before_loading(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """A mistyped IMAGE is reported before the model loads: no progress bar, only the Error line."""
    cfg, weights = model
    for cmd in ("infer", "compare"):
        res = fails(cmd, cfg, weights, tmp_path / "none.png", needle="none.png: image not found")
        assert res.output.strip().splitlines() == [f"Error: {tmp_path / 'none.png'}: image not found"], res.output


def test_image_given_as_weights(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """An image where WEIGHTS belong is named as such, not reported as a truncated weights file."""
    cfg, _ = model
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    fails("infer", cfg, tmp_path / "photo.jpg", tmp_path / "photo.jpg", needle="photo.jpg: this is a JPEG image")
    fails("info", cfg, tmp_path / "photo.png", needle="photo.png: this is a PNG image, not Darknet .weights")


@pytest.mark.parametrize("command", [("quantize", "yolov3-tiny", "-o", "X"), ("rtl", "run", "yolov3-tiny"),
                                     ("eval", "shapes-yolo", "--data", ".", "--json", "X")])
def test_calib_synthetic_is_bounded(command: tuple[str, ...], tmp_path: Path) -> None:
    """`--calib-synthetic 1000000000` ran without bound; it has the scenarios' limit (1000)."""
    out = tmp_path / "x"
    fails(*(out if a == "X" else a for a in command), "--calib-synthetic", "1000000000", needle="1<=x<=1000")
    assert not out.exists()
