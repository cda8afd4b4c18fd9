"""Slow, obviously correct float references: Darknet's C loops transcribed one scalar at a time.

The "living definition" of every float kernel in ``golden/`` (DARKNET-SEMANTICS.md §3–5),
written independently of ``golden/kernels.py``: no golden imports and no vectorised numpy
math.  Arrays are flattened into Python lists of ``np.float32`` scalars and indexed with
Darknet's own flat-index formulas (``(c*H + y)*W + x``); every arithmetic step is a
float32 scalar operation, so rounding follows the C code:

* ``np.float32 ∘ np.float32`` is C ``float ∘ float`` (round to nearest even, no FMA);
* where the C code works in ``double`` (``sqrt``/``exp`` of the ``math.h`` double API),
  the step is done on Python floats and rounded once with ``np.float32(...)``;
* the float ``libm`` calls of AlexeyAB (``expf``, ``logf``) are modelled as correctly
  rounded: ``np.float32(math.exp(float(x)))``.  Real ``expf`` may differ by 1 ulp.

Where the two forks differ only by rounding (``leaky``, ``logistic``, ``tanh``), the
functions take ``fork="A"`` (AlexeyAB, float: ``.1f*x``, ``1.f/(1.f+expf(-x))``; what
golden documents) or ``fork="P"`` (pjreddie, double: ``.1*x``, ``1./(1.+exp(-x))``).
Everything is batch 1, tensors ``(C, H, W)`` float32; results are new float32 arrays.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

F = np.float32
FLT_MAX = F(np.finfo(np.float32).max)
#: ``.000001f`` in pjreddie's ``normalize_cpu`` (a float literal, promoted to double there).
BN_EPS_F = F(0.000001)
MISH_THRESHOLD = F(20)

ACTIVATIONS = ("linear", "leaky", "relu", "relu6", "logistic", "swish", "mish", "tanh")


# --------------------------------------------------------------------------- helpers


def _flat(a: np.ndarray) -> list[np.float32]:
    """Row-major float32 scalars of ``a`` (Darknet's flat buffer)."""
    return list(np.ascontiguousarray(a, dtype=np.float32).ravel())


def _array(values: Sequence[np.float32], shape: tuple[int, ...]) -> np.ndarray:
    out = np.array(values, dtype=np.float32)
    return out.reshape(shape)


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero), unlike Python's ``//``."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _f32(d: float) -> np.float32:
    """Round a double to float32 like a C ``(float)`` conversion (overflow gives ±inf)."""
    with np.errstate(over="ignore"):
        return F(d)


def _exp(d: float) -> float:
    """C ``exp`` in double: overflows to ``inf`` instead of raising."""
    try:
        return math.exp(d)
    except OverflowError:
        return math.inf


def _expf(x: np.float32) -> np.float32:
    """``expf`` modelled as correctly rounded."""
    return _f32(_exp(float(x)))


def conv_out_size(n_in: int, size: int, stride: int, padding: int) -> int:
    """``(in + 2*padding - size)/stride + 1`` (``convolutional_layer.c``), C division."""
    return _cdiv(n_in + 2 * padding - size, stride) + 1


def maxpool_out_size(n_in: int, size: int, stride: int, padding: int) -> int:
    """``(in + padding - size)/stride + 1``: ``padding`` is the total over both sides."""
    return _cdiv(n_in + padding - size, stride) + 1


# --------------------------------------------------------------------------- activations


def _logistic(x: np.float32, fork: str) -> np.float32:
    if fork == "P":  # 1./(1. + exp(-x)) in double
        return _f32(1.0 / (1.0 + _exp(-float(x))))
    return F(1) / (F(1) + _expf(-x))  # 1.f/(1.f + expf(-x))


def _tanh(x: np.float32, fork: str) -> np.float32:
    if fork == "P":  # (exp(2*x)-1)/(exp(2*x)+1) in double
        e = _exp(2.0 * float(x))
        return _f32((e - 1.0) / (e + 1.0))  # inf/inf = NaN above x ≈ 355, as in C
    return F(2) / (F(1) + _expf(F(-2) * x)) - F(1)  # 2/(1 + expf(-2*x)) - 1


def _softplus(x: np.float32) -> np.float32:
    """AlexeyAB ``softplus_activate(x, 20)``: x above 20, expf(x) below -20, else logf(expf(x)+1)."""
    if x > MISH_THRESHOLD:
        return x
    if x < -MISH_THRESHOLD:
        return _expf(x)
    return _f32(math.log(float(_expf(x) + F(1))))


