"""The cycle model: per layer and per network, compute vs memory, on the configured DLA.

Every layer runs at its precision (``quant.precision.LayerPrecision``: weight, input and
output widths, or the host); ``network_cycles(net, hw, precisions)`` takes them by layer
index (a ``.qnet``'s ``precisions()``), default all int8.

Per conv/connected layer on the array, in numbered steps:

1. its operand pair's cost ``p = hw.passes(weight_bits, input_bits)``
   (``dla.cycles.compute.array_passes``: ``n`` digit passes, or ``n`` filters packed per PE;
   0 = refused);
2. tile it to fit the buffers at its widths (``dla.cycles.memory.tile_conv``);
3. per tile (channel block × band of output rows): compute cycles = ``ceil(W/R)·n_passes``
   folds of ``fold_cycles(pixels)`` (weight stationary; output stationary folds over the
   band's pixels instead), per group; transfer cycles of its input band, of its weight block
   on the first band of a block, and of the previous tile's outputs — bytes at the widths;
4. double buffering: ``first load + Σ max(compute_i, transfer_{i+1}) + last store``, plus the
   requantizer's pipeline latency once;
5. utilization = useful MACs / (peak MACs at the pair × total cycles), the peak being
   ``R·C/p`` MACs per cycle (``R·C`` for w8a8).

Other layers are memory-bound streams: maxpool reads its input, writes its output and
compares ``size²`` values per output in the pooling unit (``cols`` lanes, ``pool_latency``);
upsample, reorg, route, shortcut, avgpool, scale_channels and dropout move their bytes
(shortcut and scale_channels read two operands) at their tensors' widths.  The host kinds
(yolo, region, softmax, cost) take 0 DLA cycles and are reported as host work, as before
widths existed: they post-process a frame's outputs while the DLA runs the next one.  A layer
the precision sends to the host (``host: true``) sits on the DLA's path instead: it costs the
DRAM transfer of its inputs to the host and of its output back (no MAC cycles; the host's
own compute time is not modelled).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from dla.config import HardwareConfig
from dla.cycles.compute import array_passes, fold_cycles, gemm_of
from dla.cycles.memory import half_buffer_bytes, tile_conv, transfer_cycles
from golden.layers import HOST_LAYERS, ConnectedSpec, ConvSpec, Kind, LayerSpec, MaxPoolSpec
from golden.network import Network
from quant.precision import LayerPrecision, bytes_of, default_precision


@dataclass(frozen=True, kw_only=True)
class LayerCycles:
    """One layer's cycles, traffic and peak buffer use at its precision (built by keyword)."""

    index: int
    kind: str
    macs: int
    compute_cycles: int  # MAC-array cycles streaming operands (folds × stream length)
    fill_drain_cycles: int  # weight load + pipeline skew per fold, requantizer latency
    transfer_cycles: int  # DRAM busy (sum over tiles)
    total_cycles: int  # with double buffering
    stall_cycles: int  # total − compute − fill/drain: waiting for memory
    util_pct: float  # useful MACs / ((R·C/passes)·total): of the array's peak at the layer's pair
    mapping_util_pct: float  # useful MACs / ((R·C/passes)·compute): PE occupancy while streaming
    dram_read_bytes: int
    dram_write_bytes: int
    tiles: int
    peak_input_bytes: int  # largest input band (conv) or half the input buffer at most (streams)
    peak_weight_bytes: int  # one channel block's weights and biases
    peak_output_bytes: int  # one band's int32 accumulators
    bound: str  # "compute", "memory" or "host"
    precision: LayerPrecision  # the widths the layer ran at (quant.precision)
    passes: float | None = None  # hw.passes of its MAC pair (1 = w8a8 rate); None: no MACs on the array
    weight_bytes: int = 0  # its weights at weight_bits (int4 packed) + int32 biases; 0 off the array

    @property
    def work(self) -> float:
        """Useful MACs in w8a8-MAC units (MACs × passes): what the array's ``R·C`` peak is spent on."""
        return self.macs if self.passes in (None, 1.0) else self.macs * self.passes

    def to_dict(self) -> dict:
        """Flat, JSON- and CSV-ready: every field, ``precision`` as its label, and the widths
        (``weight_bits``, ``input_bits``, ``output_bits``, ``host``) next to it."""
        d = {k: v for k, v in asdict(self).items() if k != "precision"}
        pd = self.precision.to_dict()
        d["precision"] = pd.pop("label")
        d.update(pd)
        return d


