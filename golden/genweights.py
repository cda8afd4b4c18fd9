"""Realistic random weights for any cfg, deterministic for a seed.

Conv/connected weights are He-scaled normals (``std = gain·√(2/fan_in)``).  Batch-norm
statistics are not made up: the network is run once, in order, on a seeded synthetic
image, and each BN layer's ``rolling_mean``/``rolling_variance`` are set to the
per-channel mean/variance of its actual accumulator (times a little noise), as a trained
network's would be.  So activations keep a sensible range through deep networks
(yolov3's 75 convs) — which matters for quantization studies on random weights.
"""
from __future__ import annotations

import numpy as np

from golden.engine import run_layer
from golden.forks import DarknetFork
from golden.kernels import im2col
from golden.layers import ConnectedSpec, ConvSpec, RegionSpec, YoloSpec
from golden.network import LayerParams, Network


#: Most generated calibration/evaluation images one command or scenario may ask for
#: (``--calib-synthetic N``, ``images: {synthetic: N}``, ``quant.calib.synthetic``): each is a full
#: inference per mode and variant, and 1000 is hours of work already.
MAX_SYNTHETIC_IMAGES = 1000


def synthetic_image(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Random image in [0, 1] with photo-like statistics: smooth colour blobs, sharp-edged
    rectangles (edges and texture at every scale drive deep layers as photos do) and noise."""
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.full((c, h, w), 0.5, np.float32)
    for _ in range(12):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.05, 0.3) * max(h, w)
        amp = rng.uniform(-0.5, 0.5, size=(c, 1, 1)).astype(np.float32)
        img += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[None]
    for _ in range(40):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = y0 + int(rng.integers(1, max(2, h // 4))), x0 + int(rng.integers(1, max(2, w // 4)))
        img[:, y0:y1, x0:x1] = rng.uniform(0, 1, size=(c, 1, 1))
    period = rng.uniform(2, 8)
    img += np.float32(0.1) * np.sin(xx / period + yy / (2 * period))[None]
    img += rng.normal(0, 0.08, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def _accumulator(spec: ConvSpec | ConnectedSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pre-BN accumulator, ``(N, positions)`` — only used to pick BN statistics."""
    if isinstance(spec, ConnectedSpec):
        return (w @ x.reshape(-1))[:, None]
    g, n = spec.groups, spec.filters
    cg, ng = x.shape[0] // g, n // g
    parts = []
    for j in range(g):
        col = im2col(x[j * cg:(j + 1) * cg], spec.size, spec.stride_y, spec.stride_x, spec.padding)
        parts.append(w[j * ng:(j + 1) * ng].reshape(ng, -1) @ col)
    return np.concatenate(parts, axis=0)


def random_weights(net: Network, seed: int = 0) -> Network:
    """Fill ``net.params`` with seeded random weights (see module docstring)."""
    rng = np.random.default_rng(seed)
    x = synthetic_image(net.input_shape, rng)
    outputs: dict[int, np.ndarray] = {-1: x}
    net.params = {}
    readers = net.consumers()
    for spec in net.layers:
        if isinstance(spec, (ConvSpec, ConnectedSpec)):
            n = spec.filters if isinstance(spec, ConvSpec) else spec.output
            shape = spec.weight_shape
            fan_in = int(np.prod(shape[1:]))
            gain = 1.0 if spec.activation == "linear" else 2.0
            w = rng.normal(0.0, np.sqrt(gain / fan_in), size=shape).astype(np.float32)
            p = LayerParams(biases=rng.normal(0.0, 0.1, n).astype(np.float32), weights=w)
            acc = _accumulator(spec, outputs[spec.index - 1], w)
            if not spec.batch_normalize:
                # No BN to normalise it: scale the weights so the output has unit spread on
                # the synthetic image, and give detection heads a low objectness prior (as
                # trained detectors have) so random weights do not "detect" everything.
                w *= np.float32(1.0 / max(float(acc.std()), 1e-6))
                _objectness_prior(net, spec, p.biases)
            else:
                mean, var = acc.mean(axis=1), acc.var(axis=1)
                p.scales = rng.uniform(0.5, 1.5, n).astype(np.float32)
                p.rolling_mean = (mean + rng.normal(0, 0.05, n) * np.sqrt(var + 1e-6)).astype(np.float32)
                p.rolling_variance = (np.maximum(var, 1e-4) * rng.uniform(0.8, 1.25, n)).astype(np.float32)
            net.params[spec.index] = p
        # Statistics always from pjreddie's BN, so a seed gives the same .weights for either fork.
        outputs[spec.index] = run_layer(net, spec, outputs, DarknetFork.PJREDDIE)
        for i in spec.inputs:  # drop what no later layer reads
            if i != -1 and max(readers[i]) <= spec.index:
                outputs.pop(i, None)
    net.weights_header = (0, 2, 0, 0)
    return net


def _objectness_prior(net: Network, spec: ConvSpec | ConnectedSpec, biases: np.ndarray) -> None:
    """If a yolo/region layer reads this conv, bias its objectness planes to -4 (σ ≈ 0.018)."""
    nxt = net.layers[spec.index + 1] if spec.index + 1 < len(net.layers) else None
    if isinstance(nxt, YoloSpec):
        per, n = 5 + nxt.classes, len(nxt.mask)
        biases[[a * per + 4 for a in range(n)]] = -4.0
    elif isinstance(nxt, RegionSpec):
        per = nxt.coords + 1 + nxt.classes
        biases[[a * per + nxt.coords for a in range(nxt.num)]] = -4.0


__all__ = ["random_weights", "synthetic_image"]
