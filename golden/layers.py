"""Layer specs: what each Darknet section means, with its output shape.

One frozen dataclass per layer kind, built from a cfg ``Section`` by the builder
functions at the bottom (dispatch table ``BUILDERS``).  Shapes are ``(C, H, W)``.
Option defaults and shape rules are Darknet's (``parser.c: parse_*`` and each
``make_*_layer``); see DARKNET-SEMANTICS notes in docs/file-formats.md.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from golden.cfg import Section

Shape = tuple[int, int, int]


class Kind(str, enum.Enum):
    """Every layer kind the simulator runs (section names map onto these)."""

    CONV = "convolutional"
    CONNECTED = "connected"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ROUTE = "route"
    SHORTCUT = "shortcut"
    UPSAMPLE = "upsample"
    REORG = "reorg"
    SOFTMAX = "softmax"
    DROPOUT = "dropout"
    COST = "cost"
    REGION = "region"
    YOLO = "yolo"
    SCALE_CHANNELS = "scale_channels"


SECTION_ALIASES: dict[str, Kind] = {
    "convolutional": Kind.CONV, "conv": Kind.CONV,
    "connected": Kind.CONNECTED, "conn": Kind.CONNECTED,
    "maxpool": Kind.MAXPOOL, "max": Kind.MAXPOOL,
    "avgpool": Kind.AVGPOOL, "avg": Kind.AVGPOOL,
    "route": Kind.ROUTE, "shortcut": Kind.SHORTCUT, "upsample": Kind.UPSAMPLE,
    "reorg": Kind.REORG, "softmax": Kind.SOFTMAX, "soft": Kind.SOFTMAX,
    "dropout": Kind.DROPOUT, "cost": Kind.COST, "region": Kind.REGION,
    "yolo": Kind.YOLO, "scale_channels": Kind.SCALE_CHANNELS,
}

#: Layers with parameters in the ``.weights`` file.
PARAM_LAYERS = frozenset({Kind.CONV, Kind.CONNECTED})
#: Layers evaluated on the host in float even in INT mode (DESIGN §4).
HOST_LAYERS = frozenset({Kind.YOLO, Kind.REGION, Kind.SOFTMAX, Kind.COST})
#: Layers whose every output value is one of their single input's values (they move, repeat
#: or select values): exact in any arithmetic, and an int8 tensor keeps its scale through them
#: (``quant.qnet`` ties their output to their input's scale; a single-input route is one too).
VALUE_PRESERVING_LAYERS = frozenset({Kind.MAXPOOL, Kind.UPSAMPLE, Kind.REORG, Kind.DROPOUT, Kind.COST})

ACTIVATIONS = ("linear", "leaky", "relu", "logistic", "relu6", "swish", "mish", "tanh")

# Options Darknet reads only for training (or for drivers we do not model); they are
# accepted silently so real cfgs do not drown the user in warnings.
TRAINING_KEYS: dict[Kind | str, frozenset[str]] = {
    "net": frozenset("""batch subdivisions width height channels momentum decay angle saturation
        exposure hue learning_rate burn_in max_batches policy steps scales step power gamma
        max_crop min_crop aspect mosaic cutmix mixup blur label_smooth_eps letter_box
        adam B1 B2 eps inputs time_steps notruth random track augment_speed sequential
        flip gaussian_noise ema_alpha equidistant_point badlabels_rejection_percentage
        num_sigmas_reject_badlabels weights_reject_freq scale max_chart_loss center
        contrastive unsupervised rgb_mode""".split()),
    Kind.CONV: frozenset("""flipped dot""".split()),
    Kind.MAXPOOL: frozenset(),
    Kind.AVGPOOL: frozenset(),
    Kind.DROPOUT: frozenset("probability dropblock dropblock_size_rel dropblock_size_abs".split()),
    Kind.COST: frozenset("type scale ratio noobject_scale thresh".split()),
    Kind.SOFTMAX: frozenset("spatial noloss".split()),
    Kind.REGION: frozenset("""jitter rescore thresh random absolute bias_match class_scale
        coord_scale object_scale noobject_scale log max mask map tree""".split()),
    Kind.YOLO: frozenset("""jitter ignore_thresh truth_thresh random iou_loss iou_normalizer
        cls_normalizer obj_normalizer delta_normalizer iou_thresh max_delta resize
        objectness_smooth label_smooth_eps focal_loss counters_per_class track_history_size
        sim_thresh dets_for_show dets_for_track track_ciou_norm embedding_layer map
        iou_thresh_kind""".split()),
    Kind.ROUTE: frozenset(),
    Kind.SHORTCUT: frozenset(),
    Kind.UPSAMPLE: frozenset(),
    Kind.REORG: frozenset(),
    Kind.CONNECTED: frozenset(),
    Kind.SCALE_CHANNELS: frozenset(),
}

# Options that change the computation in ways the simulator does not implement.
_REJECTED_KEYS: dict[Kind, frozenset[str]] = {
    Kind.CONV: frozenset("""binary xnor bin_output antialiasing share_index deform coordconv
        dontload dontloadscales numload sway rotate stretch stretch_sway assisted_excitation
        train_only_bn""".split()),
    Kind.MAXPOOL: frozenset("maxpool_depth out_channels antialiasing".split()),
    Kind.SHORTCUT: frozenset("weights_type weights_normalization".split()),
    Kind.UPSAMPLE: frozenset(),
    Kind.CONNECTED: frozenset("dontload dontloadscales".split()),
}


@dataclass(frozen=True)
class LayerSpec:
    """Fields common to every layer: position in the cfg and shapes."""

    index: int
    kind: Kind
    in_shape: Shape
    out_shape: Shape
    line: int = field(default=0, compare=False)

    @property
    def inputs(self) -> tuple[int, ...]:
        """Indices of the layers whose outputs this layer reads (-1 = the network input)."""
        return (self.index - 1,)

    @property
    def macs(self) -> int:
        return 0

    @property
    def n_params(self) -> int:
        return 0


@dataclass(frozen=True)
class ConvSpec(LayerSpec):
    filters: int = 1
    size: int = 1
    stride_x: int = 1
    stride_y: int = 1
    padding: int = 0
    groups: int = 1
    batch_normalize: bool = False
    activation: str = "logistic"

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.filters, self.in_shape[0] // self.groups, self.size, self.size)

    @property
    def macs(self) -> int:
        c, k = self.in_shape[0] // self.groups, self.size
        return self.filters * c * k * k * self.out_shape[1] * self.out_shape[2]

    @property
    def n_params(self) -> int:
        n = self.filters
        w = n * (self.in_shape[0] // self.groups) * self.size * self.size
        return n + (3 * n if self.batch_normalize else 0) + w


@dataclass(frozen=True)
class ConnectedSpec(LayerSpec):
    output: int = 1
    batch_normalize: bool = False
    activation: str = "logistic"

    @property
    def n_inputs(self) -> int:
        c, h, w = self.in_shape
        return c * h * w

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.output, self.n_inputs)

    @property
    def macs(self) -> int:
        return self.output * self.n_inputs

    @property
    def n_params(self) -> int:
        return self.output + self.output * self.n_inputs + (3 * self.output if self.batch_normalize else 0)


@dataclass(frozen=True)
class MaxPoolSpec(LayerSpec):
    size: int = 1
    stride_x: int = 1
    stride_y: int = 1
    padding: int = 0  # total over both sides, as in Darknet


@dataclass(frozen=True)
class AvgPoolSpec(LayerSpec):
    pass


@dataclass(frozen=True)
class RouteSpec(LayerSpec):
    layers: tuple[int, ...] = ()
    groups: int = 1
    group_id: int = 0

    @property
    def inputs(self) -> tuple[int, ...]:
        return self.layers


@dataclass(frozen=True)
class ShortcutSpec(LayerSpec):
    from_layers: tuple[int, ...] = ()
    activation: str = "linear"
    alpha: float = 1.0
    beta: float = 1.0

    @property
    def inputs(self) -> tuple[int, ...]:
        return (self.index - 1, *self.from_layers)


@dataclass(frozen=True)
class UpsampleSpec(LayerSpec):
    stride: int = 2
    scale: float = 1.0


@dataclass(frozen=True)
class ReorgSpec(LayerSpec):
    stride: int = 1


@dataclass(frozen=True)
class SoftmaxSpec(LayerSpec):
    groups: int = 1
    temperature: float = 1.0


@dataclass(frozen=True)
class DropoutSpec(LayerSpec):
    probability: float = 0.5


@dataclass(frozen=True)
class CostSpec(LayerSpec):
    pass


@dataclass(frozen=True)
class RegionSpec(LayerSpec):
    classes: int = 20
    coords: int = 4
    num: int = 1
    softmax: bool = False
    background: bool = False
    anchors: tuple[float, ...] = ()


@dataclass(frozen=True)
class YoloSpec(LayerSpec):
    classes: int = 20
    total: int = 1
    mask: tuple[int, ...] = ()
    anchors: tuple[float, ...] = ()
    scale_x_y: float = 1.0
    new_coords: bool = False
    nms_kind: str = "default"
    beta_nms: float = 0.6


@dataclass(frozen=True)
class ScaleChannelsSpec(LayerSpec):
    from_layer: int = 0
    scale_wh: bool = False
    activation: str = "linear"

    @property
    def inputs(self) -> tuple[int, ...]:
        return (self.index - 1, self.from_layer)


# --------------------------------------------------------------------------- builders
# Each builder reads its options from the section and returns the spec; ``shapes`` holds
# the output shapes of the layers before it (for route/shortcut references).


def _activation(sec: Section, default: str) -> str:
    act = sec.get_str("activation", default)
    if act not in ACTIVATIONS:
        opt = sec._find("activation")
        raise sec.error(f"unknown activation '{act}' (valid: {', '.join(ACTIVATIONS)})", opt)
    return act


def _positive(sec: Section, key: str, value: int | float) -> None:
    if value <= 0:
        raise sec.error(f"option '{key}' must be positive, got {value}", sec._find(key))


def _not_negative(sec: Section, key: str, value: int | float) -> None:
    if value < 0:
        raise sec.error(f"option '{key}' must not be negative, got {value}", sec._find(key))


def _ref(sec: Section, key: str, idx: int, v: int, n_before: int) -> int:
    """Darknet's layer reference: negative = relative to this layer, else absolute."""
    a = idx + v if v < 0 else v
    if not 0 <= a < n_before:
        raise sec.error(f"option '{key}': layer {v} resolves to index {a}, "
                        f"which is not an earlier layer (valid 0..{n_before - 1})", sec._find(key))
    return a


