"""``dla.arith`` against the slow plain-integer reference ``tests/reference/int_ref.py``.

Every comparison is exact (``np.array_equal`` or ``==`` on Python ints), never ``allclose``:
the point of these primitives is bit accuracy.  Four kinds of checks (DESIGN §4, last paragraph):

* exhaustive sweeps where the domain allows (every int8, every shift, every exponent, gemmlowp's
  own int32 test values);
* ``hypothesis`` property tests over the full int32 domain;
* hand-derived edge cases (ties, ``INT32_MIN``, renormalisation, flushing, left-shift overflow);
* published vectors from TensorFlow Lite's ``quantization_util_test.cc``;

plus the module's doctests.
"""
from __future__ import annotations

import doctest
import math
from fractions import Fraction
from collections.abc import Callable, Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dla.arith as A
import quant.numerics as N
from tests.reference import int_ref as R

INT32_MIN, INT32_MAX = R.INT32_MIN, R.INT32_MAX
INT8 = np.arange(-128, 128, dtype=np.int64)
GEMMLOWP_VALUES = R.gemmlowp_test_values()
#: The structured part of gemmlowp's test values (±2^i + {−2..2}, extremes), without the LCG ones.
STRUCTURED_VALUES = sorted({v for v in GEMMLOWP_VALUES
                            if abs(v) < 8 or v in (INT32_MIN, INT32_MIN + 1, INT32_MIN + 2)
                            or min(abs(abs(v) - (1 << i)) for i in range(32)) <= 2})

#: Q0.31 multipliers: 0, the ends of [2^30, 2^31), ~1/√2, the encodings of a few typical real
#: multipliers, and pseudo-random ones.
MULTIPLIERS = sorted({0, 1, 1 << 30, (1 << 30) + 1, 1518500250, 1610612736, INT32_MAX - 1, INT32_MAX,
                      R.quantize_multiplier(0.1)[0], R.quantize_multiplier(0.0123)[0],
                      R.quantize_multiplier(1 / 3)[0], R.quantize_multiplier(0.7071)[0],
                      *[(1 << 30) + (v % (1 << 30)) for v in GEMMLOWP_VALUES[::200]]})

HYPOTHESIS = settings(max_examples=300, deadline=None)

int32s = st.integers(INT32_MIN, INT32_MAX)
q31_multipliers = st.integers(1 << 30, (1 << 31) - 1)
roundings = st.sampled_from(R.ROUNDINGS)
overflow_modes = st.sampled_from(("saturate", "wrap"))


def ref_map(fn: Callable[..., int], xs: Iterable[int], *args: object, **kwargs: object) -> np.ndarray:
    """Apply a scalar reference function to each of ``xs`` (with fixed extra arguments)."""
    return np.array([fn(int(x), *args, **kwargs) for x in xs], dtype=np.int64)


def as_int(x: np.ndarray | int) -> int:
    """A 0-d or 1-element numpy result as a Python int (for exact ``==`` with the reference)."""
    arr = np.asarray(x)
    assert arr.size == 1, arr.shape
    return int(arr.reshape(()))


# =========================================================================== exhaustive sweeps


def test_reference_srdhm_matches_vqrdmulh_definition() -> None:
    """The gemmlowp-style reference SRDHM (nudge + C truncation) equals the ARM VQRDMULH definition
    ``sat((2ab + 2^31) >> 32)`` on every pair of gemmlowp's structured values: the two independent
    definitions agree, so the reference itself is trustworthy (ties go toward +inf, not away)."""
    for a in STRUCTURED_VALUES:
        for b in STRUCTURED_VALUES:
            assert R.saturating_rounding_doubling_high_mul(a, b) == R.srdhm_vqrdmulh(a, b), (a, b)


def test_saturate_and_wrap_exhaustive_small_widths() -> None:
    """``saturate``/``wrap``/``overflow_count``/``fit`` on every integer in [-600, 600) for widths
    2..10, and on the int32 boundary neighbourhood: the register-width primitives everything else
    relies on."""
    xs = np.arange(-600, 600, dtype=np.int64)
    for bits in range(2, 11):
        assert np.array_equal(N.saturate(xs, bits), ref_map(R.saturate, xs, bits))
        assert np.array_equal(A.wrap(xs, bits), ref_map(R.wrap, xs, bits))
        assert np.array_equal(A.fit(xs, bits, "saturate"), ref_map(R.saturate, xs, bits))
        assert np.array_equal(A.fit(xs, bits, "wrap"), ref_map(R.wrap, xs, bits))
        assert A.overflow_count(xs, bits) == sum(not R.fits(int(x), bits) for x in xs)
    edge = np.array([INT32_MIN - 2, INT32_MIN - 1, INT32_MIN, INT32_MAX, INT32_MAX + 1, INT32_MAX + 2,
                     3 * (1 << 31), -(1 << 40) - 5], dtype=np.int64)
    assert np.array_equal(N.saturate(edge, 32), ref_map(R.saturate, edge, 32))
    assert np.array_equal(A.wrap(edge, 32), ref_map(R.wrap, edge, 32))
    assert A.overflow_count(edge, 32) == 6


