"""Float ↔ int numerics: the one home of the rules by which real values become integer codes.

Used by ``quant/`` (weight and bias quantization, calibration) and by ``dla/`` (the engine's
input quantization, activation tables, ``dla.arith``'s saturation); it imports only numpy, so
every layer above it can use it (golden ← quant ← dla: it lives at the bottom of ``quant``
because ``golden`` is the float engine and has no integer codes).

Conventions (docs/arithmetic.md): symmetric quantization, zero point 0, ``real = q · scale``.

* :func:`round_half_away` (:func:`round_half_away_int` for one Python float) — float → nearest
  integer, ties away from zero (C ``round``, TFLite ``TfLiteRound``): the rule for every real
  value that becomes a stored or computed integer (weights, biases, inputs, activation tables,
  fixed-point multipliers).
* :func:`half_up` — ties toward +inf (``floor(x + ½)``), the float form of a hardware
  "add half, shift" (``dla.arith``'s ``half_up`` rounding).
* :func:`round_half_even` — numpy's default rounding, kept *only* for the calibration's
  error estimate (see its docstring); nothing that becomes a stored integer uses it.
* :func:`signed_range`, :func:`saturate` — the range of a signed ``bits``-wide integer and the
  clamp to it; :data:`QMIN`/:data:`QMAX` are the int8 bounds derived from :data:`INT8_BITS`,
  :data:`INT32_MIN`/:data:`INT32_MAX` the int32 ones.
* :func:`quantize` / :func:`dequantize` — ``clip(round_half_away(x / scale))`` and ``q · scale``;
  :func:`quantize_tensor` is the int8 activation code of a tensor.

All rounding functions are exact for every finite float64 (tested against ``fractions``
arithmetic in ``tests/quant/test_numerics.py``).
"""
from __future__ import annotations

import math

import numpy as np

ArrayLike = np.ndarray | float | int

INT8_BITS = 8
"""Width of activations and weights on the DLA."""


