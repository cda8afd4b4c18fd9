"""AdaRound's rounding choice: a case whose best rounding is known, and its invariants
(every code is floor or floor + 1 of W/s, clipped to the width's range)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from quant.refine.adaround import AdaRoundOptions, TorchMissingError, adaround_weights, require_torch
from tests.tools import require_module


@pytest.fixture(autouse=True)
def _torch() -> None:
    """torch comes with the 'train' extra ([test] has it): missing in CI is a failure, elsewhere a
    skip (test_without_torch_a_clear_error and tests/dla/test_refine.py cover the error a user without it gets)."""
    require_module("torch", "pip install -e '.[test]' (torch comes with the 'train' extra)")


@pytest.mark.parametrize("w", [[0.45, 0.3, 0.2], [0.45, 0.35, 0.1, 0.2]])
def test_known_answer_rounds_the_largest_fraction_up(w: list[float]) -> None:
    """Σw ≈ 1 with every weight below ½: nearest rounding gives 0 (output error ≈ 1 per column);
    the best choice rounds exactly the largest one up (error ≈ 0.05)."""
    w = np.array([w])
    x = np.ones((w.shape[1], 64))
    q = adaround_weights(w, np.array([1.0]), 8, x, x)
    assert q.tolist() == [[1] + [0] * (w.shape[1] - 1)]


def test_codes_are_floor_or_ceil_and_within_the_width() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 3, 3, 3))
    s = np.abs(w).reshape(8, -1).max(axis=1) / 7 * 0.8  # 4-bit, with some weights beyond ±7 (clipped)
    xf = rng.normal(size=(27, 300))
    q = adaround_weights(w, s, 4, xf, xf + rng.normal(size=xf.shape) * 0.01, AdaRoundOptions(iterations=50))
    assert q.shape == w.shape and np.abs(q).max() <= 7
    fl = np.floor(w / s.reshape(-1, 1, 1, 1))
    assert np.all((q == np.clip(fl, -7, 7)) | (q == np.clip(fl + 1, -7, 7)))


def test_without_torch_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(TorchMissingError, match=r"pip install -e '\.\[train\]'"):
        require_torch()
