"""Fixed-point arithmetic primitives of the DLA: the one choke point for integer rounding
(shifts, multipliers), saturation and wrap-around.  Every integer kernel calls these (or
``quant.numerics``); none clips or shifts inline.

All functions are pure and vectorised over numpy integer arrays (computed in int64, so
int32 products never overflow); scalars work too.  Semantics follow TensorFlow Lite and
gemmlowp exactly where named (sources read, not copied:
``tensorflow/lite/kernels/internal/common.h`` — ``MultiplyByQuantizedMultiplier`` in both its
double-rounding and ``TFLITE_SINGLE_ROUNDING`` forms; ``tensorflow/lite/kernels/internal/
quantization_util.cc`` — ``QuantizeMultiplier``; gemmlowp ``fixedpoint/fixedpoint.h`` —
``SaturatingRoundingDoublingHighMul``, ``RoundingDivideByPOT``).

Conventions: a *multiplier* is a non-negative integer ``M0`` in Q0.(bits−1), i.e. the real
value ``M0 / 2^(bits−1)`` in [0.5, 1) (or 0); *shift* is TFLite's: positive = left.

Float → int rounding, saturation to a signed width and the int8/int32 bounds are not defined
here but in ``quant.numerics`` (the one home shared with the quantizer); this module is the
integer arithmetic built on them.
"""
from __future__ import annotations

import enum
import math
from typing import Literal

import numpy as np

from quant.numerics import INT32_MAX, INT32_MIN, round_half_away_int, saturate, signed_range

Rounding = Literal["half_away", "half_up", "truncate"]
"""The rounding of a right shift, as ``HardwareConfig.rounding`` spells it."""

ArrayLike = np.ndarray | int


class RoundingMode(enum.IntEnum):
    """:data:`Rounding` as an integer, for compiled code (``dla.fused``), which branches on ints.

    The values are what ``dla.fused``'s kernel boundary receives; the names are the config's."""

    HALF_AWAY = 0
    HALF_UP = 1
    TRUNCATE = 2

    @classmethod
    def of(cls, rounding: Rounding) -> RoundingMode:
        """The member for a config string (``"half_up"`` → ``HALF_UP``)."""
        return cls[rounding.upper()]