def test_rounding_divide_by_pot_every_exponent_edge_values() -> None:
    """``rounding_divide_by_pot`` for every exponent 0..31 and all three roundings on gemmlowp's
    int32 test values plus the exact ties ``k·2^e ± 2^(e−1)`` (and their neighbours) for
    k in -3..3: every tie, in both signs, at every exponent."""
    base = np.array(GEMMLOWP_VALUES, dtype=np.int64)
    for e in range(32):
        half = (1 << (e - 1)) if e else 0
        ties = [k * (1 << e) + d * half + j for k in range(-3, 4) for d in (-1, 1) for j in (-1, 0, 1)]
        xs = np.concatenate([base, np.clip(np.array(ties, dtype=np.int64), INT32_MIN, INT32_MAX)])
        for rounding in R.ROUNDINGS:
            got = A.rounding_divide_by_pot(xs, e, rounding)
            assert np.array_equal(got, ref_map(R.rounding_divide_by_pot, xs, e, rounding)), (e, rounding)


def test_rounding_divide_by_pot_large_exponents_int64() -> None:
    """Exponents 32..62 on int64 values (the NVDLA path divides 48-bit products): same as the reference."""
    xs = np.array([0, 1, -1, (1 << 62) - 1, -(1 << 62), 3 << 40, -(3 << 40), (1 << 47) + 12345,
                   -(1 << 47) - 12345, 5 << 33, -(5 << 33)], dtype=np.int64)
    for e in range(32, 63):
        for rounding in R.ROUNDINGS:
            got = A.rounding_divide_by_pot(xs, e, rounding)
            assert np.array_equal(got, ref_map(R.rounding_divide_by_pot, xs, e, rounding)), (e, rounding)


def test_rounding_divide_by_pot_array_exponent_broadcasts() -> None:
    """A per-channel exponent array broadcasts against the values and gives the scalar results."""
    xs = np.array([[5], [-5], [INT32_MIN], [INT32_MAX]], dtype=np.int64)
    es = np.arange(0, 32, dtype=np.int64)[None, :]
    for rounding in R.ROUNDINGS:
        got = A.rounding_divide_by_pot(xs, es, rounding)
        want = np.array([[R.rounding_divide_by_pot(int(x), int(e), rounding) for e in es[0]] for x in xs[:, 0]])
        assert np.array_equal(got, want)


def test_srdhm_structured_pairs() -> None:
    """``saturating_rounding_doubling_high_mul`` on every pair of gemmlowp's structured int32 values
    (including ``INT32_MIN × INT32_MIN`` and negative multipliers), as one vectorised call."""
    a = np.array(STRUCTURED_VALUES, dtype=np.int64)[:, None]
    b = np.array(STRUCTURED_VALUES, dtype=np.int64)[None, :]
    got = A.saturating_rounding_doubling_high_mul(a, b)
    want = np.array([[R.saturating_rounding_doubling_high_mul(int(x), int(y)) for y in b[0]] for x in a[:, 0]])
    assert np.array_equal(got, want)


def test_mbqm_every_int8_every_right_shift() -> None:
    """``multiply_by_quantized_multiplier`` on every int8 value × the multiplier sample × every
    shift in -31..0, for all three roundings (the right-shift path of requantization)."""
    for m in MULTIPLIERS:
        for shift in range(-31, 1):
            for rounding in R.ROUNDINGS:
                got = A.multiply_by_quantized_multiplier(INT8, m, shift, rounding=rounding)
                want = ref_map(R.multiply_by_quantized_multiplier, INT8, m, shift, rounding=rounding)
                assert np.array_equal(got, want), (m, shift, rounding)


def test_mbqm_gemmlowp_values_every_shift() -> None:
    """TFLite's default (half_away, wrap) on all 1316 gemmlowp int32 test values × a few multipliers
    × every shift in -31..30, and the DLA's saturating left shift on the same grid: full-range
    accumulators, both directions of shift, both overflow policies."""
    xs = np.array(GEMMLOWP_VALUES, dtype=np.int64)
    for m in (1 << 30, 1518500250, INT32_MAX, R.quantize_multiplier(0.0123)[0]):
        for shift in range(-31, 31):
            for mode in ("wrap", "saturate"):
                got = A.multiply_by_quantized_multiplier(xs, m, shift, left_shift_overflow=mode)
                want = ref_map(R.multiply_by_quantized_multiplier, xs, m, shift, left_shift_overflow=mode)
                assert np.array_equal(got, want), (m, shift, mode)


def test_single_round_every_int8_every_shift() -> None:
    """``multiply_by_quantized_multiplier_single_round`` on every int8 × the multiplier sample ×
    every shift in -31..30, half-up and truncating."""
    for m in MULTIPLIERS:
        for shift in range(-31, 31):
            for rounding in ("half_up", "truncate"):
                got = A.multiply_by_quantized_multiplier_single_round(INT8, m, shift, rounding=rounding)
                want = ref_map(R.multiply_by_quantized_multiplier_single_round, INT8, m, shift, rounding=rounding)
                assert np.array_equal(got, want), (m, shift, rounding)


@pytest.mark.parametrize("leaky_bits", [5, 6, 7, 8])
def test_leaky_shift_every_int8(leaky_bits: int) -> None:
    """Shift-mode LeakyReLU on every int8 value for leaky_bits 5..8: equal to the reference, stays
    in int8, identity on non-negatives, monotonic (a LeakyReLU must not reorder values)."""
    got = A.leaky_shift(INT8, leaky_bits)
    assert np.array_equal(got, ref_map(R.leaky_shift, INT8, leaky_bits))
    assert got.min() >= -128 and got.max() <= 127
    assert np.array_equal(got[INT8 >= 0], INT8[INT8 >= 0])
    assert np.all(np.diff(got) >= 0)