def activate_scalar(x: np.float32, name: str, fork: str = "A") -> np.float32:
    """One activation on one float32 value (``activations.h``); see the module notes on ``fork``."""
    x = F(x)
    if name == "linear":
        return x
    if name == "leaky":
        if x > 0:
            return x
        return _f32(0.1 * float(x)) if fork == "P" else F(0.1) * x
    if name == "relu":  # x*(x>0): negative inputs give -0.0
        return x * F(1 if x > 0 else 0)
    if name == "relu6":  # min_val_cmp(max_val_cmp(x, 0), 6) with (a > b) ? a : b
        v = x if x > 0 else F(0)
        return v if v < 6 else F(6)
    if name == "logistic":
        return _logistic(x, fork)
    if name == "swish":  # x * logistic_activate(x)  (float)
        return x * _logistic(x, "A")
    if name == "mish":  # x * tanh_activate(softplus_activate(x, 20))  (float)
        return x * _tanh(_softplus(x), "A")
    if name == "tanh":
        return _tanh(x, fork)
    raise ValueError(f"unknown activation '{name}' (valid: {', '.join(ACTIVATIONS)})")


def activate(x: np.ndarray, name: str, fork: str = "A") -> np.ndarray:
    """``activate_array``: the activation applied to every element, in flat order."""
    return _array([activate_scalar(v, name, fork) for v in _flat(x)], np.shape(x))


# --------------------------------------------------------------------------- conv / connected


def _bias_or_batchnorm(v: np.float32, o: int, biases: list[np.float32],
                       bn: tuple[list[np.float32], list[np.float32], list[np.float32]] | None
                       ) -> np.float32:
    """pjreddie CPU: ``normalize_cpu`` → ``scale_bias`` → ``add_bias``, or only ``add_bias``.

    ``x = (x - mean[f])/(sqrt(variance[f]) + .000001f)``: the subtraction in float, the
    denominator and the division in double, one rounding to float on the store.
    """
    if bn is not None:
        scales, mean, variance = bn
        num = v - mean[o]                                            # float
        den = math.sqrt(float(variance[o])) + float(BN_EPS_F)        # double
        v = _f32(float(num) / den)                                   # double division, stored float
        v = v * scales[o]                                            # scale_bias
    return v + biases[o]                                             # add_bias


def conv2d(x: np.ndarray, weights: np.ndarray, biases: np.ndarray, *, stride_x: int = 1,
           stride_y: int = 1, padding: int = 0, groups: int = 1,
           scales: np.ndarray | None = None, rolling_mean: np.ndarray | None = None,
           rolling_variance: np.ndarray | None = None, activation: str = "logistic",
           fork: str = "A") -> np.ndarray:
    """``forward_convolutional_layer`` on CPU, one output element at a time.

    ``x``: ``(C, H, W)``; ``weights``: ``(N, C/groups, k, k)`` (OIHW).  For output channel
    ``o`` of group ``j = o / (N/groups)``::

        acc = 0.0f
        for ci < C/groups, ky < k, kx < k:                 # gemm_nn's k order, kx fastest
            v = X[j*C/groups + ci][y*stride_y + ky - padding][x*stride_x + kx - padding]  # 0 outside
            acc = acc + W[o][ci][ky][kx] * v               # float mul, float add, no FMA

    then batch norm (if ``scales`` is given, pjreddie's ``(acc-mean)/(sqrt(var)+1e-6)*scale+bias``)
    or ``+ bias``, then the activation.
    """
    c, h, w = x.shape
    n, cg, k, k2 = weights.shape
    if k != k2 or cg * groups != c or n % groups:
        raise ValueError(f"weights {weights.shape} do not fit input {x.shape} with groups={groups}")
    ng = n // groups
    oh = conv_out_size(h, k, stride_y, padding)
    ow = conv_out_size(w, k, stride_x, padding)
    xs, ws, bs = _flat(x), _flat(weights), _flat(biases)
    bn = None
    if scales is not None:
        bn = (_flat(scales), _flat(rolling_mean), _flat(rolling_variance))
    out: list[np.float32] = []
    for o in range(n):
        j = o // ng
        for y in range(oh):
            for xo in range(ow):
                acc = F(0)
                for ci in range(cg):
                    for ky in range(k):
                        for kx in range(k):
                            iy = y * stride_y + ky - padding
                            ix = xo * stride_x + kx - padding
                            if 0 <= iy < h and 0 <= ix < w:
                                v = xs[((j * cg + ci) * h + iy) * w + ix]
                            else:
                                v = F(0)                            # im2col_get_pixel padding
                            acc = acc + ws[((o * cg + ci) * k + ky) * k + kx] * v
                acc = _bias_or_batchnorm(acc, o, bs, bn)
                out.append(activate_scalar(acc, activation, fork))
    return _array(out, (n, oh, ow))