def _i64(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap(x: ArrayLike, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` (what a ``bits``-wide register does on overflow).

    >>> wrap(np.array([128, -129, 255]), 8).tolist()
    [-128, 127, -1]
    """
    half = 1 << (bits - 1)
    return ((_i64(x) + half) & ((1 << bits) - 1)) - half


def overflow_count(x: ArrayLike, bits: int) -> int:
    """How many values lie outside the signed range of ``bits`` (before saturate/wrap)."""
    lo, hi = signed_range(bits)
    a = _i64(x)
    if a.size == 0 or (a.min() >= lo and a.max() <= hi):  # the common case: two cheap reductions
        return 0
    return int(np.count_nonzero((a < lo) | (a > hi)))


def fit(x: ArrayLike, bits: int, mode: Literal["saturate", "wrap"]) -> np.ndarray:
    """``saturate`` or ``wrap`` by a config string."""
    return saturate(x, bits) if mode == "saturate" else wrap(x, bits)


def shortcut_shift(left_shift: int, bits: int) -> int:
    """Left shift that brings a ``bits``-wide shortcut (add) operand into the common int32 domain:
    ``left_shift − (bits − 8)`` (``HardwareConfig.shortcut_left_shift`` is for int8 operands; a
    16-bit operand already carries 8 more bits, so ``q << shift`` stays below 2^(left_shift+7)
    for every width).  Negative means the config's shift is too small for that width.

    >>> shortcut_shift(20, 8), shortcut_shift(20, 16)
    (20, 12)
    """
    return left_shift - (bits - 8)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike, rounding: Rounding = "half_away") -> np.ndarray:
    """``x / 2^exponent`` rounded to an integer; ``exponent`` in 0..62 (scalar or array).

    * ``half_away`` (gemmlowp ``RoundingDivideByPOT``): ties away from zero —
      ``(x >> e) + (remainder > (mask >> 1) + (x < 0))`` with ``mask = 2^e − 1``;
    * ``half_up``: ties toward +inf — ``(x + 2^(e−1)) >> e``;
    * ``truncate``: floor — ``x >> e`` (an arithmetic shift, as hardware without rounding does).

    >>> rounding_divide_by_pot(np.array([5, -5, 6, -6, 7]), 1).tolist()   # 2.5 -2.5 3 -3 3.5
    [3, -3, 3, -3, 4]
    >>> rounding_divide_by_pot(np.array([5, -5]), 1, "half_up").tolist()
    [3, -2]
    """
    a, e = _i64(x), _i64(exponent)
    if np.any((e < 0) | (e > 62)):
        raise ValueError(f"exponent must be in 0..62, got {exponent}")
    if e.ndim == 0:  # scalar shift: the fast path (Python-int shifts, in-place ops)
        return _rdbpot_scalar(a, int(e), rounding)
    if rounding == "truncate":
        return a >> e
    half = np.left_shift(np.int64(1), e) >> 1  # 2^(e-1), or 0 for e = 0
    if rounding == "half_up":
        return (a + half) >> e
    # gemmlowp adds 1 when remainder > (mask >> 1) + (x < 0).  With x = q·2^e + r (floor), that is
    # r >= half for x >= 0 and r > half for x < 0, i.e. (x + half − [x < 0]) >> e for e > 0.
    return (a + half - ((a < 0) & (e > 0))) >> e


def _rdbpot_scalar(a: np.ndarray, e: int, rounding: Rounding) -> np.ndarray:
    """``rounding_divide_by_pot`` for one exponent (same formulas, fewer and in-place passes)."""
    if e == 0:
        return a.copy() if isinstance(a, np.ndarray) else a
    out = a >> e if rounding == "truncate" else a + (1 << (e - 1))
    if rounding == "half_away":
        out -= a < 0
    if rounding != "truncate":
        out >>= e
    return out


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike, bits: int = 32) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` for Q0.(bits−1) ``b``.

    For ``bits = 32``: ``(a·b + nudge) / 2^31`` with C truncation and
    ``nudge = 2^30`` if ``a·b ≥ 0`` else ``1 − 2^30``.  That is ``a·b/2^31`` rounded to nearest
    with exact ties going **toward +inf** (+1.5 → 2 but −1.5 → −1, −0.5 → 0): the ``+1`` in
    the negative nudge makes negative ties truncate.  (Often described as "half away from
    zero"; it is not, for negative ties.)  The one overflow case ``a = b = INT32_MIN``
    saturates to ``INT32_MAX``.
    Narrower multipliers use ``2^(bits−1)`` and ``2^(bits−2)`` in place of ``2^31``, ``2^30``.

    >>> saturating_rounding_doubling_high_mul(np.array([INT32_MIN]), np.array([INT32_MIN])).tolist()
    [2147483647]
    >>> saturating_rounding_doubling_high_mul(np.array([3, -3]), np.array([1 << 30])).tolist()  # ±1.5
    [2, -1]
    """
    a64, b64 = _i64(a), _i64(b)
    # (ab + nudge) truncated toward zero equals floor((ab + 2^(bits-2)) / 2^(bits-1)) for every ab:
    # for ab < 0, trunc((ab + 1 - h)/2^n) = floor((ab + 1 - h + 2^n - 1)/2^n) = floor((ab + h)/2^n)
    # with h = 2^(n-1), n = bits - 1.  One add and one arithmetic shift.
    res = a64 * b64
    res += 1 << (bits - 2)
    res >>= bits - 1
    if bits == 32 and np.any(b64 == INT32_MIN):
        res = np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, res)
    return res


def quantize_multiplier(real: float, bits: int = 32) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ≈ M0 / 2^(bits−1) · 2^shift``, ``M0`` in
    ``[2^(bits−2), 2^(bits−1))`` (for ``bits = 32``: Q0.31 in [0.5, 1)).

    ``frexp`` gives ``q ∈ [0.5, 1)`` and the exponent; ``M0 = round_half_away(q·2^(bits−1))``;
    if that rounds up to ``2^(bits−1)`` it is halved and the shift incremented; a shift below
    −31 flushes to ``(0, 0)`` (TFLite's "flush denormals": the right shift of an int32 cannot
    exceed 31, whatever the multiplier width); ``real = 0`` gives ``(0, 0)``.

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(1 - 2**-40)   # rounds to 2^31: renormalised
    (1073741824, 1)
    >>> quantize_multiplier(3.0)
    (1610612736, 2)
    """
    if real < 0:
        raise ValueError(f"multipliers are non-negative here, got {real}")
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    one = 1 << (bits - 1)
    q_fixed = round_half_away_int(q * one)  # q·2^(bits−1) is exact (a power-of-two scaling)
    assert q_fixed <= one
    if q_fixed == one:
        q_fixed //= 2
        shift += 1
    if shift < -31:  # TFLite's limit comes from the int32 right shift, not the multiplier width
        return 0, 0
    return q_fixed, shift


def multiply_by_quantized_multiplier(acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike,
                                     bits: int = 32, rounding: Rounding = "half_away",
                                     left_shift_overflow: Literal["saturate", "wrap"] = "wrap") -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding, the gemmlowp default):
    ``RoundingDivideByPOT(SRDHM(acc · 2^left, M0), right)`` with ``left = max(shift, 0)``,
    ``right = max(−shift, 0)``; int32 in, int32 out.

    ``acc · 2^left`` is a plain int32 multiply in TFLite, i.e. it **wraps**
    (``left_shift_overflow="wrap"``, the default here so the function *is* TFLite's); the DLA
    saturates it instead (``HardwareConfig.left_shift_overflow``).  ``rounding`` changes only
    the final divide; ``half_away`` is TFLite.  ``multiplier``/``shift`` may be per-channel
    arrays broadcasting against ``acc``.

    >>> multiply_by_quantized_multiplier(np.array([100, -100, 5]), 1073741824, -1).tolist()  # x/4
    [25, -25, 2]

    (5/4 = 1.25 gives 2: the high multiply rounds 2.5 up to 3, the divide rounds 1.5 up to 2 —
    the double rounding the ``single_round`` scheme removes.)
    """
    a = _i64(acc)
    s = _i64(shift)
    right = np.maximum(-s, 0)
    if np.any(s > 0):
        # Shifts of 32 or more saturate (or wrap to 0) any int32 value; clipping keeps int64 exact.
        a = fit(a << np.clip(s, 0, 32), 32, left_shift_overflow)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(a, multiplier, bits), right, rounding)


def multiply_by_quantized_multiplier_single_round(acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike,
                                                  bits: int = 32, rounding: Rounding = "half_up") -> np.ndarray:
    """TFLite's ``TFLITE_SINGLE_ROUNDING`` variant: ``total = (bits−1) − shift``,
    ``(acc·M0 + 2^(total−1)) >> total`` in 64 bits — one rounding, ties toward +inf — then
    saturated to int32.  Requires ``shift ≤ bits−2`` (TFLite clamps the multiplier to
    ``(2^31−1, 30)`` beforehand: see :func:`clamp_single_round`).

    >>> multiply_by_quantized_multiplier_single_round(np.array([5, -5]), 1 << 30, -1).tolist()  # ±1.25
    [1, -1]
    >>> multiply_by_quantized_multiplier_single_round(np.array([6, -6]), 1 << 30, -1).tolist()  # ±1.5
    [2, -1]
    """
    total = (bits - 1) - _i64(shift)
    if np.any(total < 1):
        raise ValueError("single_round needs shift <= bits-2 (clamp the multiplier first)")
    prod = _i64(acc) * _i64(multiplier)
    if rounding == "truncate":
        return saturate(prod >> total, 32)
    return saturate((prod + (np.int64(1) << (total - 1))) >> total, 32)


def clamp_single_round(multiplier: int, shift: int, bits: int = 32) -> tuple[int, int]:
    """TFLite (single rounding) saturates multipliers with ``shift > 30`` to ``(2^31 − 1, 30)``."""
    if shift > bits - 2:
        return (1 << (bits - 1)) - 1, bits - 2
    return multiplier, shift


def quantize_scale_shift(real: float, multiplier_bits: int = 16, shift_bits: int = 6) -> tuple[int, int]:
    """NVDLA-style encoding ``real ≈ scaling / 2^shift`` with a signed ``multiplier_bits``
    ``scaling`` and an unsigned ``shift_bits`` right shift: the largest shift whose
    ``round_half_away(real·2^shift)`` still fits, for the most precision.  Multipliers too
    large to encode (``real ≥ 2^(multiplier_bits−1)``) raise; too small ones become ``(0, 0)``.

    >>> quantize_scale_shift(0.25, 16, 6)
    (16384, 16)
    """
    if real < 0:
        raise ValueError(f"multipliers are non-negative here, got {real}")
    limit = (1 << (multiplier_bits - 1)) - 1
    max_shift = min((1 << shift_bits) - 1, 62)
    if real == 0:
        return 0, 0
    if round_half_away_int(real) > limit:
        raise ValueError(f"multiplier {real} does not fit a {multiplier_bits}-bit scaling")
    best = (round_half_away_int(real), 0)
    for shift in range(max_shift + 1):
        scaling = round_half_away_int(real * (1 << shift))  # exact product: a power-of-two scaling
        if scaling > limit:
            break
        best = (scaling, shift)
    return best if best[0] else (0, 0)


def apply_scale_shift(acc: ArrayLike, scaling: ArrayLike, shift: ArrayLike,
                      rounding: Rounding = "half_away") -> np.ndarray:
    """``saturate_int32(round(acc·scaling / 2^shift))`` — NVDLA's converter (``precision.rst``)."""
    return saturate(rounding_divide_by_pot(_i64(acc) * _i64(scaling), shift, rounding), 32)


def leaky_shift_params(bits: int, alpha: float = 0.1) -> tuple[int, int]:
    """``(a, k)`` with ``a / 2^k`` the nearest to ``alpha`` at ``k = bits`` (7 → 13/128)."""
    return round_half_away_int(alpha * (1 << bits)), bits


def leaky_shift(q: ArrayLike, bits: int = 7, alpha: float = 0.1) -> np.ndarray:
    """Shift-mode LeakyReLU on int8 values: ``x`` if ``x ≥ 0`` else
    ``round_half_away(x·a / 2^k)``; stays within int8.

    >>> leaky_shift(np.array([-128, -5, -4, 0, 100])).tolist()   # a/2^k = 13/128
    [-13, -1, 0, 0, 100]
    """
    a, k = leaky_shift_params(bits, alpha)
    x = _i64(q)
    return np.where(x >= 0, x, rounding_divide_by_pot(x * a, k, "half_away"))