def build_conv(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> ConvSpec:
    c, h, w = in_shape
    filters = sec.get_int("filters", 1)
    size = sec.get_int("size", 1)
    stride = sec.get_int("stride", 1)
    stride_x, stride_y = sec.get_int("stride_x", stride), sec.get_int("stride_y", stride)
    pad = sec.get_int("pad", 0)
    padding = sec.get_int("padding", 0)
    _not_negative(sec, "padding", padding)
    if pad:
        padding = size // 2
    groups = sec.get_int("groups", 1)
    if sec.get_int("dilation", 1) != 1 and size != 1:
        raise sec.error("option 'dilation' > 1 is not supported", sec._find("dilation"))
    for key, v in (("filters", filters), ("size", size), ("stride", stride_x), ("stride", stride_y),
                   ("groups", groups)):
        _positive(sec, key, v)
    if c % groups or filters % groups:
        raise sec.error(f"groups={groups} must divide input channels ({c}) and filters ({filters})",
                        sec._find("groups"))
    out_h = (h + 2 * padding - size) // stride_y + 1
    out_w = (w + 2 * padding - size) // stride_x + 1
    if out_h <= 0 or out_w <= 0:
        raise sec.error(f"kernel size {size} does not fit the {h}x{w} input")
    return ConvSpec(idx, Kind.CONV, in_shape, (filters, out_h, out_w), sec.line, filters, size,
                    stride_x, stride_y, padding, groups, bool(sec.get_int("batch_normalize", 0)),
                    _activation(sec, "logistic"))


def build_connected(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> ConnectedSpec:
    out = sec.get_int("output", 1)
    _positive(sec, "output", out)
    return ConnectedSpec(idx, Kind.CONNECTED, in_shape, (out, 1, 1), sec.line, out,
                         bool(sec.get_int("batch_normalize", 0)), _activation(sec, "logistic"))


def build_maxpool(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> MaxPoolSpec:
    c, h, w = in_shape
    stride = sec.get_int("stride", 1)
    stride_x, stride_y = sec.get_int("stride_x", stride), sec.get_int("stride_y", stride)
    size = sec.get_int("size", stride)
    padding = sec.get_int("padding", size - 1)
    for key, v in (("stride", stride_x), ("stride", stride_y), ("size", size)):
        _positive(sec, key, v)
    _not_negative(sec, "padding", padding)
    out_h = (h + padding - size) // stride_y + 1
    out_w = (w + padding - size) // stride_x + 1
    if out_h <= 0 or out_w <= 0:
        raise sec.error(f"pool size {size} does not fit the {h}x{w} input")
    return MaxPoolSpec(idx, Kind.MAXPOOL, in_shape, (c, out_h, out_w), sec.line, size, stride_x,
                       stride_y, padding)


def build_avgpool(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> AvgPoolSpec:
    return AvgPoolSpec(idx, Kind.AVGPOOL, in_shape, (in_shape[0], 1, 1), sec.line)


def build_route(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> RouteSpec:
    raw = sec.get_list("layers", int)
    if not raw:
        raise sec.error("option 'layers' is missing or empty", sec._find("layers"))
    layers = tuple(_ref(sec, "layers", idx, v, idx) for v in raw)
    groups, group_id = sec.get_int("groups", 1), sec.get_int("group_id", 0)
    _positive(sec, "groups", groups)
    if not 0 <= group_id < groups:
        raise sec.error(f"group_id={group_id} must be in 0..{groups - 1}", sec._find("group_id"))
    hw = {shapes[i][1:] for i in layers}
    if len(hw) != 1:
        detail = ", ".join(f"layer {i}: {shapes[i]}" for i in layers)
        raise sec.error(f"inputs have different spatial sizes ({detail})", sec._find("layers"))
    for i in layers:
        if shapes[i][0] % groups:
            raise sec.error(f"groups={groups} does not divide the {shapes[i][0]} channels of layer {i}",
                            sec._find("groups"))
    c = sum(shapes[i][0] for i in layers) // groups
    h, w = hw.pop()
    return RouteSpec(idx, Kind.ROUTE, in_shape, (c, h, w), sec.line, layers, groups, group_id)


def build_shortcut(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> ShortcutSpec:
    raw = sec.get_list("from", int)
    if not raw:
        raise sec.error("option 'from' is missing or empty", sec._find("from"))
    frm = tuple(_ref(sec, "from", idx, v, idx) for v in raw)
    return ShortcutSpec(idx, Kind.SHORTCUT, in_shape, in_shape, sec.line, frm,
                        _activation(sec, "linear"), sec.get_float("alpha", 1.0), sec.get_float("beta", 1.0))


def build_upsample(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> UpsampleSpec:
    stride = sec.get_int("stride", 2)
    if stride <= 0:
        raise sec.error(f"stride={stride}: only upsampling (stride > 0) is supported", sec._find("stride"))
    c, h, w = in_shape
    return UpsampleSpec(idx, Kind.UPSAMPLE, in_shape, (c, h * stride, w * stride), sec.line, stride,
                        sec.get_float("scale", 1.0))


def build_reorg(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> ReorgSpec:
    s = sec.get_int("stride", 1)
    _positive(sec, "stride", s)
    if sec.get_int("reverse", 0):
        raise sec.error("option 'reverse=1' is not supported", sec._find("reverse"))
    c, h, w = in_shape
    if h % s or w % s or c * s * s % (s * s):
        raise sec.error(f"stride {s} does not divide the {h}x{w} input")
    if c % (s * s):
        raise sec.error(f"the legacy [reorg] needs input channels ({c}) divisible by stride^2 ({s * s})")
    return ReorgSpec(idx, Kind.REORG, in_shape, (c * s * s, h // s, w // s), sec.line, s)


def build_softmax(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> SoftmaxSpec:
    groups = sec.get_int("groups", 1)
    _positive(sec, "groups", groups)
    if sec.has("tree"):
        raise sec.error("hierarchical softmax ('tree=') is not supported", sec._find("tree"))
    n = in_shape[0] * in_shape[1] * in_shape[2]
    if n % groups:
        raise sec.error(f"groups={groups} does not divide the {n} inputs", sec._find("groups"))
    temperature = sec.get_float("temperature", 1.0)
    _positive(sec, "temperature", temperature)
    return SoftmaxSpec(idx, Kind.SOFTMAX, in_shape, in_shape, sec.line, groups, temperature)


def build_dropout(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> DropoutSpec:
    return DropoutSpec(idx, Kind.DROPOUT, in_shape, in_shape, sec.line, sec.get_float("probability", 0.5))


def build_cost(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> CostSpec:
    return CostSpec(idx, Kind.COST, in_shape, in_shape, sec.line)


def build_region(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> RegionSpec:
    classes, coords, num = sec.get_int("classes", 20), sec.get_int("coords", 4), sec.get_int("num", 1)
    for key, v in (("classes", classes), ("num", num)):
        _positive(sec, key, v)
    if coords < 4:
        raise sec.error(f"option 'coords' must be at least 4 (x, y, w, h), got {coords}", sec._find("coords"))
    anchors = tuple(sec.get_list("anchors", float))
    if not anchors:
        anchors = (0.5,) * (2 * num)
    if len(anchors) != 2 * num:
        raise sec.error(f"'anchors' has {len(anchors)} values, num={num} needs {2 * num}", sec._find("anchors"))
    need = num * (coords + 1 + classes)
    if in_shape[0] != need:
        raise sec.error(f"input has {in_shape[0]} channels, num*(coords+1+classes) = {need} expected "
                        f"(check 'filters' of the layer before)")
    return RegionSpec(idx, Kind.REGION, in_shape, in_shape, sec.line, classes, coords, num,
                      bool(sec.get_int("softmax", 0)), bool(sec.get_int("background", 0)), anchors)


def build_yolo(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> YoloSpec:
    classes, total = sec.get_int("classes", 20), sec.get_int("num", 1)
    for key, v in (("classes", classes), ("num", total)):
        _positive(sec, key, v)
    mask = tuple(sec.get_list("mask", int)) or tuple(range(total))
    anchors = tuple(sec.get_list("anchors", float))
    if len(anchors) < 2 * total:
        raise sec.error(f"'anchors' has {len(anchors)} values, num={total} needs {2 * total}",
                        sec._find("anchors"))
    if any(not 0 <= m < total for m in mask):
        raise sec.error(f"'mask' {list(mask)} refers to anchors outside 0..{total - 1}", sec._find("mask"))
    need = len(mask) * (5 + classes)
    if in_shape[0] != need:
        raise sec.error(f"input has {in_shape[0]} channels, len(mask)*(5+classes) = {need} expected "
                        f"(check 'filters' of the layer before)")
    return YoloSpec(idx, Kind.YOLO, in_shape, in_shape, sec.line, classes, total, mask, anchors[:2 * total],
                    sec.get_float("scale_x_y", 1.0), bool(sec.get_int("new_coords", 0)),
                    sec.get_str("nms_kind", "default"), sec.get_float("beta_nms", 0.6))


def build_scale_channels(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> ScaleChannelsSpec:
    raw = sec.get_list("from", int)
    if len(raw) != 1:
        raise sec.error("option 'from' must name exactly one layer", sec._find("from"))
    frm = _ref(sec, "from", idx, raw[0], idx)
    scale_wh = bool(sec.get_int("scale_wh", 0))
    out = shapes[frm]
    ok = in_shape == (1, out[1], out[2]) if scale_wh else in_shape == (out[0], 1, 1)
    if not ok:
        raise sec.error(f"input {in_shape} cannot scale layer {frm}'s output {out}")
    return ScaleChannelsSpec(idx, Kind.SCALE_CHANNELS, in_shape, out, sec.line, frm, scale_wh,
                             _activation(sec, "linear"))


BUILDERS = {
    Kind.CONV: build_conv, Kind.CONNECTED: build_connected, Kind.MAXPOOL: build_maxpool,
    Kind.AVGPOOL: build_avgpool, Kind.ROUTE: build_route, Kind.SHORTCUT: build_shortcut,
    Kind.UPSAMPLE: build_upsample, Kind.REORG: build_reorg, Kind.SOFTMAX: build_softmax,
    Kind.DROPOUT: build_dropout, Kind.COST: build_cost, Kind.REGION: build_region,
    Kind.YOLO: build_yolo, Kind.SCALE_CHANNELS: build_scale_channels,
}


def build_layer(sec: Section, idx: int, in_shape: Shape, shapes: list[Shape]) -> LayerSpec:
    """Interpret one section; reject options that would change results we cannot reproduce."""
    kind = SECTION_ALIASES.get(sec.name)
    if kind is None:
        known = ", ".join(sorted({k.value for k in Kind}))
        raise sec.error(f"unknown layer type (supported: {known})")
    for opt in sec.options:
        if opt.key in _REJECTED_KEYS.get(kind, ()):
            raise sec.error(f"option '{opt.key}' is not supported by this simulator", opt)
    spec = BUILDERS[kind](sec, idx, in_shape, shapes)
    ignored = TRAINING_KEYS.get(kind, frozenset())
    for opt in sec.unused():
        if opt.key not in ignored and not opt.key.startswith("#"):
            sec.warnings.append(f"{sec.path}:{opt.line}: unknown option '{opt.key}' in [{sec.name}] ignored")
    return spec


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
