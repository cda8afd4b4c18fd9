"""From a validated scenario to the objects that run: network, hardware, inputs, variants.

A *variant* is one quantization of the network (one algorithm × granularity of the sweep, or
the ``.qnet`` as it is).  Calibration statistics are collected once and shared by every
variant, so a five-algorithm sweep costs one pass of the float network over the calibration
images, not five.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dla.calibration import collect_statistics
from dla.config import HardwareConfig
from dla.engine import Engine
from dla.catalog import default_names, shipped_model
from dla.resolve import ForkMismatchError, resolve_model
from dla.scenario.load import LoadedScenario, load_hw, resolve_data, resolve_image
from golden.errors import UserInputError
from golden.genweights import synthetic_image
from golden.image import load_image, prepare_input
from golden.layers import PARAM_LAYERS, Kind
from golden.network import Network
from quant import calibration_images, quantize
from quant.precision import LayerPrecision
from quant.qnet import QuantizedNetwork
from quant.spec import QuantSpec


@dataclass
class Variant:
    name: str  # "mse/per_channel", "mse/per_channel/int16-heads" (a precision sweep), or "qnet"
    spec: QuantSpec
    qnet: QuantizedNetwork
    engine: Engine
    precision: str | None = None  # the name of its set in 'quant.precision', if the scenario sweeps it

    @property
    def slug(self) -> str:
        return self.name.replace("/", "-")


@dataclass
class Input:
    name: str
    path: Path | None  # None for generated inputs
    x: np.ndarray  # the network input (float32, C×H×W)
    size: tuple[int, int]  # original image (w, h), for box coordinates


@dataclass
class Built:
    net: Network
    hw: HardwareConfig
    hw_source: str
    model_source: dict[str, str]
    inputs: list[Input]
    variants: list[Variant]
    names: list[str] | None = None  # class names (shipped trained models, COCO/VOC by class count)

    def first_precisions(self) -> dict[int, LayerPrecision] | None:
        """The first variant's per-layer widths (what the report's cycle model costs); ``None``
        (all int8) for a FLOAT-only scenario."""
        return self.variants[0].qnet.precisions() if self.variants else None

    def distinct_precisions(self) -> dict[str, dict[int, LayerPrecision]]:
        """Each variant's widths, by variant name, when the variants do not all share one set
        (a precision sweep); empty otherwise."""
        sets = {v.name: v.qnet.precisions() for v in self.variants}
        return sets if len({tuple(sorted(p.items())) for p in sets.values()}) > 1 else {}


def build_network(ls: LoadedScenario) -> tuple[Network, QuantizedNetwork | None, HardwareConfig | None, dict[str, str]]:
    """The scenario's ``model:`` through ``dla.resolve.resolve_model``: ``trained``, ``qnet``
    or ``cfg`` (+ ``weights`` or ``seed``), paths relative to the scenario's folder; the
    .qnet's hardware (or ``None``) and what the model was built from, for the report."""
    m = ls.scenario.model
    try:
        if m.trained is not None:
            r = resolve_model(m.trained, darknet=m.darknet)
            return r.net, None, None, r.source
        if m.qnet is not None:
            r = resolve_model(ls.base_dir / m.qnet, darknet=m.darknet)
            return r.net, r.qnet, r.hw, {"qnet": m.qnet}
        assert m.cfg is not None
        local = ls.base_dir / m.cfg
        cfg = local if local.is_file() else m.cfg
        if m.weights is not None:
            r = resolve_model(cfg, ls.base_dir / m.weights, darknet=m.darknet)
            return r.net, None, None, {"cfg": m.cfg, "weights": m.weights}
        r = resolve_model(cfg, seed=m.seed, darknet=m.darknet)
        return r.net, None, None, {"cfg": m.cfg, "weights": r.source["weights"]}
    except ForkMismatchError as exc:
        raise ls.error(f"{m.qnet} was quantized for {exc.quantized}'s Darknet; darknet: {m.darknet} contradicts it",
                       "model", "darknet") from None
    except UserInputError as exc:
        raise ls.error(str(exc), "model") from None


def build_hw(ls: LoadedScenario, qnet_hw: HardwareConfig | None) -> tuple[HardwareConfig, str]:
    hw = ls.scenario.hw
    if qnet_hw is not None and "hw" not in ls.data:
        return qnet_hw, "from the .qnet"
    return load_hw(ls), "inline" if isinstance(hw, dict) else hw


