"""The model the user means: one answer for every face (CLI, ``dla eval``, web, scenarios, Session).

A user names a model in one of four ways:

* a **cfg** — a path or a shipped cfg name (``yolov3-tiny``) — with a ``.weights`` file, with
  seeded random weights (``seed``), or with no weights at all (layers only: info, graph, cycles);
* a **shipped trained model** (``shapes-yolo``, ``shapes-cls``): its cfg, and its shipped
  weights and class names unless a ``.weights`` file is given (then only its cfg is used;
  ``seed`` is ignored: the name means the trained model);
* a **.qnet** (folder or zip): the network, its integers and the hardware it was quantized for.

``resolve_model`` turns that into a :class:`ResolvedModel` (network, ``.qnet`` or ``None``,
hardware, what it was built from).  ``make_engine`` then answers "calibrate now or reuse the
``.qnet``" once for everyone: a ``.qnet`` is used as it is (calibration options are refused),
otherwise the network is calibrated on the given images exactly as ``dla infer`` does.

Hardware: an explicit config (path or ``HardwareConfig``) wins; else the ``.qnet``'s own; else
the built-in default.  Darknet fork: a cfg is read with ``darknet`` (``auto`` decides by the
cfg); a ``.qnet`` keeps the fork it was quantized for, and naming another one is an error
(its integers were folded with that fork's batch norm).

Errors are ``golden.errors.UserInputError`` subclasses; the wording of a fork mismatch names
the option the way the CLI spells it, and faces that spell it otherwise (a scenario's key, a
web form's field) re-word it from the error's attributes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dla.calibration import calibrate, resolve_images
from dla.catalog import is_trained_name, resolve_cfg, shipped_model
from dla.config import HardwareConfig, load_config
from dla.engine import Engine
from dla.qnet_file import is_qnet, load_qnet
from golden.errors import UserInputError
from golden.genweights import random_weights
from golden.network import Network, load_network
from quant.qnet import QuantizedNetwork
from quant.spec import QuantSpec

HwLike = HardwareConfig | str | Path | None


class ForkMismatchError(UserInputError):
    """A ``.qnet`` asked for with a Darknet fork other than the one it was quantized for."""

    def __init__(self, name: str, quantized: str, wanted: str) -> None:
        self.name, self.quantized, self.wanted = name, quantized, wanted
        super().__init__(f"{name} was quantized for {quantized}'s Darknet; --darknet {wanted} contradicts it "
                         f"(re-quantize with 'dla quantize --darknet {wanted}')")


class AlreadyCalibratedError(UserInputError):
    """Calibration images given with a ``.qnet``, whose scales are already fixed."""

    def __init__(self) -> None:
        super().__init__("a .qnet is already calibrated: --calib/--calib-synthetic do not apply "
                         "(re-quantize with 'dla quantize' instead)")


@dataclass
class ResolvedModel:
    """What the user's model arguments name, loaded.

    ``source`` says what it was built from, as a scenario's summary reports it
    (``{"cfg": ..., "weights": ...}`` or ``{"qnet": ...}``, each as the user wrote it);
    ``label`` is the short name a report's title uses; ``names`` the class names of a shipped
    trained model (``None``: the caller's default, e.g. COCO for 80 classes)."""

    net: Network
    qnet: QuantizedNetwork | None
    hw: HardwareConfig
    hw_from: str  # "given", "qnet" or "default"
    source: dict[str, str] = field(default_factory=dict)
    label: str = ""
    names: list[str] | None = None


def load_hardware(hw: HwLike) -> HardwareConfig | None:
    """A ``HardwareConfig`` as given, loaded from a YAML path, or ``None`` for none given.

    An empty path (``--hw ""``) is none given, as the CLI always read it (``if hw_path``)."""
    if hw is None or isinstance(hw, HardwareConfig):
        return hw
    if isinstance(hw, str) and not hw:
        return None
    return load_config(hw)


def resolve_model(model: str | Path, weights: str | Path | None = None, *, seed: int | None = None,
                  darknet: str = "auto", hw: HwLike = None, display_name: str | None = None) -> ResolvedModel:
    """Load the model ``model`` names (see the module docstring for the forms and rules).

    ``weights``: a Darknet ``.weights`` path (cfg forms only; ignored for a ``.qnet``, whose
    callers refuse it first).  ``seed``: with no ``weights``, seeded random weights
    (``golden.genweights.random_weights``) for a cfg; ``None`` leaves a cfg without weights.
    ``display_name``: the name the user knows the file by when it is stored under another
    (a web upload): the network is named after it (``net.cfg_path``) before weights are read.
    ``hw`` is loaded only after the model, so a bad model is reported first."""
    if is_trained_name(model):
        return _trained(str(model), weights, darknet, hw)
    if is_qnet(model):
        if weights is not None:
            raise UserInputError("weights go with a cfg; a .qnet carries its own")
        return _qnet(model, darknet, hw, display_name)
    net = load_network(resolve_cfg(model), None, darknet)
    if display_name is not None:
        net.cfg_path = Path(display_name)
    if weights is not None:
        from golden.weights import read_weights

        read_weights(net, weights)
        wsrc = str(weights)
    elif seed is not None:
        random_weights(net, seed=seed)
        wsrc = f"random (seed {seed})"
    else:
        wsrc = "none"
    given = load_hardware(hw)
    return ResolvedModel(net, None, given or HardwareConfig(), "given" if given else "default",
                         {"cfg": str(model), "weights": wsrc}, net.name)


def _trained(name: str, weights: str | Path | None, darknet: str, hw: HwLike) -> ResolvedModel:
    sm = shipped_model(name)
    net = load_network(sm.cfg, weights if weights is not None else sm.weights, darknet)
    given = load_hardware(hw)
    wsrc = str(weights) if weights is not None else f"shipped ({name})"
    return ResolvedModel(net, None, given or HardwareConfig(), "given" if given else "default",
                         {"cfg": name, "weights": wsrc}, name, sm.names if weights is None else None)


def _qnet(path: str | Path, darknet: str, hw: HwLike, display_name: str | None) -> ResolvedModel:
    qnet, qhw, _ = load_qnet(path)
    name = display_name if display_name is not None else str(path)
    if darknet != "auto" and darknet != qnet.net.darknet.value:
        raise ForkMismatchError(name, qnet.net.darknet.value, darknet)
    if display_name is not None:
        stem = display_name[: -len(".qnet")] if display_name.endswith(".qnet") else Path(display_name).stem
        qnet.net.cfg_path = Path(stem + ".cfg")
    given = load_hardware(hw)
    return ResolvedModel(qnet.net, qnet, given or qhw, "given" if given else "qnet", {"qnet": str(path)},
                         Path(name).name)


def make_engine(model: ResolvedModel, *, calib: str | Path | list[Path] | None = None,
                synthetic: int | None = None, default_image: Path | None = None,
                granularity: str = "per_tensor", spec: QuantSpec | None = None, hw: HwLike = None,
                on_image: Callable[[int], None] | None = None, calibrate_now: bool = True,
                check: bool = True) -> Engine:
    """The engine for ``model``: calibrate now, or reuse the ``.qnet``.

    * a ``.qnet``: its integers as they are; ``calib``/``synthetic`` raise
      :class:`AlreadyCalibratedError` (re-quantizing is ``dla quantize``'s job);
    * ``calibrate_now=False``: never calibrates — the ``.qnet`` if there is one, else FLOAT only,
      and no plan check (FLOAT runs anything);
    * otherwise: calibration statistics over ``calib`` (a list of images, a folder or list
      file), or ``synthetic`` generated images, or ``[default_image]``, then quantization by
      ``spec`` with ``granularity`` (``per_tensor``/``per_channel``, or with ``-``);
      ``on_image(n)`` is called after each image (the CLI's progress bar).

    ``hw`` overrides the model's hardware (loaded after the ``.qnet`` check).  With ``check``
    the integer plans are built before returning, so a layer the DLA cannot run fails here,
    before any output (``Session`` builds them itself, on its private copy, in INT only)."""
    if not calibrate_now:
        return Engine(model.net, model.qnet, load_hardware(hw) or model.hw)
    if model.qnet is not None:
        if calib or synthetic:
            raise AlreadyCalibratedError()
        engine = Engine(model.net, model.qnet, load_hardware(hw) or model.hw)
    else:
        hwc = load_hardware(hw) or model.hw
        images = resolve_images(calib, synthetic, default=default_image)
        qnet = calibrate(model.net, images, granularity.replace("-", "_"), hwc,  # type: ignore[arg-type]
                         on_image=on_image, spec=spec)
        engine = Engine(model.net, qnet, hwc)
    if check:
        engine.plans()
    return engine
