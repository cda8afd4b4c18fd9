"""The one ``HardwareConfig``: every arithmetic rule and array/memory parameter of the DLA.

Loaded from YAML (``scenarios/hw/*.yaml``), validated with errors naming file:line,
printed in every report.  Kernels take it as an argument; there are no module-level
hardware constants.  Field docs below are the reference (docs/hardware-config.md).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from dla.yamlsafe import BoundedLoader, compose_yaml
from golden.errors import FileMissingError, UserInputError


class ConfigError(UserInputError):
    """Raised for a hardware YAML that does not describe a valid ``HardwareConfig`` (names file:line)."""

    def __init__(self, path: str | Path, line: int | None, msg: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {msg}")


@dataclass(frozen=True)
class HardwareConfig:
    """The DLA's arithmetic contract (DESIGN §4) and array/memory description (DESIGN §5)."""

    # --- accumulation
    acc_bits: int = 32
    """Signed accumulator width of the MAC array (bits); conv/connected sums and bias live here."""
    acc_overflow: Literal["saturate", "wrap"] = "saturate"
    """What the accumulator does past its range: clamp (DLA default) or two's-complement wrap."""
    acc_range_check: Literal["count", "refuse"] = "count"
    """A layer whose worst case (Σ|w|·2^(a−1) + |bias|) exceeds acc_bits: run it and count overflows, or refuse it."""

    # --- requantization (accumulator -> int8)
    requant: Literal["gemmlowp", "single_round", "scale_shift"] = "gemmlowp"
    """Encoding of the real multiplier M = s_x*s_w/s_y and how it is applied (docs/arithmetic.md)."""
    multiplier_bits: int = 32
    """Width of the signed fixed-point multiplier (Q0.(bits-1) for gemmlowp/single_round)."""
    shift_bits: int = 6
    """Width of the unsigned right shift of the ``scale_shift`` scheme."""
    rounding: Literal["half_away", "half_up", "truncate"] = "half_away"
    """Rounding of the final right shift where the scheme allows it (gemmlowp, scale_shift)."""
    left_shift_overflow: Literal["saturate", "wrap"] = "saturate"
    """A multiplier >= 1 shifts the accumulator left: saturate to int32 (DLA) or wrap (TFLite)."""

    # --- activations
    leaky: Literal["fused", "shift"] = "fused"
    """LeakyReLU in the requantizer with a second multiplier alpha*M (fused) or on the int8 result (shift)."""
    leaky_bits: int = 7
    """Fraction bits of the shift-mode slope: a/2^k nearest to 0.1 (k=7 gives 13/128)."""
    activation_lut: bool = False
    """Allow logistic/mish/swish/... in INT mode through a 256-entry int8->int8 table."""

    # --- element-wise layers
    route_shared_scale: bool = False
    """Calibration forces one scale over a route's inputs (no rescale in the concat)."""
    shortcut_left_shift: int = 20
    """Common int32 domain of shortcut (add) operands: both are shifted left by this (TFLite ADD); at most 24 so int8 << shift fits int32."""

    # --- operand widths: cost of each (weights, activations) pair relative to w8a8 (= 1); 0 = not supported
    passes_w4a8: float = 0.5
    """int4 weights x int8 activations: 0.5 = two int4 weights per PE, so twice the filters per fold (edge NPUs)."""
    passes_w4a16: float = 2.0
    """int4 weights x int16 activations: run in the int16 mode, weights sign-extended (no int4 gain)."""
    passes_w8a16: float = 2.0
    """int8 weights x int16 activations: two passes of the int8 array (NVDLA's int16 mode runs at half the int8 MAC rate)."""
    passes_w16a8: float = 2.0
    """int16 weights x int8 activations: two passes (as w8a16)."""
    passes_w16a16: float = 2.0
    """int16 x int16: NVDLA's int16 MAC rate is half its int8 rate; 4 = a digit-serial int8 array (2 x 2 passes)."""

    # --- MAC array and memories: the cycle model (dla.cycles) and the RTL core's size; no effect on INT/HYBRID values
    rows: int = 16
    """Input channels processed in parallel by the MAC array."""
    cols: int = 16
    """Output channels processed in parallel by the MAC array."""
    clock_mhz: float = 500.0
    """Core clock, for latency and fps figures."""
    input_buffer_kib: int = 128
    """On-chip input-activation buffer."""
    weight_buffer_kib: int = 512
    """On-chip weight buffer."""
    output_buffer_kib: int = 64
    """On-chip output/accumulator buffer."""
    dram_bytes_per_cycle: float = 16.0
    """DRAM bandwidth at the core clock."""
    dram_latency_cycles: int = 100
    """Fixed latency of one DRAM burst."""
    dataflow: Literal["weight_stationary", "output_stationary"] = "weight_stationary"
    """What stays in the PEs while the other operand streams."""
    requant_latency: int = 3
    """Pipeline depth of the bias/requantizer/activation unit (cycles)."""
    pool_latency: int = 2
    """Pipeline depth of the pooling unit (cycles)."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise UserInputError("invalid hardware config: " + "; ".join(p for _, p in problems))

    def problems(self) -> list[tuple[str, str]]:
        """``(field, message)`` for every value outside its valid range."""
        return _problems(self.to_dict())

    # derived quantities, one name each
    @property
    def acc_min(self) -> int:
        return -(1 << (self.acc_bits - 1))

    @property
    def acc_max(self) -> int:
        return (1 << (self.acc_bits - 1)) - 1

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols

    def passes(self, weight_bits: int, activation_bits: int) -> float:
        """Cycles of a MAC at ``w{weight_bits}a{activation_bits}`` relative to w8a8 (``passes_w*a*``):
        an integer ``n ≥ 1`` streams every fold ``n`` times; ``1/n`` packs ``n`` filters per PE;
        0 = the array does not support the pair.  w8a8 is 1 by definition; other pairs are 0."""
        if (weight_bits, activation_bits) == (8, 8):
            return 1.0
        return float(getattr(self, f"passes_w{weight_bits}a{activation_bits}", 0.0))

    def supported_pairs(self) -> list[str]:
        """The operand pairs this array runs, ``["w8a8", "w4a8", ...]``."""
        return ["w8a8"] + [f.name[len("passes_"):] for f in fields(self)
                           if f.name.startswith("passes_") and getattr(self, f.name) > 0]

    def replace(self, **changes: Any) -> HardwareConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Valid range of every numeric field (inclusive).  The upper bounds are far beyond any real
#: accelerator; they exist so that a typo (``rows: 1`` followed by 400 zeros, ``clock_mhz:
#: 1.0e+308``) is refused here instead of overflowing or dividing by zero in the cycle model,
#: and so that every derived figure (latency, fps, bandwidth) stays a finite number.
RANGES: dict[str, tuple[float, float]] = {
    "acc_bits": (8, 32), "multiplier_bits": (2, 32), "shift_bits": (1, 8), "leaky_bits": (1, 16),
    "shortcut_left_shift": (0, 24),
    "rows": (1, 65_536), "cols": (1, 65_536),
    "clock_mhz": (1e-3, 1e6),
    "input_buffer_kib": (1, 1 << 30), "weight_buffer_kib": (1, 1 << 30), "output_buffer_kib": (1, 1 << 30),
    "dram_bytes_per_cycle": (1e-3, 1e9),
    "dram_latency_cycles": (0, 1_000_000_000), "requant_latency": (0, 1_000_000), "pool_latency": (0, 1_000_000),
    "passes_w4a8": (0, 64), "passes_w4a16": (0, 64), "passes_w8a16": (0, 64), "passes_w16a8": (0, 64),
    "passes_w16a16": (0, 64),
}


_BITS = frozenset({"acc_bits", "multiplier_bits", "shift_bits", "leaky_bits", "shortcut_left_shift",
                   "passes_w4a8", "passes_w4a16", "passes_w8a16", "passes_w16a8", "passes_w16a16"})


def _problems(v: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for name, (lo, hi) in RANGES.items():
        x = v[name]
        if isinstance(x, float) and not math.isfinite(x):
            out.append((name, f"{name}={x} must be a finite number"))
        elif x <= 0 < lo and name not in _BITS:
            out.append((name, f"{name}={x} must be positive (valid {lo:g}..{hi:g})"))
        elif x < 0 == lo and name not in _BITS:
            out.append((name, f"{name}={x} must not be negative (valid {lo:g}..{hi:g})"))
        elif not lo <= x <= hi:
            shown = str(x) if len(str(x)) <= 24 else f"{str(x)[:20]}... ({len(str(x))} digits)"
            out.append((name, f"{name}={shown} is outside {lo:g}..{hi:g}"))
    for name in (k for k in v if k.startswith("passes_")):
        x = v[name]
        packing = 1 / x if math.isfinite(x) and 0 < x < 1 else None  # 1/n: n filters per PE
        if math.isfinite(x) and 0 < x <= 64 and not (x >= 1 and x == int(x)) and \
                not (packing is not None and math.isfinite(packing) and packing <= 64 and packing == int(packing)):
            out.append((name, f"{name}={x} must be 0 (not supported), a whole number of passes (1, 2, 4...) "
                              "or a packing 1/n (0.5, 0.25...)"))
    if v["requant"] == "single_round" and v["rounding"] == "truncate":
        out.append(("rounding", "single_round has one built-in half-up rounding; rounding=truncate is not "
                                "available with it"))
    return out


def _field_docs() -> dict[str, str]:
    """Field docstrings (the string literal after each field), for docs and error messages."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(HardwareConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value)  # type: ignore[union-attr]
    return docs


