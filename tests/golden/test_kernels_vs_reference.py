"""Every golden float kernel against the slow nested-loop reference (``tests/reference/float_ref.py``).

Layers are built from small cfg texts through the real parser (``parse_cfg_text`` →
``build_layer``), so each case also checks the builder's shape rules against the
reference's.  Comparisons:

* permutation-type kernels (maxpool, route, upsample, reorg, shortcut, im2col) and the
  image resizes: exact (``np.array_equal`` on float32; the sign of zero is checked only
  where Darknet defines it, ``relu``);
* kernels with a reduction in a different order (GEMM, pairwise sums) or a different
  ``exp``: ``max|golden − ref| ≤ RTOL · max(max|ref|, 1)`` (inputs are O(1)).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from golden import image as gimage
from golden.activations import activate as golden_activate
from golden.cfg import parse_cfg_text
from golden.kernels import KERNELS, im2col as golden_im2col
from golden.layers import Kind, LayerSpec, Shape, build_layer
from golden.network import LayerParams
from tests.reference import float_ref as ref

F = np.float32
RTOL = 1e-5
#: activations that golden and the reference compute with the same float32 operations
EXACT_ACTIVATIONS = ("linear", "leaky", "relu", "relu6")
ALL_ACTIVATIONS = ref.ACTIVATIONS

seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------- helpers


def build(section: str, in_shape: Shape, shapes: Sequence[Shape] = ()) -> LayerSpec:
    """Parse one layer section (after a ``[net]`` of ``in_shape``) and build it as layer ``len(shapes)``.

    ``shapes`` are the output shapes of the layers before it (route/shortcut references).
    Any builder warning (e.g. a misspelt key in the test) fails the test.
    """
    c, h, w = in_shape
    sections = parse_cfg_text(f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n\n{section}")
    assert len(sections) == 2
    spec = build_layer(sections[1], len(shapes), in_shape, list(shapes))
    assert not sections[1].warnings, sections[1].warnings
    return spec


def run(spec: LayerSpec, inputs: Sequence[np.ndarray], params: LayerParams | None = None) -> np.ndarray:
    """The golden kernel's output; checks dtype, ``spec.out_shape`` and that inputs are untouched."""
    before = [x.copy() for x in inputs]
    out = KERNELS[spec.kind](spec, list(inputs), params)
    for x, x0 in zip(inputs, before):
        assert_exact(x, x0, "kernel modified its input")
    assert out.dtype == np.float32, out.dtype
    assert out.shape == spec.out_shape, (out.shape, spec.out_shape)
    return out


def assert_exact(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """Same shape, float32 and equal values (``np.array_equal``; ``-0.0 == 0.0``, NaN where NaN)."""
    assert got.shape == want.shape, f"{what} shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype == np.float32, (got.dtype, want.dtype)
    bad = (got != want) & ~(np.isnan(got) & np.isnan(want))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what} {int(bad.sum())}/{bad.size} elements differ; first at {idx}: "
                             f"golden {got[idx]!r} vs reference {want[idx]!r}")


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = RTOL) -> None:
    """``max|got − want| ≤ rtol · max(max|want|, 1)`` (summation-order and ``exp`` differences only).

    The floor of 1 is the scale of the random O(1) terms being summed: when a sum cancels to
    near 0, its rounding error stays relative to the terms, not to the result.
    """
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == np.float32, got.dtype
    assert np.isfinite(want).all() and np.isfinite(got).all()
    scale = max(float(np.abs(want).max(initial=0.0)), 1.0)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    idx = np.unravel_index(int(err.argmax()), err.shape) if err.size else ()
    assert err.size == 0 or err.max() <= rtol * scale, (
        f"max error {err.max():.3g} at {idx} > {rtol} * {scale:.3g}: golden {got[idx]!r} vs "
        f"reference {want[idx]!r}")


def compare(got: np.ndarray, want: np.ndarray, activation: str) -> None:
    """Exact when the activation is computed with identical float ops, else within RTOL."""
    if activation in EXACT_ACTIVATIONS:
        assert_exact(got, want)
    else:
        assert_close(got, want)


