"""The INT engine's two exact-sum backends (``dla.int_backend``): the onnxruntime u8s8 int8 GEMM
and the float-BLAS path give the same integers, equal to the plain-integer reference, and the
guard falls back to the float path where the int8 GEMM cannot be trusted.

Both backends are forced in turn (``int_backend.force``), whatever this machine would choose;
a machine whose onnxruntime fails the self-test skips the onnxruntime cases with that reason
(the fallback tests below still run everywhere).  Every comparison is ``np.array_equal``.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest

from dla import int_backend
from dla.config import HardwareConfig
from dla.engine import Engine
from dla.int_kernels import INT_KERNELS, build_plan, conv_accumulate, im2col_int8
from golden.errors import UserInputError
from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from quant import collect_ranges, quantize
from quant.qnet import QuantizedNetwork
from quant.spec import QuantSpec
from tests.dla.int_kernel_helpers import (ACTIVATIONS, HW_VARIANTS, _hw_for, _seed, assert_same, quant_layer,
                                         random_conv, run_kernel)
from tests.net_helpers import net_from_cfg, net_header
from tests.reference import int_kernels_ref as ref

BACKENDS = (int_backend.FLOAT, int_backend.ORT)


@pytest.fixture(autouse=True)
def _restore_backend() -> Iterator[None]:
    yield
    int_backend.force(None)


def use(name: str) -> None:
    """Force backend ``name``; skip (with the machine's reason) if onnxruntime is not exact here."""
    int_backend.force(name)
    try:
        assert int_backend.active() == name
    except UserInputError as exc:
        pytest.skip(f"onnxruntime backend unusable on this machine: {exc}")


# --------------------------------------------------------------------------- layers vs reference


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["gemmlowp", "single_round", "scale_shift", "leaky_shift", "acc16-wrap"])
def test_conv_matches_reference_on_each_backend(backend: str, variant: str) -> None:
    """Random conv layers (shapes, strides, padding, kernel 1/3, groups, per-tensor/per-channel):
    output and event counts equal the reference; the onnxruntime backend really ran (ungrouped)."""
    use(backend)
    rng = np.random.default_rng(_seed("backend-conv", variant))
    used = 0
    for case in range(30):
        act = ACTIVATIONS[case % len(ACTIVATIONS)]
        hw = _hw_for(HW_VARIANTS[variant], act)
        net, qnet, x = random_conv(rng, act, "per_channel" if case % 2 else "per_tensor")
        spec = net.layers[0]
        plan = build_plan(spec, qnet, hw)
        used += plan.int_gemm is not None
        assert (plan.int_gemm is not None) == (backend == int_backend.ORT and spec.groups == 1)
        out, stats = run_kernel(spec, [x], qnet, hw)
        ql = qnet.layers[0]
        want, want_stats = ref.conv(spec, x, ql.w_q, ql.b_q, plan, hw)
        assert_same(out, stats, want, want_stats, f"{backend} {variant} case {case} {spec}")
    assert (used > 0) == (backend == int_backend.ORT)


def _extreme_conv(c: int, size: int, stride: int, padding: int, x_fill: int, w_fill: str,
                  rng: np.random.Generator) -> tuple:
    h = w = 7
    net = net_from_cfg(net_header(c, h, w) + f"[convolutional]\nfilters=12\nsize={size}\nstride={stride}\n"
                       f"pad=0\npadding={padding}\nactivation=linear\n")
    spec = net.layers[0]
    ql, s_out = quant_layer(rng, spec, 0.01, "per_channel", spec.weight_shape, (4.0, 7.0), False)
    n = spec.filters
    if w_fill == "max":
        ql.w_q = np.full(spec.weight_shape, 127, np.int8)
    elif w_fill == "min":
        ql.w_q = np.full(spec.weight_shape, -127, np.int8)
    else:
        ql.w_q = np.where(rng.random(spec.weight_shape) < 0.5, 127, -127).astype(np.int8)
    ql.b_q = np.zeros(n, np.int32)
    qnet = QuantizedNetwork(net, {-1: 0.01, 0: s_out}, layers={0: ql}, granularity="per_channel")
    x = np.full(net.input_shape, x_fill, np.int8)
    return net, qnet, x


