"""Slow, obviously correct references for the DLA's INT-mode layer kernels (``dla/int_kernels.py``).

Plain Python integers and explicit loops, one output element at a time; numpy arrays are only
read element by element (``.tolist()``) and the result is packed into an ``int8`` array at the
end.  Written from the arithmetic contract (DESIGN §4) and Darknet's C loops, independently of
``dla/int_kernels.py``, ``dla/arith.py`` and ``tests/reference/int_ref.py``: nothing from ``dla``
is imported.  Every intermediate is an exact Python ``int``; where hardware (or C) would clip
or wrap, the reference says so explicitly (:func:`saturate`, :func:`wrap`).

What the reference is given and what it checks: it reads the *encoded* parameters of a layer
— the integer multipliers and shifts of ``plan.rq`` / ``plan.rq_neg`` / ``plan.in_rq`` (any
object with ``.mult`` and ``.shift`` sequences, one entry or one per output channel), the
``relu6`` clip and the activation table — and the int8 weights / int32 biases of the
``QuantLayer``; it recomputes the whole integer datapath from them: accumulation, the
``acc_bits`` accumulator (saturate or wrap, every overflow counted), requantization with the
configured scheme, activation and the final int8 saturation (every clipped output counted).

Operand widths: every function takes the output width ``out_bits`` (8 or 16: the final
saturation is to ``[−2^(b−1), 2^(b−1) − 1]``, the result an int8 or int16 array) and reads inputs
and weights of any integer width; the shortcut takes each operand's width (``in_bits``): a
``b``-bit operand is shifted left by ``shortcut_left_shift − (b − 8)`` into the int32 domain.
The caller states the widths; nothing is read from the plan but the encoded multipliers.
How the *real* multipliers are encoded is checked separately (:func:`quantize_multiplier`).

Requantization schemes (``hw.requant``), for an int32 accumulator ``acc``, multiplier ``M0`` of
``b = hw.multiplier_bits`` bits and shift ``s``:

* ``gemmlowp`` (TFLite ``MultiplyByQuantizedMultiplier``, two roundings):
  ``x = acc·2^max(s,0)`` fitted to int32 (``hw.left_shift_overflow``: saturate or wrap);
  ``h = SRDHM(x, M0) = floor((x·M0 + 2^(b−2)) / 2^(b−1))`` (``INT32_MIN·INT32_MIN`` saturates to
  ``INT32_MAX`` for ``b = 32``); result ``= h / 2^max(−s,0)`` rounded per ``hw.rounding``
  (``half_away`` = gemmlowp ``RoundingDivideByPOT``).
* ``single_round`` (``TFLITE_SINGLE_ROUNDING``): ``t = (b−1) − s``,
  ``floor((acc·M0 + 2^(t−1)) / 2^t)`` — one rounding, ties toward +inf, whatever
  ``hw.rounding`` says (the scheme has one built-in rounding) — saturated to int32.
* ``scale_shift`` (NVDLA): ``saturate_int32(round(acc·M0 / 2^s))`` rounded per ``hw.rounding``.

Activations: ``leaky`` fused (``hw.leaky == "fused"``): accumulators ``< 0`` use ``plan.rq_neg``
(``α·M``) instead of ``plan.rq``, then int8 saturation; ``leaky`` shift: int8 saturation first,
then ``x < 0 → round_half_away(x·a / 2^k)`` with ``a = round_half_away(2^k / 10)``,
``k = hw.leaky_bits`` (13/128 for 7); ``relu``/``relu6``/table activations act on the saturated
int8 value (the saturated count is taken before them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class Encoded(Protocol):
    """Anything with integer ``mult`` and ``shift`` sequences (``dla.requant.Requant`` is one)."""

    mult: Any
    shift: Any


@dataclass
class RefStats:
    """Event counts of one reference layer execution."""

    overflow: int = 0  # exact accumulators outside the acc_bits range
    saturated: int = 0  # requantized values clipped to the output width's range


# --------------------------------------------------------------------------- ranges and rounding


def lowest(bits: int) -> int:
    """Smallest value of a signed ``bits``-wide register."""
    return -(2 ** (bits - 1))


def highest(bits: int) -> int:
    """Largest value of a signed ``bits``-wide register."""
    return 2 ** (bits - 1) - 1


def in_range(x: int, bits: int) -> bool:
    """Whether ``x`` fits a signed ``bits``-wide register."""
    return lowest(bits) <= x <= highest(bits)


def saturate(x: int, bits: int) -> int:
    """Clamp ``x`` to the signed range of ``bits``."""
    return min(max(x, lowest(bits)), highest(bits))


def wrap(x: int, bits: int) -> int:
    """Two's-complement wrap: the value congruent to ``x`` modulo ``2^bits`` in the signed range."""
    m = 2**bits
    r = x % m  # in [0, m)
    return r - m if r > highest(bits) else r