def randn(rng: np.random.Generator, shape: tuple[int, ...], shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def stride_lines(sx: int, sy: int) -> str:
    """``stride=`` when equal (the common cfg form), else AlexeyAB's ``stride_x``/``stride_y``."""
    return f"stride={sx}\n" if sx == sy else f"stride_x={sx}\nstride_y={sy}\n"


def bn_params(rng: np.random.Generator, n: int, weights: np.ndarray, batch_normalize: bool) -> LayerParams:
    biases = randn(rng, (n,))
    if not batch_normalize:
        return LayerParams(biases, weights)
    return LayerParams(biases, weights, scales=randn(rng, (n,), 1.0, 0.5), rolling_mean=randn(rng, (n,)),
                       rolling_variance=rng.uniform(0.05, 3.0, n).astype(np.float32))


def ref_bn(p: LayerParams) -> dict[str, np.ndarray | None]:
    return {"scales": p.scales, "rolling_mean": p.rolling_mean, "rolling_variance": p.rolling_variance}


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_matches_reference(name: str) -> None:
    """Each activation on normal values plus the edges (±20 mish thresholds, 0, −0, large |x|)."""
    rng = np.random.default_rng(7)
    special = np.array([0.0, -0.0, 1e-7, -1e-7, 0.1, -0.1, 5.9, 6.0, 6.1, -19.9, -20.0, -20.1, 19.9, 20.0,
                        20.1, -30.0, 30.0, -88.0, 88.0, -100.0, 100.0], dtype=np.float32)
    x = np.concatenate([special, randn(rng, (400,), 0.0, 6.0)])
    x0 = x.copy()
    got = golden_activate(x, name)
    assert_exact(x, x0, "activate(inplace=False) modified its input")
    want = ref.activate(x, name)
    if name in EXACT_ACTIVATIONS:
        assert_exact(got, want, name)
    else:
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bound = RTOL * np.maximum(np.abs(want.astype(np.float64)), 1.0)
        assert (err <= bound).all(), f"{name}: worst at x={x[(err - bound).argmax()]!r}"
    assert_exact(golden_activate(x.copy(), name, inplace=True), got, f"{name} inplace")


def test_relu_keeps_negative_zero() -> None:
    """``x*(x>0)``: negative inputs give −0.0 in both (bit patterns compared, not just ``==``)."""
    x = np.array([-2.0, -0.0, 0.0, 3.0], dtype=np.float32)
    got, want = golden_activate(x, "relu"), ref.activate(x, "relu")
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.signbit(got[0])


def test_leaky_within_one_ulp_of_pjreddie_double() -> None:
    """Golden's float ``.1f*x`` is at most 1 ulp from pjreddie's double ``.1*x`` (DARKNET-SEMANTICS §4)."""
    x = randn(np.random.default_rng(3), (2000,), -1.0, 3.0)
    got = golden_activate(x, "leaky")
    p = ref.activate(x, "leaky", fork="P")
    assert (np.abs(got - p) <= np.spacing(np.abs(p))).all()


# --------------------------------------------------------------------------- convolution


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    c = draw(st.integers(1, 16))
    if draw(st.booleans()):  # depthwise: groups == c == filters
        groups, filters = c, c
    else:
        groups = draw(st.sampled_from(divisors(c)))
        filters = groups * draw(st.integers(1, max(1, 16 // groups)))
    size = draw(st.sampled_from([1, 2, 3, 5]))
    pad = draw(st.sampled_from(["pad=1", 0, 1, 2]))
    padding = size // 2 if pad == "pad=1" else pad
    lo = max(1, size - 2 * padding)
    return dict(c=c, groups=groups, filters=filters, size=size, pad=pad, padding=padding,
                sx=draw(st.sampled_from([1, 2])), sy=draw(st.sampled_from([1, 2])),
                h=draw(st.integers(lo, 11)), w=draw(st.integers(lo, 11)), bn=draw(st.booleans()),
                act=draw(st.sampled_from(ALL_ACTIVATIONS)), seed=draw(seeds))


def conv_section(k: dict) -> str:
    pad = "pad=1\n" if k["pad"] == "pad=1" else f"padding={k['pad']}\n"
    return (f"[convolutional]\nfilters={k['filters']}\nsize={k['size']}\n{stride_lines(k['sx'], k['sy'])}"
            f"{pad}groups={k['groups']}\nbatch_normalize={int(k['bn'])}\nactivation={k['act']}\n")


def check_conv(k: dict, exact: bool = False) -> None:
    rng = np.random.default_rng(k["seed"])
    in_shape = (k["c"], k["h"], k["w"])
    spec = build(conv_section(k), in_shape)
    oh = ref.conv_out_size(k["h"], k["size"], k["sy"], k["padding"])
    ow = ref.conv_out_size(k["w"], k["size"], k["sx"], k["padding"])
    assert spec.out_shape == (k["filters"], oh, ow)
    assert spec.padding == k["padding"]
    x = randn(rng, in_shape)
    weights = randn(rng, (k["filters"], k["c"] // k["groups"], k["size"], k["size"]), 0.0, 0.5)
    p = bn_params(rng, k["filters"], weights, k["bn"])
    got = run(spec, [x], p)
    want = ref.conv2d(x, p.weights, p.biases, stride_x=k["sx"], stride_y=k["sy"], padding=k["padding"],
                      groups=k["groups"], activation=k["act"], **(ref_bn(p) if k["bn"] else {}))
    if exact:
        assert_exact(got, want)
    else:
        assert_close(got, want)


@settings(max_examples=250, deadline=None)
@given(conv_cases())
def test_conv_matches_reference(k: dict) -> None:
    """Conv (groups incl. depthwise, stride_x ≠ stride_y, pad=1 / padding 0-2, k 1/2/3/5, BN or bias,
    every activation) equals the direct summation formula up to summation order."""
    check_conv(k)


@pytest.mark.parametrize("c,groups,filters,size,sx,sy,pad,h,w,act", [
    (3, 1, 16, 3, 2, 2, "pad=1", 11, 11, "leaky"),   # first layer of a detector, stride 2
    (12, 12, 12, 3, 2, 2, "pad=1", 9, 9, "relu6"),   # depthwise stride 2
    (7, 7, 7, 5, 1, 1, "pad=1", 8, 8, "swish"),      # depthwise 5x5
    (6, 3, 9, 3, 1, 2, 2, 7, 8, "mish"),             # grouped, stride_x != stride_y, padding 2
    (10, 5, 10, 3, 1, 1, 1, 6, 7, "logistic"),       # grouped, 2 channels per group
    (8, 2, 4, 2, 2, 1, 0, 8, 9, "linear"),           # even kernel, no padding
    (5, 1, 7, 5, 1, 1, "pad=1", 9, 7, "tanh"),       # 5x5 "same"
    (13, 1, 5, 1, 1, 1, 0, 6, 5, "relu"),            # 1x1 (GEMM on the input itself)
    (4, 1, 3, 1, 2, 2, "pad=1", 7, 7, "leaky"),      # 1x1 stride 2 (pjreddie's quirk; AlexeyAB correct)
    (16, 1, 16, 3, 1, 1, "pad=1", 8, 8, "leaky"),    # a realistic block
])
def test_conv_darknet_cases(c: int, groups: int, filters: int, size: int, sx: int, sy: int, pad: str | int,
                            h: int, w: int, act: str) -> None:
    """Fixed conv shapes seen in real cfgs (and their corner cases), with and without batch norm."""
    for bn in (False, True):
        padding = size // 2 if pad == "pad=1" else pad
        check_conv(dict(c=c, groups=groups, filters=filters, size=size, pad=pad, padding=padding, sx=sx, sy=sy,
                        h=h, w=w, bn=bn, act=act, seed=c * 1000 + filters))


@st.composite
def single_product_conv_cases(draw: st.DrawFn, bn: bool) -> dict:
    """Convs whose every output is one product (C/groups = 1, size 1): any summation order is exact."""
    g = draw(st.integers(1, 6))
    return dict(c=g, groups=g, filters=g * draw(st.integers(1, 3)), size=1, pad=0, padding=0,
                sx=draw(st.sampled_from([1, 2])), sy=draw(st.sampled_from([1, 2])),
                h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)), bn=bn,
                act=draw(st.sampled_from(EXACT_ACTIVATIONS)), seed=draw(seeds))


@settings(max_examples=60, deadline=None)
@given(single_product_conv_cases(bn=False))
def test_conv_bias_epilogue_is_exact(k: dict) -> None:
    """With one product per output, ``acc + bias`` then the activation must match bit for bit."""
    check_conv(k, exact=True)


@settings(max_examples=60, deadline=None)
@given(single_product_conv_cases(bn=True))
def test_conv_batchnorm_epilogue_is_exact(k: dict) -> None:
    """pjreddie's ``(acc-mean)/(sqrt(var)+1e-6f)`` divides in double (DARKNET-SEMANTICS §5.1),
    then ``*scale``, ``+bias`` in float: bit for bit when the sum itself is exact."""
    check_conv(k, exact=True)


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9), size=st.sampled_from([1, 2, 3, 5]),
       sx=st.sampled_from([1, 2, 3]), sy=st.sampled_from([1, 2, 3]), padding=st.integers(0, 2), seed=seeds)
def test_im2col_matches_darknet_loop(c: int, h: int, w: int, size: int, sx: int, sy: int, padding: int,
                                     seed: int) -> None:
    """``golden.kernels.im2col`` is Darknet's ``im2col_cpu`` (rows ``(c, ky, kx)``, zero padding), exactly."""
    assume(h + 2 * padding >= size and w + 2 * padding >= size)
    x = randn(np.random.default_rng(seed), (c, h, w))
    assert_exact(golden_im2col(x, size, sy, sx, padding), ref.im2col(x, size, sy, sx, padding))


# --------------------------------------------------------------------------- connected


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 6), h=st.integers(1, 4), w=st.integers(1, 4), out=st.integers(1, 12),
       bn=st.booleans(), act=st.sampled_from(ALL_ACTIVATIONS), seed=seeds)
