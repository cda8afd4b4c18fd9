"""Accuracy of a model on a labelled folder in every mode × quantization choice (``dla eval``).

For each *variant* — FLOAT once; HYBRID and INT for each activation algorithm × weight
granularity (or the one quantization of a ``.qnet``) — every image is letterboxed as for
inference (``golden.image.prepare_input``), run by ``dla.engine.Engine`` and scored:

* detectors: decoded by ``golden.detect.detect`` at Darknet's mAP threshold 0.005 with NMS
  0.45, then mAP@0.5 (all-point) and mAP@0.5:0.95 (COCO 101-point) by ``dla.eval.ap``;
* classifiers: top-1 and top-5 against the class of each image's largest labelled box.

Calibration statistics are collected once (``dla.calibration.collect_statistics``) and every
variant quantizes from them (``quant.quantize`` with a ``QuantSpec``), so adding algorithms
costs only the runs.  Wall time is the engine's time per image (``RunResult.seconds``),
excluding image decoding and box decoding, after one untimed warm-up run per variant
(INT plans and compiled kernels are built on first use).

Operand widths (``--precision NAME=SPEC.yaml``, ``dla.eval.precision``): each named spec
adds its widths to every HYBRID/INT algorithm × granularity, next to the all-int8 variant
(named ``all-int8``); without named specs the variants are those above, unnamed.  Every
variant on the DLA also gets its *cost* from the cycle model at its widths
(``dla.cycles.network_cycles(net, hw, qnet.precisions())``): total cycles, weight bytes and
DRAM bytes per image.  HYBRID's cost is that of its quantized network on the DLA: the float
hand-off of every layer's accumulators to the host, which HYBRID stands for, is not
modelled.  FLOAT has no cost (it does not run on the DLA).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dla.calibration import collect_statistics
from dla.config import HardwareConfig
from dla.cycles import BufferTooSmall, network_cycles
from dla.datasets.labelled import LabelledSet
from dla.engine import Engine, Mode
from dla.eval.ap import ImageBoxes, mean_average_precision
from dla.eval.precision import BASELINE, NamedPrecision
from dla.precision import check_precision
from golden.detect import detect
from golden.image import load_image, prepare_input
from golden.network import Network
from quant import quantize
from quant.qnet import QuantizedNetwork
from quant.spec import QuantSpec

DETECT_THRESH = 0.005  # Darknet's validate_detector_map threshold
NMS = 0.45


@dataclass(frozen=True)
class Variant:
    """One column of the table: a mode and (for HYBRID/INT) how the model was quantized."""

    mode: str                 # float | hybrid | int
    activations: str = "-"    # activation algorithm, "-" for FLOAT, "qnet" for a given .qnet
    granularity: str = "-"    # per_tensor | per_channel | "-"
    precision: str = "-"      # name of its --precision spec, "all-int8", or "-" (no --precision given)

    @property
    def label(self) -> str:
        if self.mode == "float":
            return "FLOAT"
        label = f"{self.mode.upper()} {self.activations} {self.granularity.replace('_', '-')}"
        return label if self.precision == "-" else f"{label} {self.precision}"


@dataclass(frozen=True)
class Cost:
    """What one image costs on the DLA at a variant's widths (``dla.cycles``)."""

    total_cycles: int
    weight_bytes: int
    dram_bytes: int

    @classmethod
    def of(cls, qnet: QuantizedNetwork, hw: HardwareConfig) -> Cost:
        """Raises ``BufferTooSmall`` when a layer cannot be tiled into ``hw``'s buffers."""
        nc = network_cycles(qnet.net, hw, qnet.precisions())
        return cls(nc.total_cycles, nc.weight_bytes, nc.dram_bytes)


@dataclass
class VariantResult:
    variant: Variant
    metrics: dict[str, float]
    seconds_per_image: float
    images: int
    per_class_ap50: list[float] = field(default_factory=list)
    cost: Cost | None = None  # None: FLOAT (not run on the DLA)


