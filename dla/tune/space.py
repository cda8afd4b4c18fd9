"""The search space of ``dla tune``: which choices each layer may take, and the global ones.

A *configuration* gives every **tunable layer** (each convolutional and connected layer: the
layers the MAC array runs) one value of each *dimension*:

========================  =====================================================  ===============
dimension                 meaning (as in a quantization spec, ``quant.spec``)    default options
========================  =====================================================  ===============
``activations``           calibration algorithm of the layer's output tensor     ``[max]``
``weights``               weight scale algorithm                                 ``[max]``
``granularity``           weight scales per tensor or per output channel         ``[per_channel]``
``weight_bits``           4 | 8 | 16                                             ``[8, 4]``
``activation_bits``       the layer's output tensor: 8 | 16                      ``[8, 16]``
``host``                  run the layer in float on the host                     ``[false]``
========================  =====================================================  ===============

plus the global **refinements** (``dla.refine.REFINEMENTS``: each one on or off for the whole
network; none by default).  The **first** option of every list is the *baseline*: with the
defaults, the all-int8 network calibrated with ``max`` and per-channel weight scales (the
``INT max per-channel`` row of docs/accuracy.md).  Host fallback is off by default because
the cycle model charges a host layer only its DRAM transfer, not its float compute: allowing
it by default would let the search "save" cycles by moving work off the chip.

A YAML file restricts or widens the defaults::

    defaults:                 # every tunable layer (each key optional; a scalar = a one-item list)
      weight_bits: [8, 4]
      activation_bits: [8, 16]
    layers:                   # rules by index or by type; later rules win, per key
      - layers: [0]
        weight_bits: [8]      # the first layer keeps int8 weights
      - types: [connected]
        host: [false, true]
    refinements: [bias_correction]

Operand pairs: a configuration whose pairs the hardware does not run
(``HardwareConfig.supported_pairs``) is never evaluated; a width that appears in no supported
pair is refused here, when the space is read.  Every mistake is a ``UserInputError`` naming
the file and the key.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from golden.errors import UserInputError
from golden.layers import PARAM_LAYERS, Kind
from golden.network import Network
from quant.precision import ACTIVATION_WIDTHS, DEFAULT_BITS, WEIGHT_WIDTHS
from quant.spec import ACTIVATION_CHOICES, GRANULARITIES, Override, QuantSpec
from quant.algorithms import WEIGHT_ALGORITHMS
from quant.refine import REFINEMENTS, check_refinements

DIMENSIONS = ("activations", "weights", "granularity", "weight_bits", "activation_bits", "host")
DEFAULTS: dict[str, tuple[Any, ...]] = {
    "activations": ("max",), "weights": ("max",), "granularity": ("per_channel",),
    "weight_bits": (DEFAULT_BITS, 4), "activation_bits": (DEFAULT_BITS, 16), "host": (False,)}
VALID: dict[str, tuple[Any, ...]] = {
    "activations": ACTIVATION_CHOICES, "weights": WEIGHT_ALGORITHMS, "granularity": GRANULARITIES,
    "weight_bits": WEIGHT_WIDTHS, "activation_bits": ACTIVATION_WIDTHS, "host": (False, True)}
TOP_KEYS = ("defaults", "layers", "refinements")
RULE_KEYS = ("layers", "types", *DIMENSIONS)


def available_refinements() -> tuple[str, ...]:
    """The refinement names (``quant.refine.REFINEMENTS``, run by ``dla.refine``)."""
    return REFINEMENTS


@dataclass(frozen=True)
class Choice:
    """One tunable layer's value of every dimension."""

    activations: str
    weights: str
    granularity: str
    weight_bits: int
    activation_bits: int
    host: bool

    def get(self, dim: str) -> Any:
        return getattr(self, dim)

    def set(self, dim: str, value: Any) -> Choice:
        return replace(self, **{dim: value})