def test_connected_matches_reference(c: int, h: int, w: int, out: int, bn: bool, act: str, seed: int) -> None:
    """``y = W·flatten(x)`` then BN or bias, then the activation (order-of-summation tolerance)."""
    rng = np.random.default_rng(seed)
    spec = build(f"[connected]\noutput={out}\nbatch_normalize={int(bn)}\nactivation={act}\n", (c, h, w))
    x = randn(rng, (c, h, w))
    p = bn_params(rng, out, randn(rng, (out, c * h * w), 0.0, 0.5), bn)
    got = run(spec, [x], p)
    assert_close(got, ref.connected(x, p.weights, p.biases, activation=act, **(ref_bn(p) if bn else {})))


# --------------------------------------------------------------------------- pooling


def has_empty_window(n_in: int, size: int, stride: int, padding: int) -> bool:
    """True if some maxpool window along one axis lies entirely outside the input."""
    n_out = ref.maxpool_out_size(n_in, size, stride, padding)
    for i in range(n_out):
        start = i * stride - padding // 2
        if start + size - 1 < 0 or start > n_in - 1:
            return True
    return False


def maxpool_section(size: int, sx: int, sy: int, padding: int | None) -> str:
    pad = "" if padding is None else f"padding={padding}\n"
    return f"[maxpool]\nsize={size}\n{stride_lines(sx, sy)}{pad}"


