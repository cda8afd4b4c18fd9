"""One-pass compiled requantization (numba): bias, accumulator fit, requantizer, activation, saturation
to the output width (int8 or int16).

The same arithmetic as ``dla.arith`` / ``dla.requant`` / ``dla.int_kernels._activation_int``,
element by element — only a faster way to evaluate it: numpy needs a dozen passes over int64
temporaries, this needs one, vectorised (on one core: :data:`PARALLEL`).  The inner loop is written without
data-dependent branches (selects, min/max, masks) so the compiler can vectorise it, and one
kernel is compiled per (scheme, activation) so no dispatch remains inside the loop.
Equality with the numpy path is tested on every configuration (``tests/dla/test_fused.py``).
Without numba the numpy path is used (same results, slower).

Compiling the kernel takes seconds to tens of seconds (LLVM, ``parallel=True``), so it is done
once: ``cache=True`` keeps the machine code on disk (numba's locators in order: the directory
in ``NUMBA_CACHE_DIR``, ``__pycache__`` next to this file, the user-wide ``~/.cache/numba``),
and a later process only loads it (well under a second).  Where no cache directory is
writable the kernel is still compiled, once per process.  When a compilation really happens
(not on a cache hit) :data:`notify` is called with :data:`COMPILE_NOTICE` *before* the wait,
so the user knows why the run pauses, and the time it took is added to
:func:`compile_seconds` so that reports can keep it out of per-image timings.
"""
from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable

import numpy as np

from dla.arith import RoundingMode
from quant.numerics import INT32_MAX, INT32_MIN

try:  # numba is a dependency, but the simulator stays correct (just slower) without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba cannot be installed
    numba = None


class Scheme(enum.IntEnum):
    """``HardwareConfig.requant`` as the kernel's integer argument (member name = config string)."""

    GEMMLOWP = 0
    SINGLE_ROUND = 1
    SCALE_SHIFT = 2


class FusedAct(enum.IntEnum):
    """What follows the requantizer, as the kernel's integer argument: the activation, with leaky
    split by ``HardwareConfig.leaky`` (``fused``: a second multiplier for negative accumulators;
    ``shift``: ``x·a >> k`` on the int8 result) and every non-integer activation as ``LUT``."""

    LINEAR = 0
    LEAKY_FUSED = 1
    LEAKY_SHIFT = 2
    RELU = 3
    RELU6 = 4
    LUT = 5


available = numba is not None
PARALLEL = False
"""Whether the requantizer runs on numba's thread pool.  It does not: it is a few ns per element
and the cores are the GEMM's (BLAS or onnxruntime threads).  Handing over to a second pool costs
more than it saves on a loaded machine — yolov3-tiny's 13 requantizations took 49.5 ms on the
pool against 25.7 ms serial, interleaved in one process on the shared 2-core machine (load ~8),
the first layer alone 21.9 against 17.1 ms (bench: ``dla bench int``)."""
if available:
    # numba's own thread pool sleeps when idle; OpenMP's spins, and spinning threads fight
    # OpenBLAS's for the cores between a GEMM and the requantization (measured: 2.5x slower).
    numba.config.THREADING_LAYER = "workqueue"

COMPILE_NOTICE = ("compiling the INT requantizer (numba; first run only, cached on disk after; "
                  "may take 10-30 s)...")
"""The one line shown when the kernel is compiled rather than loaded from the disk cache."""


