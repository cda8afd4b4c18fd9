"""The compiled one-pass requantizer (dla.fused, numba) equals the numpy path bit for bit.

The numpy path is the direct composition of dla.arith primitives; the integer-kernel tests
check whichever path is active against plain-integer references, so this test ties the two
paths together on every arithmetic configuration.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from dla import fused, int_kernels
from dla.config import HardwareConfig
from dla.int_kernels import LayerPlan, _requant_blocks
from dla.requant import encode

VARIANTS = [
    dict(requant="gemmlowp", rounding="half_away"), dict(requant="gemmlowp", rounding="half_up"),
    dict(requant="gemmlowp", rounding="truncate"), dict(requant="gemmlowp", left_shift_overflow="wrap"),
    dict(requant="gemmlowp", multiplier_bits=16), dict(requant="single_round", rounding="half_up"),
    dict(requant="single_round", multiplier_bits=16), dict(requant="scale_shift", multiplier_bits=16, shift_bits=6),
    dict(requant="scale_shift", multiplier_bits=16, rounding="truncate"),
    dict(acc_bits=16, acc_overflow="saturate"), dict(acc_bits=16, acc_overflow="wrap"),
    dict(leaky="shift", leaky_bits=7),
]
ACTS = ["linear", "leaky", "relu", "relu6", "lut"]


def test_numba_is_available() -> None:
    """numba is a declared dependency: without it INT runs several times slower."""
    assert fused.available


@pytest.mark.parametrize("variant,act", list(itertools.product(range(len(VARIANTS)), ACTS)))
def test_fused_equals_numpy(variant: int, act: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hw = HardwareConfig(**VARIANTS[variant])
    rng = np.random.default_rng(variant * 10 + ACTS.index(act))
    n, p = 7, 301
    big = 40000 if hw.acc_bits == 16 else 3_000_000
    acc = rng.integers(-big, big, size=(n, p)).astype(np.float64)
    acc[0, :4] = [0, -1, 1, big]  # edge values
    real = rng.uniform(0.0002, 1.5, size=n)
    real[1] = 2.0 ** -9  # a power-of-two multiplier: ties happen
    real[2] = 3.0  # a left shift
    if hw.requant == "scale_shift":
        real = np.minimum(real, 1.0)
    plan = LayerPlan(out_scale=0.05, in_scales=[0.02], b_q=rng.integers(-5000, 5000, size=n), rq=encode(real, hw))
    if act == "leaky":
        plan.rq_neg = encode(real * 0.1, hw)
    if act == "relu6":
        plan.relu6_max = 97
    if act == "lut":
        plan.lut = rng.integers(-128, 128, size=256).astype(np.int8)
    name = "logistic" if act == "lut" else act
    fast, fast_stats = _requant_blocks(acc, name, plan, hw)
    plan.fused_key = None
    monkeypatch.setattr(fused, "available", False)
    slow, slow_stats = _requant_blocks(acc, name, plan, hw)
    assert np.array_equal(fast, slow)
    assert (fast_stats.overflow, fast_stats.saturated, fast_stats.elements) == \
        (slow_stats.overflow, slow_stats.saturated, slow_stats.elements)
    assert int_kernels.fused is fused