def check_maxpool(c: int, h: int, w: int, size: int, sx: int, sy: int, padding: int | None,
                  x: np.ndarray) -> np.ndarray:
    spec = build(maxpool_section(size, sx, sy, padding), (c, h, w))
    total = size - 1 if padding is None else padding
    assert spec.padding == total
    assert spec.out_shape == (c, ref.maxpool_out_size(h, size, sy, total), ref.maxpool_out_size(w, size, sx, total))
    want = ref.maxpool(x, size, sx, sy, total)
    assert_exact(run(spec, [x]), want)
    return want


@settings(max_examples=250, deadline=None)
@given(c=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11), size=st.integers(1, 5),
       sx=st.integers(1, 3), sy=st.integers(1, 3), padding=st.one_of(st.none(), st.integers(0, 6)),
       negative=st.booleans(), seed=seeds)
def test_maxpool_matches_reference(c: int, h: int, w: int, size: int, sx: int, sy: int, padding: int | None,
                                   negative: bool, seed: int) -> None:
    """Maxpool with default (size−1) or explicit total padding, any strides, mostly-negative inputs:
    exact (out-of-bounds positions are ignored, never read as 0)."""
    total = size - 1 if padding is None else padding
    assume(h + total >= size and w + total >= size)
    assume(not has_empty_window(h, size, sy, total) and not has_empty_window(w, size, sx, total))
    x = randn(np.random.default_rng(seed), (c, h, w), -3.0 if negative else 0.0)
    check_maxpool(c, h, w, size, sx, sy, padding, x)


@pytest.mark.parametrize("size,sx,sy,padding,h,w", [
    (2, 2, 2, None, 13, 13), (2, 2, 2, None, 12, 12), (2, 1, 1, None, 13, 13), (2, 1, 1, None, 6, 7),
    (3, 1, 1, None, 9, 9), (5, 1, 1, None, 9, 8), (3, 2, 2, None, 11, 10), (2, 2, 2, 0, 13, 13),
    (2, 2, 2, 1, 7, 7), (2, 1, 1, 1, 7, 7), (3, 1, 1, 2, 8, 8), (5, 1, 1, 4, 11, 11), (3, 1, 1, 0, 7, 7),
    (5, 1, 1, 2, 7, 7), (5, 1, 1, 3, 7, 6), (3, 2, 2, 3, 9, 9), (2, 2, 1, None, 7, 9), (3, 1, 2, None, 8, 9),
])
def test_maxpool_darknet_cases_all_negative(size: int, sx: int, sy: int, padding: int | None, h: int,
                                            w: int) -> None:
    """The cfg cases (2/2, 2/1 tiny-yolo, SPP 5/1, explicit padding) on all-negative inputs:
    any zero padding would show up as a 0 in the output."""
    c = 3
    x = -(np.abs(randn(np.random.default_rng(size * 100 + h), (c, h, w))) + F(0.1))
    want = check_maxpool(c, h, w, size, sx, sy, padding, x)
    assert (want < 0).all() and (want > -ref.FLT_MAX).all()