def test_leaky_shift_params_hand_values() -> None:
    """``a/2^k`` nearest to 0.1: 3/32, 6/64, 13/128 (DESIGN's default), 26/256 — by hand and by the reference."""
    expected = {5: (3, 5), 6: (6, 6), 7: (13, 7), 8: (26, 8)}
    for bits, pair in expected.items():
        assert A.leaky_shift_params(bits) == pair == R.leaky_shift_params(bits)
    # -128·13/128 = -13 exactly; -5·13/128 = -0.5078 → -1; -4·13/128 = -0.406 → 0; tie: -64·3/32 = -6.
    assert A.leaky_shift(np.array([-128, -5, -4]), 7).tolist() == [-13, -1, 0]
    assert A.leaky_shift(np.array([-16, -48]), 5).tolist() == [-2, -5]  # -1.5 → -2, -4.5 → -5 (away)


def test_float_rounding_helpers_on_halves() -> None:
    """``round_half_away``/``half_up`` (float → int) on every multiple of 1/2 in [-500, 500]: ties
    go away from zero / toward +inf exactly like the integer reference."""
    ks = np.arange(-1000, 1001, dtype=np.int64)
    xs = ks / 2.0
    assert np.array_equal(N.round_half_away(xs), ref_map(R.div_round_half_away, ks, 2))
    assert np.array_equal(N.half_up(xs), ref_map(R.div_round_half_up, ks, 2))


# =========================================================================== hypothesis properties


@HYPOTHESIS
@given(a=int32s, b=int32s)
def test_srdhm_random(a: int, b: int) -> None:
    """SRDHM on arbitrary int32 pairs equals both reference definitions."""
    got = as_int(A.saturating_rounding_doubling_high_mul(np.array([a]), np.array([b])))
    assert got == R.saturating_rounding_doubling_high_mul(a, b) == R.srdhm_vqrdmulh(a, b)


@HYPOTHESIS
@given(acc=int32s, m=q31_multipliers, shift=st.integers(-31, 30), rounding=roundings, mode=overflow_modes)
def test_mbqm_random(acc: int, m: int, shift: int, rounding: str, mode: str) -> None:
    """Double-rounding requantization over the full int32 accumulator range, Q0.31 multipliers in
    [2^30, 2^31), shifts -31..30, every rounding and left-shift policy."""
    got = as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m, shift, 32, rounding, mode))
    assert got == R.multiply_by_quantized_multiplier(acc, m, shift, 32, rounding, mode)


@settings(max_examples=100, deadline=None)
@given(data=st.lists(st.tuples(int32s, q31_multipliers, st.integers(-31, 30)), min_size=1, max_size=40),
       mode=overflow_modes)
def test_mbqm_random_vectorised_per_channel(data: list[tuple[int, int, int]], mode: str) -> None:
    """Per-element (per-channel) multiplier and shift arrays: the vectorised call equals the
    element-by-element reference (no cross-talk between lanes, e.g. a shared left shift)."""
    acc, m, s = (np.array(col, dtype=np.int64) for col in zip(*data))
    got = A.multiply_by_quantized_multiplier(acc, m, s, left_shift_overflow=mode)
    want = np.array([R.multiply_by_quantized_multiplier(*t, left_shift_overflow=mode) for t in data])
    assert np.array_equal(got, want)


@HYPOTHESIS
@given(acc=int32s, m=q31_multipliers, shift=st.integers(-31, 30), rounding=st.sampled_from(("half_up", "truncate")))
def test_single_round_random(acc: int, m: int, shift: int, rounding: str) -> None:
    """TFLITE_SINGLE_ROUNDING requantization over the full int32 range and shifts -31..30."""
    got = as_int(A.multiply_by_quantized_multiplier_single_round(np.array([acc]), m, shift, rounding=rounding))
    assert got == R.multiply_by_quantized_multiplier_single_round(acc, m, shift, rounding=rounding)


@HYPOTHESIS
@given(acc=int32s, m=q31_multipliers, shift=st.integers(-31, 0))
def test_single_round_within_one_lsb_of_gemmlowp(acc: int, m: int, shift: int) -> None:
    """Without left shift, the one-rounding and two-rounding schemes differ by at most one LSB
    (each is within ≤ 1 of the exact product), so switching schemes never changes a value by more."""
    g = as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m, shift))
    s = as_int(A.multiply_by_quantized_multiplier_single_round(np.array([acc]), m, shift))
    assert abs(g - s) <= 1


@HYPOTHESIS
@given(x=st.integers(-(1 << 62), (1 << 62) - 1), e=st.integers(0, 62), rounding=roundings)
def test_rounding_divide_by_pot_random(x: int, e: int, rounding: str) -> None:
    """Rounding division by 2^e over int64 values and every allowed exponent 0..62."""
    assert as_int(A.rounding_divide_by_pot(np.array([x]), e, rounding)) == R.rounding_divide_by_pot(x, e, rounding)


@HYPOTHESIS
@given(real=st.floats(min_value=0.0, max_value=2.0**40, allow_nan=False, allow_infinity=False),
       bits=st.integers(2, 32))
