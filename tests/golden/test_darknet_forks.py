"""The Darknet fork switch (``golden.forks``): AlexeyAB's batch norm and letterbox rule, ``auto``
resolution, and pjreddie networks bit-identical to before.

The AlexeyAB reference is ``tests/reference/alexeyab_bn_ref.py`` (scalar transcription of
``fuse_conv_batchnorm`` and ``normalize_cpu``) plus ``tests/reference/float_ref.py`` for the
other layers; yolov4-tiny runs with the shipped cfg at 64×64 and seeded weights.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from golden.cfg import parse_cfg_text, read_cfg
from golden.detect import yolo_candidates
from golden.engine import forward
from golden.errors import UserInputError
from golden.forks import DarknetFork, alexeyab_features, alexeyab_fused, resolve_fork
from golden.genweights import random_weights, synthetic_image
from golden.image import letterbox_image, prepare_input, resize_image
from golden.kernels import KERNELS
from golden.layers import ConnectedSpec, ConvSpec, Kind, build_layer
from golden.network import LayerParams, Network, load_network, parse_network
from quant.fold import fold_bn
from tests.reference import alexeyab_bn_ref as aref
from tests.reference import float_ref as ref

ROOT = Path(__file__).resolve().parents[2]
CFG_DIR = ROOT / "dla" / "data" / "cfg"
REL_TOL = 1e-5
#: Through 38 layers (as the OpenCV parity criterion, tests/golden/test_opencv_parity.py).
CHAINED_TOL = 1e-4
SEED = 3


def small_cfg(tmp_path: Path, name: str, size: int, extra_net: str = "") -> Path:
    """A shipped cfg with ``[net]`` width/height set to ``size`` (and ``extra_net`` lines added)."""
    text = (CFG_DIR / f"{name}.cfg").read_text()
    text, n = re.subn(r"(?m)^(width|height)\s*=.*$", lambda m: f"{m.group(1)}={size}", text)
    assert n == 2
    if extra_net:
        text = text.replace("[net]", f"[net]\n{extra_net}", 1)
    path = tmp_path / f"{name}-{size}.cfg"
    path.write_text(text)
    return path


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - want).max() / max(float(np.abs(want).max()), 1e-30))


# --------------------------------------------------------------------------- (a) AlexeyAB BN, layer by layer


@pytest.fixture(scope="module")
def v4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Network, np.ndarray]:
    cfg = small_cfg(tmp_path_factory.mktemp("v4"), "yolov4-tiny", 64)
    net = random_weights(parse_network(cfg, "alexeyab"), SEED)
    assert net.darknet is DarknetFork.ALEXEYAB
    return net, synthetic_image(net.input_shape, np.random.default_rng(SEED))


def reference_layer(net: Network, index: int, outputs: dict[int, np.ndarray]) -> np.ndarray:
    """Layer ``index`` of ``net`` as AlexeyAB's Darknet computes it, from ``outputs`` (the inputs)."""
    spec = net.layers[index]
    ins = [outputs[i] for i in spec.inputs]
    if isinstance(spec, ConvSpec):
        p = net.params[index]
        w, b = p.weights, p.biases
        if spec.batch_normalize:
            w, b = aref.fuse_conv_batchnorm(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
        # The sum in float64 (exact enough to be a reference for a float32 sum), then add_bias
        # in float, then the activation one scalar at a time (AlexeyAB's float formulas).
        col = ref.im2col(ins[0], spec.size, spec.stride_y, spec.stride_x, spec.padding) \
            if spec.groups == 1 else None
        assert col is not None, "yolov4-tiny has no grouped convs"
        acc = (w.reshape(w.shape[0], -1).astype(np.float64) @ col.astype(np.float64)).astype(np.float32)
        acc = (acc + b.reshape(-1, 1)).reshape(spec.out_shape)
        return ref.activate(acc, spec.activation, "A")
    if spec.kind is Kind.MAXPOOL:
        return ref.maxpool(ins[0], spec.size, spec.stride_x, spec.stride_y, spec.padding)
    if spec.kind is Kind.ROUTE:
        return ref.route(ins, spec.groups, spec.group_id)
    if spec.kind is Kind.UPSAMPLE:
        return ref.upsample(ins[0], spec.stride, spec.scale)
    if spec.kind is Kind.YOLO:
        return ref.yolo(ins[0], len(spec.mask), spec.classes, spec.new_coords, spec.scale_x_y, "A")
    raise AssertionError(f"layer {index}: {spec.kind} not expected in yolov4-tiny")


def test_fused_parameters_are_alexeyabs_bit_for_bit(v4) -> None:
    """Every BN conv's ``(W', b')`` equals the scalar transcription of ``fuse_conv_batchnorm``."""
    net, _ = v4
    n = 0
    for spec in net.param_layers():
        p = net.params[spec.index]
        if not spec.batch_normalize:
            continue
        want_w, want_b = aref.fuse_conv_batchnorm(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
        got_w, got_b = alexeyab_fused(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
        assert np.array_equal(got_w, want_w) and np.array_equal(got_b, want_b), spec.index
        # quantization folds with the same numbers (widened to float64)
        fw, fb = fold_bn(spec, p, DarknetFork.ALEXEYAB)
        assert np.array_equal(fw, want_w.astype(np.float64)) and np.array_equal(fb, want_b.astype(np.float64))
        n += 1
    assert n == 19


def test_yolov4_tiny_alexeyab_matches_reference_layer_by_layer(v4) -> None:
    """Each layer, fed the engine's own inputs, within 1e-5 of AlexeyAB's semantics; and the
    pjreddie BN is *not* within that bound (so this test can tell the forks apart)."""
    net, x = v4
    ours = forward(net, x)
    pj = forward(load_as(net, DarknetFork.PJREDDIE), x)
    worst, pj_worst = 0.0, 0.0
    for spec in net.layers:
        want = reference_layer(net, spec.index, ours)
        err = rel_err(ours[spec.index], want)
        assert err <= REL_TOL, f"layer {spec.index} ({spec.kind.value}): {err:.2e}"
        worst = max(worst, err)
        if isinstance(spec, ConvSpec) and spec.batch_normalize:
            pj_one = KERNELS[spec.kind](spec, [ours[i] for i in spec.inputs], net.params[spec.index],
                                        DarknetFork.PJREDDIE)
            pj_worst = max(pj_worst, rel_err(pj_one, want))
    assert pj_worst > 10 * REL_TOL, f"pjreddie's BN is indistinguishable ({pj_worst:.2e})"
    # The whole network chained (the reference fed its own outputs): float rounding of the sums
    # accumulates to ~2.4e-5 at the heads (measured), pjreddie's BN to ~2e-3.
    chained: dict[int, np.ndarray] = {-1: x}
    for spec in net.layers:
        chained[spec.index] = reference_layer(net, spec.index, chained)
    for h in net.heads:
        assert rel_err(ours[h.index], chained[h.index]) <= CHAINED_TOL, h.index
        assert rel_err(pj[h.index], chained[h.index]) > 5 * CHAINED_TOL, h.index


def test_first_conv_nested_loop(v4) -> None:
    """Layer 0 by the scalar nested-loop conv of float_ref on AlexeyAB's fused weights."""
    net, x = v4
    spec, p = net.layers[0], net.params[0]
    w, b = aref.fuse_conv_batchnorm(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
    want = ref.conv2d(x, w, b, stride_x=spec.stride_x, stride_y=spec.stride_y, padding=spec.padding,
                      activation=spec.activation, fork="A")
    got = KERNELS[Kind.CONV](spec, [x], p, DarknetFork.ALEXEYAB)
    assert rel_err(got, want) <= REL_TOL


def load_as(net: Network, fork: DarknetFork) -> Network:
    """The same cfg and parameters, run as ``fork``."""
    other = parse_network(net.cfg_path, fork.value)
    other.params = net.params
    return other


def test_connected_bn_is_alexeyabs_unfused_normalize() -> None:
    """``[connected]`` is never fused by AlexeyAB: its BN is ``normalize_cpu`` with ε inside the root."""
    sections = parse_cfg_text("[net]\nwidth=2\nheight=2\nchannels=3\n\n[connected]\noutput=5\n"
                              "batch_normalize=1\nactivation=linear\n")
    spec = build_layer(sections[1], 0, (3, 2, 2), [])
    assert isinstance(spec, ConnectedSpec)
    rng = np.random.default_rng(1)
    p = LayerParams(biases=rng.normal(size=5).astype(np.float32), weights=rng.normal(size=(5, 12)).astype(np.float32),
                    scales=rng.uniform(0.5, 1.5, 5).astype(np.float32),
                    rolling_mean=rng.normal(size=5).astype(np.float32),
                    rolling_variance=rng.uniform(1e-6, 1e-3, 5).astype(np.float32))  # small: ε matters
    x = rng.normal(size=(3, 2, 2)).astype(np.float32)
    acc = (p.weights.astype(np.float64) @ x.reshape(-1).astype(np.float64)).astype(np.float32)
    want = aref.normalize_scale_bias(acc, p.biases, p.scales, p.rolling_mean, p.rolling_variance).reshape(5, 1, 1)
    got = KERNELS[Kind.CONNECTED](spec, [x], p, DarknetFork.ALEXEYAB)
    assert rel_err(got, want) <= REL_TOL
    assert rel_err(KERNELS[Kind.CONNECTED](spec, [x], p, DarknetFork.PJREDDIE), want) > 10 * REL_TOL


# --------------------------------------------------------------------------- (b) pjreddie unchanged


def test_pjreddie_networks_bit_identical(tmp_path: Path) -> None:
    """yolov3-tiny under ``auto`` is pjreddie; its forward equals the explicit pjreddie one and
    the kernels' pjreddie default (the old three-argument call) bit for bit, and the BN folding
    equals the formula used before the fork switch existed."""
    cfg = small_cfg(tmp_path, "yolov3-tiny", 96)
    auto = random_weights(parse_network(cfg), SEED)
    assert auto.darknet is DarknetFork.PJREDDIE and auto.letter_box
    x = synthetic_image(auto.input_shape, np.random.default_rng(SEED))
    a = forward(auto, x)
    b = forward(load_as(auto, DarknetFork.PJREDDIE), x)
    for spec in auto.layers:
        assert np.array_equal(a[spec.index], b[spec.index]), spec.index
        three = KERNELS[spec.kind](spec, [a[i] for i in spec.inputs], auto.params.get(spec.index))
        assert np.array_equal(three, a[spec.index]), spec.index
    for spec in auto.param_layers():
        p = auto.params[spec.index]
        w, bias = fold_bn(spec, p, DarknetFork.PJREDDIE)
        if spec.batch_normalize:  # the pre-fork formula, verbatim
            f = p.scales.astype(np.float64) / (np.sqrt(p.rolling_variance.astype(np.float64)) + 1e-6)
            old_w = p.weights.astype(np.float64) * f.reshape(-1, 1, 1, 1)
            old_b = p.biases.astype(np.float64) - p.rolling_mean.astype(np.float64) * f
        else:
            old_w, old_b = p.weights.astype(np.float64), p.biases.astype(np.float64)
        assert np.array_equal(w, old_w) and np.array_equal(bias, old_b), spec.index


def test_seeded_weights_do_not_depend_on_the_fork(tmp_path: Path) -> None:
    cfg = small_cfg(tmp_path, "yolov4-tiny", 64)
    a = random_weights(parse_network(cfg, "alexeyab"), 5)
    p = random_weights(parse_network(cfg, "pjreddie"), 5)
    for i, pa in a.params.items():
        for k, v in pa.arrays().items():
            assert np.array_equal(v, p.params[i].arrays()[k]), (i, k)


# --------------------------------------------------------------------------- (c) auto


@pytest.mark.parametrize("cfg", sorted(p.name for p in CFG_DIR.glob("*.cfg")))
def test_auto_on_every_shipped_cfg(cfg: str) -> None:
    want = DarknetFork.ALEXEYAB if cfg == "yolov4-tiny.cfg" else DarknetFork.PJREDDIE
    assert resolve_fork("auto", read_cfg(CFG_DIR / cfg)) is want
    assert parse_network(CFG_DIR / cfg).darknet is want


@pytest.mark.parametrize("section, needle", [
    ("[route]\nlayers=-1\ngroups=2\ngroup_id=1", "[route] groups"),
    ("[convolutional]\nfilters=4\nactivation=mish", "activation=mish"),
    ("[maxpool]\nsize=2\nstride_x=2\nstride_y=1", "[maxpool] stride_x"),
    ("[yolo]\nmask=0\nanchors=1,1\nclasses=1\nnum=1\nscale_x_y=1.05", "[yolo] scale_x_y"),
    ("[shortcut]\nfrom=-1,-2", "from= with several layers"),
    ("[scale_channels]\nfrom=-2", "[scale_channels]"),
])
def test_each_alexeyab_only_feature_picks_alexeyab(section: str, needle: str) -> None:
    sections = parse_cfg_text(f"[net]\nwidth=8\nheight=8\nchannels=4\n\n[convolutional]\nfilters=4\n\n{section}\n")
    found = alexeyab_features(sections)
    assert any(needle in f for f in found), found
    assert resolve_fork("auto", sections) is DarknetFork.ALEXEYAB
    assert resolve_fork("pjreddie", sections) is DarknetFork.PJREDDIE  # explicit wins


def test_plain_cfg_is_pjreddie_and_bad_name_is_an_error() -> None:
    sections = parse_cfg_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=4\nactivation=leaky\n")
    assert alexeyab_features(sections) == []
    assert resolve_fork("auto", sections) is DarknetFork.PJREDDIE
    assert resolve_fork("AlexeyAB", sections) is DarknetFork.ALEXEYAB
    with pytest.raises(UserInputError, match="unknown Darknet fork 'darknet2'"):
        resolve_fork("darknet2", sections)


# --------------------------------------------------------------------------- (d) letterbox vs stretch


@pytest.mark.parametrize("fork, extra, letterbox", [
    ("pjreddie", "", True), ("alexeyab", "", False), ("alexeyab", "letter_box=1", True),
    ("alexeyab", "letter_box=0", False), ("pjreddie", "letter_box=0", True), ("auto", "letter_box=1", True),
    ("auto", "letter_box=0", False),
])
def test_letterbox_follows_fork_and_cfg(tmp_path: Path, fork: str, extra: str, letterbox: bool) -> None:
    net = parse_network(small_cfg(tmp_path, "yolov3-tiny", 96, extra), fork)
    assert net.letter_box is letterbox
    if fork == "pjreddie" and extra:
        assert any("letter_box=0 is read only by AlexeyAB" in w for w in net.warnings)
    im = np.random.default_rng(0).uniform(0, 1, (3, 40, 70)).astype(np.float32)  # not square
    x = prepare_input(im, net.input_shape, letterbox=net.letter_box)
    want = letterbox_image(im, 96, 96) if letterbox else resize_image(im, 96, 96)
    assert np.array_equal(x, want)


def test_detection_boxes_follow_the_letterbox_rule(tmp_path: Path) -> None:
    """Same network outputs, 2:1 image: AlexeyAB's stretch keeps the boxes as decoded
    (``correct_yolo_boxes`` with ``letter=0``); pjreddie's undoes the letterbox."""
    cfg = small_cfg(tmp_path, "yolov3-tiny", 96)
    pj = random_weights(parse_network(cfg, "pjreddie"), SEED)
    ab = load_as(pj, DarknetFork.ALEXEYAB)
    assert pj.letter_box and not ab.letter_box
    outs = forward(pj, synthetic_image(pj.input_shape, np.random.default_rng(SEED)))
    im_w, im_h = 200, 100  # letterboxed into 96x96: new_w = 96, new_h = 48, 24 rows of border
    n = 0
    for spec in pj.heads:
        c_pj = yolo_candidates(spec, outs[spec.index], im_w, im_h, 96, 96, 0.01, pj.letter_box)
        c_ab = yolo_candidates(spec, outs[spec.index], im_w, im_h, 96, 96, 0.01, ab.letter_box)
        assert len(c_pj) == len(c_ab)
        for a, p in zip(c_ab, c_pj):
            assert np.array_equal(a.probs, p.probs)
            assert p.box[0] == pytest.approx(a.box[0], abs=1e-6) and p.box[2] == pytest.approx(a.box[2], abs=1e-6)
            assert p.box[1] == pytest.approx((a.box[1] - 24 / 96) / (48 / 96), abs=1e-6)
            assert p.box[3] == pytest.approx(a.box[3] * 2, abs=1e-6)
            n += 1
    assert n > 0


def test_load_network_passes_the_fork(tmp_path: Path) -> None:
    cfg = small_cfg(tmp_path, "yolov4-tiny", 64)
    assert load_network(cfg).darknet is DarknetFork.ALEXEYAB
    assert load_network(cfg, darknet="pjreddie").darknet is DarknetFork.PJREDDIE
    with pytest.raises(UserInputError, match="--darknet"):
        load_network(cfg, darknet="x")


def test_calibration_pre_activation_uses_the_fork(tmp_path: Path) -> None:
    """The pre-activation statistics (LUT activations) are the chosen fork's linear conv output."""
    from dataclasses import replace

    from quant.calibrate import collect_ranges

    cfg = tmp_path / "lut.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=4\n"
                   "size=3\npad=1\nactivation=logistic\n")
    maxima = {}
    for fork in DarknetFork:
        net = random_weights(parse_network(cfg, fork.value), 2)
        net.params[0].rolling_variance[:] = 1e-5  # ε matters
        x = synthetic_image(net.input_shape, np.random.default_rng(0))
        lin = KERNELS[Kind.CONV](replace(net.layers[0], activation="linear"), [x], net.params[0], fork)
        maxima[fork] = collect_ranges(net, [x]).pre_act[0]
        assert maxima[fork] == float(np.abs(lin).max())
    assert maxima[DarknetFork.ALEXEYAB] != maxima[DarknetFork.PJREDDIE]
