"""The scenario format: one pydantic model, the single source of truth.

``docs/scenarios.md`` explains it with examples; ``dla scenario-schema`` prints the JSON Schema
generated from these classes (``docs/scenario.schema.json`` is that output, checked by a test).
Every section has defaults, so the smallest scenario is ``model: {cfg: yolov3-tiny}``.

Paths inside a scenario are relative to the scenario file.  Shipped names are accepted where
a file is expected: ``model.cfg: yolov3-tiny``, ``hw: small8``, ``images: [dog]``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from quant.precision import ACTIVATION_WIDTHS, WEIGHT_WIDTHS
from quant.spec import ACTIVATION_CHOICES, GRANULARITIES

Mode = Literal["float", "hybrid", "int"]
Activation = Literal["max", "percentile", "mse", "kl", "log2", "auto"]
Granularity = Literal["per_tensor", "per_channel"]
LayerSel = int | Literal["final", "all"]

assert set(ACTIVATION_CHOICES) == set(Activation.__args__)  # type: ignore[attr-defined]
assert set(GRANULARITIES) == set(Granularity.__args__)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSection(Strict):
    """The network: a shipped trained model, ``cfg`` (+ ``weights``, or seeded random weights),
    or one ``qnet``."""

    trained: str | None = Field(None, description="a shipped trained model with its weights: shapes-yolo, shapes-cls")
    cfg: str | None = Field(None, description="a .cfg path or a shipped name (yolov3-tiny, yolov3, ...)")
    weights: str | None = Field(None, description="a .weights path; absent = random weights with 'seed'")
    seed: int = Field(0, ge=0, description="seed of the generated weights (when 'weights' is absent)")
    qnet: str | None = Field(None, description="a quantized model directory (then 'quant' does not apply)")
    darknet: Literal["pjreddie", "alexeyab", "auto"] = Field(
        "auto", description="whose Darknet to reproduce (batch norm, detector letterbox): auto = alexeyab iff "
                            "the cfg uses an AlexeyAB-only feature; a qnet keeps its own fork")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        if sum(v is not None for v in (self.cfg, self.qnet, self.trained)) != 1:
            raise ValueError("give one of 'trained' (a shipped trained model), 'cfg' (with optional 'weights') "
                             "or 'qnet'")
        if self.trained is not None and self.weights is not None:
            raise ValueError("a 'trained' model brings its own weights: use 'cfg' + 'weights' for others")
        if self.qnet is not None and self.weights is not None:
            raise ValueError("'weights' goes with 'cfg', not with 'qnet'")
        return self


class CalibSection(Strict):
    """Calibration data: ``synthetic: N`` generated images, or ``images:`` (folder, list file or list)."""

    synthetic: int | None = Field(None, ge=1, description="N of the project's generated images")
    images: str | list[str] | None = Field(None, description="a folder, a list file, or a list of image paths")

    @field_validator("images")
    @classmethod
    def _some(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and not v:
            raise ValueError("the list of calibration images is empty")
        return v

    @model_validator(mode="after")
    def _one(self) -> CalibSection:
        if (self.synthetic is None) == (self.images is None):
            raise ValueError("give either 'synthetic' or 'images'")
        return self


WeightBits = Literal[4, 8, 16]
ActivationBits = Literal[8, 16]
assert WeightBits.__args__ == WEIGHT_WIDTHS and ActivationBits.__args__ == ACTIVATION_WIDTHS  # type: ignore[attr-defined]
#: A name of a precision variant: it ends up in variant names, table headers and file names.
PRECISION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


class Override(Strict):
    """Per-layer rules (``quant.spec.Override``): algorithms, and operand widths (``quant.precision``)."""

    layers: list[int] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    activations: Activation | None = None
    weights: Literal["max", "mse"] | None = None
    granularity: Granularity | None = None
    weight_bits: WeightBits | None = Field(None, description="weight width of these conv/connected layers")
    activation_bits: ActivationBits | None = Field(None, description="width of these layers' output tensors")
    host: StrictBool | None = Field(None, description="true: these layers run in float on the host")

    @model_validator(mode="after")
    def _selects(self) -> Override:
        if not self.layers and not self.types:
            raise ValueError("an override names the layers it applies to: 'layers: [indices]' or 'types: [kinds]'")
        return self


class QuantSection(Strict):
    """The quantization spec (``quant.spec.QuantSpec``).  A list in ``activations`` or ``granularity`` is a sweep:
    one *variant* per combination, each run in HYBRID/INT and compared with FLOAT.  ``precision`` sweeps
    operand widths the same way: a mapping of names to override lists, each appended to ``overrides``
    (later entries win) to make one more dimension of variants::

        precision:
          all-int8: []
          int16-heads: [{layers: [15, 22], activation_bits: 16}]
          heads-on-host: [{layers: [15, 22], host: true}]
    """

    activations: Activation | list[Activation] = "mse"
    weights: Literal["max", "mse"] = "max"
    granularity: Granularity | list[Granularity] = "per_channel"
    percentile: float = Field(99.99, gt=0, le=100)
    overrides: list[Override] = Field(default_factory=list)
    input_bits: ActivationBits = Field(8, description="width of the network input tensor")
    precision: dict[str, list[Override]] | None = Field(
        None, description="precision sweep: variant name -> overrides added to 'overrides' (one variant each)")
    calib: CalibSection = Field(default_factory=lambda: CalibSection(synthetic=4))

    @field_validator("activations", "granularity")
    @classmethod
    def _sweep(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list: give at least one value")
            if len(set(v)) != len(v):
                raise ValueError("a value is listed twice (each one is a variant)")
        return v

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_keys_are_text(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for name in v:
                if not isinstance(name, str):
                    raise ValueError(f"the precision variant named {name!r} is not text: YAML reads a bare yes/no/"
                                     "on/off/true/false as a boolean and digits as a number; quote the name")
        return v

    @field_validator("precision")
    @classmethod
    def _precision_names(cls, v: dict[str, list[Override]] | None) -> dict[str, list[Override]] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty mapping: give at least one named set of overrides "
                                 "(e.g. all-int8: [])")
            for name in v:
                if not isinstance(name, str) or not PRECISION_NAME.fullmatch(name):
                    raise ValueError(f"{name!r} cannot name a precision variant: letters, digits, '_', '.' "
                                     "and '-', at most 40, starting with a letter or digit")
        return v

    def variants(self) -> list[QuantVariant]:
        """One variant per (activations, granularity, precision) combination, in file order."""
        acts = self.activations if isinstance(self.activations, list) else [self.activations]
        grans = self.granularity if isinstance(self.granularity, list) else [self.granularity]

        def dump(ovs: list[Override]) -> list[dict[str, Any]]:
            return [o.model_dump(exclude_none=True, exclude_defaults=True) for o in ovs]

        precisions: list[tuple[str | None, list[Override]]] = \
            list(self.precision.items()) if self.precision else [(None, [])]
        out = []
        for a in acts:
            for g in grans:
                for pname, extra in precisions:
                    spec: dict[str, Any] = {"activations": a, "weights": self.weights, "granularity": g,
                                            "percentile": self.percentile,
                                            "overrides": dump(self.overrides) + dump(extra)}
                    if self.input_bits != 8:
                        spec["input_bits"] = self.input_bits
                    name = f"{a}/{g}" + (f"/{pname}" if pname is not None else "")
                    out.append(QuantVariant(name, pname, spec))
        return out


@dataclass(frozen=True)
class QuantVariant:
    """One quantization of a scenario's sweep: ``name`` ("mse/per_channel", or
    "mse/per_channel/int16-heads" in a precision sweep), the ``precision`` name (``None``
    without a sweep) and the ``quant.spec.QuantSpec`` mapping."""

    name: str
    precision: str | None
    spec: dict[str, Any]


class ImagesSection(Strict):
    """Generated inputs: ``synthetic: N`` (the project's own images, seeded)."""

    synthetic: int = Field(ge=1)
    seed: int = Field(0, ge=0)


class EditEntry(Strict):
    """A weight edit of the current layer: ``index`` + ``value``, ``scale_channel`` or ``array``."""

    index: list[int] | int | None = Field(None, description="[o, i, ky, kx] (or an output channel), with 'value'")
    value: float | None = None
    scale_channel: tuple[int, float] | None = Field(None, description="[channel, factor]")
    array: str | None = Field(None, description="a .npy file with the whole weight tensor")

    @model_validator(mode="after")
    def _one(self) -> EditEntry:
        kinds = [(self.index is not None) or (self.value is not None), self.scale_channel is not None,
                 self.array is not None]
        if sum(kinds) != 1 or (kinds[0] and (self.index is None or self.value is None)):
            raise ValueError("an edit is index + value, scale_channel or array (exactly one of them)")
        return self


class StepEntry(Strict):
    stop: int | None = None
    print: list[Literal["input", "output", "weights"]] | Literal["input", "output", "weights"] | None = None
    edit: EditEntry | None = None
    rerun: bool | None = None
    undo: bool | None = None


class CrossEntry(Strict):
    layer: int
    continue_: bool = Field(False, alias="continue")


class RtlEntry(Strict):
    layer: int
    tiles: int | None = Field(None, ge=1, description="only the first K tiles (default: all)")


class SqnrCheck(Strict):
    mode: Literal["hybrid", "int"] = "int"
    layer: LayerSel = "final"
    min_db: float


class DetectionsCheck(Strict):
    mode: Literal["hybrid", "int"] = "int"
    min_recall: float | None = Field(None, ge=0, le=1)
    min_precision: float | None = Field(None, ge=0, le=1)
    max_mean_dprob: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _some(self) -> DetectionsCheck:
        if self.min_recall is None and self.min_precision is None and self.max_mean_dprob is None:
            raise ValueError("give at least one of min_recall, min_precision, max_mean_dprob")
        return self


class CyclesCheck(Strict):
    max_total: float | None = Field(None, gt=0, description="total cycles of the network")
    min_fps: float | None = Field(None, gt=0)
    min_util_pct: float | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _some(self) -> CyclesCheck:
        if self.max_total is None and self.min_fps is None and self.min_util_pct is None:
            raise ValueError("give at least one of max_total, min_fps, min_util_pct")
        return self


class OverflowCheck(Strict):
    mode: Literal["hybrid", "int"] = "int"
    max: int | None = Field(None, ge=0, description="most accumulator overflow events, summed over layers "
                                                   "(default 0, or no limit when 'min' is given)")
    min: int | None = Field(None, ge=0, description="fewest overflow events: for studies that expect overflow")

    @property
    def upper(self) -> int | None:
        return self.max if self.max is not None else (None if self.min is not None else 0)


class SaturationCheck(Strict):
    max_pct: float = Field(ge=0, le=100, description="largest % of int8 outputs clipped in any layer")


class RtlCheck(Strict):
    equal: Literal[True] = True


class Check(Strict):
    """One check: exactly one of the kinds, and an optional name for the JUnit test case."""

    name: str | None = None
    sqnr: SqnrCheck | None = None
    detections: DetectionsCheck | None = None
    cycles: CyclesCheck | None = None
    overflow: OverflowCheck | None = None
    saturation: SaturationCheck | None = None
    rtl: RtlCheck | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        kinds = [k for k in CHECK_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"each check has exactly one of {', '.join(CHECK_KINDS)} (got {kinds or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CHECK_KINDS if getattr(self, k) is not None)


CHECK_KINDS = ("sqnr", "detections", "cycles", "overflow", "saturation", "rtl")


class ReportSection(Strict):
    """Which reports to write besides ``summary.json`` (always written: regressions read it)."""

    html: bool = True
    csv: bool = True
    junit: bool = True
    histograms: list[int] | Literal["auto"] = Field(
        "auto", description="layers whose weight/activation histograms are drawn (auto: first, middle and last conv)")


TuneMetric = Literal["map50", "map50_95", "top1", "sqnr"]
TuneCost = Literal["cycles", "latency", "dram", "weights"]


class TuneSection(Strict):
    """``dla tune`` inside a scenario (docs/tune.md): the cheapest configuration of the search
    space whose metric stays within ``max_drop`` of FLOAT's, every point measured by INT runs on
    ``data``.  Its outputs go to the report folder's ``tune/``; the JUnit case ``tune`` fails when
    no configuration meets the budget (the message gives the shortfall)."""

    data: str = Field(description="a labelled folder (YOLO or COCO labels, as 'dla eval' reads) or plain images "
                                  "(then scored against FLOAT's own detections: 'agreement' metrics)")
    calib: str | None = Field(None, description="calibration images folder (default: as 'dla tune')")
    max_drop: dict[TuneMetric, float] = Field(
        description="the budget: one metric and the most it may drop below FLOAT, e.g. {map50_95: 0.01}")
    cost: TuneCost = Field("cycles", description="what the search minimises")
    space: str | dict[str, Any] | None = Field(
        None, description="the search space: a YAML path, or its mapping inline (default: tune's defaults)")
    limit: int | None = Field(None, ge=1, description="score only the first N images of 'data'")

    @field_validator("max_drop")
    @classmethod
    def _one_budget(cls, v: dict[str, float]) -> dict[str, float]:
        if len(v) != 1:
            raise ValueError(f"give exactly one metric and its drop, e.g. {{map50_95: 0.01}} (got {len(v)})")
        (metric, drop), = v.items()
        if drop < 0:
            raise ValueError(f"{metric}: a drop is at least 0, got {drop}")
        return v

    @property
    def metric(self) -> str:
        return next(iter(self.max_drop))

    @property
    def drop(self) -> float:
        return next(iter(self.max_drop.values()))


class Scenario(Strict):
    """A study: what to run, on what, with which checks, and which reports to write."""

    name: str | None = Field(None, description="default: the file name without .yaml")
    description: str = ""
    model: ModelSection
    hw: str | dict[str, Any] = Field("default", description="a shipped name (default, small8, acc16), a YAML path, "
                                                          "or the fields inline")
    quant: QuantSection = Field(default_factory=QuantSection)
    modes: list[Mode] = Field(default_factory=lambda: ["float", "hybrid", "int"])
    images: list[str] | ImagesSection = Field(default_factory=lambda: ["dog"],
                                              description="image paths or shipped names, or {synthetic: N}")
    thresh: float = Field(0.5, gt=0, lt=1)
    nms: float = Field(0.45, ge=0, le=1)
    cycles: bool = True
    step_mode: Literal["float", "hybrid", "int"] = Field("int", description="mode of the step/cross session")
    step: list[StepEntry] = Field(default_factory=list)
    cross: list[CrossEntry] = Field(default_factory=list)
    rtl: list[RtlEntry] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    report: ReportSection = Field(default_factory=ReportSection)
    tune: TuneSection | None = Field(None, description="search the cheapest quantization within an accuracy "
                                                       "budget ('dla tune'), reported as the JUnit case 'tune'")
    matrix: dict[str, list[Any] | dict[str, Any]] | None = Field(
        None, description="for 'dla regress': dotted key -> list of values, or a mapping of names to values "
                          "(the names go into the scenarios' names); one scenario per combination")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None and (v in (".", "..") or "/" in v or "\\" in v):
            raise ValueError(f"'{v}' cannot be a folder name (reports go to <name>-report, or OUT/<name>/ in a "
                             "regression): no '/', '\\', '.' or '..'")
        return v

    @field_validator("images")
    @classmethod
    def _inputs(cls, v: list[str] | ImagesSection) -> list[str] | ImagesSection:
        if isinstance(v, list) and not v:
            raise ValueError("no input: give at least one image (or {synthetic: N})")
        return v

    @field_validator("modes")
    @classmethod
    def _float_first(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one mode")
        if len(set(v)) != len(v):
            raise ValueError("a mode is listed twice")
        return ["float"] + [m for m in v if m != "float"]  # FLOAT is the reference of every comparison

    @field_validator("matrix")
    @classmethod
    def _matrix(cls, v: dict[str, list[Any] | dict[str, Any]] | None) -> dict[str, list[Any] | dict[str, Any]] | None:
        if v is not None:
            for key, values in v.items():
                if not values:
                    raise ValueError(f"matrix key '{key}' has no values")
                if key.split(".")[0] not in cls.model_fields or key.split(".")[0] == "matrix":
                    raise ValueError(f"matrix key '{key}' is not a scenario key")
                for name in values if isinstance(values, dict) else ():
                    if not isinstance(name, str) or not PRECISION_NAME.fullmatch(name):
                        raise ValueError(f"matrix key '{key}': {name!r} cannot name a value (it goes into the "
                                         "scenario's name): letters, digits, '_', '.' and '-', at most 40; quote "
                                         "a yes/no/on/off or a number")
        return v

    def quantized_modes(self) -> list[str]:
        return [m for m in self.modes if m != "float"]


