"""Plain-Python reference of ``quant.numerics``: exact rational arithmetic, one value at a time.

Written from the definitions, independently of the module: a float is converted to the exact
``Fraction`` it denotes, rounded by comparing its fractional part with ½, and clamped with
``min``/``max``.  Slow and obviously right.
"""
from __future__ import annotations

import math
from fractions import Fraction

HALF = Fraction(1, 2)


def signed_range(bits: int) -> tuple[int, int]:
    """``(−2^(bits−1), 2^(bits−1) − 1)``."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def saturate(v: int, bits: int) -> int:
    lo, hi = signed_range(bits)
    return max(lo, min(hi, v))


def round_half_away(x: float | Fraction) -> int:
    """Nearest integer to the exact value of ``x``; ties away from zero."""
    f = Fraction(x)
    n = math.floor(abs(f))
    if abs(f) - n >= HALF:
        n += 1
    return n if f >= 0 else -n


def half_up(x: float | Fraction) -> int:
    """Nearest integer; ties toward +inf."""
    f = Fraction(x)
    n = math.floor(f)
    return n + 1 if f - n >= HALF else n


def round_half_even(x: float | Fraction) -> int:
    """Nearest integer; ties to the even neighbour."""
    f = Fraction(x)
    n = math.floor(f)
    d = f - n
    if d > HALF or (d == HALF and n % 2 == 1):
        return n + 1
    return n


def quantize(x: float, scale: float, bits: int = 8, narrow: bool = False) -> int:
    """The code of ``x``: the float64 quotient ``x / scale`` (IEEE division, as the module
    defines it), rounded half away on its exact value, clamped to the (narrow) range; ±inf
    quotients take the range's ends."""
    lo, hi = signed_range(bits)
    if narrow:
        lo = -hi
    v = float(x) / float(scale)
    if math.isinf(v):
        return hi if v > 0 else lo
    return max(lo, min(hi, round_half_away(v)))


def dequantize(q: int, scale: float) -> float:
    """``q · scale`` rounded once to float64 (``q`` is an integer below 2^53, so exact as a float)."""
    return float(Fraction(q) * Fraction(scale))
