"""The torch module follows the network's Darknet fork at inference (AlexeyAB: ε inside the root)."""
from __future__ import annotations

import pytest

from dla.eval.torch_net import DarknetTorch
from dla.catalog import sample_images, shipped_model
from golden.image import load_image, prepare_input
from golden.network import load_network
from tests.dla.eval.torch_compare import TOL, layer_errors


@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie"])
def test_torch_eval_matches_golden_for_each_fork(fork: str) -> None:
    m = shipped_model("shapes-yolo")
    net = load_network(m.cfg, m.weights, darknet=fork)
    model = DarknetTorch(net)
    model.load_params(net.params)
    x = prepare_input(load_image(sample_images()[0]), net.input_shape, net.letter_box)
    errs = layer_errors(net, model, x)
    assert max(errs.values()) <= TOL, errs