def test_quantize_multiplier_random(real: float, bits: int) -> None:
    """``quantize_multiplier`` equals the reference for any non-negative double and width 2..32;
    the encoding is normalised and within half an LSB of ``real`` (relative ``2^−bits``)."""
    m0, shift = A.quantize_multiplier(real, bits)
    assert (m0, shift) == R.quantize_multiplier(real, bits)
    assert isinstance(m0, int) and isinstance(shift, int)
    if m0:
        one = 1 << (bits - 1)
        assert one // 2 <= m0 < one
        # |M0·2^shift/2^(bits−1) − real| ≤ half an LSB of M0 (exact rational arithmetic)
        err = abs(Fraction(m0) * Fraction(2) ** shift / one - Fraction(real))
        assert err <= Fraction(2) ** shift / one / 2
    else:
        assert real == 0 or real < 2.0 ** -(bits - 1)


@HYPOTHESIS
@given(data=st.data(), bits=st.integers(2, 31), rounding=roundings, mode=overflow_modes)
def test_narrow_multiplier_bits_random(data: st.DataObject, bits: int, rounding: str, mode: str) -> None:
    """Multipliers of 2..31 bits (Q0.(bits−1) in [2^(bits−2), 2^(bits−1))) with int32 accumulators."""
    acc = data.draw(int32s)
    m = data.draw(st.integers(1 << (bits - 2), (1 << (bits - 1)) - 1))
    shift = data.draw(st.integers(-(bits - 1), 30))
    got = as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m, shift, bits, rounding, mode))
    assert got == R.multiply_by_quantized_multiplier(acc, m, shift, bits, rounding, mode)
    if shift <= bits - 2:
        got1 = as_int(A.multiply_by_quantized_multiplier_single_round(np.array([acc]), m, shift, bits))
        assert got1 == R.multiply_by_quantized_multiplier_single_round(acc, m, shift, bits)


@HYPOTHESIS
@given(acc=int32s, scaling=st.integers(-(1 << 15), (1 << 15) - 1), shift=st.integers(0, 62), rounding=roundings)
def test_apply_scale_shift_random(acc: int, scaling: int, shift: int, rounding: str) -> None:
    """NVDLA ``saturate(round(acc·scaling / 2^shift))`` with a signed 16-bit scaling, shifts 0..62."""
    got = as_int(A.apply_scale_shift(np.array([acc]), scaling, shift, rounding))
    assert got == R.apply_scale_shift(acc, scaling, shift, rounding)


@HYPOTHESIS
@given(real=st.floats(min_value=2.0**-40, max_value=1000.0), mbits=st.sampled_from((8, 12, 16, 24)),
       sbits=st.integers(4, 6))
def test_quantize_scale_shift_is_best_encoding(real: float, mbits: int, sbits: int) -> None:
    """``quantize_scale_shift`` picks the largest right shift whose rounded scaling still fits the
    signed ``multiplier_bits`` (most precision), and its scaling is ``round_half_away(real·2^shift)``."""
    limit = (1 << (mbits - 1)) - 1
    if math.floor(real + 0.5) > limit:
        with pytest.raises(ValueError):
            A.quantize_scale_shift(real, mbits, sbits)
        return
    scaling, shift = A.quantize_scale_shift(real, mbits, sbits)
    if scaling == 0:  # nothing fits even at the largest shift (the returned shift: test_scale_shift_tiny_multiplier)
        assert R.fraction_round_half_away(Fraction(real) * 2 ** ((1 << sbits) - 1)) == 0
        return
    assert 0 <= shift <= (1 << sbits) - 1
    assert scaling == R.fraction_round_half_away(Fraction(real) * 2**shift) <= limit
    if shift < (1 << sbits) - 1:
        assert R.fraction_round_half_away(Fraction(real) * 2 ** (shift + 1)) > limit


# =========================================================================== hand-written edge cases


@pytest.mark.parametrize(("x", "e", "half_away", "half_up", "truncate"), [
    (5, 1, 3, 3, 2),               # +2.5
    (-5, 1, -3, -2, -3),           # -2.5
    (3, 1, 2, 2, 1),               # +1.5
    (-3, 1, -2, -1, -2),           # -1.5
    (1, 1, 1, 1, 0),               # +0.5
    (-1, 1, -1, 0, -1),            # -0.5
    (6, 2, 2, 2, 1),               # +1.5 at e = 2
    (-6, 2, -2, -1, -2),           # -1.5 at e = 2
    (-7, 2, -2, -2, -2),           # -1.75: not a tie
    (1 << 30, 31, 1, 1, 0),        # +0.5 at e = 31
    (-(1 << 30), 31, -1, 0, -1),   # -0.5 at e = 31
    (INT32_MIN, 31, -1, -1, -1),   # exactly -1
    (INT32_MAX, 31, 1, 1, 0),      # 0.99999...
    (INT32_MIN, 0, INT32_MIN, INT32_MIN, INT32_MIN),
    (INT32_MIN + 1, 1, -(1 << 30), -(1 << 30) + 1, -(1 << 30)),  # -1073741823.5
])
def test_rounding_divide_by_pot_ties(x: int, e: int, half_away: int, half_up: int, truncate: int) -> None:
    """Hand-computed ties in both signs and at the int32 extremes, for each rounding mode."""
    for rounding, want in (("half_away", half_away), ("half_up", half_up), ("truncate", truncate)):
        assert as_int(A.rounding_divide_by_pot(np.array([x]), e, rounding)) == want
        assert R.rounding_divide_by_pot(x, e, rounding) == want


