"""Adapter between a conv layer of the INT engine and the RTL core (``rtl/dla_core.v``): tiles.

A convolution is, per group, the GEMM ``(Npx × W)·(W × K)`` of ``dla.cycles.compute``.  The
core runs one tile of it per ``start``: ``cols_used ≤ C`` filters × ``pixels`` input vectors,
the window cut into ``folds = ceil(W/R)`` reduction folds (fold ``f``: window rows
``[f·R, (f+1)·R)``, the last one zero padded), partial sums kept in the core's accumulator
buffer.  :func:`conv_tiles` cuts a layer into those tiles in this loop nest::

    for g in range(groups):                       # each group is its own GEMM
        for f0 in range(0, K, C):                 # a block of ≤ C filters (columns)
            for p0 in range(0, Npx, band):        # a band of pixels (≤ MAX_PIX when folds > 1)
                tile(g, f0, p0)                   # for f in range(folds): weights, then pixels

and gives, per tile, the stimulus (weight rows, input vectors, per-lane bias and
requantizer integers) and the expected outputs, sliced from the layer's reference output
(``dla.int_kernels.conv_int`` run on the whole layer, or the caller's), with the expected
cycle count :func:`expected_cycles`.

Operand widths (the layer's ``(weight_bits, input_bits)`` pair and its output width) pick the
core's ``mode`` (:data:`MODES`, header of ``dla_core.v``): ``w8a8`` one pass per fold;
``w8a16``/``w4a16`` two digit passes per fold (the core takes each fold's int16 pixels twice and
picks the digit); ``w4a8`` two int4 weights per PE, so a column block holds up to ``2·C``
filters (``w_row`` byte ``c`` = filter ``c`` in the low nibble, filter ``C + c`` in the high
one); ``w16a8`` two weight digit passes per fold, each with its own weight phase (the lo bytes
of the int16 weights, then the hi bytes).  Outputs are int8 or, with ``out_bits = 16``, int16
(``out_wide``).

Limits (each raises ``UnsupportedError`` naming the layer):

* at most ``2^FOLD_W − 1`` folds per tile (``FOLDS_MAX``) and, with more than one fold, at
  most ``MAX_PIX`` pixels per tile (``BUFFER_PIXELS``, the core's default; the band is cut to it);
* the pairs of :data:`MODES` at the core's cost (:data:`RTL_PASSES`, which must equal
  ``HardwareConfig.passes``), outputs of 8 or 16 bits;
* activations ``linear`` and ``leaky`` (fused), the ``gemmlowp`` requantizer with
  ``rounding: half_away`` and ``left_shift_overflow: saturate``, saturating accumulators,
  biases that fit ``acc_bits`` (what ``dla_requant``/``dla_core`` implement).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dla.config import HardwareConfig
from dla.cycles import tile_cycles
from dla.int_kernels import LayerPlan, conv_int
from golden.errors import UnsupportedError
from golden.kernels import im2col
from golden.layers import ConvSpec

SHIFT_BITS = 6
"""Width of the core's signed shift ports (TFLite shift, positive = left)."""
PIXELS_MAX = (1 << 16) - 1
"""Most pixels in one tile: the core's ``pixels`` port is ``PIX_W = 16`` bits wide."""
FOLDS_MAX = (1 << 12) - 1
"""Most reduction folds in one tile: the core's ``folds`` port is ``FOLD_W = 12`` bits wide."""
BUFFER_PIXELS = 256
"""The core's ``MAX_PIX`` (accumulator buffer depth): most pixels of a tile with ``folds > 1``."""
MODES = {"w8a8": 0, "w8a16": 1, "w4a16": 1, "w4a8": 2, "w16a8": 3}
"""The core's ``mode`` port per operand pair (``w{weight_bits}a{input_bits}``)."""
RTL_PASSES = {"w8a8": 1.0, "w8a16": 2.0, "w4a16": 2.0, "w4a8": 0.5, "w16a8": 2.0}
"""What each pair costs on the core, in ``HardwareConfig.passes`` units: 2 = every fold runs
twice (digit passes), 0.5 = two filters per PE (``A16_PASSES``, ``W4_PACK`` in ``dla_core.v``)."""
PACK = 2
"""Filters per PE in ``w4a8`` (``W4_PACK``): the core has ``NQ = PACK·C`` filter lanes."""
A_W = 16
"""Width of an ``in_data`` lane (int16 activations; int8 ones sign-extended)."""
OUT_W = 16
"""Width of an ``out_data`` lane (int16 results; int8 ones sign-extended)."""


