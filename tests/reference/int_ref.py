"""Slow, obviously correct integer references for ``dla/arith.py``: one scalar at a time, Python ``int``.

The "living definition" of the DLA's fixed-point primitives (DESIGN §4), written from the
documented semantics and independently of ``dla/arith.py``: no numpy, no imports from
``dla``, no bit tricks where plain arithmetic says the same thing.  Python integers are
unbounded, so every intermediate is exact; each place where C/C++ would truncate, wrap or
overflow is written out explicitly (``c_trunc_div``, ``wrap``).

Sources read (semantics only, no code copied):

* gemmlowp ``fixedpoint/fixedpoint.h`` — ``SaturatingRoundingDoublingHighMul`` (int64 product,
  nudge ``2^30`` or ``1 − 2^30``, C ``/`` by ``2^31``, ``INT32_MIN·INT32_MIN`` saturates; "the same
  computation as the ARMv7 NEON VQRDMULH instruction") and ``RoundingDivideByPOT``
  ("correctly-rounded-to-nearest division by a power-of-two", ties away from zero);
* TensorFlow Lite ``tensorflow/lite/kernels/internal/quantization_util.cc`` —
  ``QuantizeMultiplier`` (``std::frexp``, ``TfLiteRound(q·2^31)``, renormalise when it reaches
  ``2^31``, flush ``shift < −31`` to ``(0, 0)``; under ``TFLITE_SINGLE_ROUNDING`` clamp
  ``shift > 30`` to ``(2^31 − 1, 30)``);
* TensorFlow Lite ``tensorflow/lite/kernels/internal/common.cc`` / ``common.h`` —
  ``MultiplyByQuantizedMultiplier``: double rounding
  ``RoundingDivideByPOT(SRDHM(x·(1 << left), M0), right)`` (``x·(1 << left)`` is a plain int32
  multiply, i.e. it wraps: ``TFLITE_NO_SANITIZE_INTEGER_OVERFLOW``), and the
  ``TFLITE_SINGLE_ROUNDING`` form ``(x·M0 + 2^(t−1)) >> t`` with ``t = 31 − shift`` in int64;
* NVDLA ``precision.rst`` — the converter ``saturate(round(acc·scaling / 2^shift))``.

Generalisations the DLA adds (and the reference mirrors, as documented in ``dla/arith.py``):
a multiplier of ``bits`` bits (Q0.(bits−1)) replaces 32 (``2^31 → 2^(bits−1)``,
``2^30 → 2^(bits−2)``, flush below ``shift = −(bits−1)``), the left shift may saturate instead
of wrap, and the final divide's rounding is selectable (``half_away`` = gemmlowp,
``half_up`` = ties toward +inf, ``truncate`` = floor, i.e. dropping the low bits of a two's
complement number — what an arithmetic right shift does).
"""
from __future__ import annotations

import math
from fractions import Fraction

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

ROUNDINGS = ("half_away", "half_up", "truncate")


# --------------------------------------------------------------------------- ranges


def saturate(x: int, bits: int) -> int:
    """Clamp ``x`` to the signed range of ``bits``: ``[−2^(bits−1), 2^(bits−1) − 1]``."""
    lo = -(2 ** (bits - 1))
    hi = 2 ** (bits - 1) - 1
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def wrap(x: int, bits: int) -> int:
    """Two's-complement wrap of ``x`` to ``bits``: the unique ``y ≡ x (mod 2^bits)`` in the signed range."""
    modulus = 2**bits
    y = x % modulus  # Python's % is always in [0, modulus)
    if y >= modulus // 2:
        y -= modulus
    return y


def fits(x: int, bits: int) -> bool:
    """Whether ``x`` lies in the signed range of ``bits``."""
    return -(2 ** (bits - 1)) <= x <= 2 ** (bits - 1) - 1


# --------------------------------------------------------------------------- rounding of n / d


def c_trunc_div(n: int, d: int) -> int:
    """C/C++ integer division ``n / d``: the quotient truncated toward zero (C99 §6.5.5).

    Written with ``abs`` and the signs, never with Python's floor division of a negative.
    """
    if d == 0:
        raise ZeroDivisionError("c_trunc_div by zero")
    q = abs(n) // abs(d)  # both non-negative: floor == truncation
    negative = (n < 0) != (d < 0)
    return -q if negative else q


def div_floor(n: int, d: int) -> int:
    """``floor(n / d)`` for ``d > 0``."""
    assert d > 0
    return n // d


def div_round_half_up(n: int, d: int) -> int:
    """``n / d`` to the nearest integer, ties toward +inf: ``floor(n/d + 1/2)`` for ``d > 0``."""
    assert d > 0
    return (2 * n + d) // (2 * d)