@pytest.mark.parametrize(("a", "b", "want"), [
    (3, 1 << 30, 2),                      # +1.5 → 2
    (-3, 1 << 30, -1),                    # -1.5 → -1 (gemmlowp: negative ties toward zero)
    (1, 1 << 30, 1),                      # +0.5 → 1
    (-1, 1 << 30, 0),                     # -0.5 → 0
    (5, 1 << 30, 3),                      # +2.5 → 3
    (-5, 1 << 30, -2),                    # -2.5 → -2
    (-7, 1 << 29, -2),                    # -1.75 → -2 (not a tie: nearest)
    (-3, 1 << 29, -1),                    # -0.75 → -1
    (INT32_MIN, INT32_MIN, INT32_MAX),    # the one overflow: saturates
    (INT32_MIN, INT32_MAX, -INT32_MAX),   # -(2^31 − 1) exactly
    (INT32_MAX, INT32_MIN, -INT32_MAX),
    (INT32_MIN, 1 << 30, -(1 << 30)),
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),  # (2^31−1)^2 / 2^31 = 2^31 − 2 + 2^−31
    (INT32_MIN, -INT32_MAX, INT32_MAX),
    (INT32_MIN, 1, -1),                   # -2^31/2^31 = -1
    (INT32_MIN, 0, 0),
])
def test_srdhm_ties_and_extremes(a: int, b: int, want: int) -> None:
    """SRDHM by hand: positive ties go up, negative ties go toward zero (the ``1 − 2^30`` nudge),
    ``INT32_MIN·INT32_MIN`` saturates to ``INT32_MAX``, other ``INT32_MIN`` products are exact."""
    assert as_int(A.saturating_rounding_doubling_high_mul(np.array([a]), np.array([b]))) == want
    assert R.saturating_rounding_doubling_high_mul(a, b) == want


def test_mbqm_int32_min_inputs() -> None:
    """``INT32_MIN`` accumulators through requantization: exact halving, the -0.5 tie of the final
    divide (→ -1, away from zero), and the maximum multiplier."""
    cases = [
        (INT32_MIN, 1 << 30, 0, -(1 << 30)),
        (INT32_MIN, 1 << 30, -30, -1),     # -2^30 / 2^30
        (INT32_MIN, 1 << 30, -31, -1),     # -0.5 → -1
        (INT32_MIN, INT32_MAX, -31, -1),   # -2147483647 / 2^31 = -0.99999 → -1
        (INT32_MIN, INT32_MAX, 0, -INT32_MAX),
        (INT32_MAX, INT32_MAX, -31, 1),
    ]
    for acc, m, shift, want in cases:
        assert as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m, shift)) == want, (acc, m, shift)
        assert R.multiply_by_quantized_multiplier(acc, m, shift) == want


def test_quantize_multiplier_renormalises_at_two_to_31() -> None:
    """``1 − 2^−40`` rounds to ``2^31`` in Q0.31: renormalised to ``(2^30, 1)``, as TFLite does."""
    assert A.quantize_multiplier(1 - 2**-40) == (1 << 30, 1) == R.quantize_multiplier(1 - 2**-40)
    # the largest double below 2 and below 0.5 renormalise the same way
    assert A.quantize_multiplier(math.nextafter(2.0, 0.0)) == (1 << 30, 2)
    assert A.quantize_multiplier(math.nextafter(0.5, 0.0)) == (1 << 30, 0)


def test_quantize_multiplier_zero_negative_and_ties() -> None:
    """``0 → (0, 0)``; a negative real is a ``ValueError``; exact ties in ``q·2^31`` round away
    from zero (TfLiteRound), not to even."""
    assert A.quantize_multiplier(0.0) == (0, 0) == R.quantize_multiplier(0.0)
    for bad in (-1e-9, -0.5, -3.0):
        with pytest.raises(ValueError):
            A.quantize_multiplier(bad)
    # q·2^31 = 2^30 + 0.5 and 2^30 + 2.5: half-even would give 2^30 and 2^30 + 2
    assert A.quantize_multiplier(((1 << 30) + 0.5) / 2**31) == ((1 << 30) + 1, 0)
    assert A.quantize_multiplier(((1 << 30) + 2.5) / 2**31) == ((1 << 30) + 3, 0)


@pytest.mark.parametrize(("real", "want"), [
    (2.0**-31, (1 << 30, -30)),
    (2.0**-32, (1 << 30, -31)),            # the smallest shift kept
    (2.0**-32 * 0.999, (0, 0)),            # frexp exponent -32: flushed
    (2.0**-33, (0, 0)),
    (1e-12, (0, 0)),
    (5e-324, (0, 0)),                      # the smallest subnormal
])
def test_quantize_multiplier_flushes_tiny(real: float, want: tuple[int, int]) -> None:
    """Multipliers whose shift would be below -31 become ``(0, 0)`` (TFLite "flush denormals")."""
    assert A.quantize_multiplier(real) == want == R.quantize_multiplier(real)