def core_parameters(hw: HardwareConfig) -> dict[str, int]:
    """The Verilog parameters of ``dla_core`` as the adapter builds it for ``hw`` (every mode)."""
    return {"ROWS": hw.rows, "COLS": hw.cols, "ACC_W": hw.acc_bits, "MULT_W": hw.multiplier_bits,
            "REQUANT_LATENCY": hw.requant_latency, "OUT_W": OUT_W, "PASSES_W8A16": 2, "PASSES_W4A16": 2,
            "PACK_W4A8": PACK, "PASSES_W16A8": 2}


def digit_passes(pair: str) -> int:
    """Passes of every fold: 2 for the int16-activation pairs (digit passes), else 1."""
    return 2 if RTL_PASSES[pair] > 1 else 1


def expected_cycles(rows_used: int, cols_used: int, pixels: int, hw: HardwareConfig, folds: int, pair: str) -> int:
    """Cycles of a tile of ``pair`` by the cycle model: ``dla.cycles.tile_cycles`` at the config's
    ``passes(w, a)`` — ``folds·n·(pixels + 2R + C − 2) + requant_latency`` for ``n`` digit passes
    per fold; a packed (``w4a8``) tile of up to ``2C`` filters costs one pass (the skew of the
    physical columns)."""
    wb, ab = (int(v) for v in pair[1:].split("a"))
    return tile_cycles(rows_used, cols_used, pixels, hw, folds, passes=hw.passes(wb, ab))


