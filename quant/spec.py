"""The quantization spec: which algorithm for which layer.

Global choices (``activations``, ``weights``, ``granularity``) plus per-layer overrides
selected by layer index or layer type.  ``activations: auto`` picks, per tensor, the
algorithm whose expected SQNR on the calibration histogram is best (and keeps the table of
candidates for the report).  Written in YAML/JSON as::

    activations: kl          # max | percentile | mse | kl | log2 | auto
    weights: max             # max | mse
    granularity: per_channel # per_tensor | per_channel
    percentile: 99.99
    input_bits: 8            # width of the network input tensor: 8 | 16
    overrides:
      - layers: [0, 1]       # by index ...
        activations: max
      - types: [route]       # ... or by type
        activations: percentile
      - layers: [15, 22]     # operand widths (quant.precision): this layer's output tensor ...
        activation_bits: 16  # ... 8 | 16
      - types: [convolutional]
        weight_bits: 4       # 4 | 8 | 16 (conv/connected)
      - layers: [30]
        host: true           # runs in float on the host (per-layer HYBRID)

``activation_bits`` is the width of the layer's *output* tensor; layers whose output values
are their input's (maxpool, upsample, reorg, single-input route) share their input's tensor
group, so an override on any member widens the whole group, as with ``activations``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from golden.errors import UserInputError
from golden.layers import LayerSpec
from quant.algorithms import ACTIVATION_ALGORITHMS, WEIGHT_ALGORITHMS
from quant.precision import ACTIVATION_WIDTHS, DEFAULT_BITS, WEIGHT_WIDTHS

GRANULARITIES = ("per_tensor", "per_channel")
ACTIVATION_CHOICES = (*ACTIVATION_ALGORITHMS, "auto")


def _check(value: str | None, valid: tuple[str, ...], what: str) -> None:
    if value is not None and value not in valid:
        raise UserInputError(f"unknown {what} '{value}' (valid: {', '.join(valid)})")


def _check_bits(value: object, valid: tuple[int, ...], what: str) -> None:
    if value is not None and (type(value) is not int or value not in valid):
        raise UserInputError(f"{what} must be one of {', '.join(map(str, valid))}, got {value!r}")


@dataclass(frozen=True)
class Override:
    """Rules for the layers listed by index in ``layers`` or by type in ``types``."""

    layers: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    activations: str | None = None
    weights: str | None = None
    granularity: str | None = None
    weight_bits: int | None = None
    activation_bits: int | None = None
    host: bool | None = None

    def __post_init__(self) -> None:
        _check(self.activations, ACTIVATION_CHOICES, "activation algorithm")
        _check(self.weights, WEIGHT_ALGORITHMS, "weight algorithm")
        _check(self.granularity, GRANULARITIES, "granularity")
        _check_bits(self.weight_bits, WEIGHT_WIDTHS, "override 'weight_bits'")
        _check_bits(self.activation_bits, ACTIVATION_WIDTHS, "override 'activation_bits'")
        if self.host is not None and not isinstance(self.host, bool):
            raise UserInputError(f"override 'host' must be true or false, got {self.host!r}")

    def matches(self, spec: LayerSpec) -> bool:
        return spec.index in self.layers or spec.kind.value in self.types


@dataclass(frozen=True)
class QuantSpec:
    activations: str = "max"
    weights: str = "max"
    granularity: str = "per_tensor"
    percentile: float = 99.99
    overrides: tuple[Override, ...] = field(default_factory=tuple)
    input_bits: int = DEFAULT_BITS

    def __post_init__(self) -> None:
        _check(self.activations, ACTIVATION_CHOICES, "activation algorithm")
        _check(self.weights, WEIGHT_ALGORITHMS, "weight algorithm")
        _check(self.granularity, GRANULARITIES, "granularity")
        _check_bits(self.input_bits, ACTIVATION_WIDTHS, "'input_bits'")
        if not 0 < self.percentile <= 100:
            raise UserInputError(f"percentile must be in (0, 100], got {self.percentile}")

    def _pick(self, spec: LayerSpec | None, attr: str) -> Any:
        value = getattr(self, attr, None)  # widths and host exist on overrides only
        if spec is not None:
            for ov in self.overrides:  # later overrides win
                if ov.matches(spec) and getattr(ov, attr) is not None:
                    value = getattr(ov, attr)
        return value

    def activation_for(self, spec: LayerSpec | None) -> str:
        return self._pick(spec, "activations")

    def weights_for(self, spec: LayerSpec) -> str:
        return self._pick(spec, "weights")

    def granularity_for(self, spec: LayerSpec) -> str:
        return self._pick(spec, "granularity")

    def weight_bits_for(self, spec: LayerSpec) -> int:
        """Weight width of a conv/connected layer (8 unless an override says 4 or 16)."""
        return self._pick(spec, "weight_bits") or DEFAULT_BITS

    def activation_bits_for(self, spec: LayerSpec) -> int | None:
        """Output width an override asks of layer ``spec``, ``None`` if none names it (the
        quantizer then gives its tensor group 8 bits, or the width another member asked)."""
        return self._pick(spec, "activation_bits")

    def host_for(self, spec: LayerSpec) -> bool:
        """Does an override send layer ``spec`` to the host?"""
        return bool(self._pick(spec, "host"))

    @property
    def is_all_int8(self) -> bool:
        """No override changes a width or sends a layer to the host."""
        return self.input_bits == DEFAULT_BITS and not any(
            o.weight_bits not in (None, DEFAULT_BITS) or o.activation_bits not in (None, DEFAULT_BITS) or o.host
            for o in self.overrides)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["overrides"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in o.items()
                           if v is not None and v != ()} for o in d["overrides"]]
        if d["input_bits"] == DEFAULT_BITS:  # files written before widths existed read back equal
            del d["input_bits"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        known = {"activations", "weights", "granularity", "percentile", "overrides", "input_bits"}
        unknown = set(d) - known
        if unknown:
            raise UserInputError(f"unknown quantization spec key(s) {sorted(unknown)} (valid: {sorted(known)})")
        raw = d.get("overrides") or []
        if not isinstance(raw, list):
            raise UserInputError("'overrides' must be a list of mappings (- layers: [...] or - types: [...])")
        ovs = []
        for o in raw:
            if not isinstance(o, dict):
                raise UserInputError(f"each entry of 'overrides' must be a mapping, got {o!r}")
            valid = {"layers", "types", "activations", "weights", "granularity", "weight_bits", "activation_bits",
                     "host"}
            bad = set(o) - valid
            if bad:
                raise UserInputError(f"unknown override key(s) {sorted(bad)} (valid: {sorted(valid)})")
            layers, types = o.get("layers", []), o.get("types", [])
            if not isinstance(layers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
                raise UserInputError(f"override 'layers' must be a list of layer indices, got {layers!r}")
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise UserInputError(f"override 'types' must be a list of layer types, got {types!r}")
            gran = o.get("granularity")
            try:
                ovs.append(Override(tuple(layers), tuple(types), o.get("activations"), o.get("weights"),
                                    gran.replace("-", "_") if isinstance(gran, str) else gran,
                                    o.get("weight_bits"), o.get("activation_bits"), o.get("host")))
            except UserInputError as exc:  # say which entry: a spec often has several setting the same key
                names = ", ".join([f"layers {layers}"] * bool(layers) + [f"types {types}"] * bool(types))
                raise UserInputError(f"{exc} (override {len(ovs) + 1}{': ' + names if names else ''})") from None
        try:
            percentile = float(d.get("percentile", 99.99))
        except (TypeError, ValueError):
            raise UserInputError(f"percentile must be a number, got {d.get('percentile')!r}") from None
        return cls(d.get("activations", "max"), d.get("weights", "max"),
                   str(d.get("granularity", "per_tensor")).replace("-", "_"), percentile, tuple(ovs),
                   d.get("input_bits", DEFAULT_BITS))