def test_maxpool_fully_padded_window_gives_minus_flt_max() -> None:
    """A window entirely in the padding (size 2, padding 4: origin −2) yields Darknet's −FLT_MAX, not −inf."""
    x = randn(np.random.default_rng(0), (2, 3, 3))
    want = check_maxpool(2, 3, 3, 2, 1, 1, 4, x)
    assert (want == -ref.FLT_MAX).any()


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(1, 9), w=st.integers(1, 9), seed=seeds)
def test_avgpool_matches_reference(c: int, h: int, w: int, seed: int) -> None:
    """Global average: float sum then one division (pairwise vs sequential sum tolerance)."""
    spec = build("[avgpool]\n", (c, h, w))
    x = randn(np.random.default_rng(seed), (c, h, w), 0.5)
    assert_close(run(spec, [x]), ref.avgpool(x))


# --------------------------------------------------------------------------- route / shortcut


@settings(max_examples=80, deadline=None)
@given(data=st.data(), groups=st.integers(1, 3), n_before=st.integers(1, 4), h=st.integers(1, 5),
       w=st.integers(1, 5), seed=seeds)
def test_route_matches_reference(data: st.DataObject, groups: int, n_before: int, h: int, w: int,
                                 seed: int) -> None:
    """Channel concatenation in the listed order, relative and absolute references, and
    AlexeyAB's ``groups``/``group_id`` slice of every input: exact."""
    rng = np.random.default_rng(seed)
    group_id = data.draw(st.integers(0, groups - 1))
    shapes = [(groups * data.draw(st.integers(1, 3)), h, w) for _ in range(n_before)]
    picked = data.draw(st.lists(st.integers(0, n_before - 1), min_size=1, max_size=3))
    relative = data.draw(st.lists(st.booleans(), min_size=len(picked), max_size=len(picked)))
    refs = ",".join(str(i - n_before if rel else i) for i, rel in zip(picked, relative))
    spec = build(f"[route]\nlayers={refs}\ngroups={groups}\ngroup_id={group_id}\n", shapes[-1], shapes)
    assert spec.inputs == tuple(picked)
    outs = [randn(rng, s) for s in shapes]
    inputs = [outs[i] for i in picked]
    assert_exact(run(spec, inputs), ref.route(inputs, groups, group_id))


ALPHAS = [1.0, 0.5, 2.0, -1.0, 0.3, 1.7]


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 6), h=st.integers(1, 7), w=st.integers(1, 7), n_from=st.integers(1, 2),
       alpha=st.sampled_from(ALPHAS), beta=st.sampled_from(ALPHAS), act=st.sampled_from(ALL_ACTIVATIONS),
       seed=seeds)
def test_shortcut_equal_shapes(c: int, h: int, w: int, n_from: int, alpha: float, beta: float, act: str,
                               seed: int) -> None:
    """``alpha·prev + beta·from`` (pjreddie) or ``prev + Σ from_k`` (AlexeyAB list), then the activation:
    exact for the float-identical activations."""
    if n_from > 1:
        alpha = beta = 1.0  # a from= list is AlexeyAB-only, which has no alpha/beta
    rng = np.random.default_rng(seed)
    shapes = [(c, h, w)] * (n_from + 1)
    frm = ",".join(str(-2 - i) for i in range(n_from))
    spec = build(f"[shortcut]\nfrom={frm}\nactivation={act}\nalpha={alpha}\nbeta={beta}\n", shapes[-1], shapes)
    outs = [randn(rng, s) for s in shapes]
    prev, froms = outs[-1], [outs[-2 - i] for i in range(n_from)]
    compare(run(spec, [prev, *froms]), ref.shortcut(prev, froms, alpha, beta, act), act)


