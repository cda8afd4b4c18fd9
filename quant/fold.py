"""Batch-norm folding: the float weights and bias a conv has once BN is merged into it.

``f = γ / (√σ² + 1e-6)`` (pjreddie, ``normalize_cpu``: ε *outside* the root) or
``f = γ / √(σ² + 1e-5)`` (AlexeyAB, ``fuse_conv_batchnorm``: ε inside), chosen by the
network's Darknet fork (``golden.forks``); ``W' = W·f``, ``b' = β − μ·f``.  The same ε
placement as the golden engine's BN, so a folded float conv equals the golden conv up to
rounding.  Computed in float64.  For an AlexeyAB conv the result is exactly the float32
``(W', b')`` AlexeyAB's Darknet stores after fusing (the golden engine runs those), widened to
float64.  Without BN: ``W' = W``, ``b' = bias``.
"""
from __future__ import annotations

import numpy as np

from golden.forks import PJREDDIE_FOLD_EPS, DarknetFork, alexeyab_fused, bn_factor
from golden.layers import ConnectedSpec, ConvSpec
from golden.network import LayerParams

BN_EPS = PJREDDIE_FOLD_EPS


def fold_bn(spec: ConvSpec | ConnectedSpec, p: LayerParams,
            fork: DarknetFork) -> tuple[np.ndarray, np.ndarray]:
    """``(W', b')`` in float64: ``W'`` with the layer's weight shape, ``b'`` per output."""
    if not spec.batch_normalize:
        return p.weights.astype(np.float64), p.biases.astype(np.float64)
    if fork is DarknetFork.ALEXEYAB and isinstance(spec, ConvSpec):
        w32, b32 = alexeyab_fused(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
        return w32.astype(np.float64), b32.astype(np.float64)
    # pjreddie, and AlexeyAB's [connected] (never fused; its normalize_cpu has ε inside the root)
    w = p.weights.astype(np.float64)
    f = bn_factor(fork, p.scales, p.rolling_variance)
    shape = (-1,) + (1,) * (w.ndim - 1)
    return w * f.reshape(shape), p.biases.astype(np.float64) - p.rolling_mean.astype(np.float64) * f
