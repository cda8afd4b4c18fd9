"""``quant.numerics`` against the plain-Python reference ``tests/reference/numerics_ref.py``.

Bit-exact (``np.array_equal`` / ``==``): exhaustive over every half-integer tie in a range and
over every width used; randomized over float64 bit patterns of every magnitude; plus the values
where the textbook formulas go wrong (0.49999999999999994, odd integers in [2^52, 2^53)).
"""
from __future__ import annotations

import ast
import doctest
from collections.abc import Callable, Iterable

import numpy as np
import pytest

import quant.numerics as N
from tests.paths import ROOT
from tests.reference import numerics_ref as R

RNG_SEED = 20261203


def ref_map(fn: Callable[..., int], xs: Iterable[float], *args: object) -> np.ndarray:
    return np.array([fn(float(x), *args) for x in xs], dtype=np.int64)


def random_floats(n: int, max_exp: int = 62, seed: int = RNG_SEED) -> np.ndarray:
    """``n`` float64 values of both signs, magnitudes log-uniform in [2^-60, 2^max_exp), with
    random mantissas (every bit pattern of the mantissa equally likely)."""
    rng = np.random.default_rng(seed)
    mant = rng.integers(0, 1 << 52, size=n, dtype=np.int64)
    exp = rng.integers(-60, max_exp, size=n)
    mags = np.ldexp(1.0 + mant.astype(np.float64) / 2.0**52, exp)
    return np.where(rng.integers(0, 2, size=n) == 1, -mags, mags)


def hard_values() -> np.ndarray:
    """Ties, their neighbours one ulp away, and the large-magnitude cases, both signs."""
    vals = [0.0, 0.5, 1.5, 2.5, 0.49999999999999994, 1 - 2**-53, 2.0**52 - 0.5, 2.0**52 + 1,
            2.0**52 + 3, 2.0**53 - 1, 2.0**53, 2.0**53 + 2, 2.0**62, 2.0**63 - 1024]
    for k in (0, 1, 2, 126, 127, 128, 1000, 2**20, 2**40, 2**51 - 1):
        t = k + 0.5
        vals += [t, np.nextafter(t, 0.0), np.nextafter(t, np.inf)]
    vals += [2.0**52 + o for o in range(1, 40, 2)]  # odd integers where x + 0.5 rounds to even
    arr = np.array(vals, dtype=np.float64)
    return np.concatenate([arr, -arr])


# --------------------------------------------------------------------------- rounding


def test_rounding_on_every_half_integer_tie() -> None:
    """Every multiple of ½ in [−4096, 4096]: ties away / toward +inf / to even exactly."""
    xs = np.arange(-8192, 8193, dtype=np.int64) / 2.0
    assert np.array_equal(N.round_half_away(xs), ref_map(R.round_half_away, xs))
    assert np.array_equal(N.half_up(xs), ref_map(R.half_up, xs))
    assert np.array_equal(N.round_half_even(xs), ref_map(R.round_half_even, xs).astype(np.float64))
    assert [N.round_half_away_int(float(x)) for x in xs] == list(ref_map(R.round_half_away, xs))


def test_rounding_on_large_ties() -> None:
    """Ties ``n + ½`` for large ``n`` (up to 2^51, the largest with a representable half), both signs."""
    rng = np.random.default_rng(RNG_SEED)
    n = np.concatenate([rng.integers(0, 1 << 51, size=2000, dtype=np.int64), [(1 << 51) - 1, 1 << 40]])
    xs = np.concatenate([n + 0.5, -(n + 0.5)])
    assert np.all(xs - np.trunc(xs) != 0)  # they really are ties (no rounding in n + 0.5)
    assert np.array_equal(N.round_half_away(xs), ref_map(R.round_half_away, xs))
    assert np.array_equal(N.half_up(xs), ref_map(R.half_up, xs))
    assert np.array_equal(N.round_half_even(xs), ref_map(R.round_half_even, xs).astype(np.float64))


@pytest.mark.parametrize("values", [hard_values(), random_floats(20000)], ids=["hard", "random"])
def test_rounding_on_all_magnitudes(values: np.ndarray) -> None:
    """Random float64 bit patterns in [2^-60, 2^62) and the hard cases: all rules bit-exact."""
    assert np.array_equal(N.round_half_away(values), ref_map(R.round_half_away, values))
    assert np.array_equal(N.half_up(values), ref_map(R.half_up, values))
    assert np.array_equal(N.round_half_even(values), ref_map(R.round_half_even, values).astype(np.float64))
    assert [N.round_half_away_int(float(x)) for x in values] == list(ref_map(R.round_half_away, values))


def test_where_the_textbook_formula_fails() -> None:
    """``sign(x)·floor(|x| + ½)`` gives 1 for 0.49999999999999994 and 2^52 + 2 for 2^52 + 1."""
    assert N.round_half_away(np.array([0.49999999999999994, -0.49999999999999994])).tolist() == [0, 0]
    assert N.round_half_away(np.array([2.0**52 + 1, -(2.0**52 + 1)])).tolist() == [2**52 + 1, -(2**52 + 1)]
    assert N.half_up(np.array([0.49999999999999994, 2.0**52 + 1])).tolist() == [0, 2**52 + 1]
    assert N.round_half_away_int(0.49999999999999994) == 0


# --------------------------------------------------------------------------- ranges and saturation