def _notice_stderr(message: str) -> None:
    """Default :data:`notify`: one line on stderr, through tqdm so an active progress bar is
    redrawn below it rather than overwritten."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


notify: Callable[[str], None] = _notice_stderr
"""Called with :data:`COMPILE_NOTICE` just before a compilation starts (replaceable, e.g. by a
web worker that logs instead)."""

_compile_total = 0.0


def compile_seconds() -> float:
    """Wall seconds spent compiling this module's kernels in this process so far (0 when every
    kernel came from the disk cache)."""
    return _compile_total


def _jit(**options) -> Callable:
    """``numba.njit(cache=True, **options)``, or without ``cache`` where numba finds no writable
    cache directory (it raises at decoration time then): slower first call, same results."""
    def wrap(func: Callable) -> Callable:
        try:
            return njit(cache=True, **options)(func)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            return njit(**options)(func)
    return wrap


if available:
    from numba.core import event as _event

    class _CompileWatch(_event.Listener):
        """Announces (once per process) and times compilations of :func:`_run`: numba fires
        ``numba:compile`` only after a disk-cache miss, once per argument types (float32 and
        float64 accumulators are two); the inlined helpers compile inside it."""

        def __init__(self) -> None:
            self._start: float | None = None
            self._announced = False

        def _ours(self, ev: _event.Event) -> bool:
            dispatcher = (ev.data or {}).get("dispatcher")
            return getattr(getattr(dispatcher, "py_func", None), "__qualname__", "") == "_run" and \
                getattr(dispatcher.py_func, "__module__", "") == __name__

        def on_start(self, ev: _event.Event) -> None:
            if self._ours(ev):
                if not self._announced:  # one line per process, though each argument type compiles
                    notify(COMPILE_NOTICE)
                    self._announced = True
                self._start = time.perf_counter()

        def on_end(self, ev: _event.Event) -> None:
            global _compile_total
            if self._ours(ev) and self._start is not None:
                _compile_total += time.perf_counter() - self._start
                self._start = None

    _event.register("numba:compile", _CompileWatch())


def kernel(scheme: str, act: FusedAct, rounding: RoundingMode) -> Callable:
    """The compiled kernel for one (scheme, activation, rounding):
    ``f(acc, *args, out) -> (overflow, saturated)``.

    The enums cross into compiled code here, as plain ints (numba specialises on argument
    types, so ints keep one compiled signature).  The rounding mode becomes the two flags the
    loop uses (ties: add half unless truncating; subtract one more for negatives when half
    away), so the compiled code never depends on ``RoundingMode``'s numbering."""
    s, a = int(Scheme[scheme.upper()]), int(act)
    half_on = int(rounding is not RoundingMode.TRUNCATE)
    away = rounding is RoundingMode.HALF_AWAY
    return lambda acc, *args: _run(acc, *args[:-1], half_on, away, s, a, args[-1])