@dataclass(frozen=True)
class Config:
    """A point of the space: every tunable layer's :class:`Choice` and the refinements that are on."""

    choices: tuple[tuple[int, Choice], ...]  # (layer index, choice), in layer order
    refinements: tuple[str, ...] = ()

    def choice(self, layer: int) -> Choice:
        return dict(self.choices)[layer]

    def with_move(self, move: Move) -> Config:
        if move.layer is None:  # a refinement switched on (kept in REFINEMENTS order)
            return Config(self.choices, check_refinements([*self.refinements, str(move.value)]))
        return Config(tuple((i, c.set(move.dim, move.value) if i == move.layer else c) for i, c in self.choices),
                      self.refinements)

    def canonical(self) -> str:
        """The text the point's hash is taken of (stable across runs and processes)."""
        return json.dumps({"layers": [[i, [c.get(d) for d in DIMENSIONS]] for i, c in self.choices],
                           "refinements": list(self.refinements)}, sort_keys=True, separators=(",", ":"))

    def quant_spec(self, base: Choice) -> QuantSpec:
        """The quantization spec of this point: ``base``'s algorithms at the top level (for the
        tensors no tunable layer owns, e.g. the network input), one override per layer that
        differs, holding only what differs (algorithms from ``base``, widths from int8, host
        from false), so equal points give equal specs."""
        ovs = []
        for i, c in self.choices:
            diff = {d: c.get(d) for d in ("activations", "weights", "granularity") if c.get(d) != base.get(d)}
            diff.update({d: c.get(d) for d in ("weight_bits", "activation_bits") if c.get(d) != DEFAULT_BITS})
            if c.host:
                diff["host"] = True
            if diff:
                ovs.append(Override(layers=(i,), **diff))
        return QuantSpec(activations=base.activations, weights=base.weights, granularity=base.granularity,
                         overrides=tuple(ovs))


@dataclass(frozen=True)
class Move:
    """One change from a configuration: ``layer``'s ``dim`` set to ``value``, or (``layer`` None)
    the refinement ``value`` switched on."""

    layer: int | None
    dim: str
    value: Any

    @property
    def label(self) -> str:
        return f"+{self.value}" if self.layer is None else f"L{self.layer} {self.option}"

    @property
    def option(self) -> str:
        """``"weight_bits=4"``: the dimension and value, without the layer."""
        return f"refinement={self.value}" if self.layer is None else f"{self.dim}={_show(self.value)}"


@dataclass(frozen=True)
class SearchSpace:
    """Options per tunable layer (each dimension's tuple, baseline first) and the refinements."""

    options: tuple[tuple[int, dict[str, tuple[Any, ...]]], ...]
    refinements: tuple[str, ...] = ()
    source: str = "the default search space"

    @property
    def layers(self) -> list[int]:
        return [i for i, _ in self.options]

    def baseline(self) -> Config:
        return Config(tuple((i, Choice(**{d: o[d][0] for d in DIMENSIONS})) for i, o in self.options))

    def base_choice(self) -> Choice:
        """The baseline's algorithms, for the spec's top level (the first tunable layer's)."""
        return self.baseline().choices[0][1]

    def moves(self) -> list[Move]:
        """Every single change from the baseline: each non-first option of each layer and
        dimension, then each refinement switched on."""
        out = [Move(i, d, v) for i, o in self.options for d in DIMENSIONS for v in o[d][1:]]
        return out + [Move(None, "refinement", r) for r in self.refinements]

    def size(self) -> int:
        """How many configurations an exhaustive search would evaluate."""
        n = 2 ** len(self.refinements)
        for _, o in self.options:
            n *= math.prod(len(o[d]) for d in DIMENSIONS)
        return n

    def size_text(self) -> str:
        """``"3^24 = 282429536481"``-style: the count an exhaustive search needs."""
        per = [math.prod(len(o[d]) for d in DIMENSIONS) for _, o in self.options] + [2] * len(self.refinements)
        counts: dict[int, int] = {}
        for p in per:
            counts[p] = counts.get(p, 0) + 1
        terms = " x ".join(f"{b}^{e}" if e > 1 else str(b) for b, e in sorted(counts.items(), reverse=True) if b > 1)
        return f"{terms or '1'} = {self.size()}"

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [{"layer": i, **{d: list(o[d]) for d in DIMENSIONS}} for i, o in self.options],
                "refinements": list(self.refinements), "source": self.source}


