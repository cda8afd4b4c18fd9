"""The quantized model: int8 weights, int32 biases and real scales for every tensor.

``quantize(net, ranges, ...)`` turns a float ``Network`` and calibration ``Ranges`` into a
``QuantizedNetwork``.  Conventions (DESIGN §4): symmetric int8, zero point 0; activations
in [−128, 127] with one scale per tensor; weights in [−127, 127] (narrow range) with one
scale per tensor or per output channel; real value = q × scale.

Scale sharing: layers that only move data (maxpool, upsample, reorg, dropout, single-input
route without groups… see ``PASS_THROUGH``) output exactly their input's values, so their
output tensor *is* their input's scale group; with ``route_shared_scale`` the inputs of a
multi-input route are tied into one group too.  Each group's scale is
``max(|x| over the group) / 127`` (the ``max`` calibration; issue C brings the others).

The hardware encoding of each real multiplier (multiplier + shift) is not stored here:
it depends on the ``HardwareConfig`` and is computed by ``dla`` (``dla.requant``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from golden.layers import ConnectedSpec, ConvSpec, Kind, LayerSpec, RouteSpec
from golden.network import Network
from quant.calibrate import INTEGER_ACTIVATIONS, Ranges
from quant.fold import fold_bn

Granularity = Literal["per_tensor", "per_channel"]
ACT_QMAX = 127
WEIGHT_QMAX = 127

PASS_THROUGH = frozenset({Kind.MAXPOOL, Kind.UPSAMPLE, Kind.REORG, Kind.DROPOUT, Kind.COST})


@dataclass
class QuantLayer:
    """Integer parameters of one conv/connected layer (after BN folding)."""

    index: int
    w_q: np.ndarray  # int8, the layer's weight shape, values in [-127, 127]
    w_scale: np.ndarray  # float64 (out,) — per channel, or all equal for per-tensor
    b_q: np.ndarray  # int32 (out,) = round_half_away(b' / (s_x * s_w))
    b_float: np.ndarray  # float64 (out,) folded bias b' (HYBRID adds it in float)
    w_float: np.ndarray  # float64 folded weights W' (for reference and CROSS)


@dataclass
class QuantizedNetwork:
    """Everything INT/HYBRID execution needs besides the ``Network`` and ``HardwareConfig``."""

    net: Network
    scales: dict[int, float]  # tensor index -> activation scale (-1 = network input)
    layers: dict[int, QuantLayer] = field(default_factory=dict)
    pre_act_scales: dict[int, float] = field(default_factory=dict)
    granularity: Granularity = "per_tensor"
    calibration_images: int = 0

    def input_scales(self, spec: LayerSpec) -> list[float]:
        return [self.scales[i] for i in spec.inputs]


def _is_pass_through(spec: LayerSpec) -> bool:
    if spec.kind in PASS_THROUGH:
        return True
    return isinstance(spec, RouteSpec) and len(spec.layers) == 1


def _groups(net: Network, route_shared_scale: bool) -> dict[int, int]:
    """Union-find over tensors that must share one scale; returns tensor -> group root."""
    parent = {i: i for i in range(-1, len(net.layers))}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    for spec in net.layers:
        if _is_pass_through(spec):
            union(spec.index, spec.inputs[0])
        elif route_shared_scale and isinstance(spec, RouteSpec):
            for i in spec.layers:
                union(spec.index, i)
    return {i: find(i) for i in parent}


def weight_scales(w: np.ndarray, granularity: Granularity) -> np.ndarray:
    """``max|W'| / 127`` per output channel or for the whole tensor (all-zero → 1.0, no 0-division)."""
    flat = np.abs(w.reshape(w.shape[0], -1))
    per = flat.max(axis=1) if granularity == "per_channel" else np.full(w.shape[0], flat.max())
    return np.where(per > 0, per / WEIGHT_QMAX, 1.0)


def quantize_weights(w: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``clip(round_half_away(W / s), −127, 127)`` as int8."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.sign(w) * np.floor(np.abs(w / scales.reshape(shape)) + 0.5)
    return np.clip(q, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)


def quantize(net: Network, ranges: Ranges, granularity: Granularity = "per_tensor",
             route_shared_scale: bool = False) -> QuantizedNetwork:
    """Scales from calibration ranges; int8 weights and int32 biases from BN-folded floats."""
    groups = _groups(net, route_shared_scale)
    group_max: dict[int, float] = {}
    for t, m in ranges.absmax.items():
        g = groups[t]
        group_max[g] = max(group_max.get(g, 0.0), m)
    scales = {}
    for t in range(-1, len(net.layers)):
        m = group_max.get(groups[t], 0.0)
        scales[t] = m / ACT_QMAX if m > 0 else 1.0 / ACT_QMAX
    qnet = QuantizedNetwork(net, scales, granularity=granularity, calibration_images=ranges.images)
    for spec in net.layers:
        if isinstance(spec, (ConvSpec, ConnectedSpec)):
            w, b = fold_bn(spec, net.params[spec.index])
            ws = weight_scales(w, granularity)
            s_x = scales[spec.inputs[0]]
            b_q = np.sign(b) * np.floor(np.abs(b / (s_x * ws)) + 0.5)
            b_q = np.clip(b_q, -(2**31), 2**31 - 1).astype(np.int64)
            qnet.layers[spec.index] = QuantLayer(spec.index, quantize_weights(w, ws), ws, b_q, b, w)
            if spec.activation not in INTEGER_ACTIVATIONS:
                m = ranges.pre_act.get(spec.index, 0.0)
                qnet.pre_act_scales[spec.index] = m / ACT_QMAX if m > 0 else 1.0 / ACT_QMAX
    return qnet
