"""Layer-by-layer comparison of the PyTorch model with the golden engine (shared by the torch
tests; plain code, imported)."""
from __future__ import annotations

import numpy as np
import torch

from dla.eval.torch_net import DarknetTorch
from golden.engine import forward

TOL = 1e-4  # max |golden − torch| / max |golden|, per layer


def layer_errors(net, model: DarknetTorch, x: np.ndarray) -> dict[int, float]:
    """Per layer index: max |golden − torch| / max |golden| on input ``x`` (model in eval mode)."""
    golden = forward(net, x)
    model.eval()
    with torch.no_grad():
        ours = model(torch.from_numpy(x)[None], keep_all=True)
    errs = {}
    for spec in net.layers:
        a, b = golden[spec.index], ours[spec.index][0].numpy()
        assert a.shape == b.shape, spec
        errs[spec.index] = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
    return errs