@st.composite
def mismatched_shortcut_shapes(draw: st.DrawFn) -> tuple[Shape, Shape]:
    """``(from_shape, out_shape)`` that pjreddie's ``shortcut_cpu`` accepts (same w and h ratios)."""
    c_out, c_from = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    mode = draw(st.sampled_from(["same", "down", "up"]))
    h, w = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    if mode == "same":
        return (c_from, h, w), (c_out, h, w)
    f = draw(st.integers(2, 3))
    r = draw(st.integers(0, 1))  # odd sizes: 13 onto 6 reads every 2nd of the first 12
    big = (h * f + r, w * f + r)
    if mode == "down":
        return (c_from, *big), (c_out, h, w)
    return (c_from, h, w), (c_out, *big)


@settings(max_examples=80, deadline=None)
@given(shapes=mismatched_shortcut_shapes(), act=st.sampled_from(EXACT_ACTIVATIONS), seed=seeds)
def test_shortcut_mismatched_shapes(shapes: tuple[Shape, Shape], act: str, seed: int) -> None:
    """pjreddie's strided rule (resnet18, yolov3-tiny-prn): only ``out[c][y·sample][x·sample]`` for
    ``c, y, x < min`` get ``from[c][y·stride][x·stride]`` added; the rest keep ``prev``.  Exact."""
    rng = np.random.default_rng(seed)
    from_shape, out_shape = shapes
    spec = build(f"[shortcut]\nfrom=-2\nactivation={act}\n", out_shape, [from_shape, out_shape])
    frm, prev = randn(rng, from_shape), randn(rng, out_shape)
    assert_exact(run(spec, [prev, frm]), ref.shortcut(prev, [frm], activation=act))


@settings(max_examples=20, deadline=None)
@given(shapes=mismatched_shortcut_shapes(), alpha=st.sampled_from([0.5, 2.0, -1.0]), seed=seeds)
def test_shortcut_mismatched_shapes_alpha_beta(shapes: tuple[Shape, Shape], alpha: float, seed: int) -> None:
    """pjreddie applies ``alpha·out + beta·from`` only at the visited positions of ``shortcut_cpu``;
    positions outside ``min(C)`` / off the sample grid keep ``prev`` unscaled."""
    rng = np.random.default_rng(seed)
    from_shape, out_shape = shapes
    spec = build(f"[shortcut]\nfrom=-2\nactivation=linear\nalpha={alpha}\nbeta=0.5\n", out_shape,
                 [from_shape, out_shape])
    frm, prev = randn(rng, from_shape), randn(rng, out_shape)
    assert_exact(run(spec, [prev, frm]), ref.shortcut(prev, [frm], alpha, 0.5))


# --------------------------------------------------------------------------- upsample / reorg


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 5), h=st.integers(1, 6), w=st.integers(1, 6), stride=st.integers(1, 3),
       scale=st.sampled_from([1.0, 0.5, 2.5, -1.0]), seed=seeds)
def test_upsample_matches_reference(c: int, h: int, w: int, stride: int, scale: float, seed: int) -> None:
    """Nearest neighbour times ``scale``: exact."""
    spec = build(f"[upsample]\nstride={stride}\nscale={scale}\n", (c, h, w))
    x = randn(np.random.default_rng(seed), (c, h, w))
    assert_exact(run(spec, [x]), ref.upsample(x, stride, scale))


@settings(max_examples=60, deadline=None)
@given(s=st.integers(1, 3), m=st.integers(1, 3), a=st.integers(1, 4), b=st.integers(1, 4), seed=seeds)
def test_reorg_matches_reference(s: int, m: int, a: int, b: int, seed: int) -> None:
    """Legacy ``[reorg]`` (``reorg_cpu`` forward=0 on the input sizes): exact."""
    in_shape = (m * s * s, a * s, b * s)
    spec = build(f"[reorg]\nstride={s}\n", in_shape)
    x = randn(np.random.default_rng(seed), in_shape)
    assert_exact(run(spec, [x]), ref.reorg(x, s))


def test_reorg_yolov2_passthrough_is_not_space_to_depth() -> None:
    """yolov2's 64×38×38 → 256×19×19 matches the loop, which differs from a true space-to-depth."""
    x = randn(np.random.default_rng(5), (64, 38, 38))
    want = ref.reorg(x, 2)
    assert_exact(run(build("[reorg]\nstride=2\n", (64, 38, 38)), [x]), want)
    s2d = x.reshape(64, 19, 2, 19, 2).transpose(2, 4, 0, 1, 3).reshape(256, 19, 19)
    assert not np.array_equal(want, s2d)


