"""The quantized model: int8 weights, int32 biases and real scales for every tensor.

``quantize(net, ranges, ...)`` turns a float ``Network`` and calibration ``Ranges`` into a
``QuantizedNetwork``.  Conventions (DESIGN §4): symmetric int8, zero point 0; activations
in [−128, 127] with one scale per tensor; weights in [−127, 127] (narrow range) with one
scale per tensor or per output channel; real value = q × scale.

Scale sharing: layers whose every output value is one of their input's values (maxpool,
upsample, reorg, dropout, cost — ``golden.layers.VALUE_PRESERVING_LAYERS`` — and a single-input
route) output the input's codes unchanged, so their output tensor *is* their input's scale
group; with ``route_shared_scale`` the inputs of a multi-input route are tied into one group
too.  Each group's scale is computed by the spec's algorithm from the merged histogram of the
group's producing tensors (``max``: ``max(|x| over the group) / QMAX``, ``QMAX = 127``).

Float → int rounding and the int8 bounds come from ``quant.numerics``.

Operand widths (``quant.precision``): a group's width is the widest an override asks of any
member (``activation_bits``; ``input_bits`` for the network input); a 16-bit group keeps the
threshold ``T`` its algorithm chose and spans it with ``s = T / 32767`` (256-fold finer steps, no
more clipping).  Weights of ``weight_bits`` use the narrow range ``±(2^(bits−1) − 1)``.

The hardware encoding of each real multiplier (multiplier + shift) is not stored here:
it depends on the ``HardwareConfig`` and is computed by ``dla`` (``dla.requant``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from golden.activations import INTEGER_ACTIVATIONS
from golden.layers import HOST_LAYERS, VALUE_PRESERVING_LAYERS, ConnectedSpec, ConvSpec, LayerSpec, RouteSpec
from golden.network import Network
from quant import numerics
from quant.algorithms import ACTIVATION_ALGORITHMS, histogram_sqnr_db, scale_for, weight_scales
from quant.calibrate import Ranges
from quant.fold import fold_bn
from quant.numerics import QMAX
from quant.precision import DEFAULT_BITS, LayerPrecision
from quant.spec import QuantSpec

Granularity = Literal["per_tensor", "per_channel"]


@dataclass
class QuantLayer:
    """Integer parameters of one conv/connected layer (after BN folding)."""

    index: int
    w_q: np.ndarray  # int8, the layer's weight shape, values in [-127, 127]
    w_scale: np.ndarray  # float64 (out,) — per channel, or all equal for per-tensor
    b_q: np.ndarray  # int32 (out,) = round_half_away(b' / (s_x * s_w))
    b_float: np.ndarray  # float64 (out,) folded bias b' (HYBRID adds it in float)
    w_float: np.ndarray  # float64 folded weights W' (for reference and CROSS)
    w_algorithm: str = "max"
    granularity: str = "per_tensor"
    w_bits: int = 8  # 4, 8 or 16: w_q is int8 for 4 and 8 bits (values in ±(2^(w_bits−1)−1)), int16 for 16


@dataclass
class QuantizedNetwork:
    """Everything INT/HYBRID execution needs besides the ``Network`` and ``HardwareConfig``."""

    net: Network
    scales: dict[int, float]  # tensor index -> activation scale (-1 = network input)
    layers: dict[int, QuantLayer] = field(default_factory=dict)
    pre_act_scales: dict[int, float] = field(default_factory=dict)
    granularity: Granularity = "per_tensor"
    calibration_images: int = 0
    algorithms: dict[int, str] = field(default_factory=dict)  # tensor -> activation algorithm used
    thresholds: dict[int, float] = field(default_factory=dict)  # tensor -> clipping threshold
    auto_table: dict[int, dict[str, float]] = field(default_factory=dict)  # tensor -> {algorithm: SQNR dB}
    spec: QuantSpec = field(default_factory=QuantSpec)
    bits: dict[int, int] = field(default_factory=dict)  # tensor index -> activation width (absent: 8)
    host: frozenset[int] = frozenset()  # layers the spec sends to the host (float), besides HOST_LAYERS
    refinements: tuple[str, ...] = ()  # post-training refinements applied (quant.refine.REFINEMENTS order)

    def input_scales(self, spec: LayerSpec) -> list[float]:
        return [self.scales[i] for i in spec.inputs]

    def tensor_bits(self, t: int) -> int:
        """Width of tensor ``t`` (``-1``: the network input) in bits: 8 unless the spec said 16."""
        return self.bits.get(t, DEFAULT_BITS)

    def on_host(self, spec: LayerSpec) -> bool:
        """Does layer ``spec`` run in float on the host (a host kind, or ``host: true`` in the spec)?"""
        return spec.kind in HOST_LAYERS or spec.index in self.host

    def precision(self, spec: LayerSpec) -> LayerPrecision:
        """Layer ``spec``'s widths (``quant.precision``)."""
        ql = self.layers.get(spec.index)
        return LayerPrecision(ql.w_bits if ql is not None else None,
                              tuple(self.tensor_bits(i) for i in spec.inputs),
                              self.tensor_bits(spec.index), self.on_host(spec))

    def precisions(self) -> dict[int, LayerPrecision]:
        """Every layer's widths, by index."""
        return {s.index: self.precision(s) for s in self.net.layers}