@pytest.mark.parametrize("x_fill", [-128, 127])
@pytest.mark.parametrize("w_fill", ["max", "min", "mixed"])
def test_extreme_operands_equal_across_backends(x_fill: int, w_fill: str) -> None:
    """Activations all −128 or all 127 against weights all +127, all −127 or ±127 at random, at a
    depth (C=256, 3x3: K=2304) where every int16 pair sum would saturate: the int8 backend's sums
    equal the int64 ones, and both backends' outputs and counts equal the reference (acc16
    saturates these sums, so the accumulator fit is exercised on exact values)."""
    use(int_backend.ORT)
    rng = np.random.default_rng(_seed("extreme", x_fill, w_fill))
    net, qnet, x = _extreme_conv(256, 3, 1, 1, x_fill, w_fill, rng)
    spec, ql = net.layers[0], qnet.layers[0]
    plan = build_plan(spec, qnet, HardwareConfig())
    assert plan.int_gemm is not None
    exact = conv_accumulate(spec, x.astype(np.float64), ql.w_q.reshape(spec.filters, -1).astype(np.float64),
                            1 << 40).astype(np.int64).reshape(spec.filters, -1)
    got = plan.int_gemm(im2col_int8(x, spec.size, spec.stride_y, spec.stride_x, spec.padding))
    assert got.dtype == np.int32 and np.array_equal(got.astype(np.int64), exact)
    for hw in (HardwareConfig(), HardwareConfig(acc_bits=16), HardwareConfig(acc_bits=16, acc_overflow="wrap")):
        want, want_stats = ref.conv(spec, x, ql.w_q, ql.b_q, build_plan(spec, qnet, hw), hw)
        outs = []
        for backend in BACKENDS:
            use(backend)
            p = build_plan(spec, qnet, hw)
            assert (p.int_gemm is not None) == (backend == int_backend.ORT)
            out, stats = INT_KERNELS[spec.kind](spec, [x], p, hw)
            assert_same(out, stats, want, want_stats, f"{backend} x={x_fill} w={w_fill} acc{hw.acc_bits}")
            outs.append(out)
        assert np.array_equal(outs[0], outs[1])


