"""Weight scales: ``max`` or ``mse``, per tensor or per output channel (axis 0).

``max``: ``s = max|W| / QMAX`` (``QMAX = 127``, ``quant.numerics``).  ``mse``: for each channel
(or the tensor) the threshold among ``f·max|W|``, ``f`` = 0.50, 0.51, …, 1.00, that minimises
``Σ (W − q(W))²`` with ``q(w) = clip(round_half_away(w/s), −127, 127)·s`` — the weights themselves, no histogram.
All-zero channels get scale 1 (no division by zero; their weights quantize to 0).
At ``bits`` other than 8 (int4, int16 weights) ``QMAX`` becomes ``2^(bits−1) − 1`` (7, 32767):
the same rules on that narrow range.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from golden.errors import UserInputError
from quant.numerics import INT8_BITS, dequantize, quantize, signed_range

WEIGHT_ALGORITHMS = ("max", "mse")


def _q(w: np.ndarray, s: np.ndarray, bits: int) -> np.ndarray:
    """The weights as the integer model represents them: quantized (narrow range) and scaled back."""
    return dequantize(quantize(w, s, bits=bits, narrow=True), s)


def weight_scales(w: np.ndarray, algorithm: str = "max",
                  granularity: Literal["per_tensor", "per_channel"] = "per_tensor",
                  bits: int = INT8_BITS) -> np.ndarray:
    """One scale per output channel (all equal for per-tensor), float64, for ``bits``-wide weights."""
    qmax = signed_range(bits)[1]
    if algorithm not in WEIGHT_ALGORITHMS:
        raise UserInputError(f"unknown weight algorithm '{algorithm}' (valid: {', '.join(WEIGHT_ALGORITHMS)})")
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    rows = flat if granularity == "per_channel" else flat.reshape(1, -1)
    amax = np.abs(rows).max(axis=1)
    if algorithm == "max":
        best = amax
    else:
        fracs = np.linspace(0.5, 1.0, 51)
        best = amax.copy()
        best_err = np.full(rows.shape[0], np.inf)
        for f in fracs:
            t = amax * f
            s = np.where(t > 0, t / qmax, 1.0)[:, None]
            err = ((rows - _q(rows, s, bits)) ** 2).sum(axis=1)
            better = err < best_err
            best[better], best_err[better] = t[better], err[better]
    scales = np.where(best > 0, best / qmax, 1.0)
    if granularity == "per_tensor":
        scales = np.full(w.shape[0], scales[0])
    return scales
