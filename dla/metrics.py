"""Error metrics between a reference tensor (FLOAT) and a test tensor (HYBRID/INT, dequantized).

* SQNR (dB) = ``10·log10(Σ ref² / Σ (ref − test)²)`` (``inf`` when equal; ``-inf`` when ref is 0 but test is not);
* max and mean absolute error; cosine similarity ``⟨ref, test⟩ / (‖ref‖·‖test‖)`` (1 when both are 0).
All in float64.  Sums use numpy's own pairwise ``add.reduce`` rather than BLAS ``dot``: BLAS
splits a long dot product across its threads, so its last bits depend on the thread count,
and the same scenario must give the same numbers in a 1-thread Dask worker and in a 2-thread
terminal (``dla regress`` vs ``dla run``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorMetrics:
    sqnr_db: float
    max_abs: float
    mean_abs: float
    cosine: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def error_metrics(ref: np.ndarray, test: np.ndarray) -> ErrorMetrics:
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    t = np.asarray(test, dtype=np.float64).reshape(-1)
    if r.shape != t.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {test.shape}")
    d = r - t
    noise, signal = float(np.sum(d * d)), float(np.sum(r * r))
    if noise == 0:
        sqnr = math.inf
    elif signal == 0:
        sqnr = -math.inf
    else:
        sqnr = 10 * math.log10(signal / noise)
    nr, nt = math.sqrt(signal), math.sqrt(float(np.sum(t * t)))
    cos = 1.0 if nr == 0 and nt == 0 else (float(np.sum(r * t)) / (nr * nt) if nr > 0 and nt > 0 else 0.0)
    return ErrorMetrics(sqnr, float(np.max(np.abs(d))) if d.size else 0.0,
                        float(np.mean(np.abs(d))) if d.size else 0.0, cos)