def test_multiplier_at_least_one_saturate_vs_wrap() -> None:
    """A real multiplier ≥ 1 shifts the accumulator left: TFLite's int32 multiply wraps (sign can
    flip), the DLA saturates.  For 4.0 = 0.5·2^3: ``3·2^28 × 2^3 = 3·2^31`` wraps to ``INT32_MIN`` → a
    *negative* result, where saturation gives ``INT32_MAX·0.5``."""
    m0, shift = A.quantize_multiplier(4.0)
    assert (m0, shift) == (1 << 30, 3)
    cases = [  # acc, wrap result, saturate result
        (1 << 30, 0, 1 << 30),                    # 2^33 wraps to 0; saturates to INT32_MAX → 2^30
        (-(1 << 30), 0, -(1 << 30)),
        (3 << 28, -(1 << 30), 1 << 30),           # 3·2^31 wraps to INT32_MIN
        (3 << 29, 0, 1 << 30),                    # 3·2^32 wraps to 0
        (1000, 4000, 4000),                       # no overflow: 1000·2^3 = 8000, ·2^30/2^31 = 4000
    ]
    for acc, want_wrap, want_sat in cases:
        w = as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m0, shift, left_shift_overflow="wrap"))
        s = as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m0, shift, left_shift_overflow="saturate"))
        assert (w, s) == (want_wrap, want_sat), acc
        assert w == R.multiply_by_quantized_multiplier(acc, m0, shift, left_shift_overflow="wrap")
        assert s == R.multiply_by_quantized_multiplier(acc, m0, shift, left_shift_overflow="saturate")
    # the function's default is TFLite's wrap
    assert as_int(A.multiply_by_quantized_multiplier(np.array([3 << 28]), m0, shift)) == -(1 << 30)


@pytest.mark.parametrize("shift", [32, 33, 40, 63, 64])
@pytest.mark.parametrize("mode", ["saturate", "wrap"])
def test_mbqm_huge_left_shift(shift: int, mode: str) -> None:
    """BUG (fails with saturate for shift ≥ 33): ``acc << left`` is computed in int64 and overflows
    before the int32 saturation, so a huge multiplier (``quantize_multiplier(2**32)`` gives shift 33)
    yields a wrong sign or 0 instead of saturating.  Expected: any nonzero int32 times 2^left with
    left ≥ 32 saturates to ±INT32_MAX/MIN (saturate) or is 0 mod 2^32 (wrap)."""
    accs = [1, 3, -1, 1 << 30, INT32_MIN, INT32_MAX]
    got = A.multiply_by_quantized_multiplier(np.array(accs), 1 << 30, shift, left_shift_overflow=mode)
    want = [R.multiply_by_quantized_multiplier(a, 1 << 30, shift, left_shift_overflow=mode) for a in accs]
    assert got.tolist() == want


def test_narrow_multiplier_bits_16() -> None:
    """16-bit multipliers (Q0.15): 0.1 → (26214, −3) and 1000·0.1 → 100; renormalisation at 2^15;
    the flush threshold stays TFLite's shift < −31 (the int32 right-shift limit)."""
    assert A.quantize_multiplier(0.1, 16) == (26214, -3) == R.quantize_multiplier(0.1, 16)
    assert as_int(A.multiply_by_quantized_multiplier(np.array([1000]), 26214, -3, 16)) == 100
    assert A.quantize_multiplier(1 - 2**-20, 16) == (1 << 14, 1)
    assert A.quantize_multiplier(2.0**-16, 16) == (1 << 14, -15)
    assert A.quantize_multiplier(2.0**-17, 16) == (1 << 14, -16)
    assert A.quantize_multiplier(2.0**-33, 16) == (0, 0)
    # SRDHM with a Q0.15 multiplier: 3·2^14/2^15 = 1.5 → 2; -1.5 → -1 (gemmlowp int16 nudge 1 − 2^14)
    assert A.saturating_rounding_doubling_high_mul(np.array([3, -3]), 1 << 14, 16).tolist() == [2, -1]
    # single rounding with 16 bits: t = 15 − shift
    assert as_int(A.multiply_by_quantized_multiplier_single_round(np.array([1000]), 26214, -3, 16)) == 100


def test_narrow_srdhm_equals_gemmlowp_int16_on_int16_operands() -> None:
    """For int16 ``a`` and a non-negative Q0.15 ``b``, the 16-bit-multiplier SRDHM is exactly
    gemmlowp's int16 ``SaturatingRoundingDoublingHighMul`` (int32 product, nudge ``2^14`` or
    ``1 − 2^14``, C division by ``2^15``) — checked on a grid covering every tie residue."""
    a = np.arange(-(1 << 15), 1 << 15, 97, dtype=np.int64)
    for b in (0, 1, 3, 1 << 13, 1 << 14, (1 << 14) + 1, 23170, (1 << 15) - 1):
        ab = a * b
        nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
        num = ab + nudge
        gemmlowp16 = np.array([R.c_trunc_div(int(n), 1 << 15) for n in num])
        assert np.array_equal(A.saturating_rounding_doubling_high_mul(a, b, 16), gemmlowp16)


