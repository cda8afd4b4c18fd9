"""The positional model arguments of the CLI (``dla.cli.common.model_args`` over
``dla.resolve``): a shipped trained-model name is accepted wherever ``CFG WEIGHTS`` is, as
``dla eval`` always accepted it; the old forms and their errors are unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import fails, ok

from dla.catalog import MODEL_DIR, sample_images


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLA_CACHE", str(tmp_path / "cache"))


def test_infer_on_a_trained_name_is_infer_on_its_files_and_names() -> None:
    image = sample_images()[0]
    by_name = ok("infer", "shapes-yolo", image, "--mode", "int", "-q").output
    by_files = ok("infer", MODEL_DIR / "shapes-yolo.cfg", MODEL_DIR / "shapes-yolo.weights", image, "--mode", "int",
                  "--names", MODEL_DIR / "shapes.names", "-q").output
    assert by_name.splitlines()[1:] == by_files.splitlines()[1:]  # the first line has the wall time
    assert any(shape in by_name for shape in ("circle", "square", "triangle", "cross", "star"))


def test_compare_and_info_take_a_trained_name(tmp_path: Path) -> None:
    image = sample_images()[0]
    ok("compare", "shapes-cls", image, "--json", tmp_path / "a.json", "-q")
    ok("compare", MODEL_DIR / "shapes-cls.cfg", MODEL_DIR / "shapes-cls.weights", image,
       "--names", MODEL_DIR / "shapes.names", "--json", tmp_path / "b.json", "-q")
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    del a["seconds"], b["seconds"]  # wall times
    assert a == b and "circle" in json.dumps(a["top5"])
    assert "conv" in ok("info", "shapes-yolo").output


def test_mistakes_with_a_trained_name_or_a_qnet(tmp_path: Path) -> None:
    fails("infer", "shapes-yolo", tmp_path / "missing.png", needle="missing.png: image not found")
    fails("infer", "shapes-yolo", needle="expected CFG WEIGHTS IMAGE or MODEL.qnet IMAGE, got 1 argument(s)")
    q = tmp_path / "m.qnet"
    ok("quantize", MODEL_DIR / "shapes-cls.cfg", MODEL_DIR / "shapes-cls.weights", "--calib-synthetic", 1, "-o", q)
    fails("infer", q, MODEL_DIR / "shapes-cls.weights", sample_images()[0],
          needle="weights go with a cfg; a .qnet carries its own")


def test_an_empty_hw_option_is_the_default_hardware(tmp_path: Path) -> None:
    # before the resolver, every command read `--hw ""` as no --hw (the default DLA); it must
    # not become "Error: .: hardware config not found"
    image = sample_images()[0]
    assert ok("cycles", "yolov3-tiny", "--hw", "").output == ok("cycles", "yolov3-tiny").output
    with_empty = ok("infer", "shapes-cls", image, "--mode", "int", "--hw", "", "-q").output
    assert with_empty.splitlines()[1:] == ok("infer", "shapes-cls", image, "--mode", "int", "-q").output.splitlines()[1:]
    q = tmp_path / "m.qnet"
    ok("quantize", MODEL_DIR / "shapes-cls.cfg", MODEL_DIR / "shapes-cls.weights", "--calib-synthetic", 1, "--hw", "",
       "-o", q)
    ok("infer", q, image, "--mode", "int", "--hw", "", "-q")


def test_the_main_help_names_the_trained_model_form() -> None:
    # the form is accepted by infer/compare/step/info since the resolver; --help must say so
    text = " ".join(ok("--help").output.split())
    assert "shipped trained model (shapes-yolo, shapes-cls) stands alone for CFG WEIGHTS" in text


def test_quantize_takes_a_trained_name_alone(tmp_path: Path) -> None:
    # README: a trained name stands for CFG WEIGHTS "in every command"; quantize asked for WEIGHTS
    by_name, by_files = tmp_path / "a.qnet", tmp_path / "b.qnet"
    ok("quantize", "shapes-cls", "--calib-synthetic", 1, "-o", by_name, "-q")
    ok("quantize", MODEL_DIR / "shapes-cls.cfg", MODEL_DIR / "shapes-cls.weights", "--calib-synthetic", 1,
       "-o", by_files, "-q")
    a, b = (json.loads((q / "model.json").read_text()) for q in (by_name, by_files))
    assert a["tensors"] == b["tensors"] and a["layers"] == b["layers"]
    out = tmp_path / "c.qnet"
    fails("quantize", "yolov3-tiny", "--calib-synthetic", 1, "-o", out,
          needle="yolov3-tiny: expected CFG WEIGHTS (or the name of a shipped trained model alone")
    assert not out.exists()


def test_quantize_of_a_qnet_says_it_needs_the_float_model(tmp_path: Path) -> None:
    # "Every command that takes CFG WEIGHTS also takes the .qnet" (quantize --help) led a user to
    # re-quantize a .qnet; quantize needs the float model, and the error must say why, not only
    # "expected CFG WEIGHTS"
    q = tmp_path / "m.qnet"
    ok("quantize", "shapes-cls", "--calib-synthetic", 1, "-o", q, "-q")
    out = tmp_path / "again.qnet"
    fails("quantize", q, "--calib-synthetic", 1, "--bias-correction", "-o", out,
          needle=f"{q}: a .qnet is already quantized; dla quantize reads the float model")
    assert not out.exists()