# --------------------------------------------------------------------------- softmax / heads


@settings(max_examples=60, deadline=None)
@given(data=st.data(), c=st.integers(1, 6), h=st.integers(1, 4), w=st.integers(1, 4),
       temperature=st.sampled_from([1.0, 0.5, 2.0, 0.7]), seed=seeds)
def test_softmax_matches_reference(data: st.DataObject, c: int, h: int, w: int, temperature: float,
                                   seed: int) -> None:
    """Softmax over ``groups`` contiguous chunks with a temperature (float-sum-order tolerance)."""
    groups = data.draw(st.sampled_from(divisors(c * h * w)))
    spec = build(f"[softmax]\ngroups={groups}\ntemperature={temperature}\n", (c, h, w))
    x = randn(np.random.default_rng(seed), (c, h, w), 0.0, 3.0)
    assert_close(run(spec, [x]), ref.softmax(x, groups, temperature))


def region_section(num: int, classes: int, softmax: bool, background: bool) -> str:
    anchors = ",".join(f"{0.5 + i * 0.25}" for i in range(2 * num))
    return (f"[region]\nanchors={anchors}\nclasses={classes}\ncoords=4\nnum={num}\n"
            f"softmax={int(softmax)}\nbackground={int(background)}\n")


@settings(max_examples=60, deadline=None)
@given(num=st.integers(1, 3), classes=st.integers(1, 5), h=st.integers(1, 4), w=st.integers(1, 4),
       softmax=st.booleans(), seed=seeds)
def test_region_matches_reference(num: int, classes: int, h: int, w: int, softmax: bool, seed: int) -> None:
    """pjreddie region: σ on tx, ty, objectness; softmax (per cell, stride H·W) or σ on classes."""
    in_shape = (num * (5 + classes), h, w)
    spec = build(region_section(num, classes, softmax, False), in_shape)
    x = randn(np.random.default_rng(seed), in_shape, 0.0, 3.0)
    assert_close(run(spec, [x]), ref.region(x, num, 4, classes, softmax))


@pytest.mark.parametrize("softmax", [False, True])
def test_region_background(softmax: bool) -> None:
    """``background=1``: objectness not σ'd; with softmax pjreddie softmaxes ``classes+1`` planes
    starting at the objectness plane (``entry_index(.., coords + !background)``)."""
    num, classes, h, w = 2, 3, 3, 2
    in_shape = (num * (5 + classes), h, w)
    spec = build(region_section(num, classes, softmax, True), in_shape)
    x = randn(np.random.default_rng(11), in_shape, 0.0, 3.0)
    assert_close(run(spec, [x]), ref.region(x, num, 4, classes, softmax, background=True))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), total=st.integers(1, 4), classes=st.integers(1, 4), h=st.integers(1, 4),
       w=st.integers(1, 4), new_coords=st.booleans(), sxy=st.sampled_from([1.0, 1.05, 1.1, 1.2, 2.0]),
       seed=seeds)
def test_yolo_matches_reference(data: st.DataObject, total: int, classes: int, h: int, w: int,
                                new_coords: bool, sxy: float, seed: int) -> None:
    """σ on x, y, objectness and classes (none with ``new_coords``), then ``x·s − 0.5·(s−1)`` on x, y."""
    mask = data.draw(st.lists(st.integers(0, total - 1), min_size=1, max_size=total, unique=True))
    anchors = ",".join(str(10 + 7 * i) for i in range(2 * total))
    in_shape = (len(mask) * (5 + classes), h, w)
    spec = build(f"[yolo]\nmask={','.join(map(str, mask))}\nanchors={anchors}\nclasses={classes}\n"
                 f"num={total}\nscale_x_y={sxy}\nnew_coords={int(new_coords)}\n", in_shape)
    x = randn(np.random.default_rng(seed), in_shape, 0.0, 3.0)
    if new_coords:  # the conv before already applied logistic
        x = ref.activate(x, "logistic")
    assert_close(run(spec, [x]), ref.yolo(x, len(mask), classes, new_coords, sxy))


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 6), h=st.integers(1, 5), w=st.integers(1, 5), scale_wh=st.booleans(),
       act=st.sampled_from(ALL_ACTIVATIONS), seed=seeds)
