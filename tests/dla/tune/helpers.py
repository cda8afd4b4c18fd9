"""A small seeded network with one layer made sensitive by a planted outlier (a helper module).

``planted_model(tmp, layer)`` writes ``planted.cfg`` + ``planted.weights`` (five convolutions on
a 32x32 input, seeded weights) and six synthetic PNG images, and returns their paths.  In
layer ``layer`` every filter gets one outlier weight (input channel 0, centre tap) of 10x the
layer's largest weight, and the previous layer's channel 0 is made near zero, so the outlier
adds almost nothing to the output but sets every filter's weight scale: at int8 the other
weights keep ~12 levels, at int4 none (they round to 0) and the layer's output collapses.
Every other layer loses a few dB at int4.  The right answer of a search with int8/int4
weights is therefore known: int4 everywhere except ``layer``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from golden.weights import write_weights

_CONV = "[convolutional]\nbatch_normalize={bn}\nfilters={f}\nsize={k}\nstride={s}\npad=1\nactivation={a}\n\n"
CFG = "[net]\nwidth=32\nheight=32\nchannels=3\n\n" + "".join(
    _CONV.format(bn=bn, f=f, k=k, s=s, a=a) for bn, f, k, s, a in
    [(1, 8, 3, 1, "leaky"), (1, 16, 3, 2, "leaky"), (1, 16, 3, 1, "leaky"), (1, 16, 3, 1, "leaky"),
     (0, 8, 1, 1, "linear")])
FACTOR = 10.0


def planted_model(tmp: Path, layer: int = 2, images: int = 6, seed: int = 3) -> tuple[Path, Path, Path]:
    """``(cfg, weights, image folder)`` of the planted network (see the module docstring)."""
    cfg = tmp / "planted.cfg"
    cfg.write_text(CFG)
    net = random_weights(parse_network(cfg), seed)
    spec = net.layers[layer]
    w = net.params[layer].weights.reshape(spec.filters, -1, 3, 3)
    w[:, 0, 1, 1] = FACTOR * np.abs(w).max()
    prev = net.params[layer - 1]
    prev.weights.reshape(net.layers[layer - 1].filters, -1)[0] *= 1e-3
    prev.biases[0] = 0.0
    if prev.rolling_mean is not None:  # batch norm: (w·x − mean)/σ·γ + β ≈ 0 needs mean = β = 0
        prev.rolling_mean[0] = 0.0
    write_weights(net, tmp / "planted.weights")
    folder = tmp / "images"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(images):
        x = synthetic_image(net.input_shape, rng)
        Image.fromarray((np.clip(x.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return cfg, tmp / "planted.weights", folder
