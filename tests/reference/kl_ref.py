"""Slow, obviously correct reference of TensorRT's entropy (KL) calibration.

Written from the published description only — Szymon Migacz, "8-bit Inference with
TensorRT", GTC 2017, slides "Entropy Calibration - pseudocode" and "Candidate distribution
Q" — and independently of ``quant/algorithms/activations.py``: no project imports and no
vectorised numpy, one Python loop per step of the pseudocode::

    Input: histogram H of |x| with 2048 bins: bin[0], ..., bin[2047]
    for i in 128 .. 2048:
        P = [bin[0], ..., bin[i-1]]                  # the first i bins
        P[i-1] += sum(bin[i], ..., bin[2047])         # outliers folded into the last kept bin
        Q = [bin[0], ..., bin[i-1]] merged into 128 levels, each level's count spread back
            uniformly over the bins of that level that are non-empty (empty bins stay 0)
        P /= sum(P); Q /= sum(Q)
        divergence[i] = KL(P || Q) = sum over P[k] > 0 of P[k] * ln(P[k] / Q[k])
    m = argmin divergence
    threshold = upper edge of bin m-1 = m * bin_width

Choices the talk leaves open, made here (and why the tests allow one bin of slack):

* The slide's last line is ``threshold = (m + 0.5) * width``; the project documents the
  upper edge of the last kept bin, ``m * width`` (half a bin lower).  We return ``m * width``.
* The candidates run up to the histogram's length, ``i = len(counts)`` included (no
  clipping; the slide's Python ``range(128, 2048)`` would stop one short).  In TensorRT the
  2048 bins span ``[0, max]``, so every candidate threshold is ≤ the max.  The project's
  histogram spans a power of two ``R`` with ``max < R ≤ 2·max``; to ask the same question
  of it, pass its counts *up to the last non-empty bin* (the bin holding the max).  Given
  the whole power-of-two histogram, this function would also try thresholds beyond the max,
  which TensorRT never does — on sparse tails they can win (by noise), see the tests.
* When ``i`` is not a multiple of 128 the talk does not say how the ``i`` bins split into
  levels.  Level ``j`` holds bins ``[j·i/128, (j+1)·i/128)`` with the boundaries rounded
  ``"floor"`` (the project's rule, stated in its code) or ``"ceil"`` (equivalently: bin
  ``k`` in level ``floor(k·128/i)``).  Both give levels of ``floor(i/128)`` or
  ``ceil(i/128)`` bins, placed differently.  On smooth histograms the two pick thresholds
  within a bin of each other; with a spike in bin 0 (ReLU outputs: half the values are
  exact zeros) the size of level 0 dominates the divergence and the two rules can differ
  by a hundred bins — the tests compare such histograms with the ``"floor"`` rule only.
* A candidate where ``Q`` is 0 on a bin where ``P`` is not (only possible on bin ``i-1``
  when it is empty but outliers were folded into it) has infinite divergence: it is never
  chosen.  (onnxruntime smooths ``P`` and ``Q`` with ``eps = 1e-4`` instead, see below.)
* Ties keep the smallest ``i`` (the first minimum, as ``argmin`` does).

Closest published code (read, not imported): NVIDIA's own pytorch-quantization,
``_compute_amax_entropy`` in ``NVIDIA/TensorRT: tools/pytorch-quantization/pytorch_quantization/
calib/histogram.py``.  It agrees with the choices above — candidates ``128 .. len(bins)``
inclusive, the non-empty mask taken from the unclipped bins, ``scipy.stats.entropy`` (so
``inf`` when ``Q`` misses mass), threshold ``bin_edges[i] = i·width`` — and splits levels
with ``np.digitize`` (our ``"ceil"``).  It differs in two details: it first replaces bin 0
by bin 1's count (neutralising the spike of exact zeros of ReLU outputs), and on ties it
keeps the *largest* ``i``.

The second, test-only reference is onnxruntime's ``HistogramCollector.get_entropy_threshold``
(``onnxruntime.quantization.calibrate``), which differs from the talk on purpose or by
accident — documented differences (onnxruntime 1.x):

1. it works on a *signed* histogram with the zero bin in the middle and grows the window
   symmetrically (``2i+1`` bins), so ``num_quantized_bins`` counts levels over both signs;
2. levels have ``size // num_quantized_bins`` bins each, the remainder all going to the
   last level (not spread evenly);
3. the expanded ``Q`` is stored in an ``int64`` array, so each bin's share is *truncated*
   to an integer count (coarse for small counts);
4. the non-empty mask used to spread ``Q`` is taken from ``P`` *after* the outliers were
   folded in, and the outliers go to both end bins;
5. ``P`` and ``Q`` are smoothed (zeros replaced by ``1e-4``) before ``scipy.stats.entropy``,
   so no candidate is infinite;
6. the threshold is the window's upper bin edge, clamped to the tensor's max.

``ort_entropy_threshold`` below feeds it the mirror image of the same ``|x|`` histogram, so
its window edge ``i`` corresponds to our candidate ``i``; with ``2*levels`` quantized bins
each side gets about ``levels`` levels.  Because of (2)–(5) it is only expected to land
*near* our threshold, not within one bin.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BINS = 2048
LEVELS = 128
SPLIT = "floor"


def abs_histogram(values: Sequence[float], bins: int = BINS, top: float | None = None) -> tuple[list[int], float]:
    """Counts of ``|x|`` in ``bins`` equal bins over ``[0, top]`` (default: the max), and the bin width.

    The last bin is closed (holds the max itself).  Plain loop, for building test inputs.
    """
    mags = [abs(float(v)) for v in values]
    top = max(mags) if top is None else top
    counts = [0] * bins
    width = top / bins
    for m in mags:
        k = int(m / width) if width > 0 else 0
        counts[min(k, bins - 1)] += 1
    return counts, width


def reference_distribution(counts: Sequence[float], i: int) -> list[float]:
    """``P``: the first ``i`` bins, everything from bin ``i`` on added to bin ``i-1``."""
    p = [float(c) for c in counts[:i]]
    outliers = 0.0
    for c in counts[i:]:
        outliers += c
    p[i - 1] += outliers
    return p


def level_bounds(i: int, levels: int = LEVELS, split: str = SPLIT) -> list[int]:
    """Where the ``levels`` levels of a candidate of ``i`` bins start: level ``j`` holds bins
    ``bounds[j] .. bounds[j+1]-1``, with ``bounds[j] = j*i/levels`` rounded down (``"floor"``:
    the project's rule) or up (``"ceil"``: bin ``k`` in level ``floor(k*levels/i)``)."""
    if split == "floor":
        return [(j * i) // levels for j in range(levels + 1)]
    if split == "ceil":
        return [-((-j * i) // levels) for j in range(levels + 1)]
    raise ValueError(f"split must be 'floor' or 'ceil', got {split!r}")


def candidate_distribution(counts: Sequence[float], i: int, levels: int = LEVELS, split: str = SPLIT) -> list[float]:
    """``Q``: bins ``0..i-1`` merged into ``levels`` levels (see ``level_bounds``), each level's
    total spread evenly over its non-empty bins; empty bins stay 0."""
    bounds = level_bounds(i, levels, split)
    q = [0.0] * i
    for j in range(levels):
        total, nonempty = 0.0, 0
        for k in range(bounds[j], bounds[j + 1]):
            total += counts[k]
            if counts[k] != 0:
                nonempty += 1
        for k in range(bounds[j], bounds[j + 1]):
            if counts[k] != 0:
                q[k] = total / nonempty
    return q


def kl_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """``KL(P‖Q)`` of the normalized distributions (natural log); ``inf`` if ``Q`` misses mass of ``P``."""
    sp, sq = sum(p), sum(q)
    if sp == 0 or sq == 0:
        return math.inf
    d = 0.0
    for pk, qk in zip(p, q):
        if pk == 0:
            continue
        if qk == 0:
            return math.inf
        pn, qn = pk / sp, qk / sq
        d += pn * math.log(pn / qn)
    return d


def kl_divergences(counts: Sequence[float], levels: int = LEVELS, split: str = SPLIT) -> dict[int, float]:
    """``{i: KL(P_i‖Q_i)}`` for every candidate ``i`` in ``levels .. len(counts)``."""
    n = len(counts)
    return {i: kl_divergence(reference_distribution(counts, i), candidate_distribution(counts, i, levels, split))
            for i in range(levels, n + 1)}


def kl_threshold_ref(counts: Sequence[float], width: float, levels: int = LEVELS, split: str = SPLIT) -> float:
    """TensorRT's entropy threshold of a histogram of ``|x|`` (``counts`` in bins of ``width``):
    ``m * width`` for the candidate ``m`` of least divergence (the first one on ties)."""
    best_i, best = None, math.inf
    for i, d in kl_divergences(counts, levels, split).items():
        if d < best:
            best_i, best = i, d
    if best_i is None:  # every candidate infinite (e.g. an empty histogram): nothing to clip
        best_i = len(counts)
    return best_i * width


def ort_entropy_threshold(counts: Sequence[float], width: float, absmax: float, levels: int = LEVELS) -> float:
    """onnxruntime's entropy threshold on the mirrored ``|x|`` histogram (test-only; see the
    module docstring for how it differs).  Needs ``onnxruntime``."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    pos = np.asarray(counts, dtype=np.int64)
    n = pos.size
    # bins: n mirrored, one empty zero bin (index n, the centre), n positive
    hist = np.concatenate([pos[::-1], np.zeros(1, dtype=np.int64), pos])
    # edges chosen so that the window ending at centre + i + 1 has upper edge i * width
    edges = (np.arange(2 * n + 2, dtype=np.float64) - (n + 1)) * width
    collector = HistogramCollector(method="entropy", symmetric=True, num_bins=hist.size,
                                   num_quantized_bins=2 * levels, percentile=99.999, scenario="same")
    _, hi = collector.get_entropy_threshold((hist, edges, np.float64(-absmax), np.float64(absmax),
                                             np.float64(absmax)), 2 * levels)
    return float(hi)


__all__ = ["BINS", "LEVELS", "abs_histogram", "candidate_distribution", "kl_divergence", "kl_divergences",
           "kl_threshold_ref", "ort_entropy_threshold", "reference_distribution"]