def fit(x: int, bits: int, mode: str) -> int:
    """``saturate`` or ``wrap`` by name."""
    if mode == "saturate":
        return saturate(x, bits)
    if mode == "wrap":
        return wrap(x, bits)
    raise ValueError(f"unknown overflow mode {mode!r}")


def round_div(n: int, d: int, rounding: str) -> int:
    """``n / d`` for ``d > 0`` to an integer: ``half_away`` (ties away from zero), ``half_up``
    (ties toward +inf) or ``truncate`` (floor, i.e. an arithmetic right shift)."""
    assert d > 0
    if rounding == "half_away":
        q = (2 * abs(n) + d) // (2 * d)  # floor(|n|/d + 1/2)
        return q if n >= 0 else -q
    if rounding == "half_up":
        return (2 * n + d) // (2 * d)  # floor(n/d + 1/2)
    if rounding == "truncate":
        return n // d
    raise ValueError(f"unknown rounding {rounding!r}")


def round_half_away(x: Fraction) -> int:
    """An exact rational to the nearest integer, ties away from zero."""
    return round_div(x.numerator, x.denominator, "half_away")


# --------------------------------------------------------------------------- requantization


def srdhm(a: int, b: int, bits: int = 32) -> int:
    """SaturatingRoundingDoublingHighMul for a Q0.(bits−1) ``b``:
    ``floor((a·b + 2^(bits−2)) / 2^(bits−1))``; ``INT32_MIN·INT32_MIN`` gives ``INT32_MAX`` (bits 32)."""
    if bits == 32 and a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    return (a * b + 2 ** (bits - 2)) // 2 ** (bits - 1)


def requant_gemmlowp(acc: int, mult: int, shift: int, bits: int, rounding: str, left_overflow: str) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding) on an int32 ``acc``."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    x = fit(acc * 2**left, 32, left_overflow) if left else acc
    h = srdhm(x, mult, bits)
    return round_div(h, 2**right, rounding) if right else h