def im2col(x: np.ndarray, size: int, stride_y: int, stride_x: int, padding: int) -> np.ndarray:
    """``im2col_cpu`` (with AlexeyAB's separate strides): ``(C*k*k, OH*OW)``, zero padding.

    Row ``r = (c*k + ky)*k + kx``; ``col[r][y*OW + x] = X[c][y*stride_y + ky - pad][x*stride_x + kx - pad]``.
    """
    c, h, w = x.shape
    oh = conv_out_size(h, size, stride_y, padding)
    ow = conv_out_size(w, size, stride_x, padding)
    xs = _flat(x)
    out: list[np.float32] = []
    for r in range(c * size * size):
        w_offset = r % size
        h_offset = (r // size) % size
        c_im = r // size // size
        for y in range(oh):
            for xo in range(ow):
                row = h_offset + y * stride_y - padding
                col = w_offset + xo * stride_x - padding
                out.append(xs[(c_im * h + row) * w + col] if 0 <= row < h and 0 <= col < w else F(0))
    return _array(out, (c * size * size, oh * ow))


def connected(x: np.ndarray, weights: np.ndarray, biases: np.ndarray, *,
              scales: np.ndarray | None = None, rolling_mean: np.ndarray | None = None,
              rolling_variance: np.ndarray | None = None, activation: str = "logistic",
              fork: str = "A") -> np.ndarray:
    """``forward_connected_layer``: ``gemm_nt`` sum ``Σ_i W[o][i]·x[i]`` in float from 0, in ``i`` order.

    ``x`` is flattened CHW, ``weights`` is ``(out, in)``.  Then BN or bias, then the
    activation.  Output shape ``(out, 1, 1)``.
    """
    xs, ws, bs = _flat(x), _flat(weights), _flat(biases)
    n_out, n_in = weights.shape
    if n_in != len(xs):
        raise ValueError(f"weights {weights.shape} do not fit {len(xs)} inputs")
    bn = None
    if scales is not None:
        bn = (_flat(scales), _flat(rolling_mean), _flat(rolling_variance))
    out: list[np.float32] = []
    for o in range(n_out):
        acc = F(0)
        for i in range(n_in):
            acc = acc + ws[o * n_in + i] * xs[i]
        out.append(activate_scalar(_bias_or_batchnorm(acc, o, bs, bn), activation, fork))
    return _array(out, (n_out, 1, 1))


# --------------------------------------------------------------------------- pooling


def maxpool(x: np.ndarray, size: int, stride_x: int, stride_y: int, padding: int) -> np.ndarray:
    """``forward_maxpool_layer``: windows start at ``-padding/2``; outside reads ``-FLT_MAX``.

    ::

        max = -FLT_MAX
        for n < size, m < size:
            cur_h = -pad/2 + i*stride_y + n;  cur_w = -pad/2 + j*stride_x + m
            val = in_bounds ? in[k][cur_h][cur_w] : -FLT_MAX
            max = (val > max) ? val : max
    """
    c, h, w = x.shape
    oh = maxpool_out_size(h, size, stride_y, padding)
    ow = maxpool_out_size(w, size, stride_x, padding)
    h_offset = w_offset = _cdiv(-padding, 2)
    xs = _flat(x)
    out: list[np.float32] = []
    for k in range(c):
        for i in range(oh):
            for j in range(ow):
                best = -FLT_MAX
                for n in range(size):
                    for m in range(size):
                        cur_h = h_offset + i * stride_y + n
                        cur_w = w_offset + j * stride_x + m
                        valid = 0 <= cur_h < h and 0 <= cur_w < w
                        val = xs[(k * h + cur_h) * w + cur_w] if valid else -FLT_MAX
                        best = val if val > best else best
                out.append(best)
    return _array(out, (c, oh, ow))


def avgpool(x: np.ndarray) -> np.ndarray:
    """``forward_avgpool_layer`` (always global): float sum in index order, then ``/= h*w``."""
    c, h, w = x.shape
    xs = _flat(x)
    out: list[np.float32] = []
    for k in range(c):
        acc = F(0)
        for i in range(h * w):
            acc = acc + xs[k * h * w + i]
        out.append(acc / F(h * w))
    return _array(out, (c, 1, 1))


# --------------------------------------------------------------------------- data movement


def route(inputs: Sequence[np.ndarray], groups: int = 1, group_id: int = 0) -> np.ndarray:
    """``forward_route_layer`` (AlexeyAB): from each input's flat buffer copy the slice
    ``[group_id*size/groups, (group_id+1)*size/groups)``, concatenated in order."""
    h, w = inputs[0].shape[1:]
    out: list[np.float32] = []
    channels = 0
    for x in inputs:
        if x.shape[1:] != (h, w):
            raise ValueError(f"route inputs differ in spatial size: {x.shape} vs {(h, w)}")
        xs = _flat(x)
        part = len(xs) // groups
        out.extend(xs[part * group_id:part * (group_id + 1)])
        channels += x.shape[0] // groups
    return _array(out, (channels, h, w))


def shortcut(prev: np.ndarray, froms: Sequence[np.ndarray], alpha: float = 1.0, beta: float = 1.0,
             activation: str = "linear", fork: str = "A") -> np.ndarray:
    """``forward_shortcut_layer`` (pjreddie): copy ``prev``, then for each ``from`` ``shortcut_cpu``::

        stride = max(1, w1/w2);  sample = max(1, w2/w1)         # 1 = from, 2 = out
        for k < min(c1,c2), j < min(h1,h2), i < min(w1,w2):
            out[k][j*sample][i*sample] = alpha*out[k][j*sample][i*sample] + beta*from[k][j*stride][i*stride]

    Positions not visited keep ``prev`` unscaled.  Then the activation.  (AlexeyAB's
    multi-``from`` flat-prefix rule equals this for equal spatial sizes and alpha = beta = 1.)
    """
    c2, h2, w2 = prev.shape
    out = _flat(prev)
    s1, s2 = F(alpha), F(beta)
    for frm in froms:
        c1, h1, w1 = frm.shape
        add = _flat(frm)
        stride, sample = _cdiv(w1, w2), _cdiv(w2, w1)
        if stride != _cdiv(h1, h2) or sample != _cdiv(h2, h1):
            raise ValueError(f"shortcut_cpu asserts equal w/h ratios: from {frm.shape}, out {prev.shape}")
        stride, sample = max(stride, 1), max(sample, 1)
        for k in range(min(c1, c2)):
            for j in range(min(h1, h2)):
                for i in range(min(w1, w2)):
                    out_index = i * sample + w2 * (j * sample + h2 * k)
                    add_index = i * stride + w1 * (j * stride + h1 * k)
                    out[out_index] = s1 * out[out_index] + s2 * add[add_index]
    return _array([activate_scalar(v, activation, fork) for v in out], prev.shape)


def upsample(x: np.ndarray, stride: int, scale: float = 1.0) -> np.ndarray:
    """``upsample_cpu`` forward: ``out[k][j][i] = scale * in[k][j/stride][i/stride]``."""
    c, h, w = x.shape
    xs = _flat(x)
    s = F(scale)
    out: list[np.float32] = []
    for k in range(c):
        for j in range(h * stride):
            for i in range(w * stride):
                out.append(s * xs[k * w * h + (j // stride) * w + i // stride])
    return _array(out, (c, h * stride, w * stride))


def reorg(x: np.ndarray, stride: int) -> np.ndarray:
    """Legacy ``[reorg]``: ``reorg_cpu(input, W, H, C, 1, s, forward=0)`` with the *input* sizes.

    Transcribed from DARKNET-SEMANTICS §5.7::

        for k < C, j < H, i < W:
            C2 = C / s²;  c2 = k mod C2;  o = k div C2
            out_flat[(k·H + j)·W + i] = in_flat[(c2·(H·s) + j·s + o div s)·(W·s) + i·s + o mod s]

    and ``out_flat`` is read as ``(C·s², H/s, W/s)``.
    """
    c, h, w = x.shape
    s = stride
    xs = _flat(x)
    out: list[np.float32] = [F(0)] * len(xs)
    c2_count = c // (s * s)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                c2 = k % c2_count
                o = k // c2_count
                out[(k * h + j) * w + i] = xs[(c2 * (h * s) + j * s + o // s) * (w * s) + i * s + o % s]
    return _array(out, (c * s * s, h // s, w // s))


# --------------------------------------------------------------------------- softmax and heads


def _softmax(values: list[np.float32], start: int, n: int, stride: int, temp: np.float32,
             out: list[np.float32]) -> None:
    """``blas.c: softmax``: largest, ``e = exp(x/temp - largest/temp)`` (double exp, float e),
    float running sum, then ``out /= sum``."""
    largest = -FLT_MAX
    for i in range(n):
        v = values[start + i * stride]
        if v > largest:
            largest = v
    total = F(0)
    for i in range(n):
        arg = values[start + i * stride] / temp - largest / temp   # float
        e = _f32(_exp(float(arg)))                                 # float e = exp(...)
        total = total + e
        out[start + i * stride] = e
    for i in range(n):
        out[start + i * stride] = out[start + i * stride] / total


def softmax(x: np.ndarray, groups: int = 1, temperature: float = 1.0) -> np.ndarray:
    """``forward_softmax_layer``: the flat input in ``groups`` contiguous chunks, one softmax each."""
    xs = _flat(x)
    out = list(xs)
    n = len(xs) // groups
    for g in range(groups):
        _softmax(xs, g * n, n, 1, F(temperature), out)
    return _array(out, x.shape)


def region(x: np.ndarray, num: int, coords: int, classes: int, softmax: bool,
           background: bool = False, fork: str = "A") -> np.ndarray:
    """pjreddie ``forward_region_layer`` (CPU), planar layout kept::

        for n < num:                                # anchor n owns planes n*(coords+1+classes) + e
            logistic on planes 0, 1                 # tx, ty
            if !background: logistic on plane coords
            if !softmax:    logistic on planes coords+1 .. coords+classes
        if softmax:  # read from the *input*, per (anchor, y, x), stride H*W between planes
            softmax over classes+background planes starting at plane coords + !background
    """
    c, h, w = x.shape
    hw = h * w
    per = coords + 1 + classes
    if c != num * per:
        raise ValueError(f"region input has {c} channels, num*(coords+1+classes) = {num * per}")
    xs = _flat(x)
    out = list(xs)

    def logistic_range(start: int, count: int) -> None:
        for i in range(start, start + count):
            out[i] = _logistic(out[i], fork)

    for n in range(num):
        base = n * per * hw
        logistic_range(base, 2 * hw)
        if not background:
            logistic_range(base + coords * hw, hw)
        if not softmax:
            logistic_range(base + (coords + 1) * hw, classes * hw)
    if softmax:
        index = (coords + (0 if background else 1)) * hw
        for n in range(num):                      # softmax_cpu batch loop (batch_offset inputs/num)
            for g in range(hw):                   # groups = H*W, group_offset 1
                start = index + n * per * hw + g
                _softmax(xs, start, classes + int(background), hw, F(1), out)
    return _array(out, x.shape)


def yolo(x: np.ndarray, n_anchors: int, classes: int, new_coords: bool = False,
         scale_x_y: float = 1.0, fork: str = "A") -> np.ndarray:
    """AlexeyAB ``forward_yolo_layer`` (CPU; pjreddie's is the ``new_coords=0, scale_x_y=1`` case)::

        for n < n_anchors:                          # planes n*(5+classes) + e
            if !new_coords: logistic on planes 0, 1 and 4 .. 4+classes
            scal_add_cpu(planes 0, 1, ALPHA=scale_x_y, BETA=-0.5*(scale_x_y - 1))   # x = x*ALPHA + BETA
    """
    c, h, w = x.shape
    hw = h * w
    per = 5 + classes
    if c != n_anchors * per:
        raise ValueError(f"yolo input has {c} channels, n_anchors*(5+classes) = {n_anchors * per}")
    out = _flat(x)
    sxy = F(scale_x_y)
    alpha = sxy
    beta = _f32(-0.5 * float(sxy - F(1)))        # double expression passed as a float parameter
    for n in range(n_anchors):
        bbox = n * per * hw
        if not new_coords:
            for i in range(bbox, bbox + 2 * hw):
                out[i] = _logistic(out[i], fork)
            obj = bbox + 4 * hw
            for i in range(obj, obj + (1 + classes) * hw):
                out[i] = _logistic(out[i], fork)
        for i in range(bbox, bbox + 2 * hw):
            out[i] = out[i] * alpha + beta
    return _array(out, x.shape)


def scale_channels(scale: np.ndarray, frm: np.ndarray, scale_wh: bool = False,
                   activation: str = "linear", fork: str = "A") -> np.ndarray:
    """``forward_scale_channels_layer``: ``out[i] = in[i / (H*W)] * from[i]``
    (``scale_wh``: ``in[i % (H*W)]``), then the activation."""
    c, h, w = frm.shape
    channel_size = h * w
    ins, fs = _flat(scale), _flat(frm)
    out: list[np.float32] = []
    for i in range(c * h * w):
        s = ins[i % channel_size] if scale_wh else ins[i // channel_size]
        out.append(activate_scalar(s * fs[i], activation, fork))
    return _array(out, frm.shape)


# --------------------------------------------------------------------------- image input


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """``image.c: resize_image`` transcribed (pjreddie; float32 throughout)::

        w_scale = (float)(im.w-1)/(w-1);  h_scale = (float)(im.h-1)/(h-1)
        part (w x im.h):  c == w-1 || im.w == 1 ? in[im.w-1]
                          : sx = c*w_scale, ix = (int)sx, dx = sx-ix, (1-dx)*in[ix] + dx*in[ix+1]
        out (w x h):      sy = r*h_scale, iy = (int)sy, dy = sy-iy;  out = (1-dy)*part[iy]
                          if !(r == h-1 || im.h == 1): out += dy*part[iy+1]

    ``h == 1`` is undefined in C (``0*inf`` gives a NaN row index) and is refused.
    """
    ch, ih, iw = im.shape
    if h < 2 or w < 1:
        raise ValueError(f"resize_image to {w}x{h}: Darknet divides by h-1 = 0 (undefined)")
    src = _flat(im)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_scale = F(iw - 1) / F(w - 1)   # inf/NaN when w == 1, then never used
    h_scale = F(ih - 1) / F(h - 1)
    part: list[np.float32] = [F(0)] * (ch * ih * w)
    for k in range(ch):
        for r in range(ih):
            for c in range(w):
                if c == w - 1 or iw == 1:
                    val = src[(k * ih + r) * iw + iw - 1]
                else:
                    sx = F(c) * w_scale
                    ix = int(sx)
                    dx = sx - F(ix)
                    val = (F(1) - dx) * src[(k * ih + r) * iw + ix] + dx * src[(k * ih + r) * iw + ix + 1]
                part[(k * ih + r) * w + c] = val
    out: list[np.float32] = [F(0)] * (ch * h * w)
    for k in range(ch):
        for r in range(h):
            sy = F(r) * h_scale
            iy = int(sy)
            dy = sy - F(iy)
            for c in range(w):
                out[(k * h + r) * w + c] = (F(1) - dy) * part[(k * ih + iy) * w + c]
            if r == h - 1 or ih == 1:
                continue
            for c in range(w):
                out[(k * h + r) * w + c] = out[(k * h + r) * w + c] + dy * part[(k * ih + iy + 1) * w + c]
    return _array(out, (ch, h, w))


def letterbox_size(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int]:
    """``(new_w, new_h)`` of ``letterbox_image``: a float comparison, then integer math."""
    if F(w) / F(im_w) < F(h) / F(im_h):
        return w, _cdiv(im_h * w, im_w)
    return _cdiv(im_w * h, im_h), h


def letterbox_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """``image.c: letterbox_image``::

        if ((float)w/im.w < (float)h/im.h): new_w = w, new_h = (im.h*w)/im.w
        else:                               new_h = h, new_w = (im.w*h)/im.h
        resized = resize_image(im, new_w, new_h)
        boxed = w x h filled with .5;  embed_image(resized, boxed, (w-new_w)/2, (h-new_h)/2)

    (``set_pixel`` silently drops writes outside the canvas.)
    """
    ch, ih, iw = im.shape
    new_w, new_h = letterbox_size(iw, ih, w, h)
    resized = _flat(resize_image(im, new_w, new_h))
    boxed: list[np.float32] = [F(0.5)] * (ch * h * w)
    dx, dy = _cdiv(w - new_w, 2), _cdiv(h - new_h, 2)
    for k in range(ch):
        for y in range(new_h):
            for x in range(new_w):
                tx, ty = dx + x, dy + y
                if 0 <= tx < w and 0 <= ty < h:
                    boxed[(k * h + ty) * w + tx] = resized[(k * new_h + y) * new_w + x]
    return _array(boxed, (ch, h, w))