@dataclass(frozen=True)
class NetworkCycles:
    name: str
    layers: list[LayerCycles]
    hw: HardwareConfig

    @property
    def total_cycles(self) -> int:
        return sum(l.total_cycles for l in self.layers)

    @property
    def latency_ms(self) -> float:
        return self.total_cycles / (self.hw.clock_mhz * 1e3)

    @property
    def fps(self) -> float:
        return 1e3 / self.latency_ms if self.total_cycles else math.inf

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def util_pct(self) -> float:
        """Σ MACs·passes / (R·C·total): the array's peak spent on useful work, each layer's MACs
        weighted by its pair's cost (= MACs / (R·C·total) when every layer is w8a8)."""
        work = sum(l.work for l in self.layers)
        return 100.0 * work / (self.hw.macs_per_cycle * self.total_cycles) if self.total_cycles else 0.0

    @property
    def weight_bytes(self) -> int:
        """Weights and biases of every layer on the array, at their widths."""
        return sum(l.weight_bytes for l in self.layers)

    @property
    def dram_bytes(self) -> int:
        return sum(l.dram_read_bytes + l.dram_write_bytes for l in self.layers)

    def bottlenecks(self, n: int = 3) -> list[LayerCycles]:
        return sorted(self.layers, key=lambda l: -l.total_cycles)[:n]


def _overlap(compute: list[int], loads: list[int], stores: list[int]) -> int:
    """Double buffering: tile i computes while tile i+1 loads and tile i−1 stores."""
    if not compute:
        return 0
    total = loads[0]
    for i, c in enumerate(compute):
        nxt = loads[i + 1] if i + 1 < len(loads) else 0
        prev = stores[i - 1] if i > 0 else 0
        total += max(c, nxt + prev)
    return total + stores[-1]