if available:  # pragma: no cover - compiled code
    _LO32, _HI32 = np.int64(INT32_MIN), np.int64(INT32_MAX)  # numba freezes globals into its disk cache

    @_jit(inline="always")
    def _rdbpot(x, e, half_on, away):
        """RoundingDivideByPOT without branches: ``(x + half − [away ∧ x<0 ∧ e>0]) >> e`` with
        ``half = 2^(e−1)`` unless truncating (half_on / away are loop-invariant flags)."""
        half = ((np.int64(1) << e) >> 1) * half_on
        return (x + half - (away & (x < 0) & (e > 0))) >> e

    @_jit(inline="always")
    def _gemmlowp(a, m, left, right, bits, half_on, away, lsat):
        """One accumulator through gemmlowp's requantizer: ``RoundingDivideByPOT(SRDHM(a << left,
        m), right)``, the shifted value saturated (``lsat``) or wrapped to int32."""
        v = a << left
        wrapped = ((v - _LO32) & np.int64(0xFFFFFFFF)) + _LO32
        v = min(max(v, _LO32), _HI32) if lsat else wrapped
        hi = (v * m + (np.int64(1) << (bits - 2))) >> (bits - 1)
        hi = _HI32 if (bits == 32) & (v == _LO32) & (m == _LO32) else hi
        return _rdbpot(hi, right, half_on, away)

    @_jit(inline="always")
    def _requant_row(a, m, s, scheme, bits, half_on, away, lsat, y):
        """One channel's accumulators ``a`` -> int32 results ``y``; one loop per scheme."""
        p = a.shape[0]
        if scheme == Scheme.GEMMLOWP:  # RoundingDivideByPOT(SRDHM(a << left, m), right)
            left = min(max(s, np.int64(0)), np.int64(32))
            right = max(-s, np.int64(0))
            for j in range(p):
                y[j] = _gemmlowp(a[j], m, left, right, bits, half_on, away, lsat)
        elif scheme == Scheme.SINGLE_ROUND:  # (a*m + 2^(t-1)) >> t, t = bits-1-s, saturated to int32
            t = bits - 1 - s
            r = (np.int64(1) << (t - 1)) * half_on
            for j in range(p):
                y[j] = min(max((a[j] * m + r) >> t, _LO32), _HI32)
        else:  # Scheme.SCALE_SHIFT: round(a*scaling / 2^shift), saturated to int32
            for j in range(p):
                y[j] = min(max(_rdbpot(a[j] * m, s, half_on, away), _LO32), _HI32)

    @_jit(parallel=PARALLEL)
    def _run(acc, bias, acc_lo, acc_hi, acc_wrap, mp, sp, mn, sn, bits, lsat, out_lo, out_hi,
             leaky_a, leaky_k, relu6_max, lut, half_on, away, scheme, act, out):
        """acc (N, P) exact integer values -> out (N, P) int8 or int16 saturated to
        [out_lo, out_hi]; returns (overflow events, saturated).

        ``half_on``/``away``: the rounding flags (see :func:`kernel`); ``scheme``/``act``: a
        :class:`Scheme` and a :class:`FusedAct` as ints.  Each channel goes through a few simple
        loops (fit, requantize, activate) whose dispatch on scheme/activation is hoisted out of
        the loops, so each loop vectorises."""
        n, p = acc.shape
        mask = np.int64(acc_hi) - np.int64(acc_lo)  # 2^acc_bits - 1
        half_on = np.int64(half_on)
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
            if (act == FusedAct.LEAKY_FUSED) & (scheme == Scheme.GEMMLOWP):
                # one requantization per element with the multiplier and shifts its sign picks
                # (measured 1.8x faster than requantizing twice and selecting)
                m_p, m_n = mp[c], mn[c]
                lp, rp = min(max(sp[c], np.int64(0)), np.int64(32)), max(-sp[c], np.int64(0))
                ln, rn = min(max(sn[c], np.int64(0)), np.int64(32)), max(-sn[c], np.int64(0))
                for j in range(p):
                    neg = a[j] < 0
                    y[j] = _gemmlowp(a[j], m_n if neg else m_p, ln if neg else lp, rn if neg else rp,
                                     bits, half_on, away, lsat)
            else:
                _requant_row(a, mp[c], sp[c], scheme, bits, half_on, away, lsat, y)
            if (act == FusedAct.LEAKY_FUSED) & (scheme != Scheme.GEMMLOWP):  # negative accumulators use alpha*M
                y2 = np.empty(p, dtype=np.int64)
                _requant_row(a, mn[c], sn[c], scheme, bits, half_on, away, lsat, y2)
                for j in range(p):
                    y[j] = y2[j] if a[j] < 0 else y[j]
            q = np.int64(0)
            for j in range(p):
                v = y[j]
                q += (v < out_lo) | (v > out_hi)
                y[j] = min(max(v, out_lo), out_hi)
            sat[c] = q
            if act == FusedAct.LEAKY_SHIFT:  # on the saturated result: round_half_away(x*a / 2^k) for x < 0
                for j in range(p):
                    v = y[j]
                    out[c, j] = _rdbpot(v * leaky_a, leaky_k, np.int64(1), True) if v < 0 else v
            elif act == FusedAct.RELU:
                for j in range(p):
                    out[c, j] = max(y[j], np.int64(0))
            elif act == FusedAct.RELU6:
                for j in range(p):
                    out[c, j] = min(max(y[j], np.int64(0)), relu6_max)
            elif act == FusedAct.LUT:
                for j in range(p):
                    out[c, j] = lut[y[j] - out_lo]
            else:
                for j in range(p):
                    out[c, j] = y[j]
        return ovf.sum(), sat.sum()
