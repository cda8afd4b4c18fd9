"""The pictures of a ``dla tune`` run, drawn from its ``tune.json`` mapping alone.

Every function takes the tune.json dict (docs/tune.md; version 1) and returns PNG bytes, so the
tune report (``dla.tune.report``) and the scenario report (``dla.scenario``) embed the same
figures without re-running anything:

* ``pareto_cost.png`` — every evaluated configuration, accuracy (the chosen metric; "agreement"
  when the data set has no labels and FLOAT's own detections are the ground truth) against the
  chosen cost, coloured by search phase; the Pareto front (tune.json ``pareto``) as a step line,
  the budget (FLOAT's metric − ``max_drop``) as a horizontal line, the all-int8 baseline and the
  chosen point marked.
* ``pareto_weights.png`` — the same points against weight bytes (against cycles when weight bytes
  are themselves the chosen cost), with the front recomputed for that axis.
* ``sensitivity.png`` — the per-layer sensitivity ranking: the metric drop of lowering one layer.

Matplotlib's object API with the Agg canvas (no pyplot state, safe in threads and workers).
"""
from __future__ import annotations

import io
import math
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Colours of the search phases (tune.json ``points[].phase``); unknown phases get grey.
PHASE_COLOURS = {"baseline": "#444444", "sensitivity": "#1f77b4", "search": "#ff7f0e", "refine": "#2ca02c"}
OTHER_COLOUR = "#9e9e9e"
#: tune.json ``cost`` name -> (key of ``points[].cost``, axis label).
COST_AXES = {"cycles": ("cycles", "cycles (cycle model)"), "latency": ("latency_ms", "latency (ms)"),
             "dram": ("dram_bytes", "DRAM bytes"), "weights": ("weight_bytes", "weight bytes")}
METRIC_NAMES = {"map50": "mAP@0.5", "map50_95": "mAP@0.5:0.95", "top1": "top-1 accuracy", "sqnr": "SQNR (dB)"}
#: Most bars in the sensitivity chart (the table in the report lists them all).
MAX_BARS = 30


def metric_label(data: dict[str, Any]) -> str:
    """The chosen metric in words, with "agreement" when it is scored against FLOAT's own
    detections (``scoring == "agreement"``): never let such a number pass for accuracy on labels.
    The output SQNR is against FLOAT whatever the scoring, so it never says "agreement"."""
    metric = str(data.get("metric"))
    name = METRIC_NAMES.get(metric, metric)
    if data.get("scoring") == "agreement" and metric != "sqnr":
        return f"agreement {name} (vs FLOAT's detections)"
    return name


def metric_key(data: dict[str, Any]) -> str:
    """The key of ``points[].metrics`` the budget reads (tune.json ``metric_key``: ``sqnr_db`` for ``sqnr``)."""
    return str(data.get("metric_key") or data.get("metric"))