def test_single_round_differs_from_gemmlowp_by_one_lsb() -> None:
    """The two TFLite schemes really differ (DESIGN: "by one LSB on some inputs"): search int8
    accumulators with a realistic multiplier for a difference, assert it is exactly one LSB, and
    pin two hand-derived cases: 5·2^−2 = 1.25 (gemmlowp 2.5→3 then 1.5→2; single 1) and
    -6·2^−2 = -1.5 (gemmlowp -3 then -1.5→-2; single half-up -1)."""
    m0, shift = R.quantize_multiplier(0.0123)
    found = None
    for acc in range(-(1 << 15), 1 << 15):
        g = R.multiply_by_quantized_multiplier(acc, m0, shift)
        s = R.multiply_by_quantized_multiplier_single_round(acc, m0, shift)
        if g != s:
            found = (acc, g, s)
            break
    assert found is not None
    acc, g, s = found
    assert abs(g - s) == 1
    assert as_int(A.multiply_by_quantized_multiplier(np.array([acc]), m0, shift)) == g
    assert as_int(A.multiply_by_quantized_multiplier_single_round(np.array([acc]), m0, shift)) == s
    for acc, want_g, want_s in ((5, 2, 1), (-6, -2, -1)):
        assert as_int(A.multiply_by_quantized_multiplier(np.array([acc]), 1 << 30, -1)) == want_g
        assert as_int(A.multiply_by_quantized_multiplier_single_round(np.array([acc]), 1 << 30, -1)) == want_s


