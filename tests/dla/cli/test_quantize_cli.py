"""``dla quantize`` and the commands that take its ``.qnet``: outputs, the statistics cache, specs,
and every user mistake (one ``Error:`` line, exit code 2, no traceback, nothing left behind)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import fails, ok, run  # noqa: F401

from dla.dump import read_dump
from dla.qnet_file import load_qnet

CFG = """[net]
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
batch_normalize=1
filters=16
size=3
pad=1
activation=leaky
[upsample]
stride=2
[route]
layers=-1,0
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
# layers: 0 conv, 1 maxpool, 2 conv, 3 upsample, 4 route (3, 0), 5 conv, 6 yolo


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Calibration statistics go to a per-test cache, never to ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DLA_CACHE", str(path))
    return path / "calibration"


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "det.cfg"
    cfg.write_text(CFG)
    weights = tmp_path / "det.weights"
    ok("gen-weights", cfg, "--seed", "2", "-o", weights, "-q")
    return cfg, weights


@pytest.fixture
def calib(tmp_path: Path) -> Path:
    """A folder of two small random photos."""
    from PIL import Image

    folder = tmp_path / "calib"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, size in enumerate([(40, 50), (64, 48)]):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"img{k}.png")
    return folder


def model_json(qnet: Path) -> dict:
    return json.loads((qnet / "model.json").read_text())


def leftovers(tmp_path: Path) -> list[str]:
    """Outputs or half-written temporaries in ``tmp_path`` (inputs and the cache excluded)."""
    inputs = {"det.cfg", "det.weights", "calib", "cache", "empty", "spec.yaml", "m.qnet", "mish.cfg", "mish.weights"}
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in inputs)


# ------------------------------------------------------------------ writing a .qnet


def test_quantize_writes_qnet(tmp_path: Path, model: tuple[Path, Path], calib: Path) -> None:
    """The documented invocation writes ``m.qnet/`` (model.json + weights.npz) with the chosen
    algorithms recorded per tensor and layer, and prints the per-tensor table."""
    out = tmp_path / "m.qnet"
    res = ok("quantize", *model, "--calib", calib, "--activations", "kl", "--weights", "max",
             "--granularity", "per-channel", "-o", out, "-q")
    assert f"wrote {out} (2 calibration image(s); activations kl, weights max, per_channel)" in res.output
    assert "algorithm" in res.output and "threshold" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "weights.npz"]
    meta = model_json(out)
    assert meta["format"] == "dla-qnet" and meta["calibration"]["images"] == 2
    assert meta["spec"]["activations"] == "kl" and meta["spec"]["granularity"] == "per_channel"
    assert {t["algorithm"] for t in meta["tensors"]} == {"kl"}
    assert [(e["index"], e["weight_algorithm"], e["granularity"]) for e in meta["layers"]] == [
        (0, "max", "per_channel"), (2, "max", "per_channel"), (5, "max", "per_channel")]
    qnet, _, _ = load_qnet(out)
    assert len(set(qnet.layers[0].w_scale.tolist())) > 1