def is_pass_through(spec: LayerSpec) -> bool:
    """Its output values are its (only) input's values: the output shares the input's scale.
    A single-input route is one (with ``groups`` it keeps a slice of the channels)."""
    if spec.kind in VALUE_PRESERVING_LAYERS:
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
        if is_pass_through(spec):
            union(spec.index, spec.inputs[0])
        elif route_shared_scale and isinstance(spec, RouteSpec):
            for i in spec.layers:
                union(spec.index, i)
    return {i: find(i) for i in parent}


def quantize_weights(w: np.ndarray, scales: np.ndarray, bits: int = DEFAULT_BITS) -> np.ndarray:
    """``clip(round_half_away(W / s), −q, q)`` with ``q = 2^(bits−1) − 1`` (narrow range: 127 for
    int8, 7 for int4, 32767 for int16), one scale per output channel (axis 0); int8 for up to 8
    bits, int16 for 16."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    return numerics.quantize(w, scales.reshape(shape), bits=bits, narrow=True).astype(int_dtype(bits))


def int_dtype(bits: int) -> type[np.signedinteger]:
    """The numpy type holding ``bits``-wide codes: int8 up to 8 bits, int16 up to 16."""
    return np.int8 if bits <= 8 else np.int16


def _group_bits(members: list[int], net: Network, spec: QuantSpec) -> int:
    """Width of a scale group: the widest any member asks for (``activation_bits`` of an override
    naming it; the network input asks ``input_bits``), 8 if none asks."""
    asks = [spec.input_bits if t == -1 else spec.activation_bits_for(net.layers[t]) for t in members]
    return max([b for b in asks if b is not None], default=DEFAULT_BITS)


def _group_scale(members: list[int], net: Network, ranges: Ranges, spec: QuantSpec,
                 qnet: QuantizedNetwork) -> float:
    """Scale of one scale-sharing group from the merged histogram of its producing tensors."""
    producers = [t for t in members if t == -1 or not is_pass_through(net.layers[t])] or members
    head = producers[0]
    algorithm = spec.activation_for(None if head == -1 else net.layers[head])
    for t in sorted(members):  # an override naming any member (e.g. an upsample) applies to the group
        if t >= 0 and any(ov.activations is not None and ov.matches(net.layers[t]) for ov in spec.overrides):
            algorithm = spec.activation_for(net.layers[t])
    hist = None
    for t in producers:
        h = ranges.hists.get(t)
        if h is not None:
            hist = h if hist is None else hist.merge(h)
    absmax = max((ranges.absmax.get(t, 0.0) for t in members), default=0.0)
    if hist is None:  # ranges without histograms (e.g. hand-made): only max is possible
        scale, chosen, thr = (absmax / QMAX if absmax > 0 else 1.0 / QMAX), "max", absmax
    else:
        params = {"p": spec.percentile} if algorithm == "percentile" else {}
        if algorithm == "auto":
            table = {}
            for cand in ACTIVATION_ALGORITHMS:
                kw = {"p": spec.percentile} if cand == "percentile" else {}
                table[cand] = histogram_sqnr_db(hist, scale_for(hist, cand, **kw))
            chosen = max(table, key=lambda k: table[k])
            for t in members:
                qnet.auto_table[t] = table
            params = {"p": spec.percentile} if chosen == "percentile" else {}
        else:
            chosen = algorithm
        scale = scale_for(hist, chosen, **params)
        thr = scale * QMAX
    for t in members:
        qnet.algorithms[t] = chosen
        qnet.thresholds[t] = thr
    return scale


def quantize(net: Network, ranges: Ranges, granularity: Granularity = "per_tensor",
             route_shared_scale: bool = False, spec: QuantSpec | None = None) -> QuantizedNetwork:
    """Scales from calibration statistics by ``spec`` (default: ``max`` everywhere with the
    given weight ``granularity``); int8 weights and int32 biases from BN-folded floats."""
    spec = spec or QuantSpec(granularity=granularity)
    groups = _groups(net, route_shared_scale)
    members: dict[int, list[int]] = {}
    for t, g in groups.items():
        members.setdefault(g, []).append(t)
    qnet = QuantizedNetwork(net, {}, granularity=spec.granularity,  # type: ignore[arg-type]
                            calibration_images=ranges.images, spec=spec)
    for g, ts in members.items():
        scale = _group_scale(sorted(ts), net, ranges, spec, qnet)
        bits = _group_bits(ts, net, spec)
        if bits != DEFAULT_BITS:  # same threshold T = scale·QMAX, 2^(bits−8)-fold finer steps
            scale = scale * QMAX / numerics.signed_range(bits)[1]
        for t in ts:
            qnet.scales[t] = scale
            if bits != DEFAULT_BITS:
                qnet.bits[t] = bits
    qnet.host = frozenset(s.index for s in net.layers if spec.host_for(s) and s.kind not in HOST_LAYERS)
    for lspec in net.layers:
        if isinstance(lspec, (ConvSpec, ConnectedSpec)):
            w, b = fold_bn(lspec, net.params[lspec.index], net.darknet)
            w_alg, gran = spec.weights_for(lspec), spec.granularity_for(lspec)
            w_bits = spec.weight_bits_for(lspec)
            ws = weight_scales(w, w_alg, gran, w_bits)  # type: ignore[arg-type]
            s_x = qnet.scales[lspec.inputs[0]]
            b_q = numerics.quantize(b, s_x * ws, bits=32)  # int32 values, held as int64
            qnet.layers[lspec.index] = QuantLayer(lspec.index, quantize_weights(w, ws, w_bits), ws, b_q, b, w,
                                                  w_alg, gran, w_bits)
            if lspec.activation not in INTEGER_ACTIVATIONS:
                h = ranges.pre_hists.get(lspec.index)
                m = ranges.pre_act.get(lspec.index, 0.0)
                if h is not None:
                    pre = scale_for(h, spec.activation_for(lspec) if spec.activation_for(lspec) != "auto" else "max")
                else:
                    pre = m / QMAX if m > 0 else 1.0 / QMAX
                out_bits = qnet.tensor_bits(lspec.index)  # the table is indexed by the output's width
                qnet.pre_act_scales[lspec.index] = pre if out_bits == DEFAULT_BITS else \
                    pre * QMAX / numerics.signed_range(out_bits)[1]
    return qnet