def tunable_layers(net: Network) -> list[int]:
    """The layers the search chooses for: every convolutional and connected layer."""
    return [s.index for s in net.layers if s.kind in PARAM_LAYERS]


def _values(raw: Any, dim: str, where: str) -> tuple[Any, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise UserInputError(f"{where}: '{dim}' is an empty list: give at least one option "
                             f"(valid: {', '.join(map(_show, VALID[dim]))})")
    out: list[Any] = []
    for v in items:
        if isinstance(v, str) and dim == "granularity":
            v = v.replace("-", "_")
        ok = isinstance(v, bool) if dim == "host" else (type(v) is int if dim.endswith("_bits") else isinstance(v, str))
        if not ok or v not in VALID[dim]:
            raise UserInputError(f"{where}: '{dim}' option {v!r} is not valid (valid: {', '.join(map(_show, VALID[dim]))})")
        if v not in out:
            out.append(v)
    return tuple(out)


def _show(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _check_widths(dim: str, values: tuple[Any, ...], pairs: set[tuple[int, int]], where: str) -> None:
    """A width no supported pair uses can never run: refuse it instead of silently never trying it."""
    side = 0 if dim == "weight_bits" else 1
    for v in values:
        if not any(p[side] == v for p in pairs):
            names = ", ".join(f"w{w}a{a}" for w, a in sorted(pairs))
            raise UserInputError(f"{where}: '{dim}' option {v} is in no operand pair the hardware runs "
                                 f"({names}; see passes_w*a* in the hardware config)")


def build_space(data: Any, net: Network, supported_pairs: list[str], source: str = "the search space") -> SearchSpace:
    """The space for ``net`` from parsed YAML ``data`` (``None``: the defaults); ``source`` names
    the file in every message.  Refuses an empty space (no choice to make)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserInputError(f"{source}: expected a mapping (defaults:, layers:, refinements:), got {type(data).__name__}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise UserInputError(f"{source}: unknown key '{unknown[0]}' (valid: {', '.join(TOP_KEYS)})")
    pairs = {(int(p[1:p.index("a")]), int(p[p.index("a") + 1:])) for p in supported_pairs}
    defaults = dict(DEFAULTS)
    raw_defaults = data.get("defaults") or {}
    if not isinstance(raw_defaults, dict):
        raise UserInputError(f"{source}: 'defaults' must be a mapping of dimension: [options]")
    for k, v in raw_defaults.items():
        if k not in DIMENSIONS:
            raise UserInputError(f"{source}: defaults: unknown key '{k}' (valid: {', '.join(DIMENSIONS)})")
        defaults[k] = _values(v, k, f"{source}: defaults")
    if "weight_bits" not in raw_defaults:  # the default list keeps only widths the hardware runs
        defaults["weight_bits"] = tuple(w for w in defaults["weight_bits"] if any(p[0] == w for p in pairs))
    else:
        _check_widths("weight_bits", defaults["weight_bits"], pairs, f"{source}: defaults")
    if "activation_bits" in raw_defaults:
        _check_widths("activation_bits", defaults["activation_bits"], pairs, f"{source}: defaults")
    tunable = tunable_layers(net)
    options = {i: dict(defaults) for i in tunable}
    rules = data.get("layers") or []
    if not isinstance(rules, list):
        raise UserInputError(f"{source}: 'layers' must be a list of rules (- layers: [...] or - types: [...])")
    kinds = {k.value for k in Kind}
    for n, rule in enumerate(rules, 1):
        where = f"{source}: layers rule {n}"
        if not isinstance(rule, dict):
            raise UserInputError(f"{where}: expected a mapping, got {rule!r}")
        bad = sorted(set(rule) - set(RULE_KEYS))
        if bad:
            raise UserInputError(f"{where}: unknown key '{bad[0]}' (valid: {', '.join(RULE_KEYS)})")
        idx, types = rule.get("layers", []), rule.get("types", [])
        if not isinstance(idx, list) or not all(type(i) is int for i in idx):
            raise UserInputError(f"{where}: 'layers' must be a list of layer indices, got {idx!r}")
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise UserInputError(f"{where}: 'types' must be a list of layer types, got {types!r}")
        if not idx and not types:
            raise UserInputError(f"{where}: names no layer (give layers: [...] or types: [...])")
        for t in types:
            if t not in kinds:
                raise UserInputError(f"{where}: unknown layer type '{t}' (valid: {', '.join(sorted(kinds))})")
            if Kind(t) not in PARAM_LAYERS:
                raise UserInputError(f"{where}: type '{t}' is not tunable (only convolutional and connected "
                                     "layers are: they run on the MAC array)")
        for i in idx:
            if not 0 <= i < len(net.layers):
                raise UserInputError(f"{where}: layer {i} does not exist ({net.name} has layers 0-{len(net.layers) - 1})")
            if i not in options:
                raise UserInputError(f"{where}: layer {i} is {net.layers[i].kind.value}, not tunable (only "
                                     "convolutional and connected layers are)")
        dims = [k for k in rule if k in DIMENSIONS]
        if not dims:
            raise UserInputError(f"{where}: sets no option (give one of {', '.join(DIMENSIONS)})")
        values = {d: _values(rule[d], d, where) for d in dims}
        for d in ("weight_bits", "activation_bits"):
            if d in values:
                _check_widths(d, values[d], pairs, where)
        chosen = [i for i in tunable if i in idx or net.layers[i].kind.value in types]
        if not chosen:
            raise UserInputError(f"{where}: matches no layer of {net.name}")
        for i in chosen:
            options[i].update(values)
    refs = data.get("refinements") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise UserInputError(f"{source}: 'refinements' must be a list of names, got {refs!r}")
    try:
        refs = list(check_refinements(refs))
    except UserInputError as exc:
        raise UserInputError(f"{source}: refinements: {exc}") from None
    if "adaround" in refs:
        from quant.refine.adaround import require_torch

        try:
            require_torch()
        except UserInputError as exc:
            raise UserInputError(f"{source}: refinements: {exc}") from None
    for i, o in options.items():
        for d in DIMENSIONS:
            if not o[d]:
                raise UserInputError(f"{source}: layer {i} has no '{d}' option the hardware runs")
    space = SearchSpace(tuple((i, options[i]) for i in tunable), tuple(dict.fromkeys(refs)), source)
    if not tunable:
        raise UserInputError(f"{source}: {net.name} has no convolutional or connected layer: nothing to tune")
    if space.size() <= 1:
        raise UserInputError(f"{source}: the search space is empty: every layer has exactly one option and no "
                             "refinement is listed, so there is nothing to choose (give a dimension two options)")
    return space


def load_space(path: str | Path | None, net: Network, supported_pairs: list[str]) -> SearchSpace:
    """The space of the YAML file at ``path`` (``None``: the defaults)."""
    if path is None:
        return build_space(None, net, supported_pairs, "the default search space")
    from dla.yamlsafe import load_yaml_safely

    return build_space(load_yaml_safely(path, "search space file"), net, supported_pairs, str(path))


__all__ = ["Choice", "Config", "DEFAULTS", "DIMENSIONS", "Move", "SearchSpace", "available_refinements",
           "build_space", "load_space", "tunable_layers"]
