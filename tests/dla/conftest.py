"""Fixtures shared by the tests of dla/ and its faces (found by pytest, never imported)."""
from __future__ import annotations

import numpy as np
import pytest

from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from quant import collect_ranges, quantize
from tests.paths import shared_path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """yolov3-tiny at 96x96 with seeded weights, quantized per channel on two synthetic images."""
    tmp = tmp_path_factory.mktemp("tiny")
    text = shared_path("darknet-cfg", "pjreddie", "yolov3-tiny.cfg").read_text()
    text = text.replace("width=416", "width=96").replace("height=416", "height=96")
    cfg = tmp / "yolov3-tiny.cfg"
    cfg.write_text(text)
    net = random_weights(parse_network(cfg), 5)
    rng = np.random.default_rng(2)
    qnet = quantize(net, collect_ranges(net, [synthetic_image(net.input_shape, rng) for _ in range(2)]),
                    "per_channel")
    x = synthetic_image(net.input_shape, rng)
    return net, qnet, x
