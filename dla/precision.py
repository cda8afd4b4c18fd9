"""Can this DLA run this network's operand widths?  The checks between a quantized network's
per-layer precision (``quant.precision``) and the ``HardwareConfig``.

Run when INT plans are built (``Engine.plans``) and when a ``.qnet`` is loaded, so a width the
hardware does not support fails before any computation, with one message naming the layer,
the width and the config field to change:

* a conv/connected operand pair whose ``passes_w*a*`` is 0;
* with ``acc_range_check: refuse``, a layer whose worst-case sum needs more than ``acc_bits``:
  ``max_c (Σ_k |w[c,k]| · 2^(a−1) + |b[c]|)`` over the layer's actual integer weights ``w`` and
  bias ``b``, ``a`` the input width (the largest magnitude an ``a``-bit input can reach is
  ``2^(a−1)``) — the exact bound, not a ``K·2^(w−1)·2^(a−1)`` estimate, so a wide layer with
  small weights is accepted when it cannot overflow;
* a ``host: true`` conv/connected layer without float weights to run on the host.
"""
from __future__ import annotations

import numpy as np

from dla.config import HardwareConfig
from golden.errors import UnsupportedError
from golden.layers import ConnectedSpec, ConvSpec
from quant.qnet import QuantizedNetwork


def worst_case_accumulator(w_q: np.ndarray, b_q: np.ndarray, input_bits: int) -> int:
    """``max_c (Σ|w[c]| · 2^(input_bits−1) + |b[c]|)``: the largest magnitude the exact sum of
    any output channel can take over all inputs of ``input_bits`` (Python int, no overflow)."""
    w = np.abs(w_q.reshape(w_q.shape[0], -1).astype(np.int64)).sum(axis=1)
    totals = [int(a) * (1 << (input_bits - 1)) + abs(int(b)) for a, b in zip(w, b_q)]
    return max(totals, default=0)


def check_precision(qnet: QuantizedNetwork, hw: HardwareConfig) -> None:
    """Raise ``UnsupportedError`` for the first layer whose widths ``hw`` cannot run (see the
    module docstring); return quietly when all can."""
    for spec in qnet.net.layers:
        if not isinstance(spec, (ConvSpec, ConnectedSpec)):
            continue
        prec = qnet.precision(spec)
        where = f"layer {spec.index} ({spec.kind.value})"
        if prec.host:
            if spec.index not in qnet.net.params:
                raise UnsupportedError(f"{where}: 'host: true' runs it in float on the host, but the model has "
                                       "no float weights for it (load the .weights, or drop 'host')")
            continue
        pair = prec.pair
        if hw.passes(prec.weight_bits, prec.input_bits[0]) <= 0:
            raise UnsupportedError(
                f"{where}: {pair} (int{prec.weight_bits} weights x int{prec.input_bits[0]} activations) is not "
                f"supported by the hardware config (passes_{pair} = 0); set 'passes_{pair}' in it, or change the "
                f"layer's weight_bits / the activation_bits of its input in the quantization spec "
                f"(supported: {', '.join(hw.supported_pairs())})")
        if hw.acc_range_check == "refuse":
            ql = qnet.layers[spec.index]
            worst = worst_case_accumulator(ql.w_q, ql.b_q, prec.input_bits[0])
            if worst > hw.acc_max:
                raise UnsupportedError(
                    f"{where}: at {pair} the worst-case sum reaches {worst} (needs {worst.bit_length() + 1} "
                    f"bits), beyond acc_bits={hw.acc_bits}; acc_range_check is 'refuse' (set it to 'count' to run "
                    "and count overflows, or narrow the layer's widths)")


__all__ = ["check_precision", "worst_case_accumulator"]
