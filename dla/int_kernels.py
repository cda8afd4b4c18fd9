"""Integer kernels of the DLA (INT mode) and the per-layer plans they run from.

A ``LayerPlan`` holds what one layer needs at run time — its integer weights and int32 bias,
its encoded requantizers (``dla.requant``), its operand widths — built once from the
``QuantizedNetwork`` and the ``HardwareConfig`` by :func:`build_plan`.  Kernels are
``f(spec, inputs, plan, hw)`` on integer ``(C, H, W)`` arrays (int8, or int16 for 16-bit
tensors) returning ``(output at the layer's width, LayerStats)``.

Accumulation is exact, by one of two backends (``dla.int_backend``, chosen once per plan):
the int8 backend (onnxruntime's u8s8 ``MatMulInteger``, exact int32 sums, for 8-bit activations
with ≤ 8-bit weights on a CPU where it is verified exact), or the float backend
(:func:`gemm_plan`): im2col + GEMMs in floating point over
inner-dimension chunks short enough that every partial sum is an integer the float type holds
exactly — float32 below 2^24 (w8a8: 1024 products of |w| ≤ 127, |x| ≤ 128, each < 2^14), float64
below 2^53 (any pair with a 16-bit operand) — the chunks summed in float64 and converted to
int64.  Either way the exact sum is the same integer; then the bias is added and the result
fitted to ``acc_bits`` (saturate or wrap) — saturation is applied to the exact sum, as an
accumulator with guard bits followed by a clamp would.  Outputs are requantized and saturated to the output tensor's width (8 or 16 bits);
conversions between tensors of different widths are ``dla.arith``'s (docs/arithmetic.md).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dla import arith, fused, int_backend
from dla.config import HardwareConfig
from dla.fused import FusedAct
from dla.requant import Requant, apply, apply_select, encode
from golden.activations import INTEGER_ACTIVATIONS, activate
from golden.errors import UnsupportedError
from golden.kernels import im2col
from golden.kernels import maxpool as _maxpool
from golden.kernels import reorg as _reorg
from golden.layers import (AvgPoolSpec, ConnectedSpec, ConvSpec, Kind, LayerSpec, RouteSpec,
                           ScaleChannelsSpec, ShortcutSpec, UpsampleSpec)
from quant.numerics import INT8_BITS, QMAX, quantize_tensor, round_half_away, saturate, signed_range
from quant.qnet import QuantizedNetwork, int_dtype

LEAKY_ALPHA = 0.1
GEMM_CHUNK = 1024  # w8a8: see gemm_plan
FLOAT32_EXACT = 1 << 24  # every integer of magnitude ≤ 2^24 is a float32
FLOAT64_EXACT = 1 << 53


@dataclass
class LayerStats:
    """Per-layer event counts of one INT execution."""

    overflow: int = 0  # accumulator values outside acc_bits (before saturate/wrap)
    saturated: int = 0  # outputs clipped to the output width's range (int8 or int16)
    elements: int = 0


@dataclass
class LayerPlan:
    """Run-time data of one layer in INT mode."""

    out_scale: float
    in_scales: list[float]
    out_bits: int = INT8_BITS  # width of the output tensor
    in_bits: list[int] = field(default_factory=list)  # width of each input tensor
    w_bits: int = INT8_BITS  # conv/connected: weight width
    chunk: int = GEMM_CHUNK  # conv/connected: exact-GEMM chunk (gemm_plan)
    w_q: np.ndarray | None = None  # (N, K) integer weights as float32/float64 (gemm_plan), GEMM-ready
    int_gemm: Callable[[np.ndarray], np.ndarray] | None = None  # int8 backend (dla.int_backend), or None
    b_q: np.ndarray | None = None  # (N,) int64
    rq: Requant | None = None  # accumulator -> output (or pre-activation)
    rq_neg: Requant | None = None  # fused leaky: alpha * multiplier for negative accumulators
    in_rq: list[Requant] = field(default_factory=list)  # route/shortcut: per-input rescale
    prev_rq: Requant | None = None  # shortcut with alpha != 1: prev where nothing is added
    lut: np.ndarray | None = None  # 2^out_bits-entry table (activation_lut), indexed by q − min
    relu6_max: int = QMAX
    fused_key: tuple | None = None  # cache of the compiled kernel's arguments
    fused_args: tuple | None = None


def gemm_plan(weight_bits: int, activation_bits: int) -> tuple[type[np.floating], int]:
    """The float type and chunk length that make a GEMM of ``weight_bits`` × ``activation_bits``
    integers exact.

    A product is below ``B = 2^(wb−1) · 2^(ab−1)`` in magnitude (weights are narrow-range,
    ``|w| ≤ 2^(wb−1) − 1``; activations ``|x| ≤ 2^(ab−1)``), so a chunk of ``L`` products has every
    partial sum — in any summation order the BLAS picks — below ``L·B``; it is exact in float32
    when ``L·B ≤ 2^24`` and in float64 when ``L·B ≤ 2^53``.  float32 (twice the BLAS speed) is
    used when it allows chunks of at least 256: w8a8 → (float32, 1024), w4a8 → (float32, 16384);
    any 16-bit operand → float64 (w8a16: chunks of 2^31, i.e. never split).
    """
    bound = 1 << (weight_bits - 1 + activation_bits - 1)
    if FLOAT32_EXACT // bound >= 256:
        return np.float32, FLOAT32_EXACT // bound
    return np.float64, FLOAT64_EXACT // bound


def exact_int_gemm(w: np.ndarray, col: np.ndarray, chunk: int = GEMM_CHUNK) -> np.ndarray:
    """``w (N, K) @ col (K, P)`` for integer-valued float operands, exactly, given the ``chunk``
    of :func:`gemm_plan` for their widths (default: w8a8).

    Returns the operands' float type (``K ≤ chunk``: every partial sum is an exact integer) or
    float64 (chunk sums added exactly below 2^53) holding integers; callers convert to int64.
    """
    k = w.shape[1]
    if k <= chunk:
        return w @ col
    acc = w[:, :chunk] @ col[:chunk]
    acc = acc.astype(np.float64)
    for k0 in range(chunk, k, chunk):
        acc += w[:, k0:k0 + chunk] @ col[k0:k0 + chunk]
    return acc


BLOCK_ELEMENTS = 1 << 15  # numpy path: int64 temporaries of 256 KiB stay in cache


def _fused_args(plan: LayerPlan, act: str, hw: HardwareConfig, n: int) -> tuple | None:
    """The compiled kernel's per-layer arguments (cached on the plan); ``None`` if it cannot run it."""
    if not fused.available:
        return None
    key = (act, hw)
    if plan.fused_key == key:
        return plan.fused_args
    code = {"linear": FusedAct.LINEAR, "relu": FusedAct.RELU, "relu6": FusedAct.RELU6}.get(act)
    if act == "leaky":
        code = FusedAct.LEAKY_FUSED if hw.leaky == "fused" else FusedAct.LEAKY_SHIFT
    elif plan.lut is not None:
        code = FusedAct.LUT
    if code is None:
        return None

    def per_channel(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a.astype(np.int64), (n,)))

    neg = plan.rq_neg if plan.rq_neg is not None else plan.rq
    la, lk = arith.leaky_shift_params(hw.leaky_bits, LEAKY_ALPHA)
    lut = plan.lut.astype(np.int64) if plan.lut is not None else np.zeros(1, np.int64)
    args = (np.ascontiguousarray(np.broadcast_to(plan.b_q.astype(np.int64), (n,))), hw.acc_min, hw.acc_max,
            hw.acc_overflow == "wrap", per_channel(plan.rq.mult), per_channel(plan.rq.shift),
            per_channel(neg.mult), per_channel(neg.shift), hw.multiplier_bits,
            hw.left_shift_overflow == "saturate", *signed_range(plan.out_bits), la, lk, plan.relu6_max, lut)
    plan.fused_key, plan.fused_args = key, (fused.kernel(hw.requant, code, arith.RoundingMode.of(hw.rounding)), args)
    return plan.fused_args