def conv_cycles(spec: ConvSpec | ConnectedSpec, hw: HardwareConfig,
                precision: LayerPrecision | None = None) -> LayerCycles:
    """One conv/connected layer at ``precision`` (default all int8); a host precision costs its
    transfer (:func:`host_cycles`)."""
    prec = precision if precision is not None else default_precision(spec)
    _check(spec, prec)
    if prec.host:
        return host_cycles(spec, [spec.in_shape], prec, hw)
    p, n_passes, pack = array_passes(spec, prec, hw)
    g = gemm_of(spec)
    assert g is not None and prec.weight_bits is not None
    til = tile_conv(spec, hw, prec)
    n, oh, ow = spec.out_shape
    k = spec.size if isinstance(spec, ConvSpec) else 1
    stride = spec.stride_y if isinstance(spec, ConvSpec) else 1
    row_elems = (spec.in_shape[2] + 2 * spec.padding) * spec.in_shape[0] if isinstance(spec, ConvSpec) else 0
    in_bits, out_bits = prec.input_bits[0], prec.output_bits
    busy_total, skew_total, work, loads, stores = 0, 0, [], [], []
    reads = writes = 0
    block = pack * hw.cols  # filters per channel block: C, or n·C when n filters share a PE
    blocks_per_group = math.ceil(g.filters / block)
    for blk in range(til.channel_blocks):
        # blocks are per group (a group's K_g filters in blocks of <= B columns), so each tile
        # computes for one group: its folds are not multiplied by the number of groups
        cols_here = min(block, g.filters - (blk % blocks_per_group) * block)
        for band in range(til.bands):
            rows_here = min(til.band_rows, oh - band * til.band_rows)
            pixels = rows_here * ow
            if hw.dataflow == "weight_stationary":
                f, stream = math.ceil(g.window / hw.rows), pixels
            else:
                f, stream = math.ceil(pixels / hw.rows), g.window
            f *= n_passes  # digit passes: every fold again, same length
            busy = f * stream
            skew = f * (fold_cycles(stream, hw.rows, hw.cols, hw.dataflow) - stream)
            busy_total, skew_total = busy_total + busy, skew_total + skew
            work.append(busy + skew)
            # a connected layer reads its whole input (C·H·W values), as tile_conv sizes it
            load = bytes_of(((rows_here - 1) * stride + k) * row_elems if isinstance(spec, ConvSpec)
                            else spec.n_inputs, in_bits)
            if band == 0:
                load += til.weight_bytes_per_block
            loads.append(transfer_cycles(load, hw))
            out_bytes = bytes_of(pixels * cols_here, out_bits)
            stores.append(transfer_cycles(out_bytes, hw))
            reads += load
            writes += out_bytes
    total = _overlap(work, loads, stores) + hw.requant_latency
    skew_total += hw.requant_latency
    stall = total - busy_total - skew_total
    work_macs = spec.macs if p == 1.0 else spec.macs * p  # MACs in w8a8 units: the peak R·C is per w8a8 MAC
    util = 100.0 * work_macs / (hw.macs_per_cycle * total) if total else 0.0
    mapping = 100.0 * work_macs / (hw.macs_per_cycle * busy_total) if busy_total else 0.0
    n_weights = g.window * g.filters * g.groups
    return LayerCycles(index=spec.index, kind=spec.kind.value, macs=spec.macs, compute_cycles=busy_total,
                       fill_drain_cycles=skew_total, transfer_cycles=sum(loads) + sum(stores), total_cycles=total,
                       stall_cycles=stall, util_pct=util, mapping_util_pct=mapping,
                       dram_read_bytes=reads, dram_write_bytes=writes, tiles=til.channel_blocks * til.bands,
                       peak_input_bytes=til.input_bytes_per_band, peak_weight_bytes=til.weight_bytes_per_block,
                       peak_output_bytes=til.acc_bytes_per_band,
                       bound="compute" if stall <= busy_total + skew_total else "memory",
                       precision=prec, passes=p,
                       weight_bytes=bytes_of(n_weights, prec.weight_bits) + 4 * g.filters * g.groups)


def _check(spec: LayerSpec, prec: LayerPrecision) -> None:
    """A precision that does not describe ``spec`` is a caller's bug, not a user's mistake."""
    if len(prec.input_bits) != len(spec.inputs):
        raise ValueError(f"layer {spec.index} ({spec.kind.value}) has {len(spec.inputs)} input(s), its precision "
                         f"{prec.label} gives {len(prec.input_bits)} width(s)")


def host_cycles(spec: LayerSpec, in_shapes: list[tuple[int, int, int]], prec: LayerPrecision,
                hw: HardwareConfig) -> LayerCycles:
    """A layer the precision sends to the host: its inputs go to the host and its output comes
    back through DRAM at the tensors' widths (``transfer_cycles`` of each); no MAC or pooling
    cycles, no DLA weights.  The host kinds (yolo, ...) keep their 0-cycle row (see the module doc)."""
    if spec.kind in HOST_LAYERS:
        return _free_host_row(spec, prec)
    reads = sum(bytes_of(_elements(s), b) for s, b in zip(in_shapes, prec.input_bits))
    writes = bytes_of(_elements(spec.out_shape), prec.output_bits)
    transfer = transfer_cycles(reads, hw) + transfer_cycles(writes, hw)
    return LayerCycles(index=spec.index, kind=spec.kind.value, macs=0, compute_cycles=0, fill_drain_cycles=0,
                       transfer_cycles=transfer, total_cycles=transfer, stall_cycles=transfer, util_pct=0.0,
                       mapping_util_pct=0.0, dram_read_bytes=reads, dram_write_bytes=writes, tiles=0,
                       peak_input_bytes=0, peak_weight_bytes=0, peak_output_bytes=0, bound="host", precision=prec)