def test_bounds_are_derived_from_widths() -> None:
    for bits in range(1, 65):
        assert N.signed_range(bits) == R.signed_range(bits)
    assert (N.QMIN, N.QMAX) == R.signed_range(8) == (-128, 127)
    assert (N.INT32_MIN, N.INT32_MAX) == R.signed_range(32)
    with pytest.raises(ValueError):
        N.signed_range(0)


@pytest.mark.parametrize("bits", [2, 4, 7, 8, 9, 16, 20, 24, 31, 32])
def test_saturate_at_every_width_used(bits: int) -> None:
    """Every integer around both bounds, zero, and far outside (int8 outputs, 16-bit multipliers,
    20-32-bit accumulators, int32 results)."""
    lo, hi = R.signed_range(bits)
    xs = np.array(sorted({*range(lo - 3, lo + 4), *range(hi - 3, hi + 4), *range(-3, 4),
                          -(1 << 40), 1 << 40, -(1 << 62), (1 << 62) - 1}), dtype=np.int64)
    assert np.array_equal(N.saturate(xs, bits), np.array([R.saturate(int(x), bits) for x in xs], dtype=np.int64))
    assert N.saturate(xs, bits).dtype == np.int64


# --------------------------------------------------------------------------- quantize / dequantize


@pytest.mark.parametrize(("bits", "narrow"), [(8, False), (8, True), (32, False)])
def test_quantize_random(bits: int, narrow: bool) -> None:
    """Random reals and scales (scalar, and one per channel): codes equal the reference's."""
    rng = np.random.default_rng(RNG_SEED + bits + narrow)
    x = random_floats(4000, max_exp=40, seed=RNG_SEED + 1).reshape(40, 100)
    for scale in (0.5, 1.0 / 127, 3.7e-3, 2.0**-20, 1e6):
        got = N.quantize(x, scale, bits=bits, narrow=narrow)
        want = np.array([R.quantize(v, scale, bits, narrow) for v in x.ravel()], dtype=np.int64).reshape(x.shape)
        assert np.array_equal(got, want)
    scales = rng.uniform(1e-4, 1.0, size=(40, 1))
    got = N.quantize(x, scales, bits=bits, narrow=narrow)
    want = np.array([[R.quantize(v, scales[i, 0], bits, narrow) for v in row] for i, row in enumerate(x)],
                    dtype=np.int64)
    assert np.array_equal(got, want)


def test_quantize_ties_and_saturation() -> None:
    """Ties of the quotient go away from zero; beyond the range (±inf too) codes saturate to its ends."""
    x = np.array([0.5, -0.5, 1.5, -1.5, 126.5, 127.5, -127.5, -128.5, 1e300, -1e300, np.inf, -np.inf])
    assert N.quantize(x, 1.0).tolist() == [1, -1, 2, -2, 127, 127, -128, -128, 127, -128, 127, -128]
    assert N.quantize(x, 1.0, narrow=True).tolist() == [1, -1, 2, -2, 127, 127, -127, -127, 127, -127, 127, -127]
    assert N.quantize(x, 1.0, bits=32).tolist()[-4:] == [2**31 - 1, -(2**31), 2**31 - 1, -(2**31)]
    q = N.quantize_tensor(np.array([0.3, -0.3, 50.0], dtype=np.float32), 0.2)
    assert q.dtype == np.int8 and q.tolist() == [R.quantize(float(np.float32(v)), 0.2) for v in (0.3, -0.3, 50.0)]


def test_dequantize_exact() -> None:
    """``q·scale`` rounded once to float64, for every int8 code and random scales (and int32 codes)."""
    rng = np.random.default_rng(RNG_SEED)
    codes = np.arange(-128, 128, dtype=np.int64)
    for scale in rng.uniform(1e-6, 10.0, size=20):
        got = N.dequantize(codes, scale)
        assert got.dtype == np.float64
        assert np.array_equal(got, np.array([R.dequantize(int(c), float(scale)) for c in codes]))
    big = rng.integers(-(2**31), 2**31, size=500)
    assert np.array_equal(N.dequantize(big, 3.3e-5), np.array([R.dequantize(int(c), 3.3e-5) for c in big]))
    # per-channel: round trip of in-range codes
    scales = rng.uniform(1e-3, 1.0, size=(4, 1))
    q = rng.integers(-127, 128, size=(4, 64))
    assert np.array_equal(N.quantize(N.dequantize(q, scales), scales, narrow=True), q)


def test_module_doctests() -> None:
    result = doctest.testmod(N, verbose=False)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- one home


DEFINED_ONLY_IN_NUMERICS = {"QMAX", "QMIN", "ACT_QMAX", "WEIGHT_QMAX", "INT32_MIN", "INT32_MAX",
                            "round_half_away", "half_up", "saturate", "quantize_tensor"}


def test_the_numerics_are_defined_once() -> None:
    """No module of the library besides ``quant/numerics.py`` defines (assigns or ``def``s) the
    int8/int32 bounds or the float→int rules: the one home stays the only one."""
    offenders = []
    library = [*(ROOT / "quant").rglob("*.py"), *(ROOT / "dla").rglob("*.py"), *(ROOT / "golden").rglob("*.py")]
    for path in sorted(library):
        if path == ROOT / "quant" / "numerics.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [e.id for t in node.targets for e in ast.walk(t) if isinstance(e, ast.Name)]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n in DEFINED_ONLY_IN_NUMERICS]
    assert offenders == []
