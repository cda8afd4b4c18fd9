"""Builders shared by the INT-kernel tests (``test_int_kernels.py``, ``test_int_backend.py``):
the arithmetic variants of the DLA, random MAC layers with their quantized networks, the kernel
runner and the bit-exact comparison with the plain-integer reference."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dla.config import HardwareConfig
from dla.int_kernels import INT_KERNELS, LayerStats, build_plan
from golden.layers import ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant.qnet import QuantizedNetwork, QuantLayer
from tests.net_helpers import net_from_cfg, net_header
from tests.reference import int_kernels_ref as ref

# --------------------------------------------------------------------------- configurations

#: Every arithmetic variant of the DLA (DESIGN §4): requant scheme × rounding, left-shift policy,
#: leaky mode, accumulator width and overflow policy.
HW_VARIANTS: dict[str, HardwareConfig] = {
    "gemmlowp": HardwareConfig(),
    "gemmlowp-half_up": HardwareConfig(rounding="half_up"),
    "gemmlowp-truncate": HardwareConfig(rounding="truncate"),
    "gemmlowp-leftwrap": HardwareConfig(left_shift_overflow="wrap"),
    "gemmlowp-m16": HardwareConfig(multiplier_bits=16),
    "single_round": HardwareConfig(requant="single_round"),
    "single_round-half_up": HardwareConfig(requant="single_round", rounding="half_up"),
    "scale_shift": HardwareConfig(requant="scale_shift", multiplier_bits=16, shift_bits=6),
    "scale_shift-half_up": HardwareConfig(requant="scale_shift", multiplier_bits=16, shift_bits=6,
                                          rounding="half_up"),
    "scale_shift-truncate": HardwareConfig(requant="scale_shift", multiplier_bits=16, shift_bits=6,
                                           rounding="truncate"),
    "leaky_shift": HardwareConfig(leaky="shift"),
    "leaky_shift-5bits-scale_shift": HardwareConfig(leaky="shift", leaky_bits=5, requant="scale_shift",
                                                    multiplier_bits=16, shift_bits=6),
    "acc16-saturate": HardwareConfig(acc_bits=16),
    "acc16-wrap": HardwareConfig(acc_bits=16, acc_overflow="wrap"),
    "acc16-wrap-single_round-leaky_shift": HardwareConfig(acc_bits=16, acc_overflow="wrap",
                                                          requant="single_round", leaky="shift"),
    "acc16-scale_shift": HardwareConfig(acc_bits=16, requant="scale_shift", multiplier_bits=16, shift_bits=6),
}
VARIANT_IDS = list(HW_VARIANTS)

#: Activations an INT layer can have (logistic through the 256-entry table).
ACTIVATIONS = ("linear", "leaky", "relu", "relu6", "logistic")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _seed(*parts: object) -> int:
    """A stable seed from the test's name and parameters (``hash()`` of str is salted per run)."""
    text = "/".join(map(str, parts))
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % (2**32)


def _hw_for(hw: HardwareConfig, activation: str) -> HardwareConfig:
    """``hw`` with the activation table allowed when the activation needs it."""
    return hw.replace(activation_lut=True) if activation not in ("linear", "leaky", "relu", "relu6") else hw


# --------------------------------------------------------------------------- building layers


def p2(rng: np.random.Generator, lo: float, hi: float, pow2: bool, size: int | None = None) -> Any:
    """``2^u`` with ``u`` uniform in ``[lo, hi]`` — rounded to an integer exponent when ``pow2``
    (power-of-two scales make every multiplier an exact power of two, i.e. a pure rounding shift
    whose ties exercise each rounding rule)."""
    u = rng.uniform(lo, hi, size=size)
    return 2.0 ** (np.round(u) if pow2 else u) if size is not None else float(2.0 ** (round(u) if pow2 else u))


def random_int8(rng: np.random.Generator, shape: Sequence[int], lo: int = -128) -> np.ndarray:
    """Random int8 in ``[lo, 127]``; now and then a constant extreme tensor."""
    r = rng.random()
    if r < 0.06:
        return np.full(shape, 127, dtype=np.int8)
    if r < 0.12:
        return np.full(shape, lo, dtype=np.int8)
    return rng.integers(lo, 128, size=tuple(shape)).astype(np.int8)


