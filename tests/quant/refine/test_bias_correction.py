"""The arithmetic of bias correction: the mean shift, the rounding and saturation of b_q'."""
from __future__ import annotations

import numpy as np

from quant.refine.bias_correction import ShiftAccumulator, corrected_bias, keeps


def test_mean_shift_is_the_per_channel_mean_over_images_and_positions() -> None:
    rng = np.random.default_rng(0)
    a = [rng.integers(-1000, 1000, size=(3, 4, 5)) for _ in range(3)]
    r = [rng.normal(size=(3, 4, 5)) * 100 for _ in range(3)]
    acc = ShiftAccumulator(3)
    for x, y in zip(a, r):
        acc.add(x, y)
    want = [np.mean([float(a[k][c, i, j]) - float(r[k][c, i, j]) for k in range(3) for i in range(4)
                     for j in range(5)]) for c in range(3)]
    np.testing.assert_allclose(acc.mean(), want, rtol=1e-12)
    assert np.array_equal(ShiftAccumulator(2).mean(), [0.0, 0.0])


def test_corrected_bias_rounds_half_away_and_saturates_to_int32() -> None:
    b = np.array([10, 10, -10, -10, 7, 2**31 - 5, -(2**31) + 5])
    shift = np.array([0.5, -0.5, 0.5, -0.5, 0.49, -100.0, 100.0])
    # 9.5 → 10, 10.5 → 11, −10.5 → −11, −9.5 → −10, 6.51 → 7; then the int32 ends
    assert corrected_bias(b, shift).tolist() == [10, 11, -11, -10, 7, 2**31 - 1, -(2**31)]
    assert corrected_bias(b, shift).dtype == np.int64


def test_kept_only_on_a_strict_improvement() -> None:
    assert keeps(2.0, 1.0) and not keeps(1.0, 1.0) and not keeps(1.0, 2.0)
