"""The FLOAT golden engine: run a ``Network`` layer by layer with Darknet's semantics.

This is the one float layer loop of the project: ``dla.engine.Engine`` runs FLOAT (and the
float layers of HYBRID and INT) through :func:`layer` and :func:`forward`, so "a layer has no
weights loaded" is checked in one place, with one message.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from golden.errors import UserInputError
from golden.forks import DarknetFork
from golden.kernels import KERNELS
from golden.layers import LayerSpec
from golden.network import Network

LayerCallback = Callable[[LayerSpec, np.ndarray], None]


def layer(net: Network, spec: LayerSpec, inputs: Sequence[np.ndarray],
          fork: DarknetFork | None = None) -> np.ndarray:
    """Layer ``spec`` of ``net`` on its float32 input tensors (one per ``spec.inputs``, same
    order), with the network's Darknet fork (``net.darknet``) unless ``fork`` overrides it.

    A layer that has parameters (conv, connected) but none loaded raises ``UserInputError``
    ``"layer N (kind) has no weights loaded"`` — the one check, before any arithmetic.
    """
    params = net.params.get(spec.index)
    if spec.n_params and params is None:
        raise UserInputError(f"layer {spec.index} ({spec.kind.value}) has no weights loaded")
    return KERNELS[spec.kind](spec, list(inputs), params, net.darknet if fork is None else fork)


def run_layer(net: Network, spec: LayerSpec, outputs: dict[int, np.ndarray],
              fork: DarknetFork | None = None) -> np.ndarray:
    """:func:`layer` on the outputs of the layers it reads (``outputs[-1]`` = network input)."""
    return layer(net, spec, [outputs[i] for i in spec.inputs], fork)


def forward(net: Network, x: np.ndarray, keep_all: bool = True,
            on_layer: LayerCallback | None = None) -> dict[int, np.ndarray]:
    """Run the whole network on one ``(C, H, W)`` float32 input.

    Returns ``{layer index: output}`` (and ``-1``: the input).  With ``keep_all=False``
    an output is dropped as soon as no later layer reads it (the network output and
    the detection heads are always kept), which bounds memory on big networks.
    ``on_layer(spec, output)`` is called after each layer, before the next one starts.
    """
    if x.shape != net.input_shape:
        raise UserInputError(f"input has shape {x.shape}, {net.name} expects {net.input_shape}")
    outputs: dict[int, np.ndarray] = {-1: np.ascontiguousarray(x, dtype=np.float32)}
    last_use: dict[int, int] = {}
    if not keep_all:
        for spec in net.layers:
            for i in spec.inputs:
                last_use[i] = spec.index
        keep = {net.output_index, *(h.index for h in net.heads)}
    for spec in net.layers:
        outputs[spec.index] = run_layer(net, spec, outputs)
        if on_layer is not None:
            on_layer(spec, outputs[spec.index])
        if not keep_all:
            for i in spec.inputs:
                if last_use.get(i) == spec.index and i not in keep:
                    outputs.pop(i, None)
    return outputs
