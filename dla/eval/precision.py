"""Named operand-width choices for ``dla eval --precision NAME=SPEC.yaml``.

A *precision spec* is a quantization spec (``quant.spec``) reduced to the operand widths::

    input_bits: 16              # optional: width of the network input tensor (8 | 16)
    overrides:
      - layers: [15, 22]        # by index or by type, as in a quantization spec
        activation_bits: 16     # 8 | 16: the layer's output tensor
      - types: [convolutional]
        weight_bits: 4          # 4 | 8 | 16
      - layers: [30]
        host: true              # runs in float on the host

``dla eval`` crosses each named spec with every activation algorithm × weight granularity it
evaluates: the variant's quantization spec is ``--activations``/``--granularity``'s choice
plus the named spec's ``input_bits`` and ``overrides``.  The **algorithm keys**
(``activations``, ``weights``, ``granularity``, ``percentile``, at the top or in an override)
are **refused**, not ignored: the algorithms are the table's other axes, and a row labelled
with a spec that silently dropped its ``activations: kl`` would misreport what ran.  An
override that sets no width names nothing to change and is refused likewise; so are a layer
index the network does not have and an unknown layer type (an override that matches no
layer would make the row identical to all-int8 under another name).

The all-int8 quantization always runs as well, under the reserved name :data:`BASELINE`: it is
the reference every precision's accuracy and cycle cost are read against.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golden.errors import UserInputError
from golden.layers import PARAM_LAYERS, Kind
from golden.network import Network
from quant.precision import DEFAULT_BITS
from quant.spec import Override, QuantSpec

BASELINE = "all-int8"
"""Name of the all-int8 variant that runs next to the named precisions (reserved)."""
ALGORITHM_KEYS = ("activations", "weights", "granularity", "percentile")
WIDTH_KEYS = ("weight_bits", "activation_bits", "host")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class NamedPrecision:
    """One ``--precision NAME=FILE``: the widths it sets, and where they came from."""

    name: str
    source: str
    input_bits: int = DEFAULT_BITS
    overrides: tuple[Override, ...] = ()

    def spec(self, activations: str, granularity: str, weights: str = "max") -> QuantSpec:
        """The quantization spec of a variant: the algorithms given, these widths."""
        return QuantSpec(activations=activations, weights=weights, granularity=granularity,
                         overrides=self.overrides, input_bits=self.input_bits)

    def check_network(self, net: Network) -> None:
        """Refuse an override naming a layer index ``net`` does not have or an unknown type."""
        n = len(net.layers)
        kinds = {k.value for k in Kind}
        for i, ov in enumerate(self.overrides):
            where = f"{self.source}: override {i + 1}"
            bad = [x for x in ov.layers if not 0 <= x < n]
            if bad:
                raise UserInputError(f"{where}: layer {bad[0]} does not exist ({net.name} has layers 0-{n - 1})")
            unknown = [t for t in ov.types if t not in kinds]
            if unknown:
                raise UserInputError(f"{where}: unknown layer type '{unknown[0]}' (valid: {', '.join(sorted(kinds))})")
            if ov.weight_bits is not None:  # would select nothing: the row would be all-int8 under another name
                bare = [net.layers[x] for x in ov.layers if net.layers[x].kind not in PARAM_LAYERS]
                if bare:
                    raise UserInputError(f"{where}: weight_bits on layer {bare[0].index} ({bare[0].kind.value}), which "
                                         "has no weights (only convolutional and connected layers do)")


def parse_option(value: str) -> tuple[str, str]:
    """``NAME=PATH`` → ``(NAME, PATH)``; a name is letters, digits and ``_ . + -``."""
    name, sep, path = value.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise UserInputError(f"--precision {value!r}: expected NAME=SPEC.yaml (e.g. int16-heads=heads.yaml)")
    if not _NAME.match(name):
        raise UserInputError(f"--precision {value!r}: the name '{name}' may hold only letters, digits and _ . + - "
                             "(it labels a table row and a CSV cell)")
    if name == BASELINE:
        raise UserInputError(f"--precision {value!r}: '{BASELINE}' is reserved for the all-int8 variant, "
                             "which always runs; choose another name")
    return name, path


def from_data(name: str, source: str, data: Any) -> NamedPrecision:
    """A precision spec from parsed YAML ``data`` (``source`` names the file in every message)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserInputError(f"{source}: expected a mapping (input_bits:, overrides:), got {type(data).__name__}")
    algo = [k for k in ALGORITHM_KEYS if k in data]
    if algo:
        raise UserInputError(f"{source}: '{algo[0]}' is an algorithm key; a --precision spec gives only widths "
                             "(input_bits, overrides with weight_bits/activation_bits/host) — choose algorithms "
                             "with --activations/--granularity")
    raw = data.get("overrides") or []
    if isinstance(raw, list):
        for i, o in enumerate(raw):
            if not isinstance(o, dict):
                continue  # QuantSpec.from_dict names the malformed entry
            algo = [k for k in ALGORITHM_KEYS if k in o]
            if algo:
                raise UserInputError(f"{source}: override {i + 1}: '{algo[0]}' is an algorithm key; a --precision "
                                     "spec gives only widths (weight_bits, activation_bits, host)")
            if set(o) <= {"layers", "types", *WIDTH_KEYS} and not any(k in o for k in WIDTH_KEYS):
                raise UserInputError(f"{source}: override {i + 1} sets no width (give weight_bits, "
                                     "activation_bits or host)")
    try:
        spec = QuantSpec.from_dict(data)
    except UserInputError as exc:
        raise UserInputError(f"{source}: {exc}") from None
    return NamedPrecision(name, source, spec.input_bits, spec.overrides)


def load(name: str, path: str | Path) -> NamedPrecision:
    """Read one precision spec file (YAML or JSON); every problem names the file."""
    from dla.yamlsafe import load_yaml_safely

    return from_data(name, str(path), load_yaml_safely(path, "precision spec file"))


def load_options(values: tuple[str, ...] | list[str]) -> list[NamedPrecision]:
    """Every ``--precision NAME=FILE`` in order; a name given twice is refused."""
    out: list[NamedPrecision] = []
    for value in values:
        name, path = parse_option(value)
        if any(p.name == name for p in out):
            raise UserInputError(f"--precision: the name '{name}' is given twice (each row needs its own name)")
        out.append(load(name, path))
    return out


__all__ = ["ALGORITHM_KEYS", "BASELINE", "NamedPrecision", "from_data", "load", "load_options", "parse_option"]
