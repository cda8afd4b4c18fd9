"""The ``Network``: a cfg's layer specs with inferred shapes, plus float parameters.

Built once by :func:`load_network` (cfg, then optionally weights) and then read by
every engine; nothing here runs a layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.cfg import Section, read_cfg
from golden.errors import CfgError
from golden.layers import (PARAM_LAYERS, ConnectedSpec, ConvSpec, Kind, LayerSpec, Shape,
                           build_layer, _TRAINING_KEYS)


@dataclass
class LayerParams:
    """Float32 parameters of one conv/connected layer, exactly as stored in ``.weights``.

    With batch norm, ``biases`` is BN's beta (Darknet keeps no separate conv bias).
    ``weights`` is OIHW for conv, ``(out, in)`` for connected.
    """

    biases: np.ndarray
    weights: np.ndarray
    scales: np.ndarray | None = None
    rolling_mean: np.ndarray | None = None
    rolling_variance: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class Network:
    """Layer specs in cfg order; ``params[i]`` for layers that have weights."""

    cfg_path: Path
    input_shape: Shape
    layers: list[LayerSpec]
    params: dict[int, LayerParams] = field(default_factory=dict)
    letter_box: bool = True
    warnings: list[str] = field(default_factory=list)
    weights_header: tuple[int, int, int, int] | None = None  # major, minor, revision, seen
    weights_path: Path | None = None
    cfg_text: str | None = None  # the cfg as read (kept so a model can be saved self-contained)

    @property
    def name(self) -> str:
        return self.cfg_path.stem

    @property
    def output_index(self) -> int:
        """Darknet's network output: the last layer that is not [cost]."""
        for spec in reversed(self.layers):
            if spec.kind is not Kind.COST:
                return spec.index
        return len(self.layers) - 1

    @property
    def n_params(self) -> int:
        return sum(s.n_params for s in self.layers)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.layers)

    @property
    def heads(self) -> list[LayerSpec]:
        return [s for s in self.layers if s.kind in (Kind.YOLO, Kind.REGION)]

    @property
    def is_detector(self) -> bool:
        return bool(self.heads)

    def param_layers(self) -> list[ConvSpec | ConnectedSpec]:
        return [s for s in self.layers if s.kind in PARAM_LAYERS]  # type: ignore[misc]

    def consumers(self) -> dict[int, list[int]]:
        """Which layers read each layer's output (for keeping only what is still needed)."""
        out: dict[int, list[int]] = {i: [] for i in range(-1, len(self.layers))}
        for spec in self.layers:
            for i in spec.inputs:
                out[i].append(spec.index)
        return out


def _net_section(sec: Section) -> tuple[Shape, bool, list[str]]:
    w, h, c = sec.get_int("width", 0), sec.get_int("height", 0), sec.get_int("channels", 0)
    for key, v in (("width", w), ("height", h), ("channels", c)):
        if v <= 0:
            raise sec.error(f"option '{key}' must be a positive integer (got {v}): "
                            "the network input size is undefined", sec._find(key))
    letter_box = bool(sec.get_int("letter_box", 1))
    warnings = [f"{sec.path}:{o.line}: unknown option '{o.key}' in [{sec.name}] ignored"
                for o in sec.unused() if o.key not in _TRAINING_KEYS["net"]]
    return (c, h, w), letter_box, warnings + sec.warnings


def parse_network(cfg_path: str | Path) -> Network:
    """Parse a cfg into a ``Network`` (no weights).  Raises ``CfgError`` naming file:line."""
    sections = read_cfg(cfg_path)
    input_shape, letter_box, warnings = _net_section(sections[0])
    layers: list[LayerSpec] = []
    shapes: list[Shape] = []
    prev = input_shape
    for idx, sec in enumerate(sections[1:]):
        spec = build_layer(sec, idx, prev, shapes)
        warnings.extend(sec.warnings)
        layers.append(spec)
        shapes.append(spec.out_shape)
        prev = spec.out_shape
    if not layers:
        raise CfgError(cfg_path, None, "the cfg has a [net] section but no layers")
    return Network(Path(cfg_path), input_shape, layers, letter_box=letter_box, warnings=warnings,
                   cfg_text=Path(cfg_path).read_text(encoding="utf-8", errors="replace"))


def load_network(cfg_path: str | Path, weights_path: str | Path | None = None) -> Network:
    """Parse the cfg and, if given, read the weights (exact size checked)."""
    net = parse_network(cfg_path)
    if weights_path is not None:
        from golden.weights import read_weights

        read_weights(net, weights_path)
    return net


def estimate_activation_bytes(net: Network) -> int:
    """An upper estimate, from the cfg's shapes alone, of the memory one run of ``net`` needs for
    its activations — so a server (``dla serve --max-job-memory``) can refuse a model before
    running it.  Semantics: the float32 input, every layer's float32 output kept at once (STEP
    keeps them all; int8 runs keep less, so this bounds them too), plus the largest transient of
    one layer: for a convolution its im2col matrix (``in/groups × k² × out_h × out_w`` float32)
    and a float64 accumulator of the output, for anything else one more float32 output.  Weights
    are not counted (they are the file's size).  It deliberately over-counts by a small factor;
    a model it admits runs within it."""
    f32 = 4
    total = int(np.prod(net.input_shape)) * f32
    peak = 0
    for spec in net.layers:
        out = int(np.prod(spec.out_shape))
        total += out * f32
        if isinstance(spec, ConvSpec):
            cin = int(spec.in_shape[0]) // max(1, spec.groups)
            col = cin * spec.size * spec.size * int(spec.out_shape[1]) * int(spec.out_shape[2]) * f32
            peak = max(peak, col + out * 8)
        else:
            peak = max(peak, out * f32)
    return total + peak
