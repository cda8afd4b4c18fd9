"""Requantization: a real multiplier encoded for the configured scheme, and applied.

``encode(real, hw)`` turns real multipliers (one per output channel, or one) into the
integers the hardware holds; ``apply(acc, rq, hw)`` maps int32 accumulators to int32
results (the caller saturates to int8).  Schemes (``HardwareConfig.requant``):

* ``gemmlowp``: ``(M0, shift) = quantize_multiplier(real, multiplier_bits)``;
  ``RoundingDivideByPOT(SRDHM(acc·2^left, M0), right)`` (two roundings);
* ``single_round``: same encoding, clamped to ``shift ≤ bits−2``;
  ``(acc·M0 + 2^(t−1)) >> t`` with ``t = bits−1−shift`` (one rounding, half up);
* ``scale_shift``: ``(scaling, shift) = quantize_scale_shift(real, multiplier_bits, shift_bits)``;
  ``round(acc·scaling / 2^shift)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dla import arith
from dla.config import HardwareConfig
from golden.errors import UnsupportedError


@dataclass(frozen=True)
class Requant:
    """Encoded multipliers: ``real ≈ mult · 2^shift / 2^(bits−1)`` (gemmlowp/single_round) or
    ``mult / 2^shift`` (scale_shift); arrays of one entry per output channel (or one)."""

    real: np.ndarray  # float64
    mult: np.ndarray  # int64
    shift: np.ndarray  # int64

    @property
    def effective(self) -> np.ndarray:
        """The real multiplier the integers actually represent (for reports)."""
        return self.mult.astype(np.float64) * np.exp2(self.shift.astype(np.float64))


def encode(real: np.ndarray | float, hw: HardwareConfig) -> Requant:
    r = np.atleast_1d(np.asarray(real, dtype=np.float64))
    mults, shifts = [], []
    for v in r:
        if hw.requant == "scale_shift":
            try:
                m, s = arith.quantize_scale_shift(float(v), hw.multiplier_bits, hw.shift_bits)
            except ValueError as exc:
                raise UnsupportedError(f"{exc} (scale_shift with multiplier_bits={hw.multiplier_bits})") from None
        else:
            m, s = arith.quantize_multiplier(float(v), hw.multiplier_bits)
            if hw.requant == "single_round":
                m, s = arith.clamp_single_round(m, s, hw.multiplier_bits)
        mults.append(m)
        shifts.append(s)
    return Requant(r, np.array(mults, dtype=np.int64), np.array(shifts, dtype=np.int64))


def _bcast(a: np.ndarray, ndim: int) -> np.ndarray:
    return a.reshape((-1,) + (1,) * (ndim - 1)) if ndim > 1 and a.size > 1 else (a if a.size > 1 else a[0])


def apply(acc: np.ndarray, rq: Requant, hw: HardwareConfig) -> np.ndarray:
    """int32 accumulators (channel axis first) → int32 results, per the configured scheme.

    Per-channel parameters are applied one distinct shift at a time (channels gathered by
    shift value): numpy shifts by a scalar are several times faster than by an array, and
    a layer has only a handful of distinct shifts.  The result is identical.
    """
    if rq.shift.size > 1 and acc.ndim > 1 and rq.shift.shape != acc.shape:
        out = np.empty(acc.shape, dtype=np.int64)
        for e in np.unique(rq.shift):
            idx = np.nonzero(rq.shift == e)[0]
            if idx.size == acc.shape[0]:
                return _apply(acc, _bcast(rq.mult, acc.ndim), int(e), hw)
            out[idx] = _apply(acc[idx], _bcast(rq.mult[idx], acc.ndim), int(e), hw)
        return out
    m = rq.mult if rq.mult.shape == acc.shape else _bcast(rq.mult, acc.ndim)
    s = rq.shift if rq.shift.shape == acc.shape else _bcast(rq.shift, acc.ndim)
    return _apply(acc, m, s, hw)


def _apply(acc: np.ndarray, m: np.ndarray | int, s: np.ndarray | int, hw: HardwareConfig) -> np.ndarray:
    if hw.requant == "gemmlowp":
        return arith.multiply_by_quantized_multiplier(acc, m, s, hw.multiplier_bits, hw.rounding,
                                                      hw.left_shift_overflow)
    if hw.requant == "single_round":
        return arith.multiply_by_quantized_multiplier_single_round(acc, m, s, hw.multiplier_bits,
                                                                   "truncate" if hw.rounding == "truncate" else "half_up")
    return arith.apply_scale_shift(acc, m, s, hw.rounding)


def apply_select(acc: np.ndarray, pos: Requant, neg: Requant, hw: HardwareConfig) -> np.ndarray:
    """Fused LeakyReLU: accumulators ``≥ 0`` use ``pos``, negative ones ``neg`` (``α·M``).

    Both requantizations run on the whole block and the sign picks one per element: cheaper
    in numpy than per-element multiplier/shift arrays, and the same result."""
    return np.where(acc >= 0, apply(acc, pos, hw), apply(acc, neg, hw))
