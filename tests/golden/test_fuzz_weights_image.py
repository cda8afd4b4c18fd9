"""Fuzzing the .weights and image loaders through `dla infer`: one clear error or a clean run,
never a traceback; a non-finite parameter is always refused, naming the file, layer and position."""
from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from golden.image import DEFAULT_MAX_IMAGE_PIXELS
from tests.fuzz_helpers import FUZZ, TINY_CFG, clean, dla, png_header_only, refused, strict_json

CLASSIFIER_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[avgpool]

[softmax]
"""
SPECIALS = [float("nan"), float("inf"), float("-inf")]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("w")
    out = {"weights": d / "tiny.weights", "image": d / "in.png", "ccfg": d / "cls.cfg", "cweights": d / "cls.weights"}
    assert dla("gen-weights", TINY_CFG, "--seed", 3, "-o", out["weights"], "-q").exit_code == 0
    out["ccfg"].write_text(CLASSIFIER_CFG)
    assert dla("gen-weights", out["ccfg"], "--seed", 3, "-o", out["cweights"], "-q").exit_code == 0
    Image.new("RGB", (40, 30), (120, 60, 200)).save(out["image"])
    return out


def _poke(data: bytes, index: int, value: float) -> bytes:
    """``data`` with float number ``index`` (after the 20-byte header) set to ``value``."""
    buf = bytearray(data)
    struct.pack_into("<f", buf, 20 + 4 * index, value)
    return bytes(buf)


@FUZZ
@given(st.integers(0, 10_000_000), st.sampled_from(SPECIALS), st.sampled_from(["float", "hybrid", "int"]))
def test_fuzz_a_non_finite_parameter_is_always_refused(files: dict[str, Path], where: int, value: float,
                                                       mode: str) -> None:
    data = files["weights"].read_bytes()
    n = (len(data) - 20) // 4
    with tempfile.TemporaryDirectory() as d:
        w, j = Path(d) / "bad.weights", Path(d) / "out.json"
        w.write_bytes(_poke(data, where % n, value))
        res = refused(dla("infer", TINY_CFG, w, files["image"], "--mode", mode, "--json", j, "-q"),
                      "not a finite number", (j,))
        assert "bad.weights: layer " in res.output and "]" in res.output  # file, layer, position


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
       st.one_of(st.none(), st.integers(0, 400)), st.binary(max_size=12))
def test_fuzz_weights_bytes(files: dict[str, Path], flips: list[tuple[int, int]], cut: int | None,
                            tail: bytes) -> None:
    """Header and early-parameter byte flips, truncation, trailing bytes: clean either way."""
    data = bytearray(files["weights"].read_bytes())
    for pos, byte in flips:
        data[pos] = byte
    if cut is not None:
        data = data[:cut]
    data += tail
    with tempfile.TemporaryDirectory() as d:
        w, j = Path(d) / "m.weights", Path(d) / "out.json"
        w.write_bytes(bytes(data))
        res = clean(dla("infer", TINY_CFG, w, files["image"], "--json", j, "-q"), (j,))
        floats = np.frombuffer(bytes(data[20:20 + 4 * ((len(data) - 20) // 4)]), "<f4")
        if not np.isfinite(floats).all():
            assert res.exit_code == 2  # never silently accepted


def test_weights_holding_nan_are_refused_not_run_to_no_detections(files: dict[str, Path], tmp_path: Path) -> None:
    """Reproducer: NaN weights ran to 'no detections', exit 0."""
    w = tmp_path / "nan.weights"
    w.write_bytes(_poke(files["weights"].read_bytes(), 100, float("nan")))
    # float 100 = after layer 0's 4 x 8 bias/BN values, weight 68 of (8, 3, 3, 3) = [2, 1, 1, 2]
    refused(dla("infer", TINY_CFG, w, files["image"], "-q"),
            f"{w}: layer 0: (convolutional) 'weights'[2, 1, 1, 2] = nan: not a finite number")


def test_all_nan_classifier_weights_never_write_nan_json(files: dict[str, Path], tmp_path: Path) -> None:
    """Reproducer: all-NaN classifier weights wrote `"prob": NaN` into --json (not JSON)."""
    data = files["cweights"].read_bytes()
    w, j = tmp_path / "allnan.weights", tmp_path / "top.json"
    w.write_bytes(data[:20] + np.full((len(data) - 20) // 4, np.nan, "<f4").tobytes())
    refused(dla("infer", files["ccfg"], w, files["image"], "--json", j, "-q"), "not a finite number", (j,))
    ok = dla("infer", files["ccfg"], files["cweights"], files["image"], "--json", j, "-q")
    assert ok.exit_code == 0, ok.output
    top = strict_json(j)
    assert top and all(np.isfinite(e["prob"]) for e in top)


@pytest.mark.parametrize("mode", ["float", "hybrid", "int"])
def test_one_inf_weight_is_refused_in_every_mode(files: dict[str, Path], tmp_path: Path, mode: str) -> None:
    """Reproducer: one +inf weight was a ValueError in INT mode only (and silent in the others)."""
    w = tmp_path / "inf.weights"
    w.write_bytes(_poke(files["weights"].read_bytes(), 5000, float("inf")))
    refused(dla("infer", TINY_CFG, w, files["image"], "--mode", mode, "-q"), "= inf: not a finite number")


def test_negative_batch_norm_variance_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    w = tmp_path / "var.weights"
    w.write_bytes(_poke(files["weights"].read_bytes(), 8 * 3, -2.0))  # layer 0: biases, scales, mean, var[0]
    refused(dla("infer", TINY_CFG, w, files["image"], "-q"), "'rolling_variance'[0] = -2.0: a negative batch-norm")


# ------------------------------------------------------------------------------- images
@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
       st.one_of(st.none(), st.integers(0, 2000)))
def test_fuzz_image_bytes(files: dict[str, Path], flips: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(files["image"].read_bytes())
    for pos, byte in flips:
        if pos < len(data):
            data[pos] = byte
    if cut is not None:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as d:
        im, j = Path(d) / "x.png", Path(d) / "out.json"
        im.write_bytes(bytes(data))
        clean(dla("infer", TINY_CFG, files["weights"], im, "--json", j, "-q"), (j,))


@FUZZ
@given(st.integers(1, 200_000), st.integers(1, 200_000))
def test_fuzz_image_header_sizes(files: dict[str, Path], width: int, height: int) -> None:
    """Any declared size: refused by the pixel bound from the header, or decoded (here: truncated)."""
    with tempfile.TemporaryDirectory() as d:
        im = Path(d) / "h.png"
        im.write_bytes(png_header_only(width, height))
        res = clean(dla("infer", TINY_CFG, files["weights"], im, "-q"))
        assert res.exit_code == 2
        if width * height > DEFAULT_MAX_IMAGE_PIXELS:
            assert "above the limit" in res.output


def test_header_only_30000x30000_png_is_one_pixel_limit_error(files: dict[str, Path], tmp_path: Path) -> None:
    """Reproducer: a header-only 30000x30000 PNG raised Pillow's DecompressionBombError."""
    im = tmp_path / "bomb.png"
    im.write_bytes(png_header_only(30000, 30000))
    refused(dla("infer", TINY_CFG, files["weights"], im, "-q"), "image has 900,000,000 pixels, above the limit")