def build_inputs(ls: LoadedScenario, net: Network) -> list[Input]:
    images = ls.scenario.images
    if not isinstance(images, list):
        rng = np.random.default_rng(images.seed)
        out = []
        for i in range(images.synthetic):
            x = synthetic_image(net.input_shape, rng)
            out.append(Input(f"synthetic-{i}", None, x, (net.input_shape[2], net.input_shape[1])))
        return out
    out = []
    for i, name in enumerate(images):
        path = resolve_image(ls, name, i)
        try:
            im = load_image(path)
        except UserInputError as exc:
            raise ls.error(str(exc), "images", i) from None
        x = prepare_input(im, net.input_shape, letterbox=net.letter_box)
        out.append(Input(Path(name).stem, path, x, (im.shape[2], im.shape[1])))
    return out


def calibration_set(ls: LoadedScenario) -> list[Path] | int:
    calib = ls.scenario.quant.calib
    if calib.synthetic is not None:
        return calib.synthetic
    if isinstance(calib.images, list):
        return [resolve_data(ls, p, "calibration image", "quant", "calib", "images", i)
                for i, p in enumerate(calib.images)]
    assert calib.images is not None
    local = ls.base_dir / calib.images
    try:
        return calibration_images(local if local.exists() else
                                  resolve_data(ls, calib.images, "calibration images", "quant", "calib", "images",
                                               dirs=True))
    except UserInputError as exc:
        raise ls.error(str(exc), "quant", "calib", "images") from None


def build_variants(ls: LoadedScenario, net: Network, qnet: QuantizedNetwork | None, hw: HardwareConfig,
                   on_image: Callable[[int], None] | None = None) -> list[Variant]:
    if qnet is not None:
        return [Variant("qnet", qnet.spec, qnet, Engine(net, qnet, hw))]
    if not ls.scenario.quantized_modes():
        return []
    try:
        ranges, _ = collect_statistics(net, calibration_set(ls), use_cache=True, on_image=on_image)
    except UserInputError as exc:  # an unreadable or missing image of the calibration set
        raise ls.error(str(exc), "quant", "calib", "images") from None
    check_overrides(ls, net)
    out = []
    for v in ls.scenario.quant.variants():
        d = v.spec
        # a mistake of one precision set (a width this hardware cannot run...) is named at that
        # set's line, else at the 'quant' section's
        where = ("quant", "precision", v.precision) if v.precision is not None else ("quant",)
        try:
            spec = QuantSpec.from_dict(d)
            q = quantize(net, ranges, d["granularity"], route_shared_scale=hw.route_shared_scale, spec=spec)
            engine = Engine(net, q, hw)
            engine.plans()  # an activation or width the DLA cannot run fails here, before anything is written
        except UserInputError as exc:
            raise ls.error(f"{v.name}: {str(exc)}" if v.precision is not None else str(exc), *where) from None
        out.append(Variant(v.name, spec, q, engine, v.precision))
    return out


KINDS = tuple(k.value for k in Kind)


def check_overrides(ls: LoadedScenario, net: Network) -> None:
    """Every layer index and type an override names exists in ``net`` (a wrong one would
    otherwise select nothing, and a precision sweep would silently measure the all-int8 network)."""
    q = ls.scenario.quant
    groups = [(("quant", "overrides"), q.overrides)]
    groups += [(("quant", "precision", name), ovs) for name, ovs in (q.precision or {}).items()]
    last = len(net.layers) - 1
    for loc, ovs in groups:
        for i, o in enumerate(ovs):
            for j, layer in enumerate(o.layers):
                if not 0 <= layer <= last:
                    raise ls.error(f"layer {layer} is out of range: {net.name} has layers 0..{last}",
                                   *loc, i, "layers", j)
                if o.weight_bits is not None and net.layers[layer].kind not in PARAM_LAYERS:
                    # it would select nothing: the variant would be all-int8 under another name
                    raise ls.error(f"weight_bits on layer {layer} ({net.layers[layer].kind.value}), which has no "
                                   "weights (only convolutional and connected layers do)", *loc, i, "layers", j)
            for j, kind in enumerate(o.types):
                if kind not in KINDS:
                    raise ls.error(f"unknown layer type '{kind}' (valid: {', '.join(KINDS)})", *loc, i, "types", j)


def class_names(ls: LoadedScenario, net: Network) -> list[str] | None:
    if ls.scenario.model.trained is not None:
        return shipped_model(ls.scenario.model.trained).names
    classes = net.heads[-1].classes if net.is_detector else net.layers[net.output_index].out_shape[0]
    return default_names(classes)


def build(ls: LoadedScenario, on_image: Callable[[int], None] | None = None) -> Built:
    net, qnet, qhw, source = build_network(ls)
    hw, hw_source = build_hw(ls, qhw)
    inputs = build_inputs(ls, net)
    variants = build_variants(ls, net, qnet, hw, on_image)
    return Built(net, hw, hw_source, source, inputs, variants, class_names(ls, net))