def config_reference_markdown() -> str:
    """The hardware-config reference page (docs/hardware-config.md is this, checked by a test)."""
    import typing

    hints = typing.get_type_hints(HardwareConfig)
    docs = _field_docs()
    out = ["# Hardware config reference", "",
           "One frozen `HardwareConfig` (`dla/config.py`) holds every arithmetic rule and array/memory",
           "parameter. Load it from YAML with `--hw FILE` (shipped: `scenarios/hw/default.yaml`,",
           "`scenarios/hw/acc16.yaml`); omitted keys take the defaults below. Unknown keys, wrong types",
           "and out-of-range values are errors naming the file and line (with a did-you-mean).",
           "Numbers must be finite and inside the valid range (far beyond any real design, so that a",
           "typo cannot overflow the cycle model or put Infinity into a JSON report).",
           "This page is generated from the code (`python -m dla.config > docs/hardware-config.md`).", "",
           "| key | type | default | valid range | meaning |", "|---|---|---|---|---|"]
    for f in fields(HardwareConfig):
        tp = hints[f.name]
        tname = " \\| ".join(map(str, get_args(tp))) if get_origin(tp) is Literal else tp.__name__
        rng = f"{RANGES[f.name][0]:g} .. {RANGES[f.name][1]:g}" if f.name in RANGES else "—"
        out.append(f"| `{f.name}` | {tname} | `{f.default}` | {rng} | {docs.get(f.name, '')} |")
    return "\n".join(out) + "\n"


