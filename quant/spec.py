"""The quantization spec: which algorithm for which layer.

Global choices (``activations``, ``weights``, ``granularity``) plus per-layer overrides
selected by layer index or layer type.  ``activations: auto`` picks, per tensor, the
algorithm whose expected SQNR on the calibration histogram is best (and keeps the table of
candidates for the report).  Written in YAML/JSON as::

    activations: kl          # max | percentile | mse | kl | log2 | auto
    weights: max             # max | mse
    granularity: per_channel # per_tensor | per_channel
    percentile: 99.99
    overrides:
      - layers: [0, 1]       # by index ...
        activations: max
      - types: [route]       # ... or by type
        activations: percentile
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from golden.errors import UserInputError
from golden.layers import LayerSpec
from quant.algorithms import ACTIVATION_ALGORITHMS, WEIGHT_ALGORITHMS

GRANULARITIES = ("per_tensor", "per_channel")
ACTIVATION_CHOICES = (*ACTIVATION_ALGORITHMS, "auto")


def _check(value: str | None, valid: tuple[str, ...], what: str) -> None:
    if value is not None and value not in valid:
        raise UserInputError(f"unknown {what} '{value}' (valid: {', '.join(valid)})")


@dataclass(frozen=True)
class Override:
    """Rules for the layers listed by index in ``layers`` or by type in ``types``."""

    layers: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    activations: str | None = None
    weights: str | None = None
    granularity: str | None = None

    def __post_init__(self) -> None:
        _check(self.activations, ACTIVATION_CHOICES, "activation algorithm")
        _check(self.weights, WEIGHT_ALGORITHMS, "weight algorithm")
        _check(self.granularity, GRANULARITIES, "granularity")

    def matches(self, spec: LayerSpec) -> bool:
        return spec.index in self.layers or spec.kind.value in self.types


@dataclass(frozen=True)
class QuantSpec:
    activations: str = "max"
    weights: str = "max"
    granularity: str = "per_tensor"
    percentile: float = 99.99
    overrides: tuple[Override, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check(self.activations, ACTIVATION_CHOICES, "activation algorithm")
        _check(self.weights, WEIGHT_ALGORITHMS, "weight algorithm")
        _check(self.granularity, GRANULARITIES, "granularity")
        if not 0 < self.percentile <= 100:
            raise UserInputError(f"percentile must be in (0, 100], got {self.percentile}")

    def _pick(self, spec: LayerSpec | None, attr: str) -> str:
        value = getattr(self, attr)
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["overrides"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in o.items()
                           if v not in (None, ())} for o in d["overrides"]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        known = {"activations", "weights", "granularity", "percentile", "overrides"}
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
            bad = set(o) - {"layers", "types", "activations", "weights", "granularity"}
            if bad:
                raise UserInputError(f"unknown override key(s) {sorted(bad)}")
            layers, types = o.get("layers", []), o.get("types", [])
            if not isinstance(layers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
                raise UserInputError(f"override 'layers' must be a list of layer indices, got {layers!r}")
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise UserInputError(f"override 'types' must be a list of layer types, got {types!r}")
            gran = o.get("granularity")
            ovs.append(Override(tuple(layers), tuple(types), o.get("activations"), o.get("weights"),
                                gran.replace("-", "_") if isinstance(gran, str) else gran))
        try:
            percentile = float(d.get("percentile", 99.99))
        except (TypeError, ValueError):
            raise UserInputError(f"percentile must be a number, got {d.get('percentile')!r}") from None
        return cls(d.get("activations", "max"), d.get("weights", "max"),
                   str(d.get("granularity", "per_tensor")).replace("-", "_"), percentile, tuple(ovs))