def test_scale_channels_matches_reference(c: int, h: int, w: int, scale_wh: bool, act: str, seed: int) -> None:
    """``out = in[c] · from[c, y, x]`` (``scale_wh``: ``in[y, x]``), then the activation."""
    rng = np.random.default_rng(seed)
    from_shape: Shape = (c, h, w)
    scale_shape: Shape = (1, h, w) if scale_wh else (c, 1, 1)
    spec = build(f"[scale_channels]\nfrom=-2\nscale_wh={int(scale_wh)}\nactivation={act}\n", scale_shape,
                 [from_shape, scale_shape])
    frm, scale = randn(rng, from_shape), randn(rng, scale_shape)
    compare(run(spec, [scale, frm]), ref.scale_channels(scale, frm, scale_wh, act), act)


@pytest.mark.parametrize("section,kind", [("[dropout]\nprobability=0.3\n", Kind.DROPOUT), ("[cost]\n", Kind.COST)])
def test_dropout_and_cost_are_identity(section: str, kind: Kind) -> None:
    """At inference the output is the input buffer."""
    x = randn(np.random.default_rng(1), (3, 4, 5))
    spec = build(section, (3, 4, 5))
    assert spec.kind is kind
    assert_exact(run(spec, [x]), x)


# --------------------------------------------------------------------------- image input


def image(rng: np.random.Generator, c: int, h: int, w: int, low: float = 0.0) -> np.ndarray:
    return rng.uniform(low, 1.0, (c, h, w)).astype(np.float32)


@settings(max_examples=100, deadline=None)
@given(c=st.integers(1, 3), ih=st.integers(1, 20), iw=st.integers(1, 20), h=st.integers(2, 40),
       w=st.integers(1, 40), seed=seeds)
def test_resize_image_bit_exact(c: int, ih: int, iw: int, h: int, w: int, seed: int) -> None:
    """Darknet's two-pass corner-aligned bilinear resize, up and down, bit for bit."""
    im = image(np.random.default_rng(seed), c, ih, iw)
    assert_exact(gimage.resize_image(im, w, h), ref.resize_image(im, w, h))


def test_resize_image_unchanged_size() -> None:
    """Same size: pjreddie's weights 1 and 0 give the input back (AlexeyAB copies): exact."""
    im = image(np.random.default_rng(2), 3, 7, 9)
    want = ref.resize_image(im, 9, 7)
    assert_exact(want, im)
    assert_exact(gimage.resize_image(im, 9, 7), want)


def test_resize_16_to_416_black_bottom_row() -> None:
    """DARKNET-SEMANTICS §3 quirk: 16→416 puts the last row at ``iy = 14``, ``dy ≈ 1`` with no second
    term, so the bottom row comes out ≈ 0.  Golden must reproduce it bit for bit."""
    im = image(np.random.default_rng(4), 1, 16, 16, low=0.25)
    want = ref.resize_image(im, 416, 416)
    assert np.abs(want[:, -1]).max() < 1e-5     # black bottom row
    assert want[:, -2].min() > 0.2              # the row above is the image
    assert_exact(gimage.resize_image(im, 416, 416), want)


@settings(max_examples=50, deadline=None)
@given(c=st.integers(1, 3), ih=st.integers(1, 20), iw=st.integers(1, 20), h=st.integers(2, 32),
       w=st.integers(2, 32), seed=seeds)
def test_letterbox_image_bit_exact(c: int, ih: int, iw: int, h: int, w: int, seed: int) -> None:
    """Aspect-preserving resize pasted on a 0.5 canvas at ``((w−new_w)/2, (h−new_h)/2)``: bit for bit."""
    new_w, new_h = ref.letterbox_size(iw, ih, w, h)
    assume(new_h >= 2 and new_w >= 1)  # new_h = 1 divides by zero in Darknet
    assert gimage.letterbox_geometry(iw, ih, w, h) == (new_w, new_h)
    im = image(np.random.default_rng(seed), c, ih, iw)
    assert_exact(gimage.letterbox_image(im, w, h), ref.letterbox_image(im, w, h))


def test_letterbox_keeps_black_bottom_row() -> None:
    """A 2×16 image letterboxed to 60×416 is resized to 52×416 (the 16→416 quirk) at x offset 4."""
    im = image(np.random.default_rng(6), 3, 16, 2, low=0.25)
    assert ref.letterbox_size(2, 16, 60, 416) == (52, 416)
    want = ref.letterbox_image(im, 60, 416)
    assert np.abs(want[:, -1, 4:56]).max() < 1e-5
    assert (want[:, :, :4] == F(0.5)).all() and (want[:, :, 56:] == F(0.5)).all()
    assert_exact(gimage.letterbox_image(im, 60, 416), want)