def _free_host_row(spec: LayerSpec, prec: LayerPrecision) -> LayerCycles:
    return LayerCycles(index=spec.index, kind=spec.kind.value, macs=0, compute_cycles=0, fill_drain_cycles=0,
                       transfer_cycles=0, total_cycles=0, stall_cycles=0, util_pct=0.0, mapping_util_pct=0.0,
                       dram_read_bytes=0, dram_write_bytes=0, tiles=0, peak_input_bytes=0,
                       peak_weight_bytes=0, peak_output_bytes=0, bound="host", precision=prec)


def _elements(shape: tuple[int, int, int]) -> int:
    c, h, w = shape
    return c * h * w


def _input_shapes(spec: LayerSpec, net: Network) -> list[tuple[int, int, int]]:
    return [net.input_shape if i == -1 else net.layers[i].out_shape for i in spec.inputs]


def stream_cycles(spec: LayerSpec, net: Network, hw: HardwareConfig,
                  precision: LayerPrecision | None = None) -> LayerCycles:
    """A layer without weights at ``precision`` (default all int8): its bytes at its tensors'
    widths; a host precision costs its transfer (:func:`host_cycles`)."""
    prec = precision if precision is not None else default_precision(spec)
    _check(spec, prec)
    if prec.host or spec.kind in HOST_LAYERS:
        return host_cycles(spec, _input_shapes(spec, net), prec, hw)
    moves = spec.kind is not Kind.DROPOUT  # dropout is the previous buffer itself
    reads = sum(bytes_of(_elements(s), b) for s, b in zip(_input_shapes(spec, net), prec.input_bits)) if moves else 0
    writes = bytes_of(_elements(spec.out_shape), prec.output_bits) if moves else 0
    transfer = transfer_cycles(reads, hw) + transfer_cycles(writes, hw)
    compute = 0
    if isinstance(spec, MaxPoolSpec):  # the pooling unit compares size² values per output, cols lanes (any width)
        compute = math.ceil(_elements(spec.out_shape) * spec.size * spec.size / hw.cols)
    latency = hw.pool_latency if isinstance(spec, MaxPoolSpec) else 0
    total = max(compute, transfer) + latency
    # The input streams through the double-buffered input buffer: at most one half of it is
    # filled while the other is consumed (the same half a conv's band must fit, memory.tile_conv).
    peak_input = min(reads, half_buffer_bytes(hw.input_buffer_kib))
    return LayerCycles(index=spec.index, kind=spec.kind.value, macs=0, compute_cycles=compute,
                       fill_drain_cycles=latency, transfer_cycles=transfer, total_cycles=total,
                       stall_cycles=total - compute - latency, util_pct=0.0, mapping_util_pct=0.0,
                       dram_read_bytes=reads, dram_write_bytes=writes, tiles=1 if moves else 0,
                       peak_input_bytes=peak_input, peak_weight_bytes=0, peak_output_bytes=0,
                       bound="compute" if compute >= transfer else "memory", precision=prec)


def network_cycles(net: Network, hw: HardwareConfig,
                   precisions: Mapping[int, LayerPrecision] | None = None) -> NetworkCycles:
    """Every layer of ``net`` on ``hw`` at ``precisions[layer index]`` (a ``.qnet``'s
    ``precisions()``); a layer absent from the mapping, or every layer when it is ``None``,
    runs at ``default_precision`` (all int8, the host kinds on the host).  A pair the array does
    not run raises ``UnsupportedPrecision`` naming the layer, the pair and the config field."""
    rows = []
    for spec in net.layers:
        prec = precisions.get(spec.index) if precisions is not None else None
        if isinstance(spec, (ConvSpec, ConnectedSpec)):
            rows.append(conv_cycles(spec, hw, prec))
        else:
            rows.append(stream_cycles(spec, net, hw, prec))
    return NetworkCycles(net.name, rows, hw)
