"""Slow, obviously correct transcription of AlexeyAB's batch norm at inference, one scalar at a time.

Written from AlexeyAB/darknet ``src/network.c: fuse_conv_batchnorm`` and ``src/blas.c:
normalize_cpu`` (commit 59596d78), independently of ``golden/``: no golden imports, Python
floats for C ``double``, ``np.float32`` scalars for C ``float``.

``fuse_conv_batchnorm`` (every inference driver calls it after loading), per filter ``f``::

    biases[f] = biases[f] - (double)scales[f] * rolling_mean[f] / (sqrt((double)rolling_variance[f] + .00001));
    double precomputed = scales[f] / (sqrt((double)rolling_variance[f] + .00001));
    for i < size*size*c/groups:  weights[f*filter_size + i] *= precomputed;   # double product, stored float

C evaluates ``a - b * c / d`` as ``a - ((b * c) / d)``, all in double (``a`` promoted), and the
assignment rounds once to float.  Then the layer runs as a conv without batch norm:
``acc + biases[f]`` (``add_bias``).

``normalize_cpu`` (AlexeyAB; what ``[connected]`` uses, it is never fused)::

    x[i] = (x[i] - mean[f]) / (sqrt(variance[f] + .00001f));

``x - mean`` in float, ``variance + .00001f`` in float, ``sqrt`` in double (``math.h``), the
division in double, stored float; then ``scale_bias`` (float ``*``) and ``add_bias`` (float ``+``).
"""
from __future__ import annotations

import math

import numpy as np

F = np.float32
#: ``.00001`` in ``fuse_conv_batchnorm`` (a double literal).
FUSE_EPS = 0.00001
#: ``.00001f`` in AlexeyAB's ``normalize_cpu`` (a float literal).
NORMALIZE_EPS_F = F(0.00001)


def fuse_conv_batchnorm(weights: np.ndarray, biases: np.ndarray, scales: np.ndarray,
                        rolling_mean: np.ndarray, rolling_variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W', b')`` float32, exactly as AlexeyAB stores them after fusing (loop over every scalar)."""
    n = weights.shape[0]
    filter_size = int(np.prod(weights.shape[1:]))
    ws = [F(v) for v in np.ascontiguousarray(weights, dtype=np.float32).ravel()]
    new_w: list[np.float32] = []
    new_b: list[np.float32] = []
    for f in range(n):
        root = math.sqrt(float(rolling_variance[f]) + FUSE_EPS)
        new_b.append(F(float(biases[f]) - (float(scales[f]) * float(rolling_mean[f])) / root))
        precomputed = float(scales[f]) / root
        for i in range(filter_size):
            new_w.append(F(float(ws[f * filter_size + i]) * precomputed))
    return np.array(new_w, dtype=np.float32).reshape(weights.shape), np.array(new_b, dtype=np.float32)


def normalize_scale_bias(acc: np.ndarray, biases: np.ndarray, scales: np.ndarray,
                         rolling_mean: np.ndarray, rolling_variance: np.ndarray) -> np.ndarray:
    """AlexeyAB ``normalize_cpu`` → ``scale_bias`` → ``add_bias`` on ``(N, ...)`` accumulators."""
    n = acc.shape[0]
    flat = np.ascontiguousarray(acc, dtype=np.float32).reshape(n, -1)
    out = np.empty_like(flat)
    for f in range(n):
        den = math.sqrt(float(F(rolling_variance[f]) + NORMALIZE_EPS_F))
        for i in range(flat.shape[1]):
            v = F(float(F(flat[f, i]) - F(rolling_mean[f])) / den)
            out[f, i] = v * F(scales[f]) + F(biases[f])
    return out.reshape(acc.shape)