def metric_of(point: dict[str, Any], metric: str) -> float | None:
    """``point``'s value of ``metric`` (``sqnr`` is also looked up as ``sqnr_db``), or ``None``."""
    metrics = point.get("metrics") or {}
    for key in (metric, f"{metric}_db"):
        v = metrics.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def cost_of(point: dict[str, Any], key: str) -> float | None:
    v = (point.get("cost") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def reference_of(data: dict[str, Any]) -> float | None:
    """What drops are measured from: tune.json's ``reference`` (FLOAT's value on the same images;
    for ``sqnr`` the baseline's output SQNR, FLOAT's own being infinite), else FLOAT's value."""
    ref = data.get("reference")
    if isinstance(ref, (int, float)) and not isinstance(ref, bool) and math.isfinite(ref):
        return float(ref)
    return metric_of({"metrics": data.get("float") or {}}, metric_key(data))


def budget_of(data: dict[str, Any]) -> float | None:
    """The lowest acceptable metric: the reference (``reference_of``) minus ``max_drop``
    (``None`` without a finite reference)."""
    ref = reference_of(data)
    drop = data.get("max_drop")
    if ref is None or not math.isfinite(ref) or not isinstance(drop, (int, float)):
        return None
    return ref - float(drop)


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated ``(cost, metric)`` pairs (lower cost, higher metric), by cost: the best
    metric reachable at each cost."""
    out: list[tuple[float, float]] = []
    for c, m in sorted(points, key=lambda p: (p[0], -p[1])):
        if not out or m > out[-1][1]:
            out.append((c, m))
    return out


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(p.get("id")): p for p in data.get("points") or []}


def pareto_plot(data: dict[str, Any], x_key: str, x_label: str, given_front: list[str] | None) -> bytes:
    """Accuracy against ``points[].cost[x_key]``.  ``given_front``: the ids of the front to draw
    (tune.json ``pareto``, computed on the chosen cost); ``None`` = recompute it on this axis."""
    metric = metric_key(data)
    fig = Figure(figsize=(8, 4.6))
    ax = fig.add_subplot()
    pts = [(p, cost_of(p, x_key), metric_of(p, metric)) for p in data.get("points") or []]
    pts = [(p, x, y) for p, x, y in pts if x is not None and y is not None]
    phases = list(dict.fromkeys(str(p.get("phase")) for p, _, _ in pts))
    for phase in phases:
        sel = [(x, y) for p, x, y in pts if str(p.get("phase")) == phase]
        ax.scatter([x for x, _ in sel], [y for _, y in sel], s=18, alpha=0.75,
                   color=PHASE_COLOURS.get(phase, OTHER_COLOUR), label=f"{phase} ({len(sel)})", zorder=2)
    by_id = _by_id(data)
    if given_front is not None:
        fr = [(cost_of(by_id[i], x_key), metric_of(by_id[i], metric)) for i in given_front if i in by_id]
        line = sorted((x, y) for x, y in fr if x is not None and y is not None)
    else:
        line = front([(x, y) for _, x, y in pts])
    if line:
        right = max(x for _, x, _ in pts)
        if right > line[-1][0]:  # the best metric stays reachable at any higher cost
            line = [*line, (right, line[-1][1])]
        ax.step([x for x, _ in line], [y for _, y in line], where="post", color="#d62728", lw=1.4,
                label="Pareto front", zorder=3)
    budget = budget_of(data)
    if budget is not None:
        ax.axhline(budget, color="#d62728", ls="--", lw=1,
                   label=f"budget: {'baseline' if metric == 'sqnr_db' else 'FLOAT'} − {data.get('max_drop')} = {budget:.4g}",
                   zorder=1)
    chosen_name = "chosen" if data.get("met") else "best found (budget NOT met)"
    base_label = "all-int8 baseline" if baseline_name(by_id.get(str(data.get("baseline")))) == "all-int8" else "baseline"
    for key, marker, size, name in (("baseline", "s", 90, base_label), ("chosen", "*", 260, chosen_name)):
        p = by_id.get(str(data.get(key)))
        if p is not None and cost_of(p, x_key) is not None and metric_of(p, metric) is not None:
            ax.scatter([cost_of(p, x_key)], [metric_of(p, metric)], marker=marker, s=size, facecolor="none"
                       if key == "baseline" else "gold", edgecolor="black", lw=1.2, label=name, zorder=4)
    if not pts:
        ax.text(0.5, 0.5, "no evaluated point has this cost and metric", ha="center", transform=ax.transAxes)
    ax.set(xlabel=x_label, ylabel=metric_label(data),
           title=f"{metric_label(data)} vs {x_label}: {len(pts)} configurations")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def _sens_label(row: dict[str, Any]) -> str:
    return f"L{row.get('layer')} {row.get('kind', '')} {row.get('option', '')}".strip()


def sensitivity_plot(data: dict[str, Any]) -> bytes | None:
    """Horizontal bars of the metric drop per (layer, option), most sensitive at the top
    (the first ``MAX_BARS`` of tune.json's ranking); ``None`` without a ranking."""
    rows = [r for r in data.get("sensitivity") or [] if isinstance(r.get("drop"), (int, float))][:MAX_BARS]
    if not rows:
        return None
    fig = Figure(figsize=(8, max(2.4, 0.8 + 0.26 * len(rows))))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    drops = [float(r["drop"]) for r in rows]
    ax.barh(ys, drops, color=["#d62728" if d > float(data.get("max_drop") or 0) else "#1f77b4" for d in drops])
    ax.set_yticks(ys, [_sens_label(r) for r in rows], fontsize=7)
    if isinstance(data.get("max_drop"), (int, float)):
        ax.axvline(float(data["max_drop"]), color="#d62728", ls="--", lw=1, label=f"max_drop {data['max_drop']}")
        ax.legend(fontsize=7)
    ax.set(xlabel=f"drop of {metric_label(data)} when only this layer is lowered",
           title="sensitivity ranking (most sensitive first)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def ran_on(workers: Any) -> str:
    """Where the points ran, for a sentence after "N s": ``"in this process"`` for tune.json's
    ``"in-process"`` (``-j 1``), else ``"on local:2"`` / ``"on tcp://..."``."""
    if workers == "in-process":
        return "in this process"
    return f"on {workers or '—'}"


def baseline_name(base: dict[str, Any] | None) -> str:
    """``"all-int8"`` when the baseline point is the all-int8 network (every layer w8a8 or a8, on
    the DLA, no refinement: the default space), else ``"the baseline"``: a space whose first
    options are other widths (e.g. ``weight_bits: [4, 8]``) has another baseline, and calling it
    all-int8 would misstate every relative cost."""
    if not base or base.get("refinements"):
        return "the baseline"
    labels = {str(r.get("precision")) for r in base.get("layers") or []}
    return "all-int8" if labels and labels <= {"w8a8", "a8"} else "the baseline"


def figures(data: dict[str, Any]) -> dict[str, bytes]:
    """Every figure of a tune run as PNG bytes, by file name (see the module docstring)."""
    key, label = COST_AXES.get(str(data.get("cost")), COST_AXES["cycles"])
    out = {"pareto_cost.png": pareto_plot(data, key, label, [str(i) for i in data.get("pareto") or []])}
    other = COST_AXES["weights"] if key != "weight_bytes" else COST_AXES["cycles"]
    out["pareto_weights.png"] = pareto_plot(data, other[0], other[1], None)
    sens = sensitivity_plot(data)
    if sens is not None:
        out["sensitivity.png"] = sens
    return out
