"""The cycle model: per layer and per network, compute vs memory, on the configured DLA.

Per conv/connected layer, in numbered steps:

1. tile it to fit the buffers (``dla.cycles.memory.tile_conv``);
2. per tile (channel block × band of output rows): compute cycles = ``ceil(W/R)`` folds of
   ``fold_cycles(pixels)`` (weight stationary; output stationary folds over the band's
   pixels instead), per group; transfer cycles of its input band, of its weight block on the
   first band of a block, and of the previous tile's int8 outputs;
3. double buffering: ``first load + Σ max(compute_i, transfer_{i+1}) + last store``, plus the
   requantizer's pipeline latency once;
4. utilization = useful MACs / (R·C·total cycles).

Other layers are memory-bound streams: maxpool reads its input, writes its output and
compares ``size²`` values per output in the pooling unit (``cols`` lanes, ``pool_latency``);
upsample, reorg, route, shortcut, avgpool, scale_channels and dropout move their bytes
(shortcut and scale_channels read two operands).  Host layers (yolo, region, softmax, cost)
take 0 DLA cycles and are reported as host work.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from dla.config import HardwareConfig
from dla.cycles.compute import fold_cycles, gemm_of
from dla.cycles.memory import half_buffer_bytes, tile_conv, transfer_cycles
from golden.layers import HOST_LAYERS, ConnectedSpec, ConvSpec, Kind, LayerSpec, MaxPoolSpec
from golden.network import Network


@dataclass(frozen=True, kw_only=True)
class LayerCycles:
    """One layer's cycles, traffic and peak buffer use (built by keyword: 17 fields)."""

    index: int
    kind: str
    macs: int
    compute_cycles: int  # MAC-array cycles streaming operands (folds × stream length)
    fill_drain_cycles: int  # weight load + pipeline skew per fold, requantizer latency
    transfer_cycles: int  # DRAM busy (sum over tiles)
    total_cycles: int  # with double buffering
    stall_cycles: int  # total − compute − fill/drain: waiting for memory
    util_pct: float  # useful MACs / (R·C·total)
    mapping_util_pct: float  # useful MACs / (R·C·compute): PE occupancy while streaming
    dram_read_bytes: int
    dram_write_bytes: int
    tiles: int
    peak_input_bytes: int  # largest input band (conv) or half the input buffer at most (streams)
    peak_weight_bytes: int  # one channel block's weights and biases
    peak_output_bytes: int  # one band's int32 accumulators
    bound: str  # "compute", "memory" or "host"

    def to_dict(self) -> dict:
        return asdict(self)


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
        return 100.0 * self.macs / (self.hw.macs_per_cycle * self.total_cycles) if self.total_cycles else 0.0

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


def conv_cycles(spec: ConvSpec | ConnectedSpec, hw: HardwareConfig) -> LayerCycles:
    g = gemm_of(spec)
    assert g is not None
    til = tile_conv(spec, hw)
    n, oh, ow = spec.out_shape
    k = spec.size if isinstance(spec, ConvSpec) else 1
    stride = spec.stride_y if isinstance(spec, ConvSpec) else 1
    row_bytes = (spec.in_shape[2] + 2 * spec.padding) * spec.in_shape[0] if isinstance(spec, ConvSpec) else 0
    busy_total, skew_total, work, loads, stores = 0, 0, [], [], []
    reads = writes = 0
    blocks_per_group = math.ceil(g.filters / hw.cols)
    for blk in range(til.channel_blocks):
        # blocks are per group (a group's K_g filters in blocks of <= C columns), so each tile
        # computes for one group: its folds are not multiplied by the number of groups
        cols_here = min(hw.cols, g.filters - (blk % blocks_per_group) * hw.cols)
        for band in range(til.bands):
            rows_here = min(til.band_rows, oh - band * til.band_rows)
            pixels = rows_here * ow
            if hw.dataflow == "weight_stationary":
                f, stream = math.ceil(g.window / hw.rows), pixels
            else:
                f, stream = math.ceil(pixels / hw.rows), g.window
            busy = f * stream
            skew = f * (fold_cycles(stream, hw.rows, hw.cols, hw.dataflow) - stream)
            busy_total, skew_total = busy_total + busy, skew_total + skew
            work.append(busy + skew)
            load = ((rows_here - 1) * stride + k) * row_bytes if isinstance(spec, ConvSpec) else spec.in_shape[0]
            if band == 0:
                load += til.weight_bytes_per_block
            loads.append(transfer_cycles(load, hw))
            out_bytes = pixels * cols_here
            stores.append(transfer_cycles(out_bytes, hw))
            reads += load
            writes += out_bytes
    total = _overlap(work, loads, stores) + hw.requant_latency
    skew_total += hw.requant_latency
    stall = total - busy_total - skew_total
    util = 100.0 * spec.macs / (hw.macs_per_cycle * total) if total else 0.0
    mapping = 100.0 * spec.macs / (hw.macs_per_cycle * busy_total) if busy_total else 0.0
    return LayerCycles(index=spec.index, kind=spec.kind.value, macs=spec.macs, compute_cycles=busy_total,
                       fill_drain_cycles=skew_total, transfer_cycles=sum(loads) + sum(stores), total_cycles=total,
                       stall_cycles=stall, util_pct=util, mapping_util_pct=mapping,
                       dram_read_bytes=reads, dram_write_bytes=writes, tiles=til.channel_blocks * til.bands,
                       peak_input_bytes=til.input_bytes_per_band, peak_weight_bytes=til.weight_bytes_per_block,
                       peak_output_bytes=til.acc_bytes_per_band,
                       bound="compute" if stall <= busy_total + skew_total else "memory")


def _elements(shape: tuple[int, int, int]) -> int:
    c, h, w = shape
    return c * h * w


def stream_cycles(spec: LayerSpec, net: Network, hw: HardwareConfig) -> LayerCycles:
    if spec.kind in HOST_LAYERS:
        return LayerCycles(index=spec.index, kind=spec.kind.value, macs=0, compute_cycles=0, fill_drain_cycles=0,
                           transfer_cycles=0, total_cycles=0, stall_cycles=0, util_pct=0.0, mapping_util_pct=0.0,
                           dram_read_bytes=0, dram_write_bytes=0, tiles=0, peak_input_bytes=0,
                           peak_weight_bytes=0, peak_output_bytes=0, bound="host")
    moves = spec.kind is not Kind.DROPOUT  # dropout is the previous buffer itself
    reads = sum(_elements(net.input_shape if i == -1 else net.layers[i].out_shape) for i in spec.inputs) if moves else 0
    writes = _elements(spec.out_shape) if moves else 0
    transfer = transfer_cycles(reads, hw) + transfer_cycles(writes, hw)
    compute = 0
    if isinstance(spec, MaxPoolSpec):  # the pooling unit compares size² values per output, cols lanes
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
                       bound="compute" if compute >= transfer else "memory")


def network_cycles(net: Network, hw: HardwareConfig) -> NetworkCycles:
    rows = []
    for spec in net.layers:
        if isinstance(spec, (ConvSpec, ConnectedSpec)):
            rows.append(conv_cycles(spec, hw))
        else:
            rows.append(stream_cycles(spec, net, hw))
    return NetworkCycles(net.name, rows, hw)