def _requant_blocks(acc: np.ndarray, act: str, plan: LayerPlan, hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """Bias, accumulator fit, requantization and activation of ``acc (N, P)`` (exact integer
    values, any dtype).  Compiled in one pass when numba is there (``dla.fused``); otherwise
    numpy, column block by column block so the int64 temporaries stay in cache.  Same result."""
    n, p = acc.shape
    compiled = _fused_args(plan, act, hw, n)
    dtype = int_dtype(plan.out_bits)
    if compiled is not None and p > 0:
        run, args = compiled
        out = np.empty((n, p), dtype=dtype)
        ovf, sat = run(acc, *args, out)
        return out, LayerStats(int(ovf), int(sat), n * p)
    width = max(1, BLOCK_ELEMENTS // max(n, 1))
    out = np.empty((n, p), dtype=dtype)

    def block(c0: int) -> LayerStats:
        st = LayerStats()
        a = _accumulate(acc[:, c0:c0 + width].astype(np.int64), plan, hw, st)
        out[:, c0:c0 + width] = _activation_int(a, act, plan, hw, st)
        return st

    results = [block(c0) for c0 in range(0, p, width)]
    total = LayerStats()
    for st in results:
        total.overflow += st.overflow
        total.saturated += st.saturated
        total.elements += st.elements
    return out, total


def _accumulate(acc: np.ndarray, plan: LayerPlan, hw: HardwareConfig, stats: LayerStats) -> np.ndarray:
    """Add the bias, count and resolve overflow of the ``acc_bits`` accumulator."""
    acc = acc + plan.b_q.reshape((-1,) + (1,) * (acc.ndim - 1))
    n = arith.overflow_count(acc, hw.acc_bits)
    stats.overflow += n
    return arith.fit(acc, hw.acc_bits, hw.acc_overflow) if n else acc


def _to_width(y: np.ndarray, bits: int, stats: LayerStats) -> np.ndarray:
    """Saturate integers to a ``bits``-wide tensor (int8 or int16), counting the clipped ones."""
    n = arith.overflow_count(y, bits)
    stats.saturated += n
    stats.elements += y.size
    return (saturate(y, bits) if n else y).astype(int_dtype(bits))


def _activation_int(acc: np.ndarray, act: str, plan: LayerPlan, hw: HardwareConfig,
                    stats: LayerStats) -> np.ndarray:
    """Requantize int accumulators and apply the layer's activation in integers, at the output
    width ``plan.out_bits``."""
    bits, dtype = plan.out_bits, int_dtype(plan.out_bits)
    if act == "leaky" and hw.leaky == "fused":
        return _to_width(apply_select(acc, plan.rq, plan.rq_neg, hw), bits, stats)
    q = _to_width(apply(acc, plan.rq, hw), bits, stats)
    if act == "linear":
        return q
    if act == "leaky":
        return arith.leaky_shift(q, hw.leaky_bits, LEAKY_ALPHA).astype(dtype)
    if act == "relu":
        return np.maximum(q, 0).astype(dtype)
    if act == "relu6":
        return np.clip(q, 0, plan.relu6_max).astype(dtype)
    return plan.lut[q.astype(np.int64) - signed_range(bits)[0]]


def conv_int(spec: ConvSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
             hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """``acc = Σ x_q·w_q + b_q`` (exact, fitted to acc_bits) → requantize → activation → output width.

    The exact sum comes from the int8 backend when the plan has one (``plan.int_gemm`` on
    :func:`im2col_int8`: ``(N, P)`` int32, or float64 holding integers for a 16-bit operand), else from the float GEMMs of
    :func:`conv_accumulate`; everything after the sum is the same code."""
    if plan.int_gemm is not None:
        acc = plan.int_gemm(im2col_int8(inputs[0], spec.size, spec.stride_y, spec.stride_x, spec.padding))
    else:
        acc = conv_accumulate(spec, inputs[0].astype(plan.w_q.dtype), plan.w_q, plan.chunk)
        acc = acc.reshape(acc.shape[0], -1)
    out, stats = _requant_blocks(acc, spec.activation, plan, hw)
    return out.reshape(spec.out_shape), stats


def im2col_int8(x: np.ndarray, size: int, stride_y: int, stride_x: int, padding: int) -> np.ndarray:
    """``golden.kernels.im2col`` for integer tensors: ``(C, H, W)`` → ``(C·size·size, OH·OW)`` of x's dtype,
    rows ``(c, ky, kx)`` like OIHW weights, padded positions 0 — the int8 backend's operand."""
    c, h, w = x.shape
    oh = (h + 2 * padding - size) // stride_y + 1
    ow = (w + 2 * padding - size) // stride_x + 1
    if size == 1 and stride_x == stride_y == 1 and padding == 0:
        return np.ascontiguousarray(x).reshape(c, h * w)
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding))) if padding else x
    col = np.empty((c, size, size, oh, ow), dtype=x.dtype)
    for ky in range(size):
        for kx in range(size):
            col[:, ky, kx] = xp[:, ky:ky + stride_y * (oh - 1) + 1:stride_y, kx:kx + stride_x * (ow - 1) + 1:stride_x]
    return col.reshape(c * size * size, oh * ow)