def test_pixel_limit_is_configurable(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLA_MAX_IMAGE_PIXELS", "1000")
    refused(dla("infer", TINY_CFG, files["weights"], files["image"], "-q"),
            "image is 40x30 = 1,200 pixels, above the limit of 1,000 (set DLA_MAX_IMAGE_PIXELS")
    monkeypatch.setenv("DLA_MAX_IMAGE_PIXELS", "-5")
    refused(dla("infer", TINY_CFG, files["weights"], files["image"], "-q"), "must be a positive integer")


@pytest.mark.parametrize("size", [(4000, 1), (1, 4000)])
def test_4000x1_png_runs(files: dict[str, Path], tmp_path: Path, size: tuple[int, int]) -> None:
    """Reproducer: a 4000x1 PNG letterboxed to a 0-pixel height and raised IndexError."""
    im, j = tmp_path / "thin.png", tmp_path / "d.json"
    Image.new("RGB", size, (200, 10, 10)).save(im)
    res = clean(dla("infer", TINY_CFG, files["weights"], im, "--json", j, "-q"), (j,))
    assert res.exit_code == 0, res.output


def test_5000_character_image_path_is_one_error(files: dict[str, Path]) -> None:
    """Reproducer: a 5000-character image path raised OSError (File name too long)."""
    res = refused(dla("infer", TINY_CFG, files["weights"], "a" * 5000 + ".png", "-q"),
                  "...(5004 characters): cannot open (File name too long)")
    assert len(res.output) < 400
