"""Streaming statistics of tensors over calibration images, in fixed memory.

* ``MinMax`` — running min/max, per tensor or per channel (axis 0).
* ``AbsHistogram`` — histogram of ``|x|`` with a fixed number of bins over ``[0, R)``.  When a
  value at or beyond ``R`` arrives, ``R`` doubles (as often as needed) and neighbouring bins
  are merged pairwise, an exact re-binning since the edges align.  So one pass over any
  number of images keeps ``bins`` counters per tensor, whatever the data; the range ends
  within a factor 2 of the true max, i.e. at least ``bins/2`` bins cover ``[0, max]``.

Neither keeps activations: a network's statistics over 1,000 images cost the same memory
as over one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_BINS = 2048


@dataclass
class MinMax:
    per_channel: bool = False
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def update(self, x: np.ndarray) -> None:
        if self.per_channel:
            flat = x.reshape(x.shape[0], -1)
            lo, hi = flat.min(axis=1), flat.max(axis=1)
        else:
            lo, hi = np.array([x.min()]), np.array([x.max()])
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)

    @property
    def absmax(self) -> np.ndarray:
        if self.lo is None:
            return np.zeros(1)
        return np.maximum(np.abs(self.lo), np.abs(self.hi))


@dataclass
class AbsHistogram:
    """Histogram of ``|x|``: ``counts[i]`` values in ``[i·w, (i+1)·w)``, ``w = range/bins``."""

    bins: int = DEFAULT_BINS
    range: float = 0.0  # 0 until the first non-zero value
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    zeros: int = 0  # exact zeros (kept apart: they need no range)
    total: int = 0
    absmax: float = 0.0

    def __post_init__(self) -> None:
        if self.counts.size == 0:
            self.counts = np.zeros(self.bins, dtype=np.int64)

    @property
    def width(self) -> float:
        return self.range / self.bins if self.range > 0 else 0.0

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(0.0, self.range, self.bins + 1)

    def _grow(self, needed: float) -> None:
        if self.range == 0.0:
            # First range: the next power of two above the max, so later doublings stay aligned.
            self.range = float(2.0 ** np.ceil(np.log2(needed * (1 + 1e-12))))
            if self.range <= needed:
                self.range *= 2
            return
        while self.range <= needed:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.concatenate([merged, np.zeros(self.bins // 2, dtype=np.int64)])
            self.range *= 2

    def update(self, x: np.ndarray) -> None:
        a = np.abs(x.astype(np.float64, copy=False)).reshape(-1)
        self.total += a.size
        nz = a[a > 0]
        self.zeros += a.size - nz.size
        if nz.size == 0:
            return
        m = float(nz.max())
        self.absmax = max(self.absmax, m)
        if m >= self.range:
            self._grow(m)
        idx = np.minimum((nz * (self.bins / self.range)).astype(np.int64), self.bins - 1)
        self.counts += np.bincount(idx, minlength=self.bins)

    def merge(self, other: AbsHistogram) -> AbsHistogram:
        """A histogram of both data sets (ranges aligned by doubling the smaller)."""
        out = AbsHistogram(self.bins, self.range, self.counts.copy(), self.zeros, self.total, self.absmax)
        o = AbsHistogram(other.bins, other.range, other.counts.copy(), other.zeros, other.total, other.absmax)
        if o.range > out.range:
            out, o = o, out
        if o.range > 0:
            while o.range < out.range:
                merged = o.counts.reshape(-1, 2).sum(axis=1)
                o.counts = np.concatenate([merged, np.zeros(o.bins // 2, dtype=np.int64)])
                o.range *= 2
            out.counts += o.counts
        out.zeros += o.zeros
        out.total += o.total
        out.absmax = max(out.absmax, o.absmax)
        return out

    def to_dict(self) -> dict:
        return {"bins": self.bins, "range": self.range, "counts": self.counts.tolist(), "zeros": self.zeros,
                "total": self.total, "absmax": self.absmax}

    @classmethod
    def from_dict(cls, d: dict) -> AbsHistogram:
        return cls(d["bins"], d["range"], np.array(d["counts"], dtype=np.int64), d["zeros"], d["total"], d["absmax"])
