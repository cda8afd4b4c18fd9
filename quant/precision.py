"""Per-layer operand widths: what a layer reads, multiplies with and writes, in bits.

A quantized network gives every *tensor* a width (activations: 8 or 16 bits; the network
input is tensor ``-1``) and every conv/connected layer a *weight* width (4, 8 or 16 bits); a
layer may instead run on the *host* (in float: its inputs dequantized, its output quantized
to its tensor's width).  :class:`LayerPrecision` is that choice for one layer, as every part
reads it: the INT engine (``dla.int_kernels``), the cycle model (``dla.cycles``: passes,
bytes), the RTL bridge and the reports.

Which widths the DLA can run, and at what cost, is the hardware's business
(``dla.config.HardwareConfig``'s ``passes_w*a*`` table; ``dla.precision`` checks a network
against it).  This module only names the choice.

Conventions (docs/arithmetic.md, "Operand widths"): a ``b``-bit activation takes
``[−2^(b−1), 2^(b−1) − 1]`` on scale ``s = T / (2^(b−1) − 1)`` for the tensor's clipping
threshold ``T``; a ``b``-bit weight takes the narrow range ``[−(2^(b−1) − 1), 2^(b−1) − 1]``.
"""
from __future__ import annotations

from dataclasses import dataclass

from golden.layers import HOST_LAYERS, ConnectedSpec, ConvSpec, LayerSpec

WEIGHT_WIDTHS = (4, 8, 16)
"""Weight widths a quantization spec may ask for."""
ACTIVATION_WIDTHS = (8, 16)
"""Activation (tensor) widths a quantization spec may ask for."""
DEFAULT_BITS = 8


def pair_name(weight_bits: int, activation_bits: int) -> str:
    """The operand pair of a MAC as the hardware config names it: ``pair_name(8, 16) == "w8a16"``."""
    return f"w{weight_bits}a{activation_bits}"


@dataclass(frozen=True)
class LayerPrecision:
    """One layer's widths.

    ``weight_bits`` is ``None`` for layers without weights; ``input_bits`` has one entry per
    input tensor (``LayerSpec.inputs`` order); ``host`` layers run in float on the host (their
    widths are those of the tensors they exchange with the DLA)."""

    weight_bits: int | None
    input_bits: tuple[int, ...]
    output_bits: int
    host: bool = False

    @property
    def pair(self) -> str | None:
        """The MAC operand pair (``"w8a8"``) of a conv/connected layer on the DLA, else ``None``."""
        if self.weight_bits is None or self.host or not self.input_bits:
            return None
        return pair_name(self.weight_bits, self.input_bits[0])

    @property
    def is_default(self) -> bool:
        """All-int8 on the DLA (what every layer was before widths existed)."""
        return not self.host and self.output_bits == DEFAULT_BITS and \
            all(b == DEFAULT_BITS for b in self.input_bits) and self.weight_bits in (None, DEFAULT_BITS)

    @property
    def label(self) -> str:
        """Short text for tables: ``"host"``; ``"w8a8"`` (a conv reading int8, writing int8);
        ``"w8a8>a16"`` (writing int16); ``"a16"`` (a layer without weights on int16);
        ``"a8+a16>a8"`` (a route of mixed inputs)."""
        if self.host:
            return "host"
        ins = sorted(set(self.input_bits)) or [self.output_bits]
        head = "+".join(f"a{b}" for b in ins)
        if self.weight_bits is not None:
            head = f"w{self.weight_bits}{head}"
        return head if ins == [self.output_bits] else f"{head}>a{self.output_bits}"

    def to_dict(self) -> dict[str, object]:
        return {"weight_bits": self.weight_bits, "input_bits": list(self.input_bits),
                "output_bits": self.output_bits, "host": self.host, "label": self.label}


def default_precision(spec: LayerSpec) -> LayerPrecision:
    """All-int8 on the DLA (host kinds — yolo, region, softmax, cost — on the host): the
    precision of every layer when no quantized network says otherwise (e.g. the cycle model of
    a float model)."""
    weights = DEFAULT_BITS if isinstance(spec, (ConvSpec, ConnectedSpec)) else None
    return LayerPrecision(weights, (DEFAULT_BITS,) * len(spec.inputs), DEFAULT_BITS, spec.kind in HOST_LAYERS)


def bytes_of(elements: int, bits: int) -> int:
    """Bytes of ``elements`` values of ``bits`` each, packed (int4: two per byte, rounded up)."""
    return (elements * bits + 7) // 8


__all__ = ["ACTIVATION_WIDTHS", "DEFAULT_BITS", "LayerPrecision", "WEIGHT_WIDTHS", "bytes_of", "default_precision", "pair_name"]