def div_round_half_away(n: int, d: int) -> int:
    """``n / d`` to the nearest integer, ties away from zero (C ``round``) for ``d > 0``."""
    assert d > 0
    q, r = divmod(abs(n), d)
    if 2 * r >= d:
        q += 1
    return q if n >= 0 else -q


def div_round(n: int, d: int, rounding: str) -> int:
    """``n / d`` (``d > 0``) to an integer with one of :data:`ROUNDINGS`."""
    if rounding == "half_away":
        return div_round_half_away(n, d)
    if rounding == "half_up":
        return div_round_half_up(n, d)
    if rounding == "truncate":
        return div_floor(n, d)
    raise ValueError(f"unknown rounding {rounding!r}")


def fraction_round_half_away(x: Fraction) -> int:
    """A rational to the nearest integer, ties away from zero (``TfLiteRound`` on an exact value)."""
    return div_round_half_away(x.numerator, x.denominator)


# --------------------------------------------------------------------------- gemmlowp primitives


def rounding_divide_by_pot(x: int, exponent: int, rounding: str = "half_away") -> int:
    """``x / 2^exponent`` rounded to an integer.

    ``half_away`` is gemmlowp's ``RoundingDivideByPOT`` (nearest, ties away from zero);
    ``half_up`` ties toward +inf; ``truncate`` is an arithmetic right shift (floor).
    """
    if exponent < 0:
        raise ValueError(f"exponent must be >= 0, got {exponent}")
    return div_round(x, 2**exponent, rounding)


def saturating_rounding_doubling_high_mul(a: int, b: int, bits: int = 32) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul``, step by step as ``fixedpoint.h`` does it.

    For ``bits = 32``: ``overflow = (a == b == INT32_MIN)``; ``ab`` is the exact int64 product;
    ``nudge = 2^30`` if ``ab ≥ 0`` else ``1 − 2^30``; the result is the C (truncating) division
    ``(ab + nudge) / 2^31`` cast to int32 (``static_cast`` wraps), replaced by ``INT32_MAX`` on
    overflow.  ``bits < 32`` (a narrower Q0.(bits−1) multiplier ``b``, int32 ``a``) uses
    ``2^(bits−2)`` and ``2^(bits−1)``; its only overflow case would need a negative ``b``.
    """
    assert fits(a, 32), a
    assert 2 <= bits <= 32 and fits(b, bits), (b, bits)
    overflow = bits == 32 and a == INT32_MIN and b == INT32_MIN
    ab = a * b
    assert fits(ab, 64)  # the int64 product never overflows for int32 operands
    half = 2 ** (bits - 2)
    nudge = half if ab >= 0 else 1 - half
    high = c_trunc_div(ab + nudge, 2 ** (bits - 1))
    high = wrap(high, 32)  # static_cast<std::int32_t>
    return INT32_MAX if overflow else high


def srdhm_vqrdmulh(a: int, b: int) -> int:
    """The same function by a second, independent definition: ARM ``VQRDMULH`` (32-bit lanes),
    ``saturate_int32((2·a·b + 2^31) >> 32)`` — i.e. ``a·b / 2^31`` rounded to nearest with
    ties toward +inf, saturated.  Used to cross-check :func:`saturating_rounding_doubling_high_mul`.
    """
    return saturate(div_floor(2 * a * b + 2**31, 2**32), 32)


# --------------------------------------------------------------------------- TFLite multipliers


def quantize_multiplier(real: float, bits: int = 32) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier`` for non-negative ``real``: ``(M0, shift)`` with
    ``real ≈ M0 / 2^(bits−1) · 2^shift`` and ``M0 ∈ [2^(bits−2), 2^(bits−1))`` (or ``(0, 0)``).

    ``q, shift = frexp(real)`` (``q ∈ [0.5, 1)``); ``M0 = round_half_away(q · 2^(bits−1))``
    computed exactly on the rational value of the double; if it reaches ``2^(bits−1)`` it is
    halved and ``shift`` incremented; ``shift < −(bits−1)`` (``−31`` for TFLite's int32) flushes
    to ``(0, 0)``; ``real == 0`` gives ``(0, 0)``; negative ``real`` is rejected (the DLA's
    multipliers are ratios of positive scales).
    """
    if not math.isfinite(real):
        raise ValueError(f"multiplier must be finite, got {real}")
    if real < 0:
        raise ValueError(f"multipliers are non-negative here, got {real}")
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    assert 0.5 <= q < 1
    one = 2 ** (bits - 1)
    m0 = fraction_round_half_away(Fraction(q) * one)
    assert one // 2 <= m0 <= one
    if m0 == one:
        m0 = one // 2
        shift += 1
    if shift < -31:  # the int32 right-shift limit (TFLite), whatever the multiplier width
        return 0, 0
    return m0, shift


