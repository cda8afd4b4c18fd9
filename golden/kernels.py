"""Float32 kernels of every layer kind, with Darknet's semantics (CPU, inference).

Each kernel is ``f(spec, inputs, params) -> output`` on ``(C, H, W)`` float32 arrays
and never writes into its inputs.  Convolutions use im2col + one BLAS GEMM, so the
summation order differs from Darknet's sequential ``gemm_nn`` in the last bits
(float precision); everything else follows Darknet's order of operations.
The slow, obviously correct nested-loop versions live in ``tests/reference/``.

``conv`` and ``connected`` take the Darknet fork (``golden.forks.DarknetFork``) as a fourth
argument, which decides the batch-norm formula; every kernel accepts it so that engines call
``KERNELS[kind](spec, inputs, params, net.darknet)`` uniformly.  Omitted, it is pjreddie: the
three-argument call every caller made before the fork switch, with unchanged results.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from golden.activations import activate
from golden.forks import ALEXEYAB_BN_EPS, DarknetFork, PJREDDIE_BN_EPS, alexeyab_fused
from golden.layers import (AvgPoolSpec, ConnectedSpec, ConvSpec, Kind, LayerSpec, MaxPoolSpec,
                           RegionSpec, ReorgSpec, RouteSpec, ScaleChannelsSpec, ShortcutSpec,
                           SoftmaxSpec, UpsampleSpec, YoloSpec)
from golden.network import LayerParams

_F = np.float32
#: pjreddie's CPU batch norm: x_hat = (x - mean) / (sqrt(var) + 1e-6)  (normalize_cpu)
BN_EPS = PJREDDIE_BN_EPS


def im2col(x: np.ndarray, size: int, stride_y: int, stride_x: int, padding: int) -> np.ndarray:
    """``(C, H, W)`` → ``(C*size*size, OH*OW)``, rows ordered ``(c, ky, kx)`` like OIHW weights.

    Padded positions read 0 (``im2col_get_pixel``).  Built from ``size*size`` slab copies
    whose inner rows are contiguous, which is much faster than a 6-D strided copy.
    """
    c, h, w = x.shape
    oh = (h + 2 * padding - size) // stride_y + 1
    ow = (w + 2 * padding - size) // stride_x + 1
    if size == 1 and stride_x == stride_y == 1 and padding == 0:
        return x.reshape(c, h * w)
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding))) if padding else x
    col = np.empty((c, size, size, oh, ow), dtype=np.float32)  # (C, ky, kx, OH, OW)
    for ky in range(size):
        for kx in range(size):
            col[:, ky, kx] = xp[:, ky:ky + stride_y * (oh - 1) + 1:stride_y,
                                kx:kx + stride_x * (ow - 1) + 1:stride_x]
    return col.reshape(c * size * size, oh * ow)


def _bias_or_bn(out: np.ndarray, p: LayerParams, batch_normalize: bool,
                fork: DarknetFork = DarknetFork.PJREDDIE) -> np.ndarray:
    """``out`` is ``(N, ...)`` accumulators; applies BN (rolling stats) or bias, in place.

    pjreddie (``normalize_cpu``): ``(x − μ)`` in float, ``/ (√σ² + 1e-6)`` in double rounded once,
    ``·γ``, ``+β`` in float.  AlexeyAB unfused (``normalize_cpu``, used by ``[connected]``):
    ``σ² + 1e-5f`` in float, ``(x − μ) / √(…)`` in double rounded once, ``·γ``, ``+β``.
    """
    shape = (-1,) + (1,) * (out.ndim - 1)
    if batch_normalize:
        if fork is DarknetFork.ALEXEYAB:
            denom = np.sqrt((p.rolling_variance + ALEXEYAB_BN_EPS).astype(np.float64))
        else:
            denom = np.sqrt(p.rolling_variance.astype(np.float64)) + float(BN_EPS)  # double, as normalize_cpu
        out -= p.rolling_mean.reshape(shape)                                    # float
        np.divide(out, denom.reshape(shape), out=out, casting="same_kind")  # in double, rounded once on the store
        out *= p.scales.reshape(shape)
    out += p.biases.reshape(shape)
    return out


def conv_params(spec: ConvSpec, p: LayerParams, fork: DarknetFork) -> tuple[np.ndarray, np.ndarray | None]:
    """The float32 ``(weights, bias)`` the conv runs with under ``fork``.

    AlexeyAB fuses BN into the conv before running (``fuse_conv_batchnorm``), so its conv is
    ``acc(W') + b'`` (returned as ``(W', b')``); otherwise the stored weights and ``None`` (BN or
    bias applied after the sum by :func:`_bias_or_bn`).
    """
    if fork is DarknetFork.ALEXEYAB and spec.batch_normalize:
        return alexeyab_fused(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
    return p.weights, None


def conv(spec: ConvSpec, inputs: Sequence[np.ndarray], p: LayerParams,
         fork: DarknetFork = DarknetFork.PJREDDIE) -> np.ndarray:
    """Convolution → batch norm (or bias) → activation (``forward_convolutional_layer``).

    ``fork`` chooses the BN semantics (``golden.forks``): pjreddie's unfused BN after the sum,
    or AlexeyAB's BN folded into the weights and bias before it.

    ``out[o, y, x] = Σ_{ci,ky,kx} W[o, ci, ky, kx] · X[g·C/G + ci, y·s + ky − pad, x·s + kx − pad]``
    with zero padding, ``g`` the group of ``o``.
    """
    x = inputs[0]
    c, _, _ = x.shape
    n, oh, ow = spec.out_shape
    g, k = spec.groups, spec.size
    weights, fused_bias = conv_params(spec, p, fork)
    if g == 1:
        col = im2col(x, k, spec.stride_y, spec.stride_x, spec.padding)
        out = weights.reshape(n, -1) @ col  # (N, C*k*k) @ (C*k*k, OH*OW)
    elif g == c == n:  # depthwise: per-channel shifted multiply-add, no GEMM
        xp = np.pad(x, ((0, 0), (spec.padding,) * 2, (spec.padding,) * 2)) if spec.padding else x
        out = np.zeros((n, oh, ow), dtype=np.float32)
        for ky in range(k):
            for kx in range(k):
                win = xp[:, ky:ky + spec.stride_y * (oh - 1) + 1:spec.stride_y,
                         kx:kx + spec.stride_x * (ow - 1) + 1:spec.stride_x]
                out += weights[:, 0, ky, kx, None, None] * win
    else:
        cg, ng = c // g, n // g
        out = np.empty((n, oh * ow), dtype=np.float32)
        for j in range(g):
            col = im2col(x[j * cg:(j + 1) * cg], k, spec.stride_y, spec.stride_x, spec.padding)
            out[j * ng:(j + 1) * ng] = weights[j * ng:(j + 1) * ng].reshape(ng, -1) @ col
    out = out.reshape(n, oh, ow)
    if fused_bias is not None:
        out += fused_bias.reshape(-1, 1, 1)  # add_bias after the sum
    else:
        _bias_or_bn(out, p, spec.batch_normalize)
    return activate(out, spec.activation, inplace=True)


def connected(spec: ConnectedSpec, inputs: Sequence[np.ndarray], p: LayerParams,
              fork: DarknetFork = DarknetFork.PJREDDIE) -> np.ndarray:
    """``y = W · flatten(x)`` then BN or bias, then activation (``forward_connected_layer``).

    AlexeyAB's ``fuse_conv_batchnorm`` leaves ``[connected]`` alone, so its BN stays unfused."""
    y = (p.weights @ inputs[0].reshape(-1)).astype(np.float32)
    _bias_or_bn(y, p, spec.batch_normalize, fork)
    return activate(y, spec.activation, inplace=True).reshape(spec.out_shape)


def maxpool(spec: MaxPoolSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """Max over ``size×size`` windows starting at ``(i·stride − ⌊padding/2⌋, …)``.

    Out-of-bounds positions are ignored (Darknet reads −FLT_MAX there), never zero.
    Works on any dtype (the INT engine runs it on int8 unchanged: it only compares).
    """
    x = inputs[0]
    c, h, w = x.shape
    _, oh, ow = spec.out_shape
    k, sy, sx = spec.size, spec.stride_y, spec.stride_x
    lo = spec.padding // 2
    need_h, need_w = (oh - 1) * sy + k, (ow - 1) * sx + k
    if lo == 0 and need_h <= h and need_w <= w:
        xp = x  # every window in bounds (e.g. 2/2 on even sizes): no padded copy
    else:
        # Out-of-bounds positions must never win: the lowest value of the dtype (−inf for floats).
        lowest = -np.finfo(x.dtype).max if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        xp = np.full((c, max(need_h, h + lo), max(need_w, w + lo)), lowest, dtype=x.dtype)
        xp[:, lo:lo + h, lo:lo + w] = x
    out = None
    for ky in range(k):
        for kx in range(k):
            win = xp[:, ky:ky + sy * (oh - 1) + 1:sy, kx:kx + sx * (ow - 1) + 1:sx]
            if out is None:
                out = win.copy()
            else:
                np.maximum(out, win, out=out)
    return out


def avgpool(spec: AvgPoolSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """Global average: ``out[c] = (Σ in[c]) / (H·W)`` in float32."""
    x = inputs[0]
    c, h, w = x.shape
    return (x.reshape(c, -1).sum(axis=1, dtype=np.float32) / _F(h * w)).reshape(c, 1, 1)


def route(spec: RouteSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """Concatenate along channels; with ``groups`` take channel block ``group_id`` of each input."""
    parts = []
    for x in inputs:
        cg = x.shape[0] // spec.groups
        parts.append(x[spec.group_id * cg:(spec.group_id + 1) * cg])
    return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0].copy()


def shortcut(spec: ShortcutSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """``out = α·prev + β·from`` then activation (``shortcut_cpu``).

    Shapes may differ: with ``stride = max(1, W_from/W_out)``, ``sample = max(1, W_out/W_from)``
    only ``out[c, y·sample, x·sample] += from[c, y·stride, x·stride]`` for
    ``c < min(C)``, ``y < min(H)``, ``x < min(W)`` (resnet18, yolov3-tiny-prn).
    """
    out = inputs[0].copy()
    for frm in inputs[1:]:
        if frm.shape == out.shape:
            src, dst = frm, out
        else:
            stride = max(1, frm.shape[2] // out.shape[2])
            sample = max(1, out.shape[2] // frm.shape[2])
            c = min(out.shape[0], frm.shape[0])
            h = min(out.shape[1], frm.shape[1])
            w = min(out.shape[2], frm.shape[2])
            src = frm[:c, :h * stride:stride, :w * stride:stride][:, :h, :w]
            dst = out[:c, :h * sample:sample, :w * sample:sample][:, :h, :w]
        if spec.alpha != 1:  # shortcut_cpu scales only the positions it visits
            dst *= _F(spec.alpha)
        dst += src if spec.beta == 1 else src * _F(spec.beta)
    return activate(out, spec.activation, inplace=True)


def upsample(spec: UpsampleSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """Nearest neighbour: ``out[c, y, x] = scale · in[c, y//s, x//s]``."""
    s = spec.stride
    out = np.repeat(np.repeat(inputs[0], s, axis=1), s, axis=2)
    return out * _F(spec.scale) if spec.scale != 1 else out


def reorg(spec: ReorgSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """Darknet's legacy ``[reorg]`` (``reorg_cpu`` with ``forward=0``): not a space-to-depth.

    ``Z = X.reshape(C/s², H·s, W·s)``; ``T[dy, dx, c, j, i] = Z[c, j·s+dy, i·s+dx]``;
    output = ``T.reshape(C·s², H/s, W/s)``.
    """
    x = inputs[0]
    c, h, w = x.shape
    s = spec.stride
    z = x.reshape(c // (s * s), h * s, w * s)
    t = z.reshape(c // (s * s), h, s, w, s).transpose(2, 4, 0, 1, 3)  # (dy, dx, c, j, i)
    return np.ascontiguousarray(t).reshape(spec.out_shape)


def _softmax_rows(x: np.ndarray, temperature: float) -> np.ndarray:
    """Darknet ``softmax()``: ``e = exp(x/T − max/T)`` in double, stored float; sum in float."""
    m = x.max(axis=-1, keepdims=True)
    t = _F(temperature)
    e = np.exp((x / t - m / t).astype(np.float64)).astype(np.float32)
    return e / e.sum(axis=-1, keepdims=True, dtype=np.float32)


def softmax(spec: SoftmaxSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    x = inputs[0].reshape(spec.groups, -1)
    return _softmax_rows(x, spec.temperature).reshape(spec.out_shape)


def identity(spec: LayerSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """``[dropout]`` and ``[cost]`` at inference: the output is the input buffer."""
    return inputs[0]


def region(spec: RegionSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """pjreddie's region forward: σ on tx, ty, objectness; softmax (or σ) over classes.

    Output keeps the planar input layout: anchor ``a`` owns planes ``a·(coords+1+classes) + e``.
    """
    c, h, w = inputs[0].shape
    per = spec.coords + 1 + spec.classes
    out = inputs[0].reshape(spec.num, per, h, w).copy()
    out[:, 0:2] = activate(out[:, 0:2], "logistic")
    if not spec.background:
        out[:, spec.coords] = activate(out[:, spec.coords], "logistic")
    if spec.softmax:
        # softmax_cpu from plane coords + !background over classes + background planes
        first = spec.coords + (0 if spec.background else 1)
        moved = np.moveaxis(out[:, first:], 1, -1)  # (num, h, w, classes [+ 1])
        out[:, first:] = np.moveaxis(_softmax_rows(moved, 1.0), -1, 1)
    else:
        out[:, spec.coords + 1:] = activate(out[:, spec.coords + 1:], "logistic")
    return out.reshape(c, h, w)


def yolo(spec: YoloSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """σ on x, y, objectness and every class (not w, h); none with ``new_coords``;
    then ``x ← x·scale_x_y − 0.5·(scale_x_y − 1)`` on x, y (AlexeyAB)."""
    c, h, w = inputs[0].shape
    out = inputs[0].reshape(len(spec.mask), 5 + spec.classes, h, w).copy()
    if not spec.new_coords:
        out[:, 0:2] = activate(out[:, 0:2], "logistic")
        out[:, 4:] = activate(out[:, 4:], "logistic")
    if spec.scale_x_y != 1:
        sxy = _F(spec.scale_x_y)
        out[:, 0:2] = out[:, 0:2] * sxy - _F(0.5) * (sxy - _F(1))
    return out.reshape(c, h, w)


def scale_channels(spec: ScaleChannelsSpec, inputs: Sequence[np.ndarray], p: object = None,
        fork: object = None) -> np.ndarray:
    """``out[c, y, x] = in[c] · from[c, y, x]`` (or ``in[y, x]`` with scale_wh), then activation."""
    scale, frm = inputs
    out = frm * (scale if spec.scale_wh else scale.reshape(-1, 1, 1))
    return activate(out.astype(np.float32, copy=False), spec.activation, inplace=True)


KERNELS: dict[Kind, Callable[..., np.ndarray]] = {
    Kind.CONV: conv, Kind.CONNECTED: connected, Kind.MAXPOOL: maxpool, Kind.AVGPOOL: avgpool,
    Kind.ROUTE: route, Kind.SHORTCUT: shortcut, Kind.UPSAMPLE: upsample, Kind.REORG: reorg,
    Kind.SOFTMAX: softmax, Kind.DROPOUT: identity, Kind.COST: identity, Kind.REGION: region,
    Kind.YOLO: yolo, Kind.SCALE_CHANNELS: scale_channels,
}