@dataclass(frozen=True, eq=False)
class Tile:
    """One ``start`` of the core: stimulus, expected outputs and expected cycles."""

    layer: int
    group: int
    filter0: int  # first filter of the tile, within the group
    pixel0: int  # first output pixel (row-major OH·OW) of the band
    rows_used: int  # window rows W (all folds; ≤ folds·R)
    cols_used: int  # filters (≤ C)
    folds: int  # reduction folds, ceil(W/R)
    weights: np.ndarray  # (folds, R, C) int8 w_row beats: [f, r, c] = w_q[filter0 + c, f·R + r]
    #                      (w4a8: low nibble that, high nibble w_q[filter0 + C + c, f·R + r];
    #                      w16a8: (2·folds, R, C), fold f's lo bytes at 2f, its hi bytes at 2f + 1); zero padded
    inputs: np.ndarray  # (folds, pixels, R) int16 values: [f, p, r] = im2col[f·R + r, pixel0 + p]; zero padded
    bias: np.ndarray  # (NQ,) int64, b_q; padded lanes 0
    mult: np.ndarray  # (NQ,) int64, M0 of the multiplier
    shift: np.ndarray  # (NQ,) int64, TFLite shift (positive = left)
    neg_mult: np.ndarray  # (NQ,) int64, M0 of alpha·M (fused leaky); = mult when not leaky
    neg_shift: np.ndarray  # (NQ,) int64
    leaky: bool
    expected: np.ndarray  # (pixels, cols_used) int64, from the layer's reference output
    expected_cycles: int  # expected_cycles(rows of the last fold, cols_used, pixels, hw, folds, pair)
    pair: str = "w8a8"  # operand widths, a key of MODES
    out_bits: int = 8  # 8 or 16 (out_wide)

    @property
    def mode(self) -> int:
        return MODES[self.pair]

    @property
    def passes(self) -> int:
        return digit_passes(self.pair)

    def input_beats(self) -> np.ndarray:
        """``(folds·passes·pixels, R)``: the ``in_data`` vectors in order, each fold's pixels
        ``passes`` times (the core picks the digit of each pass)."""
        f, p, r = self.inputs.shape
        return np.broadcast_to(self.inputs[:, None], (f, self.passes, p, r)).reshape(-1, r)

    @property
    def pixels(self) -> int:
        return self.inputs.shape[1]

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates of the tile (window rows × filters × pixels)."""
        return self.rows_used * self.cols_used * self.pixels


def pack(values: Sequence[int] | np.ndarray, bits: int) -> int:
    """Flatten integers into one unsigned bus value, element 0 in the low bits, each in two's
    complement on ``bits`` (how the core's ``COLS*8``/``ROWS*8``/``COLS*ACC_W`` ports are laid out).

    >>> hex(pack([1, -1, -128], 8))
    '0x80ff01'
    """
    mask = (1 << bits) - 1
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    word = 0
    for i, v in enumerate(np.asarray(values, dtype=np.int64).ravel().tolist()):
        if not lo <= v <= hi:
            raise ValueError(f"element {i} = {v} does not fit {bits} signed bits")
        word |= (v & mask) << (i * bits)
    return word


def unpack(word: int, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``n`` signed ``bits``-wide fields of ``word`` as int64."""
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    fields = [(word >> (i * bits)) & mask for i in range(n)]
    return np.array([f - (1 << bits) if f >= half else f for f in fields], dtype=np.int64)


def layer_widths(plan: LayerPlan) -> tuple[int, int, int]:
    """``(weight_bits, input_bits, output_bits)`` of a conv plan (``in_bits`` empty: 8, as a plan
    built by hand without widths)."""
    return int(plan.w_bits), int(plan.in_bits[0]) if plan.in_bits else 8, int(plan.out_bits)


def check_supported(spec: ConvSpec, plan: LayerPlan, hw: HardwareConfig,
                    widths: tuple[int, int, int] | None = None) -> None:
    """Raise ``UnsupportedError`` unless the core can run ``spec`` bit-exactly (module docstring)
    at ``widths`` (default: the plan's, :func:`layer_widths`)."""
    where = f"layer {spec.index} ({spec.kind.value})"
    if not isinstance(spec, ConvSpec):
        raise UnsupportedError(f"{where}: the RTL core runs convolutions only")
    wb, ab, ob = widths or layer_widths(plan)
    pair = f"w{wb}a{ab}"
    if pair not in MODES:
        raise UnsupportedError(f"{where}: operands {pair} have no mode in the core "
                               f"(it runs {', '.join(MODES)})")
    if hw.passes(wb, ab) != RTL_PASSES[pair]:
        raise UnsupportedError(f"{where}: the core runs {pair} at passes {RTL_PASSES[pair]:g}, the hardware "
                               f"config has passes_{pair} = {hw.passes(wb, ab):g} (the cycle model would not match)")
    if ob not in (8, 16):
        raise UnsupportedError(f"{where}: output width {ob} bits: the core writes 8 or 16")
    window = spec.size * spec.size * spec.in_shape[0] // spec.groups
    if -(-window // hw.rows) > FOLDS_MAX:
        raise UnsupportedError(f"{where}: window W = {window} needs {-(-window // hw.rows)} reduction folds "
                               f"on {hw.rows} rows, more than the core's {FOLDS_MAX}")
    if spec.activation not in ("linear", "leaky"):
        raise UnsupportedError(f"{where}: activation '{spec.activation}' is not in the core "
                               "(linear and fused leaky only)")
    wanted = {"requant": "gemmlowp", "rounding": "half_away", "left_shift_overflow": "saturate",
              "acc_overflow": "saturate"}
    if spec.activation == "leaky":
        wanted["leaky"] = "fused"
    for key, value in wanted.items():
        if getattr(hw, key) != value:
            raise UnsupportedError(f"{where}: the core implements {key}={value}, the config has "
                                   f"{key}={getattr(hw, key)}")
    if not 8 <= hw.acc_bits <= 32:
        raise UnsupportedError(f"{where}: acc_bits={hw.acc_bits} is outside the core's 8..32")
    if plan.b_q is None or plan.rq is None or plan.w_q is None:
        raise UnsupportedError(f"{where}: the plan has no weights/bias/requantizer")
    wlo, whi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    if plan.w_q.size and (plan.w_q.min() < wlo or plan.w_q.max() > whi):
        raise UnsupportedError(f"{where}: a weight is outside int{wb} ({int(plan.w_q.min())}..{int(plan.w_q.max())})")
    if plan.b_q.size and (plan.b_q.min() < hw.acc_min or plan.b_q.max() > hw.acc_max):
        raise UnsupportedError(f"{where}: a bias does not fit the core's {hw.acc_bits}-bit bias port "
                               f"(range {int(plan.b_q.min())}..{int(plan.b_q.max())})")
    for rq in (plan.rq, plan.rq_neg):
        if rq is None:
            continue
        lo, hi = -(1 << (SHIFT_BITS - 1)), (1 << (SHIFT_BITS - 1)) - 1
        if rq.shift.min() < lo or rq.shift.max() > hi:
            raise UnsupportedError(f"{where}: a requantizer shift is outside the core's {lo}..{hi}")


def _per_channel(a: np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, dtype=np.int64), (n,)).copy() if a.size == 1 else a.astype(np.int64)


def conv_tiles(spec: ConvSpec, plan: LayerPlan, x: np.ndarray, hw: HardwareConfig,
               band: int | None = None, widths: tuple[int, int, int] | None = None,
               reference: np.ndarray | None = None) -> list[Tile]:
    """The tiles of conv layer ``spec`` on integer input ``x (C_in, H, W)`` (loop nest in the
    module docstring); ``band`` pixels per tile at most (default: all ``OH·OW``).  ``widths``
    ``(weight_bits, input_bits, output_bits)`` default to the plan's; ``reference`` is the
    layer's expected ``(N, OH, OW)`` output (default: ``conv_int`` on ``x``)."""
    wb, ab, ob = widths or layer_widths(plan)
    check_supported(spec, plan, hw, (wb, ab, ob))
    pair = f"w{wb}a{ab}"
    if x.shape != spec.in_shape or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input must be int{ab} {spec.in_shape}, got {x.dtype} {x.shape}")
    if x.size and (int(x.min()) < -(1 << (ab - 1)) or int(x.max()) >= 1 << (ab - 1)):
        raise ValueError(f"layer {spec.index}: input values {int(x.min())}..{int(x.max())} do not fit int{ab}")
    out = conv_int(spec, [x], plan, hw)[0] if reference is None else np.asarray(reference)  # (N, OH, OW)
    if out.shape != spec.out_shape:
        raise ValueError(f"layer {spec.index}: reference output {out.shape}, expected {spec.out_shape}")
    n = spec.filters
    g, cg, ng = spec.groups, spec.in_shape[0] // spec.groups, n // spec.groups
    npx = spec.out_shape[1] * spec.out_shape[2]
    window = spec.size * spec.size * cg
    nfolds = -(-window // hw.rows)
    limit = PIXELS_MAX if nfolds == 1 else BUFFER_PIXELS
    band = min(npx, limit) if band is None else band
    if not 1 <= band <= limit:
        raise ValueError(f"layer {spec.index}: a band of {band} pixels is outside the core's 1..{limit} "
                         f"({nfolds} folds; pass a smaller band)")
    out2 = out.reshape(n, npx).astype(np.int64)  # (N, Npx)
    block = hw.cols * (PACK if pair == "w4a8" else 1)  # filters per tile
    nq = hw.cols * PACK
    mult, shift = _per_channel(plan.rq.mult, n), _per_channel(plan.rq.shift, n)
    leaky = spec.activation == "leaky"
    neg = plan.rq_neg if leaky and plan.rq_neg is not None else plan.rq
    nmult, nshift = _per_channel(neg.mult, n), _per_channel(neg.shift, n)
    w_all = plan.w_q.astype(np.int64)  # (N, W) int8 values
    tiles = []
    for j in range(g):
        col = im2col(x[j * cg:(j + 1) * cg].astype(np.float32), spec.size, spec.stride_y, spec.stride_x,
                     spec.padding).astype(np.int64)  # (W, Npx)
        assert col.shape[0] == window
        last_rows = window - (nfolds - 1) * hw.rows
        for f0 in range(0, ng, block):
            f1 = min(ng, f0 + block)
            k = f1 - f0
            chans = slice(j * ng + f0, j * ng + f1)  # global filter indices of the block

            def padded(a: np.ndarray) -> np.ndarray:
                v = np.zeros(nq, dtype=np.int64)
                v[:k] = a[chans]
                return v

            wfull = np.zeros((nfolds * hw.rows, block), dtype=np.int64)  # (folds·R, filters of the block)
            wfull[:window, :k] = w_all[chans].T
            if pair == "w4a8":  # two int4 per byte: filter c low nibble, filter C + c high nibble
                byte = (wfull[:, :hw.cols] & 0xF) | ((wfull[:, hw.cols:] & 0xF) << 4)
                wfull = np.where(byte >= 128, byte - 256, byte)
            if pair == "w16a8":  # per fold: the lo bytes (pass 0), then the hi bytes (pass 1)
                lo, hi = wfull & 0xFF, wfull >> 8
                lo = np.where(lo >= 128, lo - 256, lo)
                wfull = np.stack([lo.reshape(nfolds, hw.rows, hw.cols), hi.reshape(nfolds, hw.rows, hw.cols)], axis=1)
            weights = wfull.astype(np.int8).reshape(-1, hw.rows, hw.cols)
            for p0 in range(0, npx, band):
                p1 = min(npx, p0 + band)
                inputs = np.zeros((p1 - p0, nfolds * hw.rows), dtype=np.int16)  # (pixels, folds·R)
                inputs[:, :window] = col[:, p0:p1].T
                inputs = np.ascontiguousarray(inputs.reshape(p1 - p0, nfolds, hw.rows).transpose(1, 0, 2))
                tiles.append(Tile(
                    layer=spec.index, group=j, filter0=f0, pixel0=p0, rows_used=window, cols_used=k,
                    folds=nfolds, weights=weights, inputs=inputs, bias=padded(plan.b_q), mult=padded(mult),
                    shift=padded(shift), neg_mult=padded(nmult), neg_shift=padded(nshift), leaky=leaky,
                    expected=out2[chans, p0:p1].T.copy(),  # (pixels, cols_used)
                    expected_cycles=expected_cycles(last_rows, k, p1 - p0, hw, nfolds, pair), pair=pair,
                    out_bits=ob))
    return tiles


def assemble(spec: ConvSpec, tiles: Sequence[Tile], outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Put the cores' per-tile outputs ``(pixels, ≥ cols_used)`` back into the layer's
    ``(N, OH, OW)`` int8 output (the inverse of the slicing in :func:`conv_tiles`)."""
    n = spec.filters
    ng = n // spec.groups
    npx = spec.out_shape[1] * spec.out_shape[2]
    out = np.zeros((n, npx), dtype=np.int64)
    filled = np.zeros((n, npx), dtype=bool)
    for t, y in zip(tiles, outputs, strict=True):
        c0 = t.group * ng + t.filter0
        out[c0:c0 + t.cols_used, t.pixel0:t.pixel0 + t.pixels] = np.asarray(y)[:, :t.cols_used].T
        filled[c0:c0 + t.cols_used, t.pixel0:t.pixel0 + t.pixels] = True
    if not filled.all():
        raise ValueError(f"the tiles cover {int(filled.sum())} of {filled.size} outputs of layer {spec.index}")
    return out.reshape(spec.out_shape)


__all__ = ["A_W", "BUFFER_PIXELS", "FOLDS_MAX", "MODES", "OUT_W", "PACK", "PIXELS_MAX", "RTL_PASSES", "SHIFT_BITS",
           "Tile", "assemble", "check_supported", "conv_tiles", "core_parameters", "digit_passes",
           "expected_cycles", "layer_widths", "pack", "unpack"]
