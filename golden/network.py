"""The ``Network``: a cfg's layer specs with inferred shapes, plus float parameters.

Built once by :func:`load_network` (cfg, then optionally weights) and then read by
every engine; nothing here runs a layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from golden.cfg import Section, read_cfg
from golden.envlimit import env_limit
from golden.errors import CfgError, UserInputError
from golden.forks import DarknetFork, detector_letterbox, resolve_fork
from golden.layers import (PARAM_LAYERS, TRAINING_KEYS, ConnectedSpec, ConvSpec, Kind, LayerParams, LayerSpec,
                           Shape, build_layer)
from golden.weights import read_weights


@dataclass
class Network:
    """Layer specs in cfg order; ``params[i]`` for layers that have weights."""

    cfg_path: Path
    input_shape: Shape
    layers: list[LayerSpec]
    params: dict[int, LayerParams] = field(default_factory=dict)
    letter_box: bool = True  # resolved: what the chosen fork's ``detector test`` does (golden.forks)
    darknet: DarknetFork = DarknetFork.PJREDDIE  # resolved fork: BN formula and letterbox rule
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


# ----------------------------------------------------------------------------- size bounds
#: Defaults of the cfg size bounds (override with the environment variables below).  They sit
#: far above every real Darknet model (yolov3-608: 62 M parameters, ~1.4 GB of activations by
#: this estimate) and far below what would exhaust a workstation, so an absurd cfg
#: (``filters=1000000000``, ``width=100000``) is refused at parse with its line instead of
#: raising MemoryError inside gen-weights, infer or cycles.
DEFAULT_MAX_PARAMS = 500_000_000
DEFAULT_MAX_ACTIVATION_BYTES = 8 << 30
MAX_PARAMS_ENV = "DLA_MAX_PARAMS"
MAX_ACTIVATION_ENV = "DLA_MAX_ACTIVATION_BYTES"
_F32 = 4


def _layer_bytes(spec: LayerSpec) -> tuple[int, int]:
    """``(kept, transient)`` bytes of one layer: its float32 output, which a run keeps (STEP and
    ``--dump`` keep every output), and what exists only while it runs — for a convolution its
    im2col matrix (``in/groups × k² × out_h × out_w`` float32) plus a float64 accumulator of the
    output, for anything else one more float32 output."""
    c, h, w = spec.out_shape
    out = c * h * w
    if isinstance(spec, ConvSpec):
        cin = spec.in_shape[0] // max(1, spec.groups)
        return out * _F32, cin * spec.size * spec.size * h * w * _F32 + out * 8
    return out * _F32, out * _F32


def estimate_activation_bytes(net: Network) -> int:
    """An upper estimate, from the cfg's shapes alone, of the memory one run of ``net`` needs for
    its activations, in bytes — cheap, so a command (:func:`check_size`) or the workbench
    (``dla serve --max-job-memory``) can refuse a model before anything is allocated.

    Semantics: the float32 input, plus every layer's float32 output kept at once (int8 runs keep
    less, so this bounds them too), plus the largest transient of any one layer (see
    ``_layer_bytes``).  Weights are not counted (they are the file's size).  It deliberately
    over-counts by a small factor; a model it admits runs within it."""
    c, h, w = net.input_shape
    kept, peak = c * h * w * _F32, 0
    for spec in net.layers:
        k, t = _layer_bytes(spec)
        kept, peak = kept + k, max(peak, t)
    return kept + peak


def estimate_param_count(net: Network) -> int:
    """Parameters (float32 values in ``.weights``) the cfg needs: ``net.n_params``."""
    return net.n_params


def size_limits() -> tuple[int, int]:
    """``(max parameters, max activation bytes)`` in force (environment, else the defaults)."""
    return (env_limit(MAX_PARAMS_ENV, DEFAULT_MAX_PARAMS),
            env_limit(MAX_ACTIVATION_ENV, DEFAULT_MAX_ACTIVATION_BYTES))


def check_size(net: Network, max_params: int | None = None, max_activation_bytes: int | None = None) -> None:
    """Refuse a cfg whose parameters or activations exceed the bounds, naming the first layer
    (file:line) at which the running total crosses one."""
    lim_p, lim_a = size_limits()
    lim_p = lim_p if max_params is None else max_params
    lim_a = lim_a if max_activation_bytes is None else max_activation_bytes
    c, h, w = net.input_shape
    params, kept, peak = 0, c * h * w * _F32, 0
    act = kept
    if act > lim_a:
        raise CfgError(net.cfg_path, None, f"[net] input {w}x{h}x{c} needs {_gib(act)} of float32, above the "
                       f"limit of {_gib(lim_a)} (set {MAX_ACTIVATION_ENV} to raise it)")
    for spec in net.layers:
        params += spec.n_params
        k, t = _layer_bytes(spec)
        kept, peak = kept + k, max(peak, t)
        act = kept + peak  # = estimate_activation_bytes of the network up to this layer
        where = f"[{spec.kind.value}] layer {spec.index}"
        if params > lim_p:
            raise CfgError(net.cfg_path, spec.line, f"{where}: the network needs {params:,} parameters up to "
                           f"here, above the limit of {lim_p:,} (set {MAX_PARAMS_ENV} to raise it); "
                           f"check 'filters'/'size'/'output'")
        if act > lim_a:
            raise CfgError(net.cfg_path, spec.line, f"{where}: output {spec.out_shape} brings the estimated "
                           f"activation memory to {_gib(act)}, above the limit of {_gib(lim_a)} "
                           f"(set {MAX_ACTIVATION_ENV} to raise it); check the sizes")


def _gib(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB" if n < (1 << 70) else f"{n:.3g} bytes"


def read_net_section(sec: Section, fork: DarknetFork = DarknetFork.PJREDDIE) -> tuple[Shape, bool, list[str]]:
    """Input shape, whether detectors letterbox under ``fork`` (``golden.forks.detector_letterbox``),
    and the warnings of the ``[net]`` section."""
    w, h, c = sec.get_int("width", 0), sec.get_int("height", 0), sec.get_int("channels", 0)
    for key, v in (("width", w), ("height", h), ("channels", c)):
        if v <= 0:
            raise sec.error(f"option '{key}' must be a positive integer (got {v}): "
                            "the network input size is undefined", sec._find(key))
    cfg_letter_box = sec.get_int("letter_box", 0) if sec.has("letter_box") else None
    letter_box = detector_letterbox(fork, cfg_letter_box)
    warnings = [f"{sec.path}:{o.line}: unknown option '{o.key}' in [{sec.name}] ignored"
                for o in sec.unused() if o.key not in TRAINING_KEYS["net"]]
    if fork is DarknetFork.PJREDDIE and cfg_letter_box is not None and not cfg_letter_box:
        warnings.append(f"{sec.path}:{sec._find('letter_box').line}: letter_box={cfg_letter_box} "  # type: ignore[union-attr]
                        "is read only by AlexeyAB's Darknet; pjreddie's detector letterboxes anyway")
    return (c, h, w), letter_box, warnings + sec.warnings


def parse_network(cfg_path: str | Path, darknet: str | DarknetFork = "auto") -> Network:
    """Parse a cfg into a ``Network`` (no weights).  Raises ``CfgError`` naming file:line.

    ``darknet`` (``pjreddie``, ``alexeyab`` or ``auto``) chooses whose Darknet the network is
    run as; ``auto`` is resolved here from the cfg (``golden.forks.resolve_fork``).
    """
    sections = read_cfg(cfg_path)
    fork = resolve_fork(darknet, sections)
    input_shape, letter_box, warnings = read_net_section(sections[0], fork)
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
    net = Network(Path(cfg_path), input_shape, layers, letter_box=letter_box, darknet=fork, warnings=warnings,
                  cfg_text=Path(cfg_path).read_text(encoding="utf-8", errors="replace"))
    check_size(net)
    return net


def load_network(cfg_path: str | Path, weights_path: str | Path | None = None,
                 darknet: str | DarknetFork = "auto") -> Network:
    """Parse the cfg and, if given, read the weights (exact size checked).  ``darknet``: see
    :func:`parse_network`."""
    net = parse_network(cfg_path, darknet)
    if weights_path is not None:
        read_weights(net, weights_path)
    return net