@dataclass
class EvalReport:
    model: str
    data: str
    images: int
    task: str  # detect | classify
    calibration: str
    results: list[VariantResult]
    cost_note: str = ""  # why the variants have no cost, if they have none (buffers too small)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("map50", "map50_95") if self.task == "detect" else ("top1", "top5")

    def deltas(self, r: VariantResult) -> dict[str, float | None]:
        """``r``'s change against FLOAT for every metric (``None`` for FLOAT itself, or when the
        report has no FLOAT row)."""
        ref = next((x for x in self.results if x.variant.mode == "float"), None)
        if ref is None or r.variant.mode == "float":
            return {n: None for n in self.metric_names}
        return {n: r.metrics[n] - ref.metrics[n] for n in self.metric_names}

    @property
    def has_precisions(self) -> bool:
        """Were named precisions evaluated (``--precision``)?  Then the table has their column."""
        return any(r.variant.precision != "-" for r in self.results)

    def table_lines(self) -> list[str]:
        """One row per variant: (its precision name, with ``--precision``) every metric, then its
        Δ against FLOAT (one Δ column per metric: int8 can cost mAP@0.5:0.95 while mAP@0.5
        barely moves), ms per image, and its cost on the DLA (cycles, weight and DRAM bytes)."""
        names = self.metric_names
        pw = max([len("precision"), *(len(r.variant.precision) for r in self.results)]) + 2
        prec = (lambda text: f"{text:<{pw}}") if self.has_precisions else (lambda text: "")
        head = f"{'mode':<8}{'activations':<13}{'weights':<13}" + prec("precision") + \
            "".join(f"{n:>10}" for n in names) + "".join(f"{'Δ ' + n:>12}" for n in names) + f"{'ms/img':>9}" + \
            f"{'cycles':>14}{'weight B':>13}{'DRAM B':>14}"
        lines = [head, "-" * len(head)]
        for r in self.results:
            v = r.variant
            d = self.deltas(r)
            c = r.cost
            cost = f"{'-':>14}{'-':>13}{'-':>14}" if c is None else \
                f"{c.total_cycles:>14,}{c.weight_bytes:>13,}{c.dram_bytes:>14,}"
            lines.append(f"{v.mode.upper():<8}{v.activations:<13}{v.granularity.replace('_', '-'):<13}"
                         + prec(v.precision)
                         + "".join(f"{r.metrics[n]:>10.4f}" for n in names)
                         + "".join(f"{'' if d[n] is None else format(d[n], '+.4f'):>12}" for n in names)
                         + f"{r.seconds_per_image * 1e3:>9.1f}" + cost)
        lines.append("Δ = the variant's metric minus FLOAT's, on the same images")
        if self.cost_note:
            lines.append(f"cycles, weight B, DRAM B: not available: {self.cost_note}")
        elif any(r.cost is not None for r in self.results):
            lines.append("cycles, weight B, DRAM B: the cycle model per image at the variant's widths "
                         "(HYBRID: its quantized network's DLA work; the float hand-offs are not modelled)")
        return lines

    def timing_lines(self) -> list[str]:
        """Wall time per image per mode (mean over that mode's variants)."""
        out = []
        for mode in ("float", "hybrid", "int"):
            rs = [r for r in self.results if r.variant.mode == mode]
            if rs:
                ms = np.mean([r.seconds_per_image for r in rs]) * 1e3
                out.append(f"wall time per image, {mode.upper()}: {ms:.1f} ms (mean of {len(rs)} run(s) "
                           f"over {self.images} images)")
        return out

    def to_json(self) -> dict:
        return {"model": self.model, "data": self.data, "images": self.images, "task": self.task,
                "calibration": self.calibration, "cost_note": self.cost_note,
                "results": [{**asdict(r.variant), "label": r.variant.label, **r.metrics,
                             **{f"delta_{n}": d for n, d in self.deltas(r).items()},
                             "seconds_per_image": r.seconds_per_image, "images": r.images,
                             **_cost_dict(r.cost),
                             **({"per_class_ap50": r.per_class_ap50} if r.per_class_ap50 else {})}
                            for r in self.results]}

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["mode", "activations", "granularity", *self.metric_names,
                    *(f"delta_{n}" for n in self.metric_names), "seconds_per_image", "images",
                    "precision", *COST_FIELDS])
        for r in self.results:
            v = r.variant
            d = self.deltas(r)
            w.writerow([v.mode, v.activations, v.granularity, *(f"{r.metrics[n]:.6f}" for n in self.metric_names),
                        *("" if d[n] is None else f"{d[n]:+.6f}" for n in self.metric_names),
                        f"{r.seconds_per_image:.6f}", r.images, v.precision,
                        *("" if x is None else x for x in _cost_dict(r.cost).values())])
        return buf.getvalue()

    def figure(self):
        """One bar chart per metric: every quantized variant (its Δ against FLOAT written on the
        bar), FLOAT as a dashed line.  The y-axis is zoomed to the values; when it does not start
        at 0 its label says where it starts, so small bars are not read as small metrics."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch

        quant = [r for r in self.results if r.variant.mode != "float"]
        flt = next((r for r in self.results if r.variant.mode == "float"), None)
        colours = {"hybrid": "#4c72b0", "int": "#dd8452"}
        fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.5 * len(quant) + 3), 4.6))
        xs = np.arange(len(quant))
        for ax, name in zip(axes, self.metric_names):
            vals = [r.metrics[name] for r in quant]
            bars = ax.bar(xs, vals, color=[colours[r.variant.mode] for r in quant],
                          edgecolor=["black" if r.variant.granularity == "per_channel" else "none" for r in quant])
            handles = [Patch(color=c, label=m.upper()) for m, c in colours.items()]
            lo = min(vals + ([flt.metrics[name]] if flt else []), default=0.0)
            if flt is not None:
                handles.append(ax.axhline(flt.metrics[name], color="green", linestyle="--",
                                          label=f"FLOAT {flt.metrics[name]:.3f}"))
                ax.bar_label(bars, labels=[f"{self.deltas(r)[name]:+.3f}" for r in quant], fontsize=6, padding=1)
            bottom = max(0.0, round(lo - 0.1, 2))
            ax.set_ylim(bottom, 1.0)
            ax.set_xticks(xs, [r.variant.label for r in quant], rotation=70, ha="right", fontsize=6)
            ax.set_ylabel(name if bottom == 0 else f"{name}  (axis starts at {bottom:.2f}, not 0)")
            ax.legend(handles=handles, fontsize=7, loc="lower right")
        fig.suptitle(f"{self.model} on {self.images} images of {self.data} (outlined bars: per-channel weights; "
                     "numbers on bars: Δ vs FLOAT)", fontsize=8)
        fig.tight_layout()
        return fig

    def plot_png(self) -> bytes:
        import matplotlib.pyplot as plt

        fig = self.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return buf.getvalue()


COST_FIELDS = ("total_cycles", "weight_bytes", "dram_bytes")


def _cost_dict(cost: Cost | None) -> dict[str, int | None]:
    return {k: (None if cost is None else getattr(cost, k)) for k in COST_FIELDS}


def make_variants(modes: list[str], activations: list[str], granularities: list[str],
                  qnet_given: bool = False, precisions: list[str] | None = None) -> list[Variant]:
    """FLOAT once (if asked); then each quantized mode × algorithm × granularity, and with
    ``precisions`` (names of ``--precision`` specs) × ``all-int8`` and each name in turn."""
    out = [Variant("float")] if "float" in modes else []
    names = [BASELINE, *precisions] if precisions else ["-"]
    for mode in ("hybrid", "int"):
        if mode not in modes:
            continue
        if qnet_given:
            out.append(Variant(mode, "qnet", "qnet"))
            continue
        for alg in activations:
            for gran in granularities:
                out.extend(Variant(mode, alg, gran, name) for name in names)
    return out


def classes_of(net: Network) -> int:
    return net.heads[0].classes if net.is_detector else int(np.prod(net.layers[net.output_index].out_shape))


def score(net: Network, outputs_per_image: list[dict[int, np.ndarray]], data: LabelledSet,
          sizes: list[tuple[int, int]]) -> tuple[dict[str, float], list[float]]:
    """Metrics of one variant's outputs (see the module docstring)."""
    if net.is_detector:
        dets, gts = [], []
        for out, s, (w, h) in zip(outputs_per_image, data.samples, sizes):
            d = detect(net, out, w, h, None, thresh=DETECT_THRESH, nms=NMS)
            dets.append(ImageBoxes.make([x.box for x in d], [x.cls for x in d], [x.prob for x in d]))
            gts.append(ImageBoxes.make(s.xyxy(w, h), s.classes))
        m = mean_average_precision(dets, gts, classes_of(net))
        return {"map50": m.map50, "map50_95": m.map50_95}, [float(v) for v in m.per_class_ap50]
    top1 = top5 = 0
    for out, s in zip(outputs_per_image, data.samples):
        probs = out[net.output_index].reshape(-1)
        order = np.argsort(-probs, kind="stable")
        top1 += int(order[0] == s.main_class())
        top5 += int(s.main_class() in order[:5])
    n = max(1, len(data.samples))
    return {"top1": top1 / n, "top5": top5 / n}, []