def test_im2col_int8_equals_float_im2col() -> None:
    """The int8 backend's operand is ``golden.kernels.im2col`` of the same tensor, as int8."""
    from golden.kernels import im2col

    rng = np.random.default_rng(3)
    for size, sy, sx, pad in [(1, 1, 1, 0), (3, 1, 1, 1), (3, 2, 1, 1), (3, 2, 2, 0), (1, 2, 2, 0), (3, 1, 2, 2)]:
        x = rng.integers(-128, 128, size=(5, 9, 8)).astype(np.int8)
        got = im2col_int8(x, size, sy, sx, pad)
        assert got.dtype == np.int8
        assert np.array_equal(got, im2col(x.astype(np.float32), size, sy, sx, pad).astype(np.int8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_connected_matches_reference_on_each_backend(backend: str) -> None:
    use(backend)
    rng = np.random.default_rng(_seed("backend-connected"))
    hw = HardwareConfig()
    for case in range(8):
        c, h, w = (int(v) for v in rng.integers(1, 8, size=3))
        n = int(rng.integers(1, 20))
        net = net_from_cfg(net_header(c, h, w) + f"[connected]\noutput={n}\nactivation=leaky\n")
        spec = net.layers[0]
        ql, s_out = quant_layer(rng, spec, 0.01, "per_channel", spec.weight_shape, (np.log2(15), np.log2(250)), False)
        if case == 0:
            ql.w_q[:] = 127
        qnet = QuantizedNetwork(net, {-1: 0.01, 0: s_out}, layers={0: ql}, granularity="per_channel")
        x = rng.integers(-128, 128, size=net.input_shape).astype(np.int8)
        if case == 0:
            x[:] = -128
        plan = build_plan(spec, qnet, hw)
        assert (plan.int_gemm is not None) == (backend == int_backend.ORT)
        out, stats = run_kernel(spec, [x], qnet, hw)
        want, want_stats = ref.connected(spec, x, ql.w_q, ql.b_q, plan, hw)
        assert_same(out, stats, want, want_stats, f"{backend} connected case {case}")


# --------------------------------------------------------------------------- eligibility


def test_int32_bound_and_widths() -> None:
    """|Σ u·x| ≤ 255·128·K must fit int32: K = 65793 does, 65794 does not, at every width pair
    (16-bit operands run as int8 digits of the same bound)."""
    assert int_backend.int32_safe(65793) and not int_backend.int32_safe(65794)
    for wb in (4, 8, 16):
        for ab in (8, 16):
            assert int_backend.eligible(wb, ab, 4608) and not int_backend.eligible(wb, ab, 65794)
    # speed, not exactness: the digit split only where the GEMM outweighs the split's passes
    assert int_backend.worthwhile(8, 8, 16, 27) and int_backend.worthwhile(8, 16, 256, 1152)
    assert not int_backend.worthwhile(16, 16, 16, 27) and not int_backend.worthwhile(8, 16, 32, 144)


def test_split16_is_exact_on_every_int16() -> None:
    """v = 256·hi + lo + 128 with both digits int8, for all 65536 int16 values."""
    v = np.arange(-32768, 32768, dtype=np.int16)
    hi, lo = int_backend.split16(v)
    assert hi.dtype == lo.dtype == np.int8
    assert np.array_equal(256 * hi.astype(np.int64) + lo.astype(np.int64) + 128, v.astype(np.int64))


@pytest.mark.parametrize("wb,ab", [(8, 16), (4, 16), (16, 8), (16, 16)])
def test_wide_gemm_equals_int64_on_extreme_operands(wb: int, ab: int) -> None:
    """The digit-split GEMM equals the int64 product exactly, on the extreme values of each width
    (±(2^(wb−1)−1) weights, −2^(ab−1) and 2^(ab−1)−1 activations, alternating) and random ones,
    at a depth of 2304 (3×3×256) and at one column (connected layers)."""
    use(int_backend.ORT)
    rng = np.random.default_rng(_seed("wide-gemm", wb, ab))
    wmax, alo, ahi = (1 << (wb - 1)) - 1, -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    n, k, p = 24, 2304, 40
    w = rng.integers(-wmax, wmax + 1, size=(n, k))
    w[0], w[1], w[2] = wmax, -wmax, np.where(np.arange(k) % 2 == 0, wmax, -wmax)
    col = rng.integers(alo, ahi + 1, size=(k, p))
    col[:, 0], col[:, 1], col[:, 2] = ahi, alo, np.where(np.arange(k) % 2 == 0, ahi, alo)
    wdt, adt = (np.int16 if wb == 16 else np.int8), (np.int16 if ab == 16 else np.int8)
    gemm = int_backend.exact_gemm(w.astype(wdt), wb, ab)
    assert isinstance(gemm, int_backend.WideGemm)
    for c in (col, col[:, :1]):
        got = gemm(np.ascontiguousarray(c.astype(adt)))
        want = w.astype(np.int64) @ c.astype(np.int64)
        assert np.array_equal(got.astype(np.int64), want) and np.array_equal(got, want.astype(np.float64))


def test_mixed_widths_network_identical_across_backends() -> None:
    """A network with a 16-bit head input, a 16-bit first layer and 4-bit body weights: the 8-bit
    pairs (w4a8 included) and the head (w8a16, 128×216: the digit split pays) run on the int8
    backend, the 16-bit first layer (8×27: it does not) on float BLAS; every layer's output and
    counts equal the all-float run."""
    cfg = net_header(3, 24, 24) + "".join(
        f"[convolutional]\nbatch_normalize=1\nfilters={f}\nsize={k}\nstride={s}\npad=1\nactivation=leaky\n"
        for f, k, s in [(8, 3, 1), (16, 3, 2), (16, 1, 1), (24, 3, 1)]) + \
        "[convolutional]\nfilters=128\nsize=3\nstride=1\npad=1\nactivation=linear\n"
    net = random_weights(net_from_cfg(cfg), 5)
    x = synthetic_image(net.input_shape, np.random.default_rng(1))
    spec = QuantSpec.from_dict({"granularity": "per_channel", "input_bits": 16, "overrides": [
        {"layers": [0], "weight_bits": 16}, {"layers": [1, 2], "weight_bits": 4},
        {"layers": [3], "activation_bits": 16}]})
    qnet = quantize(net, collect_ranges(net, [x]), spec=spec)
    runs = {}
    for backend in BACKENDS:
        use(backend)
        eng = Engine(net, qnet)
        plans = eng.plans()
        if backend == int_backend.ORT:
            assert [plans[i].int_gemm is not None for i in range(5)] == [False, True, True, True, True]
        runs[backend] = eng.run(x, "int")
    a, b = runs.values()
    for i, rec in a.records.items():
        assert np.array_equal(rec.output, b.records[i].output), i
        assert (rec.stats.overflow, rec.stats.saturated) == (b.records[i].stats.overflow, b.records[i].stats.saturated)


def test_yolov3_tiny_int_identical_across_backends() -> None:
    """The whole shipped yolov3-tiny (random weights, 416x416) in INT: every layer identical."""
    from dla.catalog import resolve_cfg

    net = random_weights(parse_network(resolve_cfg("yolov3-tiny")), 0)
    x = synthetic_image(net.input_shape, np.random.default_rng(1))
    qnet = quantize(net, collect_ranges(net, [x]), "per_channel")
    runs = []
    for backend in BACKENDS:
        use(backend)
        runs.append(Engine(net, qnet).run(x, "int"))
    for i, rec in runs[0].records.items():
        assert np.array_equal(rec.output, runs[1].records[i].output), i


# --------------------------------------------------------------------------- the guard


def _saturating_session(w: np.ndarray, threads: int):
    """What a u8s8 GEMM built on ``vpmaddubsw`` computes: adjacent u8·s8 products summed in pairs
    with int16 saturation, then the pairs summed in int32 (minus the zero-point term)."""
    u = (w.astype(np.int64) + 128)

    def run(col: np.ndarray) -> np.ndarray:
        c = col.astype(np.int64)
        k = u.shape[1]
        prod = u[:, :, None] * c[None, :, :]  # (N, K, P)
        if k % 2:
            prod = np.concatenate([prod, np.zeros_like(prod[:, :1])], axis=1)
        pairs = np.clip(prod[:, 0::2] + prod[:, 1::2], -32768, 32767)
        return (pairs.sum(axis=1) - 128 * c.sum(axis=0)[None, :]).astype(np.int32)
    return run


def test_self_test_catches_a_saturating_gemm_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int_backend, "make_session", _saturating_session)
    monkeypatch.setattr(int_backend, "cpu_flags", lambda: {"avx2", "avx512_vnni"})  # flags would allow it
    int_backend.force("auto")
    st = int_backend.status()
    assert st.name == int_backend.FLOAT and "self-test failed" in st.reason, st
    net, qnet, x = _extreme_conv(16, 3, 1, 1, 127, "max", np.random.default_rng(0))
    assert build_plan(net.layers[0], qnet, HardwareConfig()).int_gemm is None
    int_backend.force(int_backend.ORT)
    with pytest.raises(UserInputError, match="not exact on this machine"):
        int_backend.status()


def test_saturating_model_really_differs() -> None:
    """The simulated kernel is wrong exactly where the self-test looks (else the test above
    would pass for the wrong reason), and right on small operands."""
    w = np.full((2, 4), 127, np.int8)
    run = _saturating_session(w, 1)
    assert not np.array_equal(run(np.full((4, 1), 127, np.int8)), np.full((2, 1), 4 * 127 * 127))
    small = np.array([[1], [2], [3], [4]], np.int8)
    assert np.array_equal(run(small), w.astype(np.int64) @ small)


def test_no_vnni_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int_backend, "cpu_flags", lambda: {"avx2", "avx512bw"})
    int_backend.force("auto")
    st = int_backend.status()
    assert st.name == int_backend.FLOAT and "no VNNI" in st.reason


