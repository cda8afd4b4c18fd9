"""The report's pictures, as PNG files in ``plots/`` (the HTML embeds them as data URIs).

* ``sqnr.png`` — per-layer SQNR of every (variant, mode) against FLOAT, on the first input
  (∞ — bit-identical layers — drawn at the top edge and marked).
* ``hist-L.png`` — layer L's folded float weights and its FLOAT output activations, with the
  clipping thresholds ``±127·scale`` of each variant (per-channel weights: the widest channel).
* ``detections-IMAGE.png`` — FLOAT and each variant's INT (else HYBRID) detections side by side.
* ``cycles.png``, ``utilization.png``, ``roofline.png`` — from ``dla.cycles.report``.
* ``tune-pareto_cost.png``, ``tune-pareto_weights.png`` — the ``tune:`` section's Pareto figures
  (``dla.tune.plots``, the same as in its own ``tune/report.html``).
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from dla.fileio import write_bytes_atomic
from dla.scenario.runner import ScenarioResult
from golden.draw import draw_detections
from golden.layers import Kind
from quant.numerics import QMAX

SQNR_CEILING = 80.0  # dB: where "inf" (bit-identical) is drawn
MAX_DETECTION_PANELS = 4


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    write_bytes_atomic(path, buf.getvalue())
    return path


def _db(v: float | str) -> float:
    f = float(v) if not isinstance(v, str) else (math.inf if v == "inf" else -math.inf)
    return min(f, SQNR_CEILING) if f > -math.inf else -10.0


def sqnr_plot(result: ScenarioResult, out: Path) -> Path | None:
    rows = result.summary["layers"]
    if not rows:
        return None
    first = result.built.inputs[0].name
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    for v in result.summary["variants"]:
        for mode in result.loaded.scenario.quantized_modes():
            sel = [r for r in rows if r["variant"] == v["name"] and r["mode"] == mode and r["image"] == first]
            ys = [_db(r["sqnr_db"]) for r in sel]
            ax.plot([r["index"] for r in sel], ys, marker=".", label=f"{mode.upper()} {v['name']}")
    exact = any(r["sqnr_db"] == "inf" for r in rows)
    if exact:
        ax.axhline(SQNR_CEILING, color="0.8", lw=0.8)
    ax.set(xlabel="layer", ylabel="SQNR vs FLOAT (dB)", title=f"per-layer SQNR on {first} (cumulative vs FLOAT"
           + (f"; {SQNR_CEILING:g} dB line = bit-identical)" if exact else ")"))
    ax.legend(fontsize=8)
    return _save(fig, out / "sqnr.png")


def histogram_layers(result: ScenarioResult) -> list[int]:
    chosen = result.loaded.scenario.report.histograms
    convs = [s.index for s in result.built.net.layers if s.kind is Kind.CONV]
    if chosen != "auto":
        return [i for i in chosen if 0 <= i < len(result.built.net.layers)]
    if not convs:
        return []
    return sorted({convs[0], convs[len(convs) // 2], convs[-1]})


def histogram_plot(result: ScenarioResult, layer: int, out: Path) -> Path:
    net = result.built.net
    first = result.built.inputs[0].name
    act = result.float_runs[first].records[layer].real.reshape(-1)
    params = net.params.get(layer)
    weights = None
    if params is not None:
        weights = next((v.engine.qnet.layers[layer].w_float for v in result.built.variants
                        if v.engine.qnet and layer in v.engine.qnet.layers), None)
        if weights is None:
            weights = params.arrays().get("weights")
    fig = Figure(figsize=(10, 3.2))
    panels = [("activations (FLOAT output)", act, "act")] + ([("weights (folded)", np.ravel(weights), "w")]
                                                             if weights is not None else [])
    for k, (title, values, what) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.hist(values, bins=120, log=True, color="0.55")
        for n, v in enumerate(result.built.variants):
            q = v.engine.qnet
            assert q is not None
            if what == "act":
                clip = QMAX * q.scales.get(layer, float("nan"))
            else:
                ql = q.layers.get(layer)
                clip = QMAX * float(np.max(ql.w_scale)) if ql is not None else float("nan")
            if math.isfinite(clip):
                colour = f"C{n}"
                ax.axvline(clip, color=colour, ls="--", lw=1, label=f"{v.name} ±{clip:.3g}")
                ax.axvline(-clip, color=colour, ls="--", lw=1)
        spec = net.layers[layer]
        ax.set(title=f"layer {layer} {spec.kind.value}: {title}", xlabel="value", ylabel="count (log)")
        if result.built.variants:
            ax.legend(fontsize=7)
    return _save(fig, out / f"hist-{layer}.png")


def _panel(result: ScenarioResult, image: str, key: tuple[str, str, str]) -> Image.Image:
    inp = next(i for i in result.built.inputs if i.name == image)
    if inp.path is not None:
        return draw_detections(inp.path, result.detections.get(key, []), min_side=320)
    return Image.fromarray(np.clip(np.transpose(inp.x, (1, 2, 0)) * 255, 0, 255).astype(np.uint8))


def detection_plot(result: ScenarioResult, image: str, out: Path) -> Path:
    s = result.loaded.scenario
    mode = "int" if "int" in s.modes else ("hybrid" if "hybrid" in s.modes else None)
    keys = [("FLOAT", (image, "", "float"))]
    if mode:
        keys += [(f"{mode.upper()} {v.name}", (image, v.name, mode))
                 for v in result.built.variants[:MAX_DETECTION_PANELS - 1]]
    fig = Figure(figsize=(4.2 * len(keys), 4))
    for k, (title, key) in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), k + 1)
        ax.imshow(np.asarray(_panel(result, image, key)))
        ax.set_title(f"{title} ({len(result.detections.get(key, []))} detections)", fontsize=9)
        ax.axis("off")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in image)
    return _save(fig, out / f"detections-{safe}.png")


def all_plots(result: ScenarioResult, out: Path) -> dict[str, list[Path]]:
    """Every picture of the report, by section."""
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, list[Path]] = {"sqnr": [], "histograms": [], "detections": [], "cycles": [], "tune": []}
    p = sqnr_plot(result, out)
    if p:
        plots["sqnr"].append(p)
    plots["histograms"] = [histogram_plot(result, i, out) for i in histogram_layers(result)]
    if result.built.net.is_detector:
        for inp in result.built.inputs[:2]:
            plots["detections"].append(detection_plot(result, inp.name, out))
    if result.summary["cycles"] is not None:
        from dla.cycles import network_cycles
        from dla.cycles.report import cycle_plots

        plots["cycles"] = cycle_plots(network_cycles(result.built.net, result.built.hw,
                                                     result.built.first_precisions()), out)
    if result.tune is not None:
        from dla.tune.plots import figures

        for name, png in figures(result.tune).items():
            if not name.startswith("pareto"):
                continue  # the sensitivity ranking is in tune/report.html
            write_bytes_atomic(out / f"tune-{name}", png)
            plots["tune"].append(out / f"tune-{name}")
    return plots