def signed_range(bits: int) -> tuple[int, int]:
    """``(−2^(bits−1), 2^(bits−1) − 1)``: the two's-complement range of ``bits`` bits.

    >>> signed_range(8)
    (-128, 127)
    """
    if bits < 1:
        raise ValueError(f"a signed integer needs at least 1 bit, got {bits}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


QMIN, QMAX = signed_range(INT8_BITS)
"""int8 bounds: activations take ``[QMIN, QMAX]`` = [−128, 127]; a scale maps a threshold ``T`` to
``QMAX`` (``s = T / QMAX``); weights use the narrow range ``[−QMAX, QMAX]`` (TFLite's symmetric
int8 weights, so that ``−w`` is always representable)."""
INT32_MIN, INT32_MAX = signed_range(32)
"""int32 bounds: biases and requantized accumulators."""


def saturate(x: ArrayLike, bits: int) -> np.ndarray:
    """Clamp integers to the signed range of ``bits``: ``[−2^(bits−1), 2^(bits−1) − 1]``, as int64.

    >>> saturate(np.array([-300, -128, 5, 200]), 8).tolist()
    [-128, -128, 5, 127]
    """
    lo, hi = signed_range(bits)
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def _round_half_away_float(xf: np.ndarray) -> np.ndarray:
    """Half-away rounding in float64 (integral float values, no cast).

    ``t = trunc(x)`` and ``f = x − t`` are exact for every finite float64 (for ``|x| ≥ 1`` ``t``
    and ``x`` are within a factor of two, Sterbenz; for ``|x| < 1`` ``t = 0``), so the decision
    ``|f| ≥ ½`` is exact.  (The textbook ``sign(x)·floor(|x| + ½)`` is not: ``|x| + ½`` rounds,
    giving 1 for 0.49999999999999994 and ``x + 1`` for odd integers in ``[2^52, 2^53)``.)
    """
    t = np.trunc(xf)
    with np.errstate(invalid="ignore"):  # ±inf − ±inf = nan: the comparison is False, ±inf stays
        return t + np.copysign(np.abs(xf - t) >= 0.5, xf)


def round_half_away(x: ArrayLike) -> np.ndarray:
    """Float → nearest integer, ties away from zero (C ``round``, TFLite ``TfLiteRound``), int64.

    Exact for every finite float64 whose result fits int64 (``|x| < 2^63``); to clamp larger
    values, use :func:`quantize` (which clips before converting).

    >>> round_half_away(np.array([0.5, 1.5, -0.5, -1.5, 2.4999])).tolist()
    [1, 2, -1, -2, 2]
    """
    return _round_half_away_float(np.asarray(x, dtype=np.float64)).astype(np.int64)


def round_half_away_int(x: float) -> int:
    """:func:`round_half_away` of one Python float, as a Python int (the scalar form, for encoders
    that loop over a handful of values where numpy's per-call overhead would dominate).

    >>> round_half_away_int(2.5), round_half_away_int(-2.5), round_half_away_int(0.49999999999999994)
    (3, -3, 0)
    """
    t = math.trunc(x)
    f = x - t  # exact, as in _round_half_away_float
    return t + (1 if f >= 0.5 else -1 if f <= -0.5 else 0)


def half_up(x: ArrayLike) -> np.ndarray:
    """Float → nearest integer, ties toward +inf (``floor(x + ½)`` evaluated exactly), int64.

    ``fl = floor(x)`` and ``x − fl`` decide it: the difference is exact except for ``x`` in
    ``(−½, 0)``, where ``1 + x`` may round but stays ``≥ ½`` either way (result 0, correct).
    (``floor(x + ½)`` itself is not exact: 1 for 0.49999999999999994, ``x + 1`` for odd
    integers in ``[2^52, 2^53)``.)

    >>> half_up(np.array([0.5, -0.5, -1.5, 2.5])).tolist()
    [1, 0, -1, 3]
    """
    xf = np.asarray(x, dtype=np.float64)
    fl = np.floor(xf)
    return (fl + (xf - fl >= 0.5)).astype(np.int64)


def round_half_even(x: ArrayLike) -> np.ndarray:
    """Float → nearest integer as float64, ties to even (``np.round``: IEEE round-to-nearest-even).

    **Not** the quantizer's rule (:func:`round_half_away`).  Used only where an *estimate* of
    quantization error is computed over histogram bin centres
    (``quant.algorithms.activations``: the ``mse`` threshold search and the ``auto`` SQNR
    table).  There, ties are equally far from both neighbours, so either rule gives the same
    squared error mathematically; but the float sums differ in their last bits, which can move
    an ``argmin`` and changes the SQNR figures written to ``.qnet`` files.  The calibration has
    always used half-to-even, so it stays, named here as the one exception.  Returns floats
    because its users continue in floats (``q · Δ``).
    """
    return np.round(np.asarray(x, dtype=np.float64))


def quantize(x: ArrayLike, scale: ArrayLike, bits: int = INT8_BITS, narrow: bool = False) -> np.ndarray:
    """Real values → integer codes: ``clip(round_half_away(x / scale), lo, hi)`` as int64.

    ``[lo, hi]`` is :func:`signed_range` of ``bits``, or ``[−hi, hi]`` with ``narrow`` (weights).
    ``x / scale`` is computed in float64 (``scale`` a positive scalar, or an array broadcasting
    against ``x``, e.g. one scale per output channel shaped ``(N, 1, 1, 1)``).  Values beyond the
    range — ±inf included — saturate to its ends (clipped before the integer conversion, so no
    int64 overflow); NaN has no code and is not defined here.

    >>> quantize(np.array([0.25, -0.25, 0.75, 100.0, -100.0]), 0.5).tolist()
    [1, -1, 2, 127, -128]
    >>> quantize(np.array([-100.0]), 0.5, narrow=True).tolist()
    [-127]
    """
    lo, hi = signed_range(bits)
    if narrow:
        lo = -hi
    v = np.asarray(x, dtype=np.float64) / scale
    return np.clip(_round_half_away_float(v), lo, hi).astype(np.int64)


def dequantize(q: ArrayLike, scale: ArrayLike) -> np.ndarray:
    """Integer codes → real values: ``q · scale`` in float64 (``scale`` broadcasting as in
    :func:`quantize`)."""
    return np.asarray(q).astype(np.float64) * scale


def quantize_tensor(x: np.ndarray, scale: float, bits: int = INT8_BITS) -> np.ndarray:
    """An activation tensor's code: ``saturate_b(round_half_away(x / scale))`` over the full range
    of ``bits`` (``[QMIN, QMAX]`` for int8), as int8 (``bits ≤ 8``) or int16 (``bits ≤ 16``)."""
    return quantize(x, scale, bits).astype(np.int8 if bits <= 8 else np.int16)


__all__ = ["INT32_MAX", "INT32_MIN", "INT8_BITS", "QMAX", "QMIN", "dequantize", "half_up", "quantize",
           "quantize_tensor", "round_half_away", "round_half_away_int", "round_half_even", "saturate",
           "signed_range"]
