"""Batch-norm folding: the float weights and bias a conv has once BN is merged into it.

``f = γ / (√σ² + 1e-6)``, ``W' = W·f``, ``b' = β − μ·f`` — with the same ε placement as the
golden engine's BN (pjreddie's CPU ``normalize_cpu``: ε = 1e-6 *outside* the square root),
so that a folded float conv equals the golden conv up to rounding.  Computed in float64.
Without BN: ``W' = W``, ``b' = bias``.
"""
from __future__ import annotations

import numpy as np

from golden.layers import ConnectedSpec, ConvSpec
from golden.network import LayerParams

BN_EPS = 1e-6


def fold_bn(spec: ConvSpec | ConnectedSpec, p: LayerParams) -> tuple[np.ndarray, np.ndarray]:
    """``(W', b')`` in float64: ``W'`` with the layer's weight shape, ``b'`` per output."""
    w = p.weights.astype(np.float64)
    b = p.biases.astype(np.float64)
    if not spec.batch_normalize:
        return w, b
    f = p.scales.astype(np.float64) / (np.sqrt(p.rolling_variance.astype(np.float64)) + BN_EPS)
    shape = (-1,) + (1,) * (w.ndim - 1)
    return w * f.reshape(shape), b - p.rolling_mean.astype(np.float64) * f
