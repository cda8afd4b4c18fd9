"""Compute side of the cycle model: a layer as a GEMM on the R×C MAC array, and its folds.

A convolution (per group) is the GEMM ``(Npx × W) · (W × K)``: ``Npx = OH·OW`` output pixels,
``W = kh·kw·C_in/groups`` (the im2col window), ``K = filters/groups``.  On an array of
``R`` rows × ``C`` columns (``HardwareConfig.rows/cols``):

* **weight stationary** (``dataflow: weight_stationary``, the DLA default): a fold keeps
  ``≤R`` window rows × ``≤C`` filters of weights in the PEs and streams ``n`` pixels through;
  ``folds = ceil(W/R)·ceil(K/C)``, one fold takes ``n + 2R + C − 2`` cycles:
  ``R`` to shift the weights in, ``n`` input vectors, ``R − 1`` cycles of input skew (fill)
  and ``C − 1`` of output skew (drain).
* **output stationary** (``output_stationary``): a fold keeps ``≤R`` pixels × ``≤C`` filters of
  accumulators; ``folds = ceil(Npx/R)·ceil(K/C)``, one fold takes ``W + R + C − 2`` cycles.

These are the closed forms SCALE-Sim 3.0.0 implements for its ``ws``/``os`` im2col mapping
(read from its ``systolic_compute_ws/os`` demand matrices and checked row by row, Δ = 0,
against its reports in ``tests/data/scalesim/``; SCALE-Sim prints the index of the last
cycle, i.e. one less: :func:`scalesim_cycles`).

**Operand widths** (issue P; docs/cycle-model.md, "Operand widths").  A layer's MAC pair
(``w8a16`` = its weights' width × its input activations' width) costs
``p = HardwareConfig.passes(weight_bits, input_bits)`` relative to w8a8 (``p == 1``):

* ``p = n ≥ 1`` (digit passes): every fold runs ``n`` times — the fold count is multiplied
  by ``n``, the fold length is unchanged;
* ``p = 1/n`` (packing): ``n`` filters share a PE, so a fold covers ``n·C`` filters —
  ``folds = ceil(W/R)·ceil(K/(n·C))``; the fold length still uses the physical ``C`` for
  the output skew;
* ``p = 0``: the array does not run the pair — :class:`UnsupportedPrecision`.

The SCALE-Sim forms above are the w8a8 case (``p = 1``), unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dla.config import HardwareConfig
from golden.errors import UserInputError
from golden.layers import ConnectedSpec, ConvSpec, LayerSpec
from quant.precision import LayerPrecision


class UnsupportedPrecision(UserInputError):
    """Raised for a layer whose operand pair the configured array does not run (``passes_w*a* = 0``)."""


def pass_factors(passes: float) -> tuple[int, int]:
    """``(n_passes, pack)`` of a ``passes_w*a*`` value: ``n ≥ 1`` → ``(n, 1)`` (every fold ``n``
    times); ``1/n`` → ``(1, n)`` (``n`` filters per PE).  ``0`` or any other value (the config
    refuses them; a direct caller may not) → ``ValueError``."""
    if passes >= 1 and passes == int(passes):
        return int(passes), 1
    if 0 < passes < 1 and math.isfinite(1 / passes) and 1 / passes == int(1 / passes):
        return 1, int(1 / passes)
    raise ValueError(f"passes={passes} is not a whole number of passes (1, 2, ...) or a packing 1/n (0.5, 0.25, ...)")


def array_passes(spec: LayerSpec, prec: LayerPrecision, hw: HardwareConfig) -> tuple[float, int, int]:
    """``(p, n_passes, pack)`` of conv/connected layer ``spec`` run on the array at ``prec``.

    Raises :class:`UnsupportedPrecision` naming the layer, the pair and the config field when
    ``hw`` does not support the pair (``p == 0``): a cycle count for a layer the chip cannot run
    would be a made-up number."""
    pair = prec.pair
    if pair is None or prec.weight_bits is None:
        raise ValueError(f"layer {spec.index} ({spec.kind.value}): precision {prec.label} has no MAC pair")
    p = hw.passes(prec.weight_bits, prec.input_bits[0])
    if p == 0:
        # worded as dla.precision.check_precision words it for the INT engine: one message per mistake
        raise UnsupportedPrecision(
            f"layer {spec.index} ({spec.kind.value}): {pair} (int{prec.weight_bits} weights x "
            f"int{prec.input_bits[0]} activations) is not supported by the hardware config (passes_{pair} = 0); "
            f"set 'passes_{pair}' in it, or change the layer's weight_bits / the activation_bits of its input in "
            f"the quantization spec (supported: {', '.join(hw.supported_pairs())})")
    n_passes, pack = pass_factors(p)
    return p, n_passes, pack


@dataclass(frozen=True)
class Gemm:
    """The GEMM of one group of a conv/connected layer, repeated ``groups`` times."""

    npx: int  # output pixels (rows of the GEMM)
    window: int  # W = kh*kw*C_in/groups (the reduction)
    filters: int  # K = filters/groups (columns)
    groups: int

    @property
    def macs(self) -> int:
        return self.npx * self.window * self.filters * self.groups


def gemm_of(spec: LayerSpec) -> Gemm | None:
    if isinstance(spec, ConvSpec):
        _, oh, ow = spec.out_shape
        cg = spec.in_shape[0] // spec.groups
        return Gemm(oh * ow, spec.size * spec.size * cg, spec.filters // spec.groups, spec.groups)
    if isinstance(spec, ConnectedSpec):
        return Gemm(1, spec.n_inputs, spec.output, 1)
    return None


def fold_cycles(n_stream: int, rows: int, cols: int, dataflow: str) -> int:
    """Cycles of one fold: WS streams ``n_stream`` pixels, OS streams a window of ``n_stream``."""
    if dataflow == "weight_stationary":
        return n_stream + 2 * rows + cols - 2
    return n_stream + rows + cols - 2


def folds(g: Gemm, rows: int, cols: int, dataflow: str, passes: float = 1.0) -> int:
    """Folds of one group: ``ceil(first/R)·ceil(K/(pack·C))·n_passes`` (``pass_factors(passes)``)."""
    n_passes, pack = pass_factors(passes)
    first = g.window if dataflow == "weight_stationary" else g.npx
    return math.ceil(first / rows) * math.ceil(g.filters / (pack * cols)) * n_passes


def gemm_cycles(g: Gemm, rows: int, cols: int, dataflow: str, passes: float = 1.0) -> int:
    """All folds of all groups, untiled (the whole layer as one operand set), at ``passes``."""
    n = g.npx if dataflow == "weight_stationary" else g.window
    return g.groups * folds(g, rows, cols, dataflow, passes) * fold_cycles(n, rows, cols, dataflow)


def scalesim_cycles(spec: LayerSpec, rows: int, cols: int, dataflow: str) -> int:
    """What SCALE-Sim 3.0.0 reports as a conv layer's compute cycles (``ws``/``os``, im2col,
    no stalls): :func:`gemm_cycles` − 1 (it prints the last cycle's index)."""
    g = gemm_of(spec)
    assert g is not None and g.groups == 1, "SCALE-Sim models plain (ungrouped) convolutions"
    return gemm_cycles(g, rows, cols, dataflow) - 1


def tile_cycles(rows_used: int, cols_used: int, pixels: int, hw: HardwareConfig, folds: int = 1,
                passes: float = 1.0) -> int:
    """Cycles of one conv tile on the DLA core as the RTL implements it (weight stationary):
    ``folds`` reduction folds over the same ``pixels``, each ``rows_used ≤ R`` window rows ×
    ``cols_used ≤ C`` filters of weights shifted in (``R`` cycles — the shift register is always
    ``R`` deep), ``pixels`` input vectors streamed, ``R − 1`` + ``C − 1`` cycles of skew; partial
    sums stay in the core's accumulator buffer between folds; then ``requant_latency`` cycles of
    the bias/requantizer/activation pipeline for the last output, once:
    ``folds · (pixels + 2R + C − 2) + requant_latency``.

    ``passes`` is the tile's ``HardwareConfig.passes(weight_bits, activation_bits)``: ``n ≥ 1``
    runs every fold ``n`` times (``folds · n · (pixels + 2R + C − 2) + requant_latency``);
    ``1/n`` packs ``n`` filters per PE, so ``cols_used`` may reach ``n·C`` and the time is the
    w8a8 one.  ``0`` (unsupported) or a tile that does not fit → ``ValueError``."""
    n_passes, pack = pass_factors(passes)
    if not (0 < rows_used <= hw.rows and 0 < cols_used <= pack * hw.cols and pixels > 0 and folds > 0):
        raise ValueError(f"tile {rows_used}x{cols_used}x{pixels} ({folds} folds) does not fit a "
                         f"{hw.rows}x{hw.cols} array" + (f" packing {pack} filters per PE" if pack > 1 else ""))
    return folds * n_passes * fold_cycles(pixels, hw.rows, hw.cols, "weight_stationary") + hw.requant_latency
