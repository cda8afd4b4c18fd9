"""The layer table of ``dla info``: shapes, hyper-parameters, parameter and MAC counts."""
from __future__ import annotations

from golden.layers import ConvSpec, Kind, LayerSpec, MaxPoolSpec, RouteSpec, ShortcutSpec, UpsampleSpec
from golden.network import Network
from quant.qnet import QuantizedNetwork


def _detail(s: LayerSpec) -> str:
    if isinstance(s, ConvSpec):
        g = f" g{s.groups}" if s.groups > 1 else ""
        bn = " bn" if s.batch_normalize else ""
        stride = s.stride_x if s.stride_x == s.stride_y else f"{s.stride_x}x{s.stride_y}"
        return f"{s.filters:>4} {s.size}x{s.size}/{stride}{g}{bn} {s.activation}"
    if isinstance(s, MaxPoolSpec):
        return f"     {s.size}x{s.size}/{s.stride_x}"
    if isinstance(s, RouteSpec):
        grp = f" group {s.group_id}/{s.groups}" if s.groups > 1 else ""
        return "     " + ",".join(map(str, s.layers)) + grp
    if isinstance(s, ShortcutSpec):
        return f"     from {','.join(map(str, s.from_layers))} {s.activation}"
    if isinstance(s, UpsampleSpec):
        return f"     x{s.stride}"
    return ""


def _shape(shape: tuple[int, int, int]) -> str:
    c, h, w = shape
    return f"{c}x{h}x{w}"


def layer_table(net: Network, qnet: QuantizedNetwork | None = None) -> list[str]:
    """The title line, the header, one row per layer, the totals.  With ``qnet`` (a .qnet, or a
    debugging session of a quantized model) each row ends with the layer's ``precision`` label
    (``quant.precision``: "w8a8", "w8a8>a16", "host"...); a float model's table has no such column."""
    prec = {s.index: qnet.precision(s).label for s in net.layers} if qnet is not None else {}
    ptail = f" {'precision':<9}" if prec else ""
    rows = [f"{net.name}: input {_shape(net.input_shape)} (CxHxW), {len(net.layers)} layers",
            f"{'idx':>4}  {'type':<14} {'input':>13} -> {'output':<13} {'detail':<30} {'params':>11} {'MACs':>14}"
            + ptail]
    for s in net.layers:
        rows.append(f"{s.index:>4}  {s.kind.value:<14} {_shape(s.in_shape):>13} -> {_shape(s.out_shape):<13} "
                    f"{_detail(s):<30} {s.n_params:>11,} {s.macs:>14,}" + (f" {prec[s.index]}" if prec else ""))
    convs = sum(1 for s in net.layers if s.kind is Kind.CONV)
    rows.append(f"total: {net.n_params:,} parameters ({4 * net.n_params / 2**20:.1f} MiB as float32), "
                f"{net.macs:,} MACs ({2 * net.macs / 1e9:.2f} GFLOP), {convs} convolutions")
    return rows


def quant_table(qnet) -> list[str]:
    """Per tensor: the activation algorithm, clipping threshold, width (8 or 16 bits: the scale of
    an int16 tensor is 258x finer for the same threshold, so the scale alone would puzzle) and
    scale (and `auto`'s candidates); per weighted layer its weight algorithm, granularity and,
    when not 8, its weight width (``/w4``)."""
    from math import isfinite

    net = qnet.net
    rows = [f"{'tensor':>6}  {'type':<14} {'algorithm':<10} {'threshold':>11} {'bits':>4} {'scale':>12}  "
            "auto candidates (SQNR dB)"]
    for t in range(-1, len(net.layers)):
        kind = "input" if t == -1 else net.layers[t].kind.value
        cand = ""
        if t in qnet.auto_table:
            cand = "  ".join(f"{k} {v:.1f}" if isfinite(v) else f"{k} inf" for k, v in qnet.auto_table[t].items())
        rows.append(f"{t:>6}  {kind:<14} {qnet.algorithms.get(t, 'max'):<10} {qnet.thresholds.get(t, 0.0):11.4f} "
                    f"{qnet.tensor_bits(t):>4} {qnet.scales[t]:12.6g}  {cand}")
    wl = [f"{i}:{ql.w_algorithm}/{ql.granularity}" + (f"/w{ql.w_bits}" if ql.w_bits != 8 else "")
          for i, ql in sorted(qnet.layers.items())]
    rows.append("weights: " + ", ".join(wl))
    return rows
