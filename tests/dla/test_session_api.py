"""``dla.Session`` as the README documents it: importable from ``dla``, built from ``(cfg, weights)``
plus calibration images, and editing int8 weights with the quantizer's own rounding."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dla
from dla.calibration import calibrate
from dla.engine import Engine, Mode
from dla.session import Session
from golden.errors import UserInputError
from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from golden.weights import write_weights
from quant.qnet import quantize_weights
from quant.spec import QuantSpec
from tests.reference.int_ref import fraction_round_half_away
from tests.paths import DATA

TINY_CFG = DATA / "scenario" / "tiny-yolo.cfg"


def test_session_is_exported_lazily() -> None:
    assert dla.Session is Session
    assert "Session" in dir(dla)
    with pytest.raises(AttributeError):
        dla.NoSuchThing  # noqa: B018
    # `import dla` alone stays cheap: the engine (and numpy) load on first use of dla.Session
    code = "import sys, dla; print('dla.session' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.fixture(scope="module")
def darknet_files(tmp_path_factory: pytest.TempPathFactory):
    """The tiny detector's cfg, a .weights file and three PNG images."""
    tmp = tmp_path_factory.mktemp("sess")
    net = random_weights(parse_network(TINY_CFG), seed=3)
    wpath = tmp / "tiny.weights"
    write_weights(net, wpath)
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        arr = (synthetic_image((3, 80, 96), rng).transpose(1, 2, 0) * 255).round().astype(np.uint8)
        images.append(tmp / f"im{i}.png")
        Image.fromarray(arr).save(images[-1])
    return net, wpath, images


def test_session_from_cfg_weights_and_calibration_images(darknet_files) -> None:
    net, wpath, images = darknet_files
    s = Session(str(TINY_CFG), wpath, images[2], calib=images[:2], granularity="per_channel", activations="mse")
    assert s.mode is Mode.INT
    s.run()
    # the same as calibrating by hand (dla.calibration, as `dla infer` does) and giving the qnet
    spec = QuantSpec("mse", granularity="per_channel")
    qnet = calibrate(net, images[:2], "per_channel", spec=spec)
    ref = Session(qnet, images[2], "int")
    ref.run()
    for i in s.records:
        assert np.array_equal(s.records[i].output, ref.records[i].output), i
    # the documented form Session(cfg, weights, calib=[...]) — the input is the first calibration image
    t = Session(TINY_CFG, str(wpath), calib=images[:2])
    t.run_to(0)
    assert t.image_size == (96, 80)
    # FLOAT without calibration, and weights=None: seeded random weights
    f = Session("yolov3-tiny", None, images[0], mode="float")
    assert f.engine.qnet is None and f.mode is Mode.FLOAT


def test_session_form_mistakes_are_user_errors(darknet_files) -> None:
    net, wpath, images = darknet_files
    with pytest.raises(UserInputError, match="input image"):
        Session(TINY_CFG, wpath, mode="float")
    with pytest.raises(UserInputError, match="weights given twice"):
        Session(TINY_CFG, wpath, images[0], weights=wpath)
    with pytest.raises(UserInputError, match="already a complete model"):
        Session(Engine(net, None, dla.HardwareConfig()), images[0], "float", calib=images)
    with pytest.raises(UserInputError, match="no-such"):
        Session("no-such", wpath, images[0])


@pytest.fixture(scope="module")
def int_session(darknet_files):
    net, wpath, images = darknet_files
    return Session(TINY_CFG, wpath, images[0], calib=images[:2])


def test_scale_channel_rounds_half_away_like_the_quantizer(int_session) -> None:
    s = int_session
    s.run_to(0)
    for value, factor, want in ((5, 0.5, 3), (-5, 0.5, -3), (3, 0.5, 2), (1, 0.5, 1), (-1, 0.5, -1),
                                (100, 1.5, 127), (-100, 1.5, -127)):
        s.edit_weights(index=(2, 0, 1, 1), value=value)
        s.edit_weights(scale_channel=(2, factor))
        assert int(s.weights[2, 0, 1, 1]) == want, (value, factor)
        s.undo()
        s.undo()


def test_scale_channel_equals_quantizer_on_random_weights(int_session) -> None:
    s = int_session
    s.run_to(2)
    rng = np.random.default_rng(11)
    shape = s.weights.shape
    for trial in range(20):
        w = rng.integers(-127, 128, size=shape).astype(np.int8)
        c = int(rng.integers(0, shape[0]))
        # factors with exact ties (k/2, k/4) and arbitrary ones
        factor = float(rng.choice([0.5, 0.25, 1.5, 0.75, 2.5])) if trial % 2 else float(rng.uniform(-3, 3))
        s.edit_weights(array=w)
        s.edit_weights(scale_channel=(c, factor))
        got = s.weights[c].astype(np.int64)
        # the quantizer's function on the same real values...
        want_q = quantize_weights(w[c].astype(np.float64)[None] * factor, np.ones(1))[0]
        # ...and an independent exact reference (Fraction, ties away from zero, clip to ±127)
        want_ref = np.array([max(-127, min(127, fraction_round_half_away(Fraction(int(v)) * Fraction(factor))))
                             for v in w[c].reshape(-1)]).reshape(w[c].shape)
        assert np.array_equal(got, want_q) and np.array_equal(got, want_ref), (trial, factor)
        assert np.array_equal(np.delete(s.weights, c, axis=0), np.delete(w, c, axis=0))
        s.undo()
        s.undo()