def conv_accumulate(spec: ConvSpec, x: np.ndarray, w: np.ndarray, chunk: int = GEMM_CHUNK) -> np.ndarray:
    """Exact accumulators ``(N, OH, OW)`` (integer values; float32 or float64 holding them
    exactly, see ``exact_int_gemm``) of a conv on int-valued float input (``chunk``: see
    :func:`gemm_plan`)."""
    c = x.shape[0]
    n, oh, ow = spec.out_shape
    g = spec.groups
    if g == 1:
        col = im2col(x, spec.size, spec.stride_y, spec.stride_x, spec.padding)
        return exact_int_gemm(w, col, chunk).reshape(n, oh, ow)
    cg, ng = c // g, n // g
    out = np.empty((n, oh * ow), dtype=np.float64)
    for j in range(g):
        col = im2col(x[j * cg:(j + 1) * cg], spec.size, spec.stride_y, spec.stride_x, spec.padding)
        out[j * ng:(j + 1) * ng] = exact_int_gemm(w[j * ng:(j + 1) * ng], col, chunk)
    return out.reshape(n, oh, ow)


def connected_int(spec: ConnectedSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                  hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    if plan.int_gemm is not None:
        acc = plan.int_gemm(np.ascontiguousarray(inputs[0].reshape(-1, 1)))
    else:
        acc = exact_int_gemm(plan.w_q, inputs[0].reshape(-1, 1).astype(plan.w_q.dtype), plan.chunk)
    out, stats = _requant_blocks(acc, spec.activation, plan, hw)
    return out.reshape(spec.out_shape), stats


def maxpool_int(spec: LayerSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """Exact: the golden maxpool on int8 values (out-of-bounds positions ignored)."""
    return _maxpool(spec, inputs), LayerStats()  # type: ignore[arg-type]


def passthrough_int(spec: LayerSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                    hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    return inputs[0], LayerStats()


def upsample_int(spec: UpsampleSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                 hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    s = spec.stride
    return np.repeat(np.repeat(inputs[0], s, axis=1), s, axis=2), LayerStats()


def reorg_int(spec: LayerSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
              hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    return _reorg(spec, inputs), LayerStats()  # type: ignore[arg-type]


def route_int(spec: RouteSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
              hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """Each input rescaled to the output scale by its own requantizer and saturated to the
    output width (docs/arithmetic.md, "Operand widths"), then concatenated.  An input already on
    the output's scale and width is copied unchanged."""
    stats = LayerStats()
    parts = []
    for x, rq, s_in, b_in in zip(inputs, plan.in_rq, plan.in_scales, plan.in_bits):
        cg = x.shape[0] // spec.groups
        part = x[spec.group_id * cg:(spec.group_id + 1) * cg]
        if s_in != plan.out_scale:
            part = _to_width(apply(part.astype(np.int64), rq, hw), plan.out_bits, stats)
        elif b_in != plan.out_bits:
            part = _to_width(part.astype(np.int64), plan.out_bits, stats)
        parts.append(part)
    return np.concatenate(parts, axis=0), stats


def shortcut_int(spec: ShortcutSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                 hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """TFLite ADD in the DLA's int32 domain: each operand ``q << shortcut_shift(ls, bits)`` (a
    16-bit operand is shifted 8 less, so every operand fits int32 with the same real step) rescaled by
    its own multiplier (``α·s8_prev`` resp. ``β·s8_from`` over ``2·max``, ``s8 = s·2^(bits−8)``),
    summed, requantized to ``s_y`` at the output width (``plan.rq``; fused leaky uses
    ``plan.rq_neg`` on negative sums)."""
    stats = LayerStats()
    shifts = [arith.shortcut_shift(hw.shortcut_left_shift, b) for b in plan.in_bits]
    prev = inputs[0].astype(np.int64) << shifts[0]
    # Darknet's shortcut_cpu scales prev by alpha only where it adds (all of it when shapes match).
    total = apply(prev, plan.prev_rq if plan.prev_rq is not None else plan.in_rq[0], hw)
    prev_alpha = apply(prev, plan.in_rq[0], hw) if plan.prev_rq is not None else total
    for x, rq, ls in zip(inputs[1:], plan.in_rq[1:], shifts[1:]):
        scaled = apply(x.astype(np.int64) << ls, rq, hw)
        if x.shape == total.shape:
            total = prev_alpha + scaled if plan.prev_rq is not None else total + scaled
            continue
        stride = max(1, x.shape[2] // total.shape[2])
        sample = max(1, total.shape[2] // x.shape[2])
        c, h, w = (min(a, b) for a, b in zip(total.shape, x.shape))
        total = total.copy()
        dst = (slice(0, c), slice(0, h * sample, sample), slice(0, w * sample, sample))
        add = scaled[:c, :h * stride:stride, :w * stride:stride][:, :h, :w]
        total[dst] = prev_alpha[dst][:, :h, :w] + add if plan.prev_rq is not None else total[dst][:, :h, :w] + add
    total = saturate(total, 32)
    return _activation_int(total, spec.activation, plan, hw, stats), stats


def avgpool_int(spec: AvgPoolSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """int32 sum over H×W, requantized by ``M = s_x / (H·W·s_y)``."""
    stats = LayerStats()
    x = inputs[0]
    acc = x.reshape(x.shape[0], -1).astype(np.int64).sum(axis=1)
    return _to_width(apply(acc, plan.rq, hw), plan.out_bits, stats).reshape(spec.out_shape), stats


def scale_channels_int(spec: ScaleChannelsSpec, inputs: Sequence[np.ndarray], plan: LayerPlan,
                       hw: HardwareConfig) -> tuple[np.ndarray, LayerStats]:
    """``in[c]·from[c,y,x]`` as exact integer products, requantized by ``s_a·s_b/s_y``."""
    stats = LayerStats()
    scale, frm = inputs
    prod = frm.astype(np.int64) * (scale.astype(np.int64) if spec.scale_wh else
                                   scale.astype(np.int64).reshape(-1, 1, 1))
    return _activation_int(prod, spec.activation, plan, hw, stats), stats


INT_KERNELS: dict[Kind, Callable[..., tuple[np.ndarray, LayerStats]]] = {
    Kind.CONV: conv_int, Kind.CONNECTED: connected_int, Kind.MAXPOOL: maxpool_int,
    Kind.AVGPOOL: avgpool_int, Kind.ROUTE: route_int, Kind.SHORTCUT: shortcut_int,
    Kind.UPSAMPLE: upsample_int, Kind.REORG: reorg_int, Kind.DROPOUT: passthrough_int,
    Kind.COST: passthrough_int, Kind.SCALE_CHANNELS: scale_channels_int,
}


# ----------------------------------------------------------------------------- plans


def _act_lut(act: str, s_pre: float, s_out: float, bits: int = INT8_BITS) -> np.ndarray:
    """``LUT[q − min] = sat_b(round_half_away(act(q·s_pre) / s_out))`` for every ``bits``-wide
    ``q`` (256 entries for int8, 65536 for int16)."""
    lo, hi = signed_range(bits)
    q = np.arange(lo, hi + 1, dtype=np.float32)
    return quantize_tensor(activate(q * np.float32(s_pre), act), s_out, bits)


def _activation_plan(spec: LayerSpec, act: str, real: np.ndarray, plan: LayerPlan, qnet: QuantizedNetwork,
                     hw: HardwareConfig) -> None:
    if act in INTEGER_ACTIVATIONS:
        plan.rq = encode(real, hw)
        if act == "leaky" and hw.leaky == "fused":
            plan.rq_neg = encode(real * LEAKY_ALPHA, hw)
        if act == "relu6":
            plan.relu6_max = int(min(signed_range(plan.out_bits)[1], round_half_away(6.0 / plan.out_scale)))
        return
    if not hw.activation_lut:
        raise UnsupportedError(
            f"layer {spec.index} ({spec.kind.value}): activation '{act}' has no integer implementation "
            f"on the DLA; set 'activation_lut: true' in the hardware config to run it through a "
            f"256-entry lookup table (or use --mode hybrid)")
    s_pre = qnet.pre_act_scales.get(spec.index, plan.out_scale)
    plan.rq = encode(real * plan.out_scale / s_pre, hw)
    plan.lut = _act_lut(act, s_pre, plan.out_scale, plan.out_bits)


def _int8_backend(spec: ConvSpec | ConnectedSpec, w_q: np.ndarray, w_bits: int,
                  in_bits: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The int8 backend's GEMM for this layer, or ``None`` for the float path: when the active
    backend is ``float``, an int32 partial sum could overflow, the conv is grouped, or a 16-bit
    operand's digit split would be slower than the float GEMM (``dla.int_backend.worthwhile``)."""
    n = w_q.shape[0]
    k = w_q[0].size
    if isinstance(spec, ConvSpec) and spec.groups != 1:
        return None
    if not int_backend.eligible(w_bits, in_bits, k) or not int_backend.worthwhile(w_bits, in_bits, n, k) \
            or int_backend.active() != int_backend.ORT:
        return None
    return int_backend.exact_gemm(w_q.reshape(n, k), w_bits, in_bits)


def build_plan(spec: LayerSpec, qnet: QuantizedNetwork, hw: HardwareConfig) -> LayerPlan:
    """Everything layer ``spec`` needs to run in INT mode (raises ``UnsupportedError`` if it cannot)."""
    s_y = qnet.scales[spec.index]
    s_in = qnet.input_scales(spec)
    prec = qnet.precision(spec)
    plan = LayerPlan(s_y, s_in, prec.output_bits, list(prec.input_bits))
    if isinstance(spec, (ConvSpec, ConnectedSpec)):
        ql = qnet.layers[spec.index]
        plan.w_bits = ql.w_bits
        dtype, plan.chunk = gemm_plan(ql.w_bits, prec.input_bits[0])
        plan.w_q = ql.w_q.reshape(ql.w_q.shape[0], -1).astype(dtype)
        plan.int_gemm = _int8_backend(spec, ql.w_q, ql.w_bits, prec.input_bits[0])
        plan.b_q = ql.b_q.astype(np.int64)
        real = s_in[0] * ql.w_scale / s_y
        _activation_plan(spec, spec.activation, real, plan, qnet, hw)
    elif isinstance(spec, RouteSpec):
        plan.in_rq = [encode(s / s_y, hw) for s in s_in]
    elif isinstance(spec, ShortcutSpec):
        if spec.alpha != 1 and len(spec.from_layers) > 1:
            raise UnsupportedError(f"layer {spec.index} (shortcut): alpha={spec.alpha} with "
                                   f"{len(spec.from_layers)} 'from' layers has no Darknet definition; "
                                   "INT mode supports alpha != 1 with a single 'from' only")
        weights = [spec.alpha] + [spec.beta] * len(spec.from_layers)
        for k, b in enumerate(plan.in_bits):
            if arith.shortcut_shift(hw.shortcut_left_shift, b) < 0:
                raise UnsupportedError(
                    f"layer {spec.index} (shortcut): input {k} is {b}-bit; shortcut_left_shift="
                    f"{hw.shortcut_left_shift} is below the {b - INT8_BITS} bits it must give up to fit int32 "
                    f"(set shortcut_left_shift >= {b - INT8_BITS} in the hardware config)")
        s8 = [s * (1 << (b - INT8_BITS)) for s, b in zip(s_in, plan.in_bits)]  # real step of q << ls
        twice_max = 2 * max([w * s for w, s in zip(weights, s8)] + [s8[0]])
        plan.in_rq = [encode(w * s / twice_max, hw) for w, s in zip(weights, s8)]
        if spec.alpha != 1:
            plan.prev_rq = encode(s8[0] / twice_max, hw)
        real_out = np.array([twice_max / ((1 << hw.shortcut_left_shift) * s_y)])
        _activation_plan(spec, spec.activation, real_out, plan, qnet, hw)
    elif isinstance(spec, AvgPoolSpec):
        _, h, w = spec.in_shape
        plan.rq = encode(s_in[0] / (h * w * s_y), hw)
    elif isinstance(spec, ScaleChannelsSpec):
        _activation_plan(spec, spec.activation, np.array([s_in[0] * s_in[1] / s_y]), plan, qnet, hw)
    elif isinstance(spec, UpsampleSpec) and spec.scale != 1:
        raise UnsupportedError(f"layer {spec.index} (upsample): scale={spec.scale} is not supported in INT mode")
    return plan
