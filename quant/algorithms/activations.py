"""Activation calibration: a clipping threshold ``T`` from a histogram of ``|x|``.

All work on ``quant.observers.AbsHistogram`` (``bins`` counters over ``[0, R)``, exact zeros
counted apart); ``T`` is in the tensor's real units and the int8 scale is ``T / QMAX``
(``QMAX = 127``, ``quant.numerics``).

* ``max``: ``T = max|x|`` — no clipping, coarsest steps.
* ``percentile`` (``p``, default 99.99): the smallest ``T`` with at least ``p`` % of all values
  (zeros included) at or below it, interpolated linearly inside its bin.
* ``mse``: the bin edge ``T`` minimising the expected squared error of
  ``q(x) = clip(round(x/Δ), −127, 127)·Δ``, ``Δ = T/127``, evaluated on bin centres
  (``round`` here is half to even: ``quant.numerics.round_half_even`` says why).
* ``kl``: TensorRT's entropy calibration as described in Szymon Migacz, "8-bit Inference
  with TensorRT" (GTC 2017): for each candidate ``i`` (128 … the last non-empty bin: TensorRT's
  histogram ends at the max, ours may extend up to twice as far), the reference
  distribution ``P`` is bins ``[0, i)`` with everything beyond folded into bin ``i−1``; the
  candidate ``Q`` merges those ``i`` bins into 128 levels and spreads each level's count
  uniformly over its non-empty bins; ``T`` is the upper edge of bin ``i−1`` for the ``i``
  minimising ``KL(P‖Q)``.  (The talk uses 2048 bins and 128 levels; so do we.)
* ``log2``: ``scale = 2^ceil(log2(max|x| / 127))`` — a power of two, so requantization is a
  pure shift; ``T = 127·scale`` (≥ max: never clips).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from golden.errors import UserInputError
from quant.numerics import QMAX, round_half_even
from quant.observers import AbsHistogram

KL_LEVELS = 128


def _dense(h: AbsHistogram) -> tuple[np.ndarray, np.ndarray, float]:
    """Counts with the exact zeros added to bin 0, bin centres, bin width."""
    counts = h.counts.astype(np.float64).copy()
    counts[0] += h.zeros
    w = h.width
    return counts, (np.arange(h.bins) + 0.5) * w, w


def max_threshold(h: AbsHistogram) -> float:
    return float(h.absmax)


def percentile_threshold(h: AbsHistogram, p: float = 99.99) -> float:
    if h.absmax == 0:
        return 0.0
    counts, _, w = _dense(h)
    target = h.total * p / 100.0
    cum = np.cumsum(counts)
    i = int(np.searchsorted(cum, target, side="left"))
    if i >= h.bins:
        return float(h.absmax)
    before = cum[i - 1] if i > 0 else 0.0
    frac = (target - before) / counts[i] if counts[i] > 0 else 1.0
    return float(min(h.absmax, (i + frac) * w))


def _expected_sq_error(counts: np.ndarray, centres: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Σ n·(c − q(c))² for each candidate threshold (rows)."""
    delta = thresholds[:, None] / QMAX
    q = np.clip(round_half_even(centres[None, :] / delta), -QMAX, QMAX) * delta
    return ((centres[None, :] - q) ** 2 * counts[None, :]).sum(axis=1)


def mse_threshold(h: AbsHistogram) -> float:
    if h.absmax == 0:
        return 0.0
    counts, centres, w = _dense(h)
    last = int(np.nonzero(counts)[0].max()) + 1
    cand = np.arange(max(1, last // 32), last + 1) * w  # bin edges up to the max
    best = cand[int(np.argmin(_expected_sq_error(counts[:last], centres[:last], cand)))]
    return float(min(best, h.absmax))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def kl_threshold(h: AbsHistogram, levels: int = KL_LEVELS) -> float:
    if h.absmax == 0:
        return 0.0
    counts, _, w = _dense(h)
    last = int(np.nonzero(counts)[0].max()) + 1
    if last <= levels:
        return float(h.absmax)  # fewer occupied bins than levels: nothing to gain by clipping
    best_i, best_kl = last, math.inf
    for i in range(levels, last + 1):
        p = counts[:i].copy()
        p[i - 1] += counts[i:].sum()  # outliers folded into the last kept bin
        ref = counts[:i]
        # merge i bins into `levels` groups (group j covers bins [j*i/levels, (j+1)*i/levels)),
        # then spread each group's count evenly over its non-empty bins
        edges = (np.arange(levels) * i) // levels
        sizes = np.diff(np.append(edges, i))
        group_sum = np.add.reduceat(ref, edges)
        group_nz = np.add.reduceat((ref > 0).astype(np.float64), edges)
        per_bin = np.divide(group_sum, group_nz, out=np.zeros(levels), where=group_nz > 0)
        q = np.where(ref > 0, np.repeat(per_bin, sizes), 0.0)
        ps, qs = p.sum(), q.sum()
        if ps == 0 or qs == 0:
            continue
        d = _kl(p / ps, q / qs)
        if d < best_kl:
            best_kl, best_i = d, i
    return float(min(best_i * w, h.absmax))


def log2_scale(absmax: float) -> float:
    if absmax <= 0:
        return 2.0 ** -7  # a power of two even for an all-zero tensor
    return float(2.0 ** math.ceil(math.log2(absmax / QMAX)))


def log2_threshold(h: AbsHistogram) -> float:
    return log2_scale(h.absmax) * QMAX


ACTIVATION_ALGORITHMS: dict[str, Callable[..., float]] = {
    "max": max_threshold, "percentile": percentile_threshold, "mse": mse_threshold,
    "kl": kl_threshold, "log2": log2_threshold,
}


def threshold(h: AbsHistogram, algorithm: str, **params: float) -> float:
    try:
        fn = ACTIVATION_ALGORITHMS[algorithm]
    except KeyError:
        raise UserInputError(f"unknown activation algorithm '{algorithm}' "
                             f"(valid: {', '.join(ACTIVATION_ALGORITHMS)}, auto)") from None
    return fn(h, **params)


def scale_for(h: AbsHistogram, algorithm: str, **params: float) -> float:
    """The int8 scale of a tensor (``T/127``; ``log2``: the power of two; all-zero → ``1/127``)."""
    if algorithm == "log2":
        return log2_scale(h.absmax)
    t = threshold(h, algorithm, **params)
    return t / QMAX if t > 0 else 1.0 / QMAX


def histogram_sqnr_db(h: AbsHistogram, scale: float) -> float:
    """Expected SQNR of quantizing the histogram's data with ``scale`` (bin centres)."""
    counts, centres, _ = _dense(h)
    if h.absmax == 0:
        return math.inf
    signal = float((counts * centres**2).sum())
    noise = float(_expected_sq_error(counts, centres, np.array([scale * QMAX]))[0])
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)