def test_single_round_clamp_saturation_and_domain() -> None:
    """TFLite's single-rounding clamp ``shift > 30 → (2^31−1, 30)``; the result saturates to int32;
    ``shift = 31`` (t = 0) is rejected rather than computing ``1 << −1``."""
    m0, shift = A.quantize_multiplier(2.0**31 * 1.5)
    assert shift == 32
    assert A.clamp_single_round(m0, shift) == (INT32_MAX, 30) == R.clamp_single_round(m0, shift)
    assert A.clamp_single_round(1 << 30, 30) == (1 << 30, 30)
    got = A.multiply_by_quantized_multiplier_single_round(np.array([INT32_MAX, INT32_MIN, 1]), INT32_MAX, 30)
    assert got.tolist() == [INT32_MAX, INT32_MIN, INT32_MAX // 2 + 1]  # (2^31−1)/2 = 2^30 − 0.5 → 2^30
    with pytest.raises(ValueError):
        A.multiply_by_quantized_multiplier_single_round(np.array([1]), 1 << 30, 31)


def test_rounding_divide_by_pot_rejects_bad_exponent() -> None:
    """Exponents outside 0..62 are a ``ValueError`` (numpy would silently shift modulo 64)."""
    for e in (-1, 63, 64):
        with pytest.raises(ValueError):
            A.rounding_divide_by_pot(np.array([1]), e)


def test_scale_shift_hand_values() -> None:
    """NVDLA encoding and application by hand: 0.25 with 16-bit scaling and 6-bit shift is
    16384/2^16; 1000·0.25 = 250; ties of the converter follow ``rounding``; large products saturate."""
    assert A.quantize_scale_shift(0.25, 16, 6) == (16384, 16)
    assert A.quantize_scale_shift(3.0, 16, 6) == (24576, 13)
    assert as_int(A.apply_scale_shift(np.array([1000]), 16384, 16)) == 250
    assert A.apply_scale_shift(np.array([2, -2]), 1, 2, "half_away").tolist() == [1, -1]   # ±0.5
    assert A.apply_scale_shift(np.array([2, -2]), 1, 2, "half_up").tolist() == [1, 0]
    assert A.apply_scale_shift(np.array([2, -2]), 1, 2, "truncate").tolist() == [0, -1]
    assert A.apply_scale_shift(np.array([INT32_MAX, INT32_MIN]), 32767, 0).tolist() == [INT32_MAX, INT32_MIN]
    with pytest.raises(ValueError):
        A.quantize_scale_shift(40000.0, 16, 6)
    with pytest.raises(ValueError):
        A.quantize_scale_shift(-0.5, 16, 6)
    assert A.quantize_scale_shift(0.0, 16, 6) == (0, 0)


@pytest.mark.parametrize("real", [1e-30, 2.0**-50, 2.0**-60])
def test_scale_shift_tiny_multiplier(real: float) -> None:
    """BUG: the docstring promises "too small ones become (0, 0)", but ``quantize_scale_shift``
    returns ``(0, 63)`` for 1e-30 and ``(8192, 63)`` for 2^−50 (shift_bits=6 allows 63), and
    ``apply_scale_shift`` then raises "exponent must be in 0..62".  Expected: an encoding that
    applies (here every int32·int16 product / 2^≥62 rounds to 0) and ``(0, 0)`` when nothing fits."""
    scaling, shift = A.quantize_scale_shift(real, 16, 6)
    if scaling == 0:
        assert (scaling, shift) == (0, 0)
    accs = np.array([INT32_MIN, -1, 0, 1, INT32_MAX])
    assert A.apply_scale_shift(accs, scaling, shift).tolist() == [0, 0, 0, 0, 0]


# =========================================================================== published vectors
# tensorflow/tensorflow: tensorflow/lite/kernels/internal/quantization_util_test.cc
# (QuantizeMultiplierSmallerThanOneExp, QuantizeMultiplierGreaterThanOne, QuantizeMultiplierUnderflow,
# QuantizeMultiplierArray, MultiplyByQuantizedMultiplierInt32).  The Exp/GreaterThanOne wrappers only
# CHECK the sign of the shift and return QuantizeMultiplier's (M0, shift) unchanged.

TFLITE_QUANTIZE_VECTORS: list[tuple[float, tuple[int, int]]] = [
    (0.25, (1073741824, -1)),
    (0.50 - 5e-9, (2147483627, -1)),
    (0.50 - 1e-10, (1073741824, 0)),
    (0.50, (1073741824, 0)),
    (0.75, (1610612736, 0)),
    (1 - 1e-9, (2147483646, 0)),
    (1 + 1e-11, (1073741824, 1)),
    (1.25, (1342177280, 1)),
    (1.50, (1610612736, 1)),
    (1.75, (1879048192, 1)),
    (2 - 1e-9, (2147483647, 1)),
    (2 - 1e-11, (1073741824, 2)),
    (2.0, (1073741824, 2)),
    (math.ldexp(1.0, -31), (1073741824, -30)),
    (math.ldexp(1.0, -32), (1073741824, -31)),
    (math.ldexp(float(np.float32(0.99)), -32), (0, 0)),   # std::ldexp(0.99f, -32)
    (math.ldexp(1.0, -33), (0, 0)),
    (0.0, (0, 0)),
    (0.125, (1073741824, -2)),
    (1.0, (1073741824, 1)),
    (4.0, (1073741824, 3)),
]


@pytest.mark.parametrize(("real", "want"), TFLITE_QUANTIZE_VECTORS)
def test_tflite_quantize_multiplier_vectors(real: float, want: tuple[int, int]) -> None:
    """TFLite's own expected ``QuantizeMultiplier`` outputs (quantization_util_test.cc)."""
    assert A.quantize_multiplier(real) == want
    assert R.quantize_multiplier(real) == want


TFLITE_MBQM_VECTORS: list[tuple[int, float, int]] = [
    (0, 0.1, 0),
    (1, 0.0, 0),
    (10000, 0.00097656, 10),
    (-10000, 0.00097656, -10),
    (INT32_MIN, 0.00001, -21475),
    (INT32_MAX, 0.00001, 21475),
]


@pytest.mark.parametrize(("x", "real", "want"), TFLITE_MBQM_VECTORS)
def test_tflite_multiply_by_quantized_multiplier_vectors(x: int, real: float, want: int) -> None:
    """TFLite's ``MultiplyByQuantizedMultiplierInt32`` expectations (quantize, then multiply); the
    negative-multiplier rows are omitted (the DLA rejects negative multipliers).  They hold for
    the double-rounding default and for single rounding alike."""
    m0, shift = A.quantize_multiplier(real)
    assert as_int(A.multiply_by_quantized_multiplier(np.array([x]), m0, shift)) == want
    assert R.multiply_by_quantized_multiplier(x, m0, shift) == want
    assert as_int(A.multiply_by_quantized_multiplier_single_round(np.array([x]), m0, shift)) == want


def test_tflite_max_x_max_multiplier_vector() -> None:
    """TFLite: ``x = M0 = INT32_MAX``, shift −3 gives ``TfLiteRound(x·M0 / 2^34)`` = 268435456
    (= round(268435455.75)), and ``−x`` gives its negation."""
    expected = round(INT32_MAX * INT32_MAX / 2.0**34)
    assert expected == 268435456
    got = A.multiply_by_quantized_multiplier(np.array([INT32_MAX, -INT32_MAX]), INT32_MAX, -3)
    assert got.tolist() == [expected, -expected]
    assert [R.multiply_by_quantized_multiplier(x, INT32_MAX, -3) for x in (INT32_MAX, -INT32_MAX)] == [expected, -expected]


# =========================================================================== doctests


def test_module_doctests() -> None:
    """Every example in ``dla.arith``'s docstrings runs and prints what it claims."""
    result = doctest.testmod(A, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_power_of_two_scale_gemmlowp_rounds_twice() -> None:
    """docs/arithmetic.md, "Power-of-two scales": for M = 2^-k, single_round and scale_shift are one
    rounding shift, gemmlowp is not (acc = 5, M = 0.25: gemmlowp 2, one rounding shift 1)."""
    m, s = A.quantize_multiplier(0.25)
    assert (m, s) == (2**30, -1)
    assert int(A.saturating_rounding_doubling_high_mul(5, m)) == 3  # 2.5, tie toward +inf
    assert int(A.multiply_by_quantized_multiplier(5, m, s)) == 2  # then 3 / 2 = 1.5 -> 2
    assert int(A.multiply_by_quantized_multiplier_single_round(5, *A.clamp_single_round(m, s))) == 1
    assert int(A.apply_scale_shift(5, *A.quantize_scale_shift(0.25))) == 1
    # every accumulator in [-1024, 1024] and k = 1..8 against the reference's exact divisions:
    # single_round = one division rounded half up, scale_shift = one rounded half away; gemmlowp
    # equals one rounding only for k = 1 (its only rounding is then SRDHM's)
    acc = np.arange(-1024, 1025, dtype=np.int64)
    for k in range(1, 9):
        mk, sk = A.quantize_multiplier(2.0 ** -k)
        up = np.array([R.div_round_half_up(int(a), 2**k) for a in acc])
        away = np.array([R.div_round_half_away(int(a), 2**k) for a in acc])
        assert np.array_equal(A.multiply_by_quantized_multiplier_single_round(acc, *A.clamp_single_round(mk, sk)), up)
        assert np.array_equal(A.apply_scale_shift(acc, *A.quantize_scale_shift(2.0 ** -k)), away)
        assert np.array_equal(A.multiply_by_quantized_multiplier(acc, mk, sk), up) == (k == 1), k
