"""Memory side of the cycle model: tiling to fit the on-chip buffers, and DRAM traffic.

Tiling rule (weight stationary; operands at the layer's widths, ``quant.precision``: a
``b``-bit value takes ``b/8`` bytes, int4 weights two per byte — ``bytes_of``; accumulators
and biases int32):

* the **weight buffer** holds all weights of one output-channel block of ``B`` filters
  (``bytes_of(W·B, weight_bits)`` bytes) plus its ``4·B`` bytes of bias, double-buffered (half
  the buffer each); ``B = C``, or ``n·C`` when the pair packs ``n`` filters per PE
  (``passes = 1/n``, ``dla.cycles.compute.array_passes``);
* a **pixel tile** is a band of ``t`` output rows (all output columns); it needs
  ``bytes_of(((t − 1)·stride + kh) · W_in · C_in, input_bits)`` input bytes (the halo rows
  included) in half the **input buffer**, and ``t · OW · B · 4`` accumulator bytes in half the
  **output buffer**;
* ``t`` is the largest band that fits both; a layer where even ``t = 1`` (or one weight
  block) does not fit is refused, naming the layer and the minimum size needed.

Loop order and traffic::

    for each output-channel block (≤ B filters):      # weights read once per block
        load its weights and biases
        for each band of t output rows:                # inputs re-read once per channel block
            load the band's input rows (with halo)
            compute ceil(W/R) folds over t·OW pixels
            requantize, write t·OW·(≤B) outputs (output_bits each)

Transfer time of ``b`` bytes: ``dram_latency_cycles + ceil(b / dram_bytes_per_cycle)``.
Double buffering overlaps tile ``i``'s compute with tile ``i+1``'s loads and tile
``i−1``'s stores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dla.config import HardwareConfig
from dla.cycles.compute import array_passes
from golden.errors import UserInputError
from golden.layers import ConnectedSpec, ConvSpec
from quant.precision import LayerPrecision, bytes_of, default_precision


class BufferTooSmall(UserInputError):
    """Raised when not even one tile of a layer fits the configured buffers."""


@dataclass(frozen=True)
class Tiling:
    channel_blocks: int
    band_rows: int  # t: output rows per pixel tile
    bands: int
    input_bytes_per_band: int  # the largest band (halo included)
    weight_bytes_per_block: int
    acc_bytes_per_band: int


def half_buffer_bytes(kib: int) -> int:
    """Bytes of one half of a double-buffered ``kib`` KiB buffer: what one tile may occupy
    while the other half is being loaded (or stored)."""
    return kib * 1024 // 2


def transfer_cycles(nbytes: int, hw: HardwareConfig) -> int:
    if nbytes <= 0:
        return 0
    return hw.dram_latency_cycles + math.ceil(nbytes / hw.dram_bytes_per_cycle)


def tile_conv(spec: ConvSpec | ConnectedSpec, hw: HardwareConfig, precision: LayerPrecision | None = None) -> Tiling:
    """The tiling of conv/connected layer ``spec`` on the array at ``precision`` (default all
    int8); ``BufferTooSmall`` if one block or one output row does not fit,
    ``UnsupportedPrecision`` if the array does not run the layer's pair."""
    prec = precision if precision is not None else default_precision(spec)
    _, _, pack = array_passes(spec, prec, hw)
    w_bits, in_bits = prec.weight_bits, prec.input_bits[0]
    assert w_bits is not None  # array_passes refused a layer without a MAC pair
    kib = 1024  # bytes per KiB, for the sizes named in BufferTooSmall
    c_in = spec.in_shape[0] if isinstance(spec, ConvSpec) else spec.n_inputs
    _, in_h, in_w = spec.in_shape if isinstance(spec, ConvSpec) else (c_in, 1, 1)
    n, oh, ow = spec.out_shape
    k = spec.size if isinstance(spec, ConvSpec) else 1
    stride = spec.stride_y if isinstance(spec, ConvSpec) else 1
    groups = spec.groups if isinstance(spec, ConvSpec) else 1
    window = k * k * (c_in // groups)
    per_group = n // groups
    cols = min(pack * hw.cols, per_group)
    w_block = bytes_of(window * cols, w_bits) + 4 * cols
    in_w_pad = in_w + 2 * (spec.padding if isinstance(spec, ConvSpec) else 0)
    half_in, half_w, half_out = (half_buffer_bytes(hw.input_buffer_kib), half_buffer_bytes(hw.weight_buffer_kib),
                                 half_buffer_bytes(hw.output_buffer_kib))
    if w_block > half_w:
        raise BufferTooSmall(f"layer {spec.index} ({spec.kind.value}): one block of {cols} filters needs "
                             f"{w_block} weight bytes; weight_buffer_kib must be at least "
                             f"{math.ceil(2 * w_block / kib)} (is {hw.weight_buffer_kib})")

    def in_bytes(t: int) -> int:
        return bytes_of(((t - 1) * stride + k) * in_w_pad * c_in if isinstance(spec, ConvSpec) else c_in, in_bits)

    def acc_bytes(t: int) -> int:
        return t * ow * cols * 4

    short = []
    if in_bytes(1) > half_in:
        short.append(f"input_buffer_kib must be at least {math.ceil(2 * in_bytes(1) / kib)} (is {hw.input_buffer_kib}) "
                     f"for {in_bytes(1)} input bytes")
    if acc_bytes(1) > half_out:
        short.append(f"output_buffer_kib must be at least {math.ceil(2 * acc_bytes(1) / kib)} "
                     f"(is {hw.output_buffer_kib}) for {acc_bytes(1)} accumulator bytes")
    if short:
        raise BufferTooSmall(f"layer {spec.index} ({spec.kind.value}): one output row does not fit (double-buffered): "
                             + "; ".join(short))
    t = 1
    lo, hi = 1, oh
    while lo <= hi:  # largest band that fits both halves
        mid = (lo + hi) // 2
        if in_bytes(mid) <= half_in and acc_bytes(mid) <= half_out:
            t, lo = mid, mid + 1
        else:
            hi = mid - 1
    # channel blocks never straddle groups: each group's K_g filters are cut into blocks of <= C
    return Tiling(groups * math.ceil(per_group / cols), t, math.ceil(oh / t), in_bytes(t), w_block, acc_bytes(t))