def clamp_single_round(multiplier: int, shift: int, bits: int = 32) -> tuple[int, int]:
    """TFLite under ``TFLITE_SINGLE_ROUNDING`` replaces ``shift > 30`` by ``(2^31 − 1, 30)``."""
    if shift > bits - 2:
        return 2 ** (bits - 1) - 1, bits - 2
    return multiplier, shift


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int, bits: int = 32,
                                     rounding: str = "half_away", left_shift_overflow: str = "wrap") -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding; gemmlowp).

    ``left = max(shift, 0)``, ``right = max(−shift, 0)``; ``x · 2^left`` is an int32 multiply in
    C++ — two's-complement **wrap** (``left_shift_overflow="wrap"``, TFLite) — or clamped
    (``"saturate"``, the DLA); then ``SRDHM(·, M0)`` and ``RoundingDivideByPOT(·, right)``.
    """
    assert fits(x, 32), x
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    scaled = x * 2**left  # exact
    if left_shift_overflow == "wrap":
        scaled = wrap(scaled, 32)
    elif left_shift_overflow == "saturate":
        scaled = saturate(scaled, 32)
    else:
        raise ValueError(f"unknown left_shift_overflow {left_shift_overflow!r}")
    high = saturating_rounding_doubling_high_mul(scaled, multiplier, bits)
    return rounding_divide_by_pot(high, right, rounding)


def multiply_by_quantized_multiplier_single_round(x: int, multiplier: int, shift: int, bits: int = 32,
                                                  rounding: str = "half_up") -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` under ``TFLITE_SINGLE_ROUNDING``.

    ``t = (bits−1) − shift`` (``31 − shift``), result ``= (x·M0 + 2^(t−1)) >> t`` in int64, i.e.
    ``x·M0 / 2^t`` rounded once, ties toward +inf (``rounding="truncate"``: floor).  TFLite
    only DCHECKs that the result fits int32; the DLA saturates it.
    """
    t = (bits - 1) - shift
    if t < 1:
        raise ValueError("single rounding needs shift <= bits-2")
    prod = x * multiplier
    assert fits(prod, 64)
    if rounding == "truncate":
        result = div_floor(prod, 2**t)
    elif rounding == "half_up":
        result = div_round_half_up(prod, 2**t)
    else:
        raise ValueError(f"single rounding has no {rounding!r} mode")
    return saturate(result, 32)


# --------------------------------------------------------------------------- NVDLA and activations


def apply_scale_shift(acc: int, scaling: int, shift: int, rounding: str = "half_away") -> int:
    """NVDLA converter: ``saturate_int32(round(acc · scaling / 2^shift))``, exact rational rounding."""
    return saturate(div_round(acc * scaling, 2**shift, rounding), 32)


def leaky_shift_params(bits: int, alpha: float = 0.1) -> tuple[int, int]:
    """``(a, k)``: ``k = bits`` and ``a = round_half_away(alpha · 2^k)`` on the exact value of ``alpha``."""
    return fraction_round_half_away(Fraction(alpha) * 2**bits), bits


def leaky_shift(x: int, bits: int = 7, alpha: float = 0.1) -> int:
    """Shift-mode LeakyReLU of one int8 value: ``x`` if ``x ≥ 0`` else ``round_half_away(x·a / 2^k)``."""
    a, k = leaky_shift_params(bits, alpha)
    if x >= 0:
        return x
    return div_round_half_away(x * a, 2**k)


# --------------------------------------------------------------------------- test inputs


def gemmlowp_test_values() -> list[int]:
    """The int32 test values of gemmlowp ``test/test_fixedpoint.cc``: ``±2^i + {−2..2}`` for
    ``i < 31``, the extremes ``INT32_MIN..+2`` and ``INT32_MAX−2..`` and 1000 values of the LCG
    ``r ← r·1664525 + 1013904223 (mod 2^32)`` from ``r = 1``, sorted (duplicates kept).
    """
    vals: list[int] = []
    for i in range(31):
        p = 2**i
        vals += [p - 2, p - 1, p, p + 1, p + 2, -p - 2, -p - 1, -p, -p + 1, -p + 2]
    vals += [INT32_MIN, INT32_MIN + 1, INT32_MIN + 2, INT32_MAX - 2, INT32_MAX - 1, INT32_MAX]
    r = 1
    for _ in range(1000):
        r = (r * 1664525 + 1013904223) % 2**32
        vals.append(wrap(r, 32))  # static_cast<int32_t> of the uint32
    return sorted(vals)