def requant_single_round(acc: int, mult: int, shift: int, bits: int) -> int:
    """TFLite ``TFLITE_SINGLE_ROUNDING``: ``floor((acc·M0 + 2^(t−1)) / 2^t)``, ``t = (bits−1) − shift``,
    saturated to int32."""
    t = (bits - 1) - shift
    assert t >= 1, f"single_round needs shift <= {bits - 2}, got {shift}"
    return saturate((acc * mult + 2 ** (t - 1)) // 2**t, 32)


def requant_scale_shift(acc: int, scaling: int, shift: int, rounding: str) -> int:
    """NVDLA converter: ``saturate_int32(round(acc·scaling / 2^shift))``."""
    return saturate(round_div(acc * scaling, 2**shift, rounding), 32)


def requantize(acc: int, mult: int, shift: int, hw: Any) -> int:
    """One int32 accumulator through the configured requantizer (int32 result, not yet int8)."""
    assert in_range(acc, 32), f"requantizer input {acc} is not an int32"
    if hw.requant == "gemmlowp":
        return requant_gemmlowp(acc, mult, shift, hw.multiplier_bits, hw.rounding, hw.left_shift_overflow)
    if hw.requant == "single_round":
        return requant_single_round(acc, mult, shift, hw.multiplier_bits)
    if hw.requant == "scale_shift":
        return requant_scale_shift(acc, mult, shift, hw.rounding)
    raise ValueError(f"unknown requant scheme {hw.requant!r}")


def encoded(rq: Encoded, channel: int) -> tuple[int, int]:
    """``(mult, shift)`` of output channel ``channel`` (one shared entry, or one per channel)."""
    mults = [int(m) for m in np.asarray(rq.mult).reshape(-1).tolist()]
    shifts = [int(s) for s in np.asarray(rq.shift).reshape(-1).tolist()]
    assert len(mults) == len(shifts)
    i = channel if len(mults) > 1 else 0
    return mults[i], shifts[i]


# --------------------------------------------------------------------------- activations


def leaky_shift(q: int, bits: int) -> int:
    """Shift-mode LeakyReLU on an int8 value: ``q`` if ``q ≥ 0`` else ``round_half_away(q·a / 2^bits)``."""
    a = round_half_away(Fraction(2**bits, 10))
    return q if q >= 0 else round_div(q * a, 2**bits, "half_away")


def to_width(y: int, bits: int, stats: RefStats) -> int:
    """Saturate to a ``bits``-wide integer, counting the clipped values."""
    if not in_range(y, bits):
        stats.saturated += 1
    return saturate(y, bits)


def requant_activate(acc: int, channel: int, activation: str, plan: Any, hw: Any, stats: RefStats,
                     out_bits: int = 8) -> int:
    """Requantize one int32 value of output channel ``channel`` and apply the layer activation,
    saturating to ``out_bits``."""
    if activation == "leaky" and hw.leaky == "fused":
        rq = plan.rq if acc >= 0 else plan.rq_neg
        return to_width(requantize(acc, *encoded(rq, channel), hw), out_bits, stats)
    q = to_width(requantize(acc, *encoded(plan.rq, channel), hw), out_bits, stats)
    if activation == "linear":
        return q
    if activation == "leaky":
        return leaky_shift(q, hw.leaky_bits)
    if activation == "relu":
        return q if q > 0 else 0
    if activation == "relu6":
        return min(max(q, 0), int(plan.relu6_max))
    table = [int(v) for v in np.asarray(plan.lut).tolist()]
    assert len(table) == 2**out_bits
    return table[q - lowest(out_bits)]


def accumulator(exact: int, hw: Any, stats: RefStats) -> int:
    """The exact sum in an ``hw.acc_bits`` accumulator: count an overflow, saturate or wrap."""
    if not in_range(exact, hw.acc_bits):
        stats.overflow += 1
    return fit(exact, hw.acc_bits, hw.acc_overflow)


def _pack(values: list[Any], shape: tuple[int, ...], bits: int = 8) -> np.ndarray:
    out = np.array(values, dtype=np.int64).reshape(shape)
    assert out.min(initial=0) >= lowest(bits) and out.max(initial=0) <= highest(bits)
    return out.astype(np.int8 if bits == 8 else np.int16)


def _int_list3(x: np.ndarray) -> list[list[list[int]]]:
    return [[[int(v) for v in row] for row in plane] for plane in np.asarray(x).tolist()]


# --------------------------------------------------------------------------- MAC layers


def conv(spec: Any, x: np.ndarray, w_q: np.ndarray, b_q: np.ndarray, plan: Any, hw: Any,
         out_bits: int = 8) -> tuple[np.ndarray, RefStats]:
    """Darknet convolution in integers: ``acc[o,y,x] = Σ_{ci,ky,kx} W[o,ci,ky,kx]·X[g·C/G+ci, y·sy+ky−p, x·sx+kx−p]``
    (zero outside the input, ``g`` = group of ``o``) ``+ b[o]``, then :func:`accumulator` and
    :func:`requant_activate`.  ``w_q`` is OIHW int8, ``b_q`` the int32 biases."""
    stats = RefStats()
    xs = _int_list3(x)
    c, h, w = len(xs), len(xs[0]), len(xs[0][0])
    ws = [[[[int(v) for v in r] for r in kk] for kk in ch] for ch in np.asarray(w_q).tolist()]
    bs = [int(v) for v in np.asarray(b_q).reshape(-1).tolist()]
    n, oh, ow = spec.out_shape
    k, sy, sx, p, groups = spec.size, spec.stride_y, spec.stride_x, spec.padding, spec.groups
    assert oh == (h + 2 * p - k) // sy + 1 and ow == (w + 2 * p - k) // sx + 1
    cg, ng = c // groups, n // groups
    out = []
    for o in range(n):
        g = o // ng
        for oy in range(oh):
            for ox in range(ow):
                acc = 0
                for ci in range(cg):
                    for ky in range(k):
                        iy = oy * sy + ky - p
                        for kx in range(k):
                            ix = ox * sx + kx - p
                            if 0 <= iy < h and 0 <= ix < w:
                                acc += xs[g * cg + ci][iy][ix] * ws[o][ci][ky][kx]
                acc = accumulator(acc + bs[o], hw, stats)
                out.append(requant_activate(acc, o, spec.activation, plan, hw, stats, out_bits))
    return _pack(out, (n, oh, ow), out_bits), stats


def connected(spec: Any, x: np.ndarray, w_q: np.ndarray, b_q: np.ndarray, plan: Any, hw: Any,
              out_bits: int = 8) -> tuple[np.ndarray, RefStats]:
    """``acc[o] = Σ_i W[o,i]·x_flat[i] + b[o]`` with ``x_flat[(c·H + y)·W + x] = X[c,y,x]``."""
    stats = RefStats()
    xs = _int_list3(x)
    c, h, w = len(xs), len(xs[0]), len(xs[0][0])
    flat = [0] * (c * h * w)
    for ch in range(c):
        for y in range(h):
            for xx in range(w):
                flat[(ch * h + y) * w + xx] = xs[ch][y][xx]
    ws = [[int(v) for v in row] for row in np.asarray(w_q).tolist()]
    bs = [int(v) for v in np.asarray(b_q).reshape(-1).tolist()]
    out = []
    for o in range(len(ws)):
        acc = 0
        for i in range(len(flat)):
            acc += ws[o][i] * flat[i]
        acc = accumulator(acc + bs[o], hw, stats)
        out.append(requant_activate(acc, o, spec.activation, plan, hw, stats, out_bits))
    return _pack(out, tuple(spec.out_shape), out_bits), stats


# --------------------------------------------------------------------------- pooling


def maxpool(spec: Any, x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Darknet ``forward_maxpool_layer``: window ``(i, j)`` covers rows ``i·sy − ⌊pad/2⌋ + n`` and
    columns ``j·sx − ⌊pad/2⌋ + m`` (``n, m < size``); positions outside the input are ignored.
    A window entirely outside the input is an error here (Darknet would output −FLT_MAX)."""
    xs = _int_list3(x)
    c, h, w = len(xs), len(xs[0]), len(xs[0][0])
    _, oh, ow = spec.out_shape
    off = -(spec.padding // 2)
    out = []
    for ch in range(c):
        for i in range(oh):
            for j in range(ow):
                best = None
                for n in range(spec.size):
                    for m in range(spec.size):
                        y = off + i * spec.stride_y + n
                        xx = off + j * spec.stride_x + m
                        if 0 <= y < h and 0 <= xx < w and (best is None or xs[ch][y][xx] > best):
                            best = xs[ch][y][xx]
                assert best is not None, f"maxpool window ({i}, {j}) lies entirely outside the input"
                out.append(best)
    return _pack(out, (c, oh, ow), bits)


def avgpool(spec: Any, x: np.ndarray, plan: Any, hw: Any, out_bits: int = 8) -> tuple[np.ndarray, RefStats]:
    """Global average: ``Σ_{y,x} X[c,y,x]`` (exact int) requantized by ``plan.rq``, saturated to int8."""
    stats = RefStats()
    xs = _int_list3(x)
    out = []
    for ch, plane in enumerate(xs):
        total = 0
        for row in plane:
            for v in row:
                total += v
        out.append(to_width(requantize(total, *encoded(plan.rq, ch), hw), out_bits, stats))
    return _pack(out, (len(xs), 1, 1), out_bits), stats


# --------------------------------------------------------------------------- data movement


def upsample(spec: Any, x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Nearest neighbour: ``out[c, y, x] = in[c, y // s, x // s]``."""
    xs = _int_list3(x)
    s = spec.stride
    c, h, w = len(xs), len(xs[0]), len(xs[0][0])
    out = [xs[ch][y // s][xx // s] for ch in range(c) for y in range(h * s) for xx in range(w * s)]
    return _pack(out, (c, h * s, w * s), bits)


def reorg(spec: Any, x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Darknet ``reorg_cpu(in, w, h, c, batch=1, stride, forward=0, out)`` with the layer's *input*
    sizes (pjreddie's ``forward_reorg_layer``)::

        out_c = c / (s·s)
        for k < c, j < h, i < w:
            c2 = k % out_c;  offset = k / out_c
            w2 = i·s + offset % s;  h2 = j·s + offset / s
            out[i + w·(j + h·k)] = in[w2 + w·s·(h2 + h·s·c2)]

    and the flat output read as ``(c·s², h/s, w/s)``.
    """
    xs = _int_list3(x)
    c, h, w = len(xs), len(xs[0]), len(xs[0][0])
    flat_in = [xs[ch][y][xx] for ch in range(c) for y in range(h) for xx in range(w)]
    s = spec.stride
    out_c = c // (s * s)
    flat_out = [0] * len(flat_in)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                c2 = k % out_c
                offset = k // out_c
                w2 = i * s + offset % s
                h2 = j * s + offset // s
                flat_out[i + w * (j + h * k)] = flat_in[w2 + w * s * (h2 + h * s * c2)]
    return _pack(flat_out, tuple(spec.out_shape), bits)


def route(spec: Any, inputs: Sequence[np.ndarray], plan: Any, hw: Any,
          out_bits: int = 8) -> tuple[np.ndarray, RefStats]:
    """AlexeyAB ``forward_route_layer``: from each input's flat buffer the slice
    ``[group_id·n/groups, (group_id+1)·n/groups)``, concatenated.  An input whose scale differs from
    the output's is rescaled value by value with its own ``plan.in_rq[i]``; every value is
    saturated to ``out_bits`` (a no-op for an input already on the output's scale and width)."""
    stats = RefStats()
    out: list[int] = []
    channels = 0
    hw_shape = None
    for x, rq, s_in in zip(inputs, plan.in_rq, plan.in_scales):
        xs = _int_list3(x)
        c, h, w = len(xs), len(xs[0]), len(xs[0][0])
        hw_shape = hw_shape or (h, w)
        assert (h, w) == hw_shape
        flat = [xs[ch][y][xx] for ch in range(c) for y in range(h) for xx in range(w)]
        part = len(flat) // spec.groups
        for v in flat[spec.group_id * part:(spec.group_id + 1) * part]:
            if s_in != plan.out_scale:
                v = requantize(v, *encoded(rq, 0), hw)
            out.append(to_width(v, out_bits, stats))
        channels += c // spec.groups
    assert hw_shape is not None
    return _pack(out, (channels, *hw_shape), out_bits), stats


def shortcut(spec: Any, inputs: Sequence[np.ndarray], plan: Any, hw: Any, out_bits: int = 8,
             in_bits: Sequence[int] | None = None) -> tuple[np.ndarray, RefStats]:
    """TFLite ADD with Darknet's ``shortcut_cpu`` index mapping.

    Every operand value ``q`` becomes ``requantize(fit_int32(q·2^L), in_rq[i])`` with
    ``L = hw.shortcut_left_shift`` (the int32 domain; ``fit`` per ``hw.left_shift_overflow``).
    ``out = prev'``; then for each ``from`` (``c1, h1, w1``; output ``c2, h2, w2``), with
    ``stride = max(1, w1 / w2)``, ``sample = max(1, w2 / w1)``::

        for k < min(c1, c2), j < min(h1, h2), i < min(w1, w2):
            out[k][j·sample][i·sample] += from'[k][j·stride][i·stride]

    ``prev'`` uses ``in_rq[0]`` (which carries ``α``) at the positions some ``from`` reaches; Darknet
    keeps ``prev`` unscaled everywhere else, so there the reference uses ``plan.prev_rq`` (the
    encoding of the multiplier without ``α``) if the plan has one, else ``in_rq[0]`` too (the two
    differ only for ``α ≠ 1`` with mismatched shapes).  The exact sums are saturated to int32,
    requantized by ``plan.rq`` (``plan.rq_neg`` for negative sums with fused leaky) and activated.
    """
    stats = RefStats()
    widths = list(in_bits) if in_bits is not None else [8] * len(inputs)

    def scaled(q: int, rq: Encoded, bits: int = widths[0]) -> int:
        ls = hw.shortcut_left_shift - (bits - 8)  # a 16-bit operand already carries 8 more bits
        assert ls >= 0
        return requantize(fit(q * 2**ls, 32, hw.left_shift_overflow), *encoded(rq, 0), hw)

    prev = _int_list3(inputs[0])
    c2, h2, w2 = len(prev), len(prev[0]), len(prev[0][0])
    visited = [[[False] * w2 for _ in range(h2)] for _ in range(c2)]
    adds = [[[0] * w2 for _ in range(h2)] for _ in range(c2)]
    for frm, rq, bits in zip(inputs[1:], plan.in_rq[1:], widths[1:]):
        add = _int_list3(frm)
        c1, h1, w1 = len(add), len(add[0]), len(add[0][0])
        stride = max(1, w1 // w2)
        sample = max(1, w2 // w1)
        for k in range(min(c1, c2)):
            for j in range(min(h1, h2)):
                for i in range(min(w1, w2)):
                    adds[k][j * sample][i * sample] += scaled(add[k][j * stride][i * stride], rq, bits)
                    visited[k][j * sample][i * sample] = True
    unscaled_rq = getattr(plan, "prev_rq", None) or plan.in_rq[0]
    total = [[[scaled(prev[k][j][i], plan.in_rq[0] if visited[k][j][i] else unscaled_rq) + adds[k][j][i]
               for i in range(w2)] for j in range(h2)] for k in range(c2)]
    out = [requant_activate(saturate(total[k][j][i], 32), k, spec.activation, plan, hw, stats, out_bits)
           for k in range(c2) for j in range(h2) for i in range(w2)]
    return _pack(out, (c2, h2, w2), out_bits), stats


def scale_channels(spec: Any, inputs: Sequence[np.ndarray], plan: Any, hw: Any,
                   out_bits: int = 8) -> tuple[np.ndarray, RefStats]:
    """``in[c]·from[c,y,x]`` (``in[0,y,x]·from[c,y,x]`` with ``scale_wh``) as exact products,
    requantized by ``plan.rq`` and activated."""
    stats = RefStats()
    scale = _int_list3(inputs[0])
    frm = _int_list3(inputs[1])
    c, h, w = len(frm), len(frm[0]), len(frm[0][0])
    out = []
    for k in range(c):
        for j in range(h):
            for i in range(w):
                s = scale[0][j][i] if spec.scale_wh else scale[k][0][0]
                out.append(requant_activate(s * frm[k][j][i], 0, spec.activation, plan, hw, stats, out_bits))
    return _pack(out, (c, h, w), out_bits), stats


# --------------------------------------------------------------------------- quantization


def quantize_input(x: np.ndarray, scale: float) -> np.ndarray:
    """``saturate_int8(round_half_away(x / scale))`` on the exact rational values."""
    s = Fraction(scale)
    vals = [saturate(round_half_away(Fraction(float(v)) / s), 8) for v in np.asarray(x).reshape(-1).tolist()]
    return _pack(vals, tuple(np.asarray(x).shape))


def quantize_multiplier(real: float, bits: int = 32) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``q, e = frexp(real)``; ``M0 = round_half_away(q·2^(bits−1))``
    (exact); ``M0 == 2^(bits−1)`` → halve it and ``e + 1``; ``e < −31`` (the int32 right-shift
    limit, whatever the multiplier width) or ``real == 0`` → ``(0, 0)``.  ``real ≈ M0·2^e / 2^(bits−1)``."""
    if real == 0:
        return 0, 0
    q, e = math.frexp(real)
    m0 = round_half_away(Fraction(q) * 2 ** (bits - 1))
    if m0 == 2 ** (bits - 1):
        m0 //= 2
        e += 1
    if e < -31:
        return 0, 0
    return m0, e


def quantize_multiplier_single_round(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier`` under ``TFLITE_SINGLE_ROUNDING``: shifts above 30 clamp to
    ``(2^31 − 1, 30)``."""
    m0, e = quantize_multiplier(real, 32)
    return (INT32_MAX, 30) if e > 30 else (m0, e)