def test_without_onnxruntime_the_engine_stays_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    int_backend.force("auto")
    assert int_backend.status() == int_backend.BackendStatus(int_backend.FLOAT, "onnxruntime not installed")
    rng = np.random.default_rng(_seed("no-ort"))
    net, qnet, x = random_conv(rng, "leaky", "per_channel")
    plan = build_plan(net.layers[0], qnet, HardwareConfig())
    assert plan.int_gemm is None
    out, stats = run_kernel(net.layers[0], [x], qnet, HardwareConfig())
    ql = qnet.layers[0]
    assert_same(out, stats, *ref.conv(net.layers[0], x, ql.w_q, ql.b_q, plan, HardwareConfig()), "no onnxruntime")
    int_backend.force(int_backend.ORT)
    with pytest.raises(UserInputError, match="cannot be imported"):
        int_backend.status()


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(int_backend.ENV_VAR, "float")
    assert int_backend.status() == int_backend.BackendStatus(int_backend.FLOAT, "DLA_INT_BACKEND=float")
    monkeypatch.setenv(int_backend.ENV_VAR, "fast")
    with pytest.raises(UserInputError, match="DLA_INT_BACKEND='fast' is not one of auto, float, onnxruntime"):
        int_backend.status()
    with pytest.raises(UserInputError, match="not one of"):
        int_backend.force("gpu")


def test_bad_environment_variable_is_one_cli_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """``dla demo`` (an INT run) with a misspelt DLA_INT_BACKEND: one ``Error:`` line, exit 2, no
    traceback, no output folder."""
    from tests.cli_helpers import run

    monkeypatch.setenv(int_backend.ENV_VAR, "vnni")
    res = run("demo", "-o", tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert "Error: DLA_INT_BACKEND='vnni' is not one of auto, float, onnxruntime" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_plans_pickle_and_still_compute() -> None:
    """A plan with the int8 backend pickles (its GEMM travels as its weights) and the copy
    computes the same output — Dask can ship engines to workers."""
    import pickle

    use(int_backend.ORT)
    rng = np.random.default_rng(_seed("pickle"))
    net, qnet, x = _extreme_conv(8, 3, 1, 1, 5, "mixed", rng)
    x = rng.integers(-128, 128, size=net.input_shape).astype(np.int8)
    plan = build_plan(net.layers[0], qnet, HardwareConfig())
    copy = pickle.loads(pickle.dumps(plan))
    assert copy.int_gemm is not None
    a = INT_KERNELS[net.layers[0].kind](net.layers[0], [x], plan, HardwareConfig())[0]
    b = INT_KERNELS[net.layers[0].kind](net.layers[0], [x], copy, HardwareConfig())[0]
    assert np.array_equal(a, b)