def evaluate(net: Network, data: LabelledSet, variants: list[Variant], calib: list[Path] | int | None,
             hw: HardwareConfig | None = None, qnet: QuantizedNetwork | None = None,
             on_image: Callable[[str], None] | None = None, model_name: str = "",
             calib_label: str = "", precisions: list[NamedPrecision] | None = None) -> EvalReport:
    """Run every variant over every image of ``data`` and score it (``on_image(phase)`` per image).

    ``precisions`` holds the named specs the variants' ``precision`` refers to.  Every
    quantized network is built, checked against ``hw`` (``dla.precision.check_precision``)
    and costed before the first image runs, so a width the hardware refuses fails at once."""
    hw = hw or HardwareConfig()
    named = {p.name: p for p in precisions or []}
    missing = sorted({v.precision for v in variants} - {"-", BASELINE} - set(named))
    if missing:
        raise ValueError(f"variants name precisions that were not given: {missing}")
    for p in named.values():
        p.check_network(net)
    inputs, sizes = [], []
    for s in data.samples:
        im = load_image(s.image)
        sizes.append((im.shape[2], im.shape[1]))
        inputs.append(prepare_input(im, net.input_shape, letterbox=net.letter_box))
    ranges = None
    if qnet is None and any(v.mode != "float" for v in variants):
        assert calib is not None
        ranges, _ = collect_statistics(net, calib, use_cache=False,
                                       on_image=(lambda n: on_image("calibrating")) if on_image else None)
    qnets: dict[tuple[str, str, str], QuantizedNetwork] = {}  # (activations, granularity, precision)
    costs: dict[tuple[str, str, str], Cost] = {}
    cost_note = ""
    for v in variants:
        key = (v.activations, v.granularity, v.precision)
        if v.mode == "float" or key in qnets:
            continue
        if qnet is not None:
            q = qnet
        else:
            spec = named[v.precision].spec(v.activations, v.granularity) if v.precision in named else \
                QuantSpec(activations=v.activations, weights="max", granularity=v.granularity)
            q = quantize(net, ranges, v.granularity, hw.route_shared_scale, spec)  # type: ignore[arg-type]
        check_precision(q, hw)
        qnets[key] = q
        try:  # accuracy does not need the buffers: a --hw too small to tile the network loses only the cost
            costs[key] = Cost.of(q, hw)
        except BufferTooSmall as exc:
            cost_note = f"the cycle model cannot tile the network into the --hw buffers ({exc})"
    results = []
    for v in variants:
        key = (v.activations, v.granularity, v.precision)
        engine = Engine(net, qnets.get(key), hw)
        outs, seconds = [], 0.0
        if inputs:
            engine.run(inputs[0], Mode(v.mode))  # warm-up (plans, compiled kernels): not timed
        for x in inputs:
            run = engine.run(x, Mode(v.mode))
            seconds += run.seconds
            outs.append({i: run.records[i].real for i in _needed(net)})
            if on_image:
                on_image(v.label)
        metrics, per_class = score(net, outs, data, sizes)
        results.append(VariantResult(v, metrics, seconds / max(1, len(inputs)), len(inputs), per_class,
                                     costs.get(key)))
    return EvalReport(model_name or net.name, str(data.root), len(data.samples),
                      "detect" if net.is_detector else "classify", calib_label, results, cost_note)


def _needed(net: Network) -> list[int]:
    return [h.index for h in net.heads] if net.is_detector else [net.output_index]
