"""INT kernels at every operand width against the slow plain-integer reference.

Operand pairs w4a8, w8a8, w8a16, w16a8, w16a16 with int8 and int16 outputs; route and shortcut of
mixed int8/int16 inputs; pooling and data movement on int16.  Layers come from cfg texts through
the real parser; plans from ``dla.int_kernels.build_plan`` on a hand-made ``QuantizedNetwork``
whose ``bits`` / ``QuantLayer.w_bits`` say the widths; the reference
(``tests/reference/int_kernels_ref.py``) is told the widths explicitly and recomputes the datapath
in Python ints.  ``np.array_equal`` and equal event counts, always.  Seeded numpy randomness.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from dla import fused
from dla.config import HardwareConfig
from dla.int_kernels import INT_KERNELS, LayerStats, build_plan, exact_int_gemm, gemm_plan
from golden.layers import ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant.qnet import QuantizedNetwork, QuantLayer
from tests.net_helpers import net_from_cfg, net_header
from tests.reference import int_kernels_ref as ref

PAIRS = [(4, 8), (8, 8), (8, 16), (16, 8), (16, 16)]
HW = {
    "gemmlowp": HardwareConfig(),
    "single_round": HardwareConfig(requant="single_round"),
    "scale_shift": HardwareConfig(requant="scale_shift", multiplier_bits=16, shift_bits=6),
    "acc24-wrap-leaky_shift": HardwareConfig(acc_bits=24, acc_overflow="wrap", leaky="shift"),
    "half_up-leftwrap": HardwareConfig(rounding="half_up", left_shift_overflow="wrap"),
}
ACTIVATIONS = ("linear", "leaky", "relu", "relu6", "logistic")


def _seed(*parts: object) -> int:
    text = "/".join(map(str, parts))
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % (2**32)


def _dtype(bits: int) -> type[np.signedinteger]:
    return np.int8 if bits == 8 else np.int16


def random_ints(rng: np.random.Generator, shape: Sequence[int], bits: int) -> np.ndarray:
    """Random ``bits``-wide integers over the full range; now and then a constant extreme tensor."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    r = rng.random()
    if r < 0.08:
        return np.full(tuple(shape), hi if r < 0.04 else lo, dtype=_dtype(bits))
    return rng.integers(lo, hi + 1, size=tuple(shape)).astype(_dtype(bits))


def mac_layer(rng: np.random.Generator, spec: ConvSpec | ConnectedSpec, w_bits: int, a_bits: int,
              out_bits: int, s_in: float) -> tuple[QuantLayer, float]:
    """Random narrow-range weights of ``w_bits``, biases around the accumulator's spread, and an
    output scale that puts the requantized values in (and a little past) the output range."""
    n = spec.weight_shape[0]
    k = int(np.prod(spec.weight_shape[1:]))
    wmax = (1 << (w_bits - 1)) - 1
    w_q = rng.integers(-wmax, wmax + 1, size=spec.weight_shape).astype(np.int8 if w_bits <= 8 else np.int16)
    acc_std = (wmax / 1.7) * ((1 << (a_bits - 1)) / 1.7) * max(k, 1) ** 0.5
    b_q = rng.integers(-int(2 * acc_std), int(2 * acc_std) + 1, size=n).astype(np.int64)
    w_scale = np.full(n, 2.0 ** rng.uniform(-9, -4)) * (2.0 ** rng.uniform(-1, 1, size=n) if rng.random() < .5 else 1)
    out_range = (1 << (out_bits - 1)) - 1
    m = float(out_range * 2.0 ** rng.uniform(-3, 0.5)) / acc_std
    s_out = s_in * float(w_scale[0]) / m
    return QuantLayer(spec.index, w_q, w_scale.astype(np.float64), b_q, np.zeros(n), np.zeros(spec.weight_shape),
                      w_bits=w_bits), s_out