def test_quantize_calib_synthetic(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """``--calib-synthetic 2`` calibrates on generated images; with ``auto`` the candidates'
    SQNRs are stored and shown by ``dla info``."""
    out = tmp_path / "s.qnet"
    res = ok("quantize", *model, "--calib-synthetic", 2, "--activations", "auto", "-o", out, "-q")
    assert "2 calibration image(s); activations auto" in res.output
    meta = model_json(out)
    assert all(set(t["auto_sqnr_db"]) == {"max", "percentile", "mse", "kl", "log2"} for t in meta["tensors"])
    info = ok("info", out)
    assert "auto candidates" in info.output and "mse " in info.output


def test_quantize_with_spec_overrides(tmp_path: Path, model: tuple[Path, Path], calib: Path) -> None:
    """``--spec`` with overrides by index and type (later wins) decides each tensor's and each
    layer's algorithm; the spec is stored in the file."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("activations: percentile\npercentile: 99.9\nweights: max\ngranularity: per_channel\n"
                    "overrides:\n"
                    "  - types: [convolutional]\n    activations: mse\n"
                    "  - layers: [2]\n    activations: max\n    weights: mse\n    granularity: per_tensor\n"
                    "  - types: [route]\n    activations: log2\n")
    out = tmp_path / "o.qnet"
    ok("quantize", *model, "--calib", calib, "--spec", spec, "-o", out, "-q")
    meta = model_json(out)
    algo = {t["index"]: t["algorithm"] for t in meta["tensors"]}
    assert algo == {-1: "percentile", 0: "mse", 1: "mse", 2: "max", 3: "max", 4: "log2", 5: "mse", 6: "percentile"}
    assert [(e["index"], e["weight_algorithm"], e["granularity"]) for e in meta["layers"]] == [
        (0, "max", "per_channel"), (2, "mse", "per_tensor"), (5, "max", "per_channel")]
    assert meta["spec"]["percentile"] == 99.9 and len(meta["spec"]["overrides"]) == 3
    scale4 = next(t["scale"] for t in meta["tensors"] if t["index"] == 4)
    assert np.log2(scale4) == np.round(np.log2(scale4))  # log2: a power of two


@pytest.mark.parametrize("text,needle", [
    ("activations: kl\noverrides:\n  - layers: [0]\n    activations: entropy\n",
     "unknown activation algorithm 'entropy' (valid: max, percentile, mse, kl, log2, auto)"),
    ("activations: kll\n", "unknown activation algorithm 'kll' (valid: max, percentile, mse, kl, log2, auto)"),
    ("weights: kl\n", "unknown weight algorithm 'kl' (valid: max, mse)"),
    ("granularity: per_layer\n", "unknown granularity 'per_layer' (valid: per_tensor, per_channel)"),
    ("activation: kl\n", "unknown quantization spec key(s) ['activation']"),
    ("overrides:\n  - layer: [0]\n    activations: max\n", "unknown override key(s) ['layer']"),
    ("activations: [kl\n", "spec.yaml:2: invalid YAML"),
    ("- kl\n", "spec.yaml: expected a mapping"),
])
def test_bad_spec_is_one_clear_error(tmp_path: Path, model: tuple[Path, Path], text: str, needle: str) -> None:
    """A spec with an unknown algorithm, key or bad YAML: one error naming it (and the valid
    choices), before any calibration; nothing written."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    fails("quantize", *model, "--calib-synthetic", 1, "--spec", spec, "-o", tmp_path / "x.qnet", needle=needle)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("text,needle", [
    pytest.param("overrides:\n  - layers: 0\n    activations: max\n", "layers", id="layers-not-a-list"),  # TypeError today
    pytest.param("percentile: high\n", "percentile", id="percentile-not-a-number"),  # ValueError today
    pytest.param("overrides:\n  layers: [0]\n  activations: max\n", "overrides",  # "unknown override key(s) ['a', 'e', ...]"
                 id="overrides-not-a-list"),
])
def test_malformed_spec_values_are_clear_errors(tmp_path: Path, model: tuple[Path, Path], text: str, needle: str) -> None:
    """Values of the wrong type in a spec file are user errors naming the key — not a traceback
    (exit 1) and not a message about single letters.  Fails today: see the report."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    fails("quantize", *model, "--calib-synthetic", 1, "--spec", spec, "-o", tmp_path / "x.qnet", needle=needle)


def test_override_granularity_accepts_the_cli_spelling(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """``per-channel`` (the CLI's spelling) is accepted at the top of a spec; an override must
    accept it too.  Fails today: the override path does not normalise '-' to '_' (see the report)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("granularity: per-channel\noverrides:\n  - layers: [2]\n    granularity: per-tensor\n")
    out = tmp_path / "g.qnet"
    ok("quantize", *model, "--calib-synthetic", 1, "--spec", spec, "-o", out, "-q")
    assert [e["granularity"] for e in model_json(out)["layers"]] == ["per_channel", "per_tensor", "per_channel"]


def test_override_of_a_pass_through_layer_is_not_silently_ignored(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """docs/quantization.md's example overrides ``types: [route, upsample]``; but an upsample (like
    maxpool or a one-input route) shares its input's scale group, whose algorithm comes from the
    producer only — so the override is silently dropped.  It must either apply to the group or be
    refused with a message naming the layer.  Fails today (see the report)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("activations: max\noverrides:\n  - types: [upsample]\n    activations: percentile\n")
    out = tmp_path / "p.qnet"
    res = run("quantize", *model, "--calib-synthetic", 1, "--spec", spec, "-o", out, "-q")
    if res.exit_code == 0:
        algo = {t["index"]: t["algorithm"] for t in model_json(out)["tensors"]}
        assert algo[3] == "percentile" and algo[2] == algo[3], algo  # upsample 3 shares conv 2's scale
    else:
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert "layer 3" in res.output or "upsample" in res.output, res.output


def test_output_must_be_named_qnet(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """An output not ending in .qnet is refused before anything runs."""
    fails("quantize", *model, "--calib-synthetic", 1, "-o", tmp_path / "model.out", needle="must be named *.qnet")
    assert leftovers(tmp_path) == []


def test_empty_calibration_folder_leaves_nothing(tmp_path: Path, model: tuple[Path, Path]) -> None:
    """An empty calibration folder (or none given): a clean error, no output directory, no temporaries."""
    empty = tmp_path / "empty"
    empty.mkdir()
    fails("quantize", *model, "--calib", empty, "-o", tmp_path / "e.qnet", needle="calibration set is empty")
    fails("quantize", *model, "-o", tmp_path / "e.qnet", needle="no calibration data: give --calib")
    fails("quantize", *model, "--calib", tmp_path / "nope", "-o", tmp_path / "e.qnet",
          needle="nope: calibration set not found")
    assert leftovers(tmp_path) == []


def test_unsupported_model_is_refused_before_writing(tmp_path: Path) -> None:
    """A layer the configured DLA cannot run in INT (mish without a LUT) is refused; no .qnet."""
    cfg = tmp_path / "mish.cfg"
    cfg.write_text("[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
                   "activation=mish\n")
    weights = tmp_path / "mish.weights"
    ok("gen-weights", cfg, "-o", weights, "-q")
    fails("quantize", cfg, weights, "--calib-synthetic", 1, "-o", tmp_path / "mish.qnet",
          needle="activation 'mish' has no integer implementation")
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ using a .qnet


@pytest.fixture
def qnet(tmp_path: Path, model: tuple[Path, Path], calib: Path) -> Path:
    """``m.qnet``: max activations, per-tensor weights, over ``calib``."""
    out = tmp_path / "m.qnet"
    ok("quantize", *model, "--calib", calib, "-o", out, "-q")
    return out


def test_info_infer_compare_take_the_qnet(tmp_path: Path, model: tuple[Path, Path], calib: Path, qnet: Path) -> None:
    """``info``, ``infer`` (every mode) and ``compare`` run from the .qnet alone; its INT run equals
    the one calibrated from CFG WEIGHTS over the same images, layer for layer."""
    image = calib / "img0.png"
    info = ok("info", qnet)
    assert "7 layers" in info.output and "tensor  type" in info.output and "weights: 0:max/per_tensor" in info.output
    for mode in ("float", "hybrid", "int"):
        res = ok("infer", qnet, image, "--mode", mode, "-q")
        assert f"mode {mode}" in res.output
    cmp = ok("compare", qnet, image, "-q")
    assert "INT SQNR" in cmp.output and "int vs float: recall" in cmp.output
    from_qnet, from_cfg = tmp_path / "d1", tmp_path / "d2"
    ok("infer", qnet, image, "--mode", "int", "--dump", from_qnet, "-q")
    ok("infer", *model, image, "--mode", "int", "--calib", calib, "--dump", from_cfg, "-q")
    (m1, a1), (m2, a2) = read_dump(from_qnet), read_dump(from_cfg)
    assert a1.keys() == a2.keys()
    for i in a1:
        assert a1[i].dtype == a2[i].dtype and np.array_equal(a1[i], a2[i]), i
    assert [e.get("scale") for e in m1["layers"]] == [e.get("scale") for e in m2["layers"]]


def test_calib_with_a_qnet_is_refused(tmp_path: Path, model: tuple[Path, Path], calib: Path, qnet: Path) -> None:
    """A .qnet is already calibrated: ``--calib``/``--calib-synthetic`` with it are refused clearly;
    a .qnet given as the calibration set of ``quantize`` is refused too (it holds no images)."""
    image = calib / "img0.png"
    fails("infer", qnet, image, "--mode", "int", "--calib", calib, "-o", tmp_path / "out.png",
          needle="a .qnet is already calibrated")
    fails("compare", qnet, image, "--calib", calib, needle="a .qnet is already calibrated")
    fails("quantize", *model, "--calib", qnet, "-o", tmp_path / "again.qnet", needle=f"{qnet}: calibration set")
    assert leftovers(tmp_path) == []


def test_edited_qnet_error_from_cli(tmp_path: Path, calib: Path, qnet: Path) -> None:
    """A .qnet with a bad edit: every command prints the loader's message (layer and field), exit 2."""
    meta = model_json(qnet)
    meta["tensors"][3]["scale"] = -1.0
    (qnet / "model.json").write_text(json.dumps(meta))
    fails("info", qnet, needle="model.json: layer 2 field 'scale': scale must be a positive number, got -1.0")
    fails("infer", qnet, calib / "img0.png", "--mode", "int", needle="layer 2 field 'scale'")


# ------------------------------------------------------------------ the statistics cache


def test_statistics_cache(tmp_path: Path, model: tuple[Path, Path], calib: Path, cache: Path) -> None:
    """The first run computes and caches the statistics (under $DLA_CACHE); quantizing again with
    another algorithm reuses them ("cached statistics") with the same result as recomputing;
    ``--no-cache`` recomputes; changing an image invalidates the entry."""
    a, b, c, d = (tmp_path / f"{k}.qnet" for k in "abcd")
    first = ok("quantize", *model, "--calib", calib, "--activations", "max", "-o", a, "-q")
    assert "2 calibration image(s)" in first.output
    assert len(list(cache.glob("*.json"))) == 1
    second = ok("quantize", *model, "--calib", calib, "--activations", "mse", "-o", b, "-q")
    assert "cached statistics" in second.output
    third = ok("quantize", *model, "--calib", calib, "--activations", "mse", "--no-cache", "-o", c, "-q")
    assert "2 calibration image(s)" in third.output and "cached" not in third.output
    for name in ("model.json", "weights.npz"):
        assert (b / name).read_bytes() == (c / name).read_bytes(), name
    from PIL import Image

    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(calib / "img1.png")
    fourth = ok("quantize", *model, "--calib", calib, "--activations", "mse", "-o", d, "-q")
    assert "2 calibration image(s)" in fourth.output
    assert len(list(cache.glob("*.json"))) == 2