def _check_type(name: str, tp: Any, value: Any) -> str | None:
    """``None`` if ``value`` fits the annotation, else what was expected."""
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        return None if value in choices else f"one of {', '.join(map(str, choices))}"
    if tp is bool or tp == "bool":
        return None if isinstance(value, bool) else "true or false"
    if tp is int or tp == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if tp is float or tp == "float":
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    return None


def config_from_mapping(data: dict[str, Any], path: str | Path = "<config>",
                        lines: dict[str, int] | None = None, base: HardwareConfig | None = None) -> HardwareConfig:
    """Validate a plain mapping (YAML or inline scenario) into a ``HardwareConfig``."""
    lines = lines or {}
    import typing

    hints = typing.get_type_hints(HardwareConfig)
    known = [f.name for f in fields(HardwareConfig)]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(known)})"
            raise ConfigError(path, lines.get(key), f"unknown key '{key}'{hint}")
        expected = _check_type(key, hints[key], value)
        if expected:
            raise ConfigError(path, lines.get(key), f"'{key}' must be {expected}, got {value!r}")
        if hints[key] is float:
            try:
                value = float(value)
            except OverflowError:
                raise ConfigError(path, lines.get(key), f"'{key}' = {str(value)[:20]}... is too large a number") from None
        values[key] = value
    merged = {**(base or HardwareConfig()).to_dict(), **values}
    for name, msg in _problems(merged):
        raise ConfigError(path, lines.get(name), msg)
    return HardwareConfig(**merged)


def load_config(path: str | Path) -> HardwareConfig:
    """Read a hardware YAML file; every mistake is a ``ConfigError`` naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise FileMissingError(path, "hardware config")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:  # bounded: a YAML alias bomb is refused here (dla.yamlsafe)
        node = compose_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        raise ConfigError(path, line, f"invalid YAML{col}: {getattr(exc, 'problem', exc)}") from None
    if node is None:
        return HardwareConfig()
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(path, node.start_mark.line + 1, "expected a mapping of 'key: value' lines")
    loader = BoundedLoader("")
    loader.flatten_mapping(node)
    data: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        try:
            key = loader.construct_object(key_node, deep=True)
            hash(key)
            value = loader.construct_object(value_node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            raise ConfigError(path, line, f"cannot read this entry: {getattr(exc, 'problem', None) or exc}") from None
        data[key], lines[key] = value, line
    return config_from_mapping(data, path, lines)


__all__ = ["ConfigError", "HardwareConfig", "config_from_mapping", "config_reference_markdown", "load_config"]

if __name__ == "__main__":
    print(config_reference_markdown(), end="")
