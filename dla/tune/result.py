"""The outcome of a tune: ``tune.json`` (version 1, the contract every reader uses), the CSV,
the chosen network and the table printed on stdout.

``TuneResult.write(out)`` writes ``tune.json``, ``tune.csv``, ``best.qnet`` (the chosen point,
or with no point meeting the budget the one closest to it) and ``report.html``
(``dla.tune.report.write_report``, when that module exists), each atomically.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from dla.config import HardwareConfig
from dla.fileio import write_bytes_atomic, write_json_atomic
from golden.errors import UserInputError
from quant.qnet import QuantizedNetwork

def scoring_note(scoring: str, detector: bool) -> str:
    """One line saying what the metrics were scored against (printed and stored in tune.json)."""
    if scoring == "labels":
        return "scored against the folder's labels"
    if detector:
        return "agreement mAP: scored against FLOAT's own detections (the folder has no labels)"
    return "agreement top-1: scored against FLOAT's own top class (the folder has no labels)"
METHOD = "sensitivity + greedy lowering with measured refinement (docs/tune.md)"


class TuneBudgetNotMet(UserInputError):
    """No evaluated configuration meets the accuracy budget (the outputs are still written)."""

    exit_code = 3

    def __init__(self, result: TuneResult) -> None:
        self.result = result
        super().__init__(result.shortfall_text())


def metric_title(metric: str, scoring: str) -> str:
    """``"agreement mAP@0.5:0.95"``-style name of a metric under its scoring."""
    names = {"map50": "mAP@0.5", "map50_95": "mAP@0.5:0.95", "top1": "top-1", "top5": "top-5",
             "sqnr": "output SQNR (dB)", "sqnr_db": "output SQNR (dB)"}
    name = names.get(metric, metric)
    return f"agreement {name}" if scoring == "agreement" and metric not in ("sqnr", "sqnr_db") else name


def _cost_title(cost: str) -> str:
    return {"cycles": "cycles", "latency": "latency ms", "dram": "DRAM bytes", "weights": "weight bytes"}[cost]


def _changes(config, baseline) -> list[str]:
    from dla.tune.space import DIMENSIONS, Move

    out = []
    for (i, c), (_, b) in zip(config.choices, baseline.choices):
        out += [Move(i, d, c.get(d)).label for d in DIMENSIONS if c.get(d) != b.get(d)]
    return out + [f"+{r}" for r in config.refinements]


def build_json(req, model, task, space, search, chosen, seconds: float, evaluator) -> dict[str, Any]:
    """The tune.json document (docs/tune.md, "tune.json")."""
    from dla.tune.evaluate import COSTS
    from dla.tune.search import pareto

    cost_key = COSTS[req.cost]
    metric_key = search.metric_key
    baseline = space.baseline()
    points = []
    for p in search.points.values():
        points.append({"id": p.id, "phase": p.phase, "label": p.label, "changes": _changes(p.config, baseline),
                       "spec": p.data["spec"], "refinements": p.data["refinements"], "metrics": p.data["metrics"],
                       "drop": p.drop, "cost": p.data["cost"], "layers": p.data["layers"],
                       "seconds": p.data["seconds"], "meets": p.meets})
    sens = sorted(search.sensitivity, key=lambda s: (-s.delta_drop, s.move.label))
    sensitivity = []
    for s in sens:
        iso = next((r.get("isolated_sqnr_db") for r in s.point.data["layers"] if r["layer"] == s.move.layer), None)
        sensitivity.append({"layer": s.move.layer, "kind": task.net.layers[s.move.layer].kind.value
                            if s.move.layer is not None else "network", "option": s.move.option,
                            "drop": s.delta_drop, "point_drop": s.point.drop, "delta_cost": s.delta_cost,
                            "isolated_sqnr_db": iso, "point": s.point.id})
    front = pareto(list(search.points.values()), cost_key, metric_key)
    met = chosen is not None and chosen.meets
    base = search.baseline
    float_metrics = {k: v for k, v in task.float_metrics.items() if k != "sqnr_db"}
    return {
        "version": 1, "model": model.label or task.net.name, "data": str(task.data.root), "images": len(task.inputs),
        "scoring": task.scoring, "scoring_note": scoring_note(task.scoring, task.net.is_detector),
        "metric": req.metric, "metric_key": metric_key, "metric_title": metric_title(req.metric, task.scoring),
        "max_drop": float(req.max_drop), "cost": req.cost, "cost_key": cost_key,
        "reference": search.reference, "reference_note": "FLOAT's value on the same images" if metric_key != "sqnr_db"
        else "the baseline's output SQNR (FLOAT's is infinite)",
        "hw": task.hw.to_dict(), "calibration_images": task.ranges.images,
        "float": float_metrics, "baseline": base.id if base else None,
        "points": points, "sensitivity": sensitivity, "infeasible": search.infeasible,
        "pareto": [p.id for p in front],
        "chosen": chosen.id if chosen else None, "met": met,
        "shortfall": 0.0 if met or chosen is None else chosen.drop - float(req.max_drop),
        "relative_cost": (search.cost(chosen) / search.cost(base)) if chosen and base and search.cost(base) else None,
        "evaluations": evaluator.evaluated, "cached": evaluator.cached,
        "exhaustive": space.size_text(), "space": space.to_dict(),
        "method": METHOD, "seconds": seconds, "workers": evaluator.where,
    }


class TuneResult:
    """A finished tune: its tune.json document, the chosen network and the hardware."""

    def __init__(self, data: dict[str, Any], qnet: QuantizedNetwork | None, hw: HardwareConfig) -> None:
        self.data, self.qnet, self.hw = data, qnet, hw

    @property
    def met(self) -> bool:
        return bool(self.data["met"])

    def point(self, pid: str | None) -> dict[str, Any] | None:
        return next((p for p in self.data["points"] if p["id"] == pid), None)

    @property
    def chosen(self) -> dict[str, Any] | None:
        return self.point(self.data["chosen"])

    def to_json(self) -> dict[str, Any]:
        return self.data

    def shortfall_text(self) -> str:
        d, best = self.data, self.chosen
        if best is None:
            return "no configuration could be evaluated"
        title = d["metric_title"]
        return (f"budget not met: no evaluated configuration loses at most {d['max_drop']:g} of {title}; the best "
                f"(point {best['id']}) loses {best['drop']:.4f}, {d['shortfall']:.4f} over the budget "
                f"({d['evaluations'] + d['cached']} points evaluated)")

    def raise_if_not_met(self) -> None:
        if not self.met:
            raise TuneBudgetNotMet(self)

    def to_csv(self) -> str:
        d = self.data
        metrics = sorted({k for p in d["points"] for k in p["metrics"]})
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "phase", "label", "changes", *metrics, "drop", "cycles", "latency_ms", "dram_bytes",
                    "weight_bytes", "meets", "pareto", "chosen", "scoring"])
        front = set(d["pareto"])
        for p in d["points"]:
            c = p["cost"]
            w.writerow([p["id"], p["phase"], p["label"], "; ".join(p["changes"]),
                        *(_num(p["metrics"].get(m)) for m in metrics), f"{p['drop']:.6f}", c["cycles"],
                        f"{c['latency_ms']:.6f}", c["dram_bytes"], c["weight_bytes"], int(p["meets"]),
                        int(p["id"] in front), int(p["id"] == d["chosen"]), d["scoring"]])
        return buf.getvalue()

    def table_lines(self) -> list[str]:
        """The Pareto front (and baseline, chosen) as a text table."""
        from dla.tune.plots import ran_on  # here: plots imports matplotlib

        d = self.data
        key, ck = d["metric_key"], d["cost_key"]
        base = self.point(d["baseline"])
        rows = [p for p in d["points"] if p["id"] in set(d["pareto"]) | {d["baseline"], d["chosen"]}]
        rows.sort(key=lambda p: p["cost"][ck])
        title = d["metric_title"]
        lines = [f"{d['model']} on {d['images']} images of {d['data']} ({d['scoring_note']})",
                 f"budget: {title} at most {d['max_drop']:g} below {d['reference_note']} "
                 f"({_num(d['reference'], 4)}); cost: {d['cost']}",
                 f"{'point':<14}{title:>24}{'drop':>9}{_cost_title(d['cost']):>14}{'x base':>8}  changes from the baseline"]
        for p in rows:
            tag = "*" if p["id"] == d["chosen"] else ("b" if p["id"] == d["baseline"] else " ")
            rel = p["cost"][ck] / base["cost"][ck] if base and base["cost"][ck] else float("nan")
            ch = ", ".join(p["changes"]) or "-"
            lines.append(f"{tag} {p['id']:<12}{_num(p['metrics'][key], 4):>24}{p['drop']:>+9.4f}"
                         f"{_cost(p['cost'][ck]):>14}{rel:>8.3f}  {ch if len(ch) < 90 else ch[:87] + '...'}")
        star = "chosen" if d["met"] else "best found (budget NOT met)"  # as report.html: never "chosen" when missed
        lines.append(f"* {star}, b baseline; the other rows are the Pareto front (no point is cheaper and more accurate)")
        lines.append(f"{d['evaluations']} points measured, {d['cached']} from the cache; an exhaustive search "
                     f"needs {d['exhaustive']}; {d['seconds']:.1f} s {ran_on(d['workers'])}")
        hosted = [row["layer"] for row in (self.chosen or {}).get("layers", []) if row["host"]]
        if hosted:
            lines.append(f"note: layer(s) {', '.join(map(str, hosted))} of the chosen point run on the host; the cycle "
                         "model charges a host layer only its DRAM transfer, not its float compute")
        if d["met"]:
            lines.append(f"chosen {d['chosen']}: {title} drop {self.chosen['drop']:.4f} ≤ {d['max_drop']:g}, "
                         f"{d['cost']} {d['relative_cost']:.3f}x the baseline")
        else:
            lines.append(self.shortfall_text())
        return lines

    def write(self, out_dir: str | Path) -> list[Path]:
        """tune.json, tune.csv, best.qnet and report.html into ``out_dir`` (created if needed)."""
        from dla.qnet_file import save_qnet

        out = Path(out_dir)
        out.mkdir(exist_ok=True)
        written = [out / "tune.json", out / "tune.csv"]
        write_json_atomic(written[0], self.data)
        write_bytes_atomic(written[1], self.to_csv().encode())
        if self.qnet is not None:
            written.append(save_qnet(self.qnet, self.hw, out / "best.qnet"))
        try:
            from dla.tune import report
        except ImportError:
            report = None  # type: ignore[assignment]
        if report is not None and hasattr(report, "write_report"):
            written.append(report.write_report(self.data, out))
        return written


def _num(v: Any, digits: int = 6) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _cost(v: float) -> str:
    return f"{v:,.0f}" if float(v) >= 100 else f"{v:.4g}"


__all__ = ["METHOD", "TuneBudgetNotMet", "TuneResult", "build_json", "metric_title"]
