"""The PyTorch model built from a cfg computes what the golden engine computes, layer by layer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dla.datasets.shapes import make_image
from dla.eval.torch_net import DarknetTorch, maxpool_darknet
from dla.catalog import shipped_model
from golden.kernels import maxpool
from golden.layers import MaxPoolSpec, Kind
from golden.network import load_network, parse_network
from golden.weights import write_weights
from tests.dla.eval.torch_compare import TOL, layer_errors


def _randomise_bn(model: DarknetTorch, seed: int) -> None:
    """Non-trivial BN parameters and statistics, so folding/eps mistakes would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.blocks.values():
            if block.bn is None:
                block.conv.bias.normal_(0, 0.1, generator=g)
                continue
            n = block.bn.weight.shape[0]
            block.bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
            block.bn.bias.copy_(torch.randn(n, generator=g) * 0.1)
            block.bn.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            block.bn.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.05)


@pytest.mark.parametrize("name", ["shapes-yolo", "shapes-cls"])
def test_fresh_model_exported_runs_the_same_in_golden(name: str, tmp_path: Path) -> None:
    """Freshly initialised model → .weights (golden writer) → golden engine == torch eval, every layer."""
    torch.manual_seed(3)
    m = shipped_model(name)
    net = parse_network(m.cfg)
    model = DarknetTorch(net)
    _randomise_bn(model, 3)
    net.params = model.to_params()
    write_weights(net, tmp_path / "w.weights")
    loaded = load_network(m.cfg, tmp_path / "w.weights")
    for i, p in net.params.items():  # the file round trip is exact
        for k, v in p.arrays().items():
            assert np.array_equal(v, getattr(loaded.params[i], k))
    img, _ = make_image(5, 0, size=net.input_shape[1])
    x = np.asarray(img, np.float32).transpose(2, 0, 1) / np.float32(255)
    errs = layer_errors(loaded, model, np.ascontiguousarray(x))
    assert max(errs.values()) <= TOL, errs
    assert len(errs) == len(net.layers)


@pytest.mark.parametrize("name", ["shapes-yolo", "shapes-cls"])
def test_shipped_weights_run_the_same_in_torch(name: str) -> None:
    """The shipped trained model, loaded into the torch module, agrees with golden at every layer."""
    m = shipped_model(name)
    net = load_network(m.cfg, m.weights)
    model = DarknetTorch(net)
    model.load_params(net.params)
    from golden.image import load_image, prepare_input
    from dla.catalog import sample_images

    x = prepare_input(load_image(sample_images()[0]), net.input_shape, net.letter_box)
    errs = layer_errors(net, model, x)
    assert max(errs.values()) <= TOL, errs
    heads = [s.index for s in net.layers if s.kind in (Kind.YOLO, Kind.SOFTMAX)]
    assert heads and all(errs[h] <= TOL for h in heads)


@pytest.mark.parametrize("size,stride,h", [(2, 1, 6), (2, 2, 7), (3, 2, 8), (3, 1, 5)])
def test_maxpool_darknet_padding(size: int, stride: int, h: int) -> None:
    """Maxpool windows and padding exactly as the golden kernel (negative inputs: padding never wins)."""
    rng = np.random.default_rng(size * 10 + stride)
    x = -rng.random((3, h, h)).astype(np.float32) - 1
    pad = size - 1
    oh = (h + pad - size) // stride + 1
    spec = MaxPoolSpec(0, Kind.MAXPOOL, (3, h, h), (3, oh, oh), 0, size, stride, stride, pad)
    ref = maxpool(spec, [x])
    got = maxpool_darknet(torch.from_numpy(x)[None], spec)[0].numpy()
    assert np.array_equal(ref, got)
