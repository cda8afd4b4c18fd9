"""One-pass compiled requantization (numba): bias, accumulator fit, requantizer, activation, int8.

The same arithmetic as ``dla.arith`` / ``dla.requant`` / ``dla.int_kernels._activation_int``,
element by element — only a faster way to evaluate it: numpy needs a dozen passes over int64
temporaries, this needs one, vectorised and on all cores.  The inner loop is written without
data-dependent branches (selects, min/max, masks) so the compiler can vectorise it, and one
kernel is compiled per (scheme, activation) so no dispatch remains inside the loop.
Equality with the numpy path is tested on every configuration (``tests/dla/test_fused.py``).
Without numba the numpy path is used (same results, slower).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

try:  # numba is a dependency, but the simulator stays correct (just slower) without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba cannot be installed
    numba = None

SCHEMES = ("gemmlowp", "single_round", "scale_shift")
ACTS = ("linear", "leaky_fused", "leaky_shift", "relu", "relu6", "lut")
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

available = numba is not None
if available:
    # numba's own thread pool sleeps when idle; OpenMP's spins, and spinning threads fight
    # OpenBLAS's for the cores between a GEMM and the requantization (measured: 2.5x slower).
    numba.config.THREADING_LAYER = "workqueue"
def kernel(scheme: str, act: str) -> Callable:
    """The compiled kernel for one (scheme, activation): ``f(acc, *args, out) -> (overflow, saturated)``."""
    s, a = SCHEMES.index(scheme), ACTS.index(act)
    return lambda acc, *args: _run(acc, *args[:-1], s, a, args[-1])


if available:  # pragma: no cover - compiled code
    _LO32, _HI32 = np.int64(INT32_MIN), np.int64(INT32_MAX)

    @njit(inline="always", cache=True)
    def _rdbpot(x, e, half_on, away):
        """RoundingDivideByPOT without branches: ``(x + half − [away ∧ x<0 ∧ e>0]) >> e`` with
        ``half = 2^(e−1)`` unless truncating (half_on / away are loop-invariant flags)."""
        half = ((np.int64(1) << e) >> 1) * half_on
        return (x + half - (away & (x < 0) & (e > 0))) >> e

    @njit(inline="always", cache=True)
    def _requant_row(a, m, s, scheme, bits, half_on, away, lsat, y):
        """One channel's accumulators ``a`` -> int32 results ``y``; one loop per scheme."""
        p = a.shape[0]
        if scheme == 0:  # gemmlowp: RoundingDivideByPOT(SRDHM(a << left, m), right)
            left = min(max(s, np.int64(0)), np.int64(32))
            right = max(-s, np.int64(0))
            nudge = np.int64(1) << (bits - 2)
            for j in range(p):
                v = a[j] << left
                wrapped = ((v - _LO32) & np.int64(0xFFFFFFFF)) + _LO32
                v = min(max(v, _LO32), _HI32) if lsat else wrapped
                hi = (v * m + nudge) >> (bits - 1)
                hi = _HI32 if (bits == 32) & (v == _LO32) & (m == _LO32) else hi
                y[j] = _rdbpot(hi, right, half_on, away)
        elif scheme == 1:  # single rounding: (a*m + 2^(t-1)) >> t, t = bits-1-s, saturated to int32
            t = bits - 1 - s
            r = (np.int64(1) << (t - 1)) * half_on
            for j in range(p):
                y[j] = min(max((a[j] * m + r) >> t, _LO32), _HI32)
        else:  # scale_shift: round(a*scaling / 2^shift), saturated to int32
            for j in range(p):
                y[j] = min(max(_rdbpot(a[j] * m, s, half_on, away), _LO32), _HI32)

    @njit(parallel=True, cache=True)
    def _run(acc, bias, acc_lo, acc_hi, acc_wrap, mp, sp, mn, sn, bits, rounding, lsat,
             leaky_a, leaky_k, relu6_max, lut, scheme, act, out):
        """acc (N, P) exact integer values -> out (N, P) int8; returns (overflow events, saturated).

        Each channel goes through a few simple loops (fit, requantize, activate) whose
        dispatch on scheme/activation is hoisted out of the loops, so each loop vectorises."""
        n, p = acc.shape
        mask = np.int64(acc_hi) - np.int64(acc_lo)  # 2^acc_bits - 1
        half_on = np.int64(rounding != 2)
        away = rounding == 0
        ovf = np.zeros(n, dtype=np.int64)
        sat = np.zeros(n, dtype=np.int64)
        for c in prange(n):
            a = np.empty(p, dtype=np.int64)
            y = np.empty(p, dtype=np.int64)
            b = bias[c]
            o = np.int64(0)
            for j in range(p):
                v = np.int64(acc[c, j]) + b
                o += (v < acc_lo) | (v > acc_hi)
                a[j] = (((v - acc_lo) & mask) + acc_lo) if acc_wrap else min(max(v, acc_lo), acc_hi)
            ovf[c] = o
            _requant_row(a, mp[c], sp[c], scheme, bits, half_on, away, lsat, y)
            if act == 1:  # fused leaky: negative accumulators use alpha*M
                y2 = np.empty(p, dtype=np.int64)
                _requant_row(a, mn[c], sn[c], scheme, bits, half_on, away, lsat, y2)
                for j in range(p):
                    y[j] = y2[j] if a[j] < 0 else y[j]
            q = np.int64(0)
            for j in range(p):
                v = y[j]
                q += (v < -128) | (v > 127)
                y[j] = min(max(v, np.int64(-128)), np.int64(127))
            sat[c] = q
            if act == 2:  # leaky on the int8 result: round_half_away(x*a / 2^k) for x < 0
                for j in range(p):
                    v = y[j]
                    out[c, j] = _rdbpot(v * leaky_a, leaky_k, np.int64(1), True) if v < 0 else v
            elif act == 3:
                for j in range(p):
                    out[c, j] = max(y[j], np.int64(0))
            elif act == 4:
                for j in range(p):
                    out[c, j] = min(max(y[j], np.int64(0)), relu6_max)
            elif act == 5:
                for j in range(p):
                    out[c, j] = lut[y[j] + 128]
            else:
                for j in range(p):
                    out[c, j] = y[j]
        return ovf.sum(), sat.sum()