def run(spec: LayerSpec, inputs: Sequence[np.ndarray], qnet: QuantizedNetwork,
        hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    plan = build_plan(spec, qnet, hw)
    out, stats = INT_KERNELS[spec.kind](spec, list(inputs), plan, hw)
    want_bits = qnet.tensor_bits(spec.index)
    assert out.dtype == _dtype(want_bits) and out.shape == spec.out_shape, (out.dtype, out.shape)
    return out, stats


def same(out: np.ndarray, stats: LayerStats, want: np.ndarray, want_stats: ref.RefStats, what: str) -> None:
    if not np.array_equal(out, want) or out.dtype != want.dtype:
        bad = np.argwhere(out != want)
        first = tuple(int(v) for v in bad[0]) if len(bad) else ()
        raise AssertionError(f"{what}: {len(bad)} of {out.size} differ (dtype {out.dtype}/{want.dtype}); "
                             f"first at {first}")
    assert (stats.overflow, stats.saturated) == (want_stats.overflow, want_stats.saturated), \
        (what, stats, want_stats)


# --------------------------------------------------------------------------- exact GEMM


@pytest.mark.parametrize("w_bits,a_bits", PAIRS)
def test_gemm_is_exact_at_the_worst_case_of_every_pair(w_bits: int, a_bits: int) -> None:
    """Every product at its largest magnitude and one sign (the sums grow monotonically, so every
    partial sum of every summation order is at its largest), over three chunks and a bit:
    ``exact_int_gemm`` with ``gemm_plan``'s type and chunk equals the Python-int sum."""
    dtype, chunk = gemm_plan(w_bits, a_bits)
    assert chunk * (1 << (w_bits - 1 + a_bits - 1)) <= (1 << 24 if dtype is np.float32 else 1 << 53)
    k = min(3 * chunk + 7, 20_000)
    wmax, amin = (1 << (w_bits - 1)) - 1, -(1 << (a_bits - 1))
    w = np.full((2, k), -wmax, dtype=dtype)
    w[1, ::3] = wmax  # a second row of mixed signs
    col = np.full((k, 3), amin, dtype=dtype)
    got = exact_int_gemm(w, col, chunk)
    want = [[sum(int(a) * int(b) for a, b in zip(w[i].tolist(), col[:, j].tolist())) for j in range(3)]
            for i in range(2)]
    assert got.astype(np.int64).tolist() == want
    assert k * wmax * -amin == want[0][0]


def test_w8a8_keeps_the_float32_chunk_of_1024() -> None:
    """The all-int8 path is unchanged: float32 GEMMs over chunks of 1024."""
    assert gemm_plan(8, 8) == (np.float32, 1024)
    assert gemm_plan(4, 8) == (np.float32, 16384)
    assert gemm_plan(8, 16)[0] is np.float64


# --------------------------------------------------------------------------- conv / connected


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("variant", list(HW))
@pytest.mark.parametrize("w_bits,a_bits", PAIRS)
def test_conv_at_every_width_matches_reference(variant: str, w_bits: int, a_bits: int, compiled: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Random convs (groups, strides, padding, 1×1 and 3×3) at the pair, int8 and int16 outputs,
    every activation (logistic through a 256- or 65536-entry table); through the compiled
    requantizer (``dla.fused``) and through the numpy path."""
    if not compiled:
        monkeypatch.setattr(fused, "available", False)
    rng = np.random.default_rng(_seed("conv", variant, w_bits, a_bits))
    for case in range(8):
        act = ACTIVATIONS[case % len(ACTIVATIONS)]
        out_bits = 16 if case % 2 else 8
        hw = HW[variant].replace(activation_lut=True) if act == "logistic" else HW[variant]
        c, h, w = int(rng.integers(1, 9)), int(rng.integers(3, 9)), int(rng.integers(3, 9))
        size = int(rng.choice([1, 3]))
        groups = 1 if rng.random() < .6 else c
        filters = groups * int(rng.integers(1, 4))
        net = net_from_cfg(net_header(c, h, w) + f"[convolutional]\nfilters={filters}\nsize={size}\nstride={int(rng.integers(1, 3))}"
                   f"\npad=1\ngroups={groups}\nactivation={act}\n")
        spec = net.layers[0]
        s_in = 2.0 ** rng.uniform(-8, -2)
        ql, s_out = mac_layer(rng, spec, w_bits, a_bits, out_bits, s_in)
        qnet = QuantizedNetwork(net, {-1: s_in, 0: s_out}, layers={0: ql}, bits={-1: a_bits, 0: out_bits})
        if act == "logistic":
            qnet.pre_act_scales[0] = s_out
        x = random_ints(rng, net.input_shape, a_bits)
        out, stats = run(spec, [x], qnet, hw)
        want, want_stats = ref.conv(spec, x, ql.w_q, ql.b_q, build_plan(spec, qnet, hw), hw, out_bits)
        same(out, stats, want, want_stats, f"{variant} w{w_bits}a{a_bits}>a{out_bits} {act} case {case}")


@pytest.mark.parametrize("w_bits,a_bits", PAIRS)
def test_connected_at_every_width_matches_reference(w_bits: int, a_bits: int) -> None:
    rng = np.random.default_rng(_seed("connected", w_bits, a_bits))
    for case in range(6):
        act = ACTIVATIONS[case % 4]
        out_bits = 16 if case % 2 else 8
        c, h, w = (int(v) for v in rng.integers(1, 7, size=3))
        net = net_from_cfg(net_header(c, h, w) + f"[connected]\noutput={int(rng.integers(1, 12))}\nactivation={act}\n")
        spec = net.layers[0]
        s_in = 2.0 ** rng.uniform(-8, -2)
        ql, s_out = mac_layer(rng, spec, w_bits, a_bits, out_bits, s_in)
        qnet = QuantizedNetwork(net, {-1: s_in, 0: s_out}, layers={0: ql}, bits={-1: a_bits, 0: out_bits})
        x = random_ints(rng, net.input_shape, a_bits)
        hw = HardwareConfig()
        out, stats = run(spec, [x], qnet, hw)
        want, want_stats = ref.connected(spec, x, ql.w_q, ql.b_q, build_plan(spec, qnet, hw), hw, out_bits)
        same(out, stats, want, want_stats, f"w{w_bits}a{a_bits}>a{out_bits} {act} case {case}")


# --------------------------------------------------------------------------- mixed widths


def _two_input_net(kind: str, c: int, h: int, w: int) -> Network:
    """Input -> conv A (layer 0), conv B (layer 1, on the input), then route/shortcut of A and B."""
    body = (f"[convolutional]\nfilters={c}\nsize=1\nstride=1\nactivation=linear\n\n"
            f"[convolutional]\nfilters={c}\nsize=1\nstride=1\nactivation=linear\n\n")
    body += "[route]\nlayers=0,1\n" if kind == "route" else "[shortcut]\nfrom=0\nactivation=leaky\n"
    return net_from_cfg(net_header(c, h, w) + body)


@pytest.mark.parametrize("variant", ["gemmlowp", "single_round", "scale_shift"])
@pytest.mark.parametrize("kind", ["route", "shortcut"])
def test_route_and_shortcut_of_mixed_widths_match_reference(kind: str, variant: str) -> None:
    """Inputs of int8/int16 in every combination, int8 and int16 outputs: each operand is rescaled
    by its own multiplier (a 16-bit shortcut operand shifted 8 less into int32)."""
    rng = np.random.default_rng(_seed(kind, variant))
    hw = HW[variant]
    for case, (b0, b1, bo) in enumerate([(8, 16, 8), (16, 8, 8), (16, 16, 8), (8, 16, 16), (16, 16, 16),
                                         (8, 8, 16), (16, 8, 16)]):
        c, h, w = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        net = _two_input_net(kind, c, h, w)
        spec = net.layers[2]
        scales = {-1: 0.1, 0: 2.0 ** rng.uniform(-7, -3) / (256 if b0 == 16 else 1),
                  1: 2.0 ** rng.uniform(-7, -3) / (256 if b1 == 16 else 1),
                  2: 2.0 ** rng.uniform(-6, -3) / (256 if bo == 16 else 1)}
        qnet = QuantizedNetwork(net, scales, bits={0: b0, 1: b1, 2: bo})
        in_bits = [qnet.tensor_bits(t) for t in spec.inputs]  # shortcut: (prev = 1, from = 0)
        xs = [random_ints(rng, (c, h, w), b) for b in in_bits]
        out, stats = run(spec, xs, qnet, hw)
        plan = build_plan(spec, qnet, hw)
        if kind == "route":
            want, want_stats = ref.route(spec, xs, plan, hw, bo)
        else:
            want, want_stats = ref.shortcut(spec, xs, plan, hw, bo, in_bits)
        same(out, stats, want, want_stats, f"{kind} {variant} a{b0}+a{b1}>a{bo}")


def test_route_of_one_int16_input_into_int8_saturates_and_counts() -> None:
    """Same scale, narrower output: values beyond int8 saturate and are counted (the conversion
    docs/arithmetic.md defines), values inside pass unchanged."""
    net = net_from_cfg(net_header(1, 1, 4) + "[convolutional]\nfilters=1\nsize=1\nstride=1\nactivation=linear\n\n"
               "[route]\nlayers=0\n")
    spec = net.layers[1]
    qnet = QuantizedNetwork(net, {-1: 0.1, 0: 0.01, 1: 0.01}, bits={0: 16, 1: 8})
    x = np.array([[[-300, -128, 5, 127 + 1]]], dtype=np.int16)
    out, stats = run(spec, [x], qnet, HardwareConfig())
    assert out.tolist() == [[[-128, -128, 5, 127]]] and stats.saturated == 2


def test_pooling_and_data_movement_on_int16_match_reference() -> None:
    rng = np.random.default_rng(_seed("int16-moves"))
    hw = HardwareConfig()
    for case in range(6):
        c, h, w = 4 * int(rng.integers(1, 3)), 2 * int(rng.integers(1, 5)), 2 * int(rng.integers(1, 5))
        x = random_ints(rng, (c, h, w), 16)
        for text, check in [
            ("[maxpool]\nsize=2\nstride=2\n", lambda s, x: ref.maxpool(s, x, 16)),
            ("[maxpool]\nsize=3\nstride=1\n", lambda s, x: ref.maxpool(s, x, 16)),
            ("[upsample]\nstride=2\n", lambda s, x: ref.upsample(s, x, 16)),
            ("[reorg]\nstride=2\n", lambda s, x: ref.reorg(s, x, 16)),
        ]:
            net = net_from_cfg(net_header(c, h, w) + text)
            qnet = QuantizedNetwork(net, {-1: 0.001, 0: 0.001}, bits={-1: 16, 0: 16})
            out, stats = run(net.layers[0], [x], qnet, hw)
            same(out, stats, check(net.layers[0], x), ref.RefStats(), f"{text.split()[0]} case {case}")
        net = net_from_cfg(net_header(c, h, w) + "[avgpool]\n")
        for out_bits in (8, 16):
            qnet = QuantizedNetwork(net, {-1: 0.001, 0: 0.001 * (1 if out_bits == 16 else 300)},
                                    bits={-1: 16, 0: out_bits})
            out, stats = run(net.layers[0], [x], qnet, hw)
            want, ws = ref.avgpool(net.layers[0], x, build_plan(net.layers[0], qnet, hw), hw, out_bits)
            same(out, stats, want, ws, f"avgpool a16>a{out_bits} case {case}")