def quant_layer(rng: np.random.Generator, spec: ConvSpec | ConnectedSpec, s_in: float, granularity: str,
                weight_shape: tuple[int, ...], m_range: tuple[float, float],
                pow2: bool = False) -> tuple[QuantLayer, float]:
    """Random int8 weights, int32 biases and weight scales of one MAC layer, and an output scale
    giving real multipliers ``s_in·w_scale/s_out`` with ``log2`` uniform in ``m_range`` (scaled by
    the typical accumulator size so the outputs use the int8 range, some of them saturating)."""
    n = weight_shape[0]
    k = int(np.prod(weight_shape[1:]))
    if rng.random() < 0.1:
        w_q = np.full(weight_shape, 127 if rng.random() < 0.5 else -127, dtype=np.int8)
    else:
        w_q = rng.integers(-127, 128, size=weight_shape).astype(np.int8)
    acc_std = 74.0 * 73.0 * max(k, 1) ** 0.5  # uniform int8 × int8 sums
    b_q = rng.integers(-int(3 * acc_std), int(3 * acc_std) + 1, size=n).astype(np.int64)
    if rng.random() < 0.3:  # an extreme bias: the accumulator overflows even at 32 bits
        b_q[rng.integers(0, n)] = INT32_MAX if rng.random() < 0.5 else INT32_MIN
    w_base = p2(rng, -9, -4, pow2)
    if granularity == "per_channel":
        w_scale = w_base * p2(rng, -1.5, 1.5, pow2, size=n)
    else:
        w_scale = np.full(n, w_base)
    if rng.random() < 0.15:  # a multiplier >= 1: the requantizer shifts left
        m = p2(rng, 0, 9, pow2)
    else:
        m = float(2.0 ** rng.uniform(*m_range)) / acc_std
        m = float(2.0 ** np.round(np.log2(m))) if pow2 else m
    s_out = s_in * w_base / m
    zeros = np.zeros(weight_shape)
    return QuantLayer(spec.index, w_q, w_scale.astype(np.float64), b_q, np.zeros(n), zeros), s_out


def random_conv(rng: np.random.Generator, activation: str, granularity: str) -> tuple[Network, QuantizedNetwork, np.ndarray]:
    """One random conv layer (odd sizes, groups, strides 1/2 per axis, padding, kernel 1/3,
    channel counts not multiples of 8), its quantized network and a random int8 input."""
    while True:
        c, h, w = int(rng.integers(1, 21)), int(rng.integers(1, 14)), int(rng.integers(1, 14))
        size = int(rng.choice([1, 3]))
        sx, sy = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        padding = int(rng.integers(0, size))
        if h + 2 * padding >= size and w + 2 * padding >= size:
            break
    divisors = [d for d in range(1, c + 1) if c % d == 0]
    groups = 1 if rng.random() < 0.45 else int(rng.choice(divisors))
    filters = groups * int(rng.integers(1, max(1, 20 // groups) + 1))
    net = net_from_cfg(net_header(c, h, w) + f"[convolutional]\nfilters={filters}\nsize={size}\nstride_x={sx}\n"
                       f"stride_y={sy}\npadding={padding}\ngroups={groups}\nactivation={activation}\n")
    spec = net.layers[0]
    assert isinstance(spec, ConvSpec)
    pow2 = bool(rng.random() < 0.35)
    s_in = p2(rng, -8, -2, pow2)
    ql, s_out = quant_layer(rng, spec, s_in, granularity, spec.weight_shape, (np.log2(15), np.log2(250)), pow2)
    qnet = QuantizedNetwork(net, {-1: s_in, 0: s_out}, layers={0: ql}, granularity=granularity)
    if activation == "logistic":
        _table_scales(qnet, 0)
    return net, qnet, random_int8(rng, net.input_shape)


def _table_scales(qnet: QuantizedNetwork, index: int) -> None:
    """For a table activation of layer ``index`` (single input): keep the requantizer's real
    multiplier but move the pre-activation scale to ``8/127`` (pre-activations in about ±8) by
    rescaling the input tensor, and give the output the scale ``1/127``."""
    (src,) = qnet.net.layers[index].inputs
    factor = (8.0 / 127) / qnet.scales[index]
    qnet.scales[src] *= factor
    qnet.pre_act_scales[index] = 8.0 / 127
    qnet.scales[index] = 1.0 / 127


def run_kernel(spec: LayerSpec, inputs: Sequence[np.ndarray], qnet: QuantizedNetwork,
               hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """``INT_KERNELS[kind]`` with a plan from ``build_plan``; checks dtype/shape and that the inputs are untouched."""
    plan = build_plan(spec, qnet, hw)
    before = [x.copy() for x in inputs]
    out, stats = INT_KERNELS[spec.kind](spec, list(inputs), plan, hw)
    for x, x0 in zip(inputs, before):
        assert np.array_equal(x, x0), "kernel modified its input"
    assert out.dtype == np.int8 and out.shape == spec.out_shape, (out.dtype, out.shape, spec.out_shape)
    return out, stats


def assert_same(out: np.ndarray, stats: LayerStats, want: np.ndarray, want_stats: ref.RefStats, what: str) -> None:
    """Bit-exact output and equal event counts, with a readable message on mismatch."""
    if not np.array_equal(out, want):
        bad = np.argwhere(out != want)
        first = tuple(int(v) for v in bad[0])
        raise AssertionError(f"{what}: {len(bad)} of {out.size} outputs differ; first at {first}: "
                             f"kernel {int(out[first])}, reference {int(want[first])}")
    assert stats.overflow == want_stats.overflow, (what, "overflow", stats.overflow, want_stats.overflow)
    assert stats.saturated == want_stats.saturated, (what, "saturated", stats.saturated, want_stats.saturated)
