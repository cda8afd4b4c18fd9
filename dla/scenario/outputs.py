"""Writing a scenario's reports into its output directory.

``report.html`` (self-contained: CSS inline, every plot embedded as a data URI, no script, no
network), ``summary.json`` (the whole result), ``layers.csv`` (one row per variant × input ×
mode × layer, with the layer's ``precision`` label and the cycle model's columns joined by layer), ``junit.xml`` (one test case
per check, and the case ``tune`` of a ``tune:`` section), ``tune/`` (that section's own outputs:
tune.json, the CSV, best.qnet, report.html) and ``plots/`` (the PNGs, also usable on their own).  Which of them are written is
the scenario's ``report:`` section; ``summary.json`` is always written (regressions read it).
``summary.json`` holds no wall time, so the same scenario gives the same bytes in any process
and with any thread count; the times are in ``timing.json``.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import jinja2

from dla.fileio import json_text, write_bytes_atomic
from dla.scenario.junit import junit_xml, scenario_suite
from dla.scenario.runner import ScenarioResult
from dla.scenario.text import precision_columns

CYCLE_COLUMNS = ("total_cycles", "compute_cycles", "stall_cycles", "util_pct", "dram_read_bytes", "dram_write_bytes")


def layers_csv(summary: dict[str, Any]) -> str:
    cycles = {r["index"]: r for r in (summary["cycles"] or {}).get("layers", [])}
    buf = io.StringIO()
    fields = ["variant", "image", "mode", "index", "type", "shape", "precision", "sqnr_db", "max_abs", "mean_abs", "cosine",
              "saturated_pct", "overflow", "scale", *(f"cycles_{c}" for c in CYCLE_COLUMNS)]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in summary["layers"]:
        cy = cycles.get(r["index"], {})
        w.writerow({**r, "precision": r["precision"]["label"], **{f"cycles_{c}": cy.get(c, "") for c in CYCLE_COLUMNS}})
    if not summary["layers"] and cycles:  # a FLOAT-only scenario still gets the per-layer cycles
        for i, cy in cycles.items():
            w.writerow({"index": i, "type": cy.get("type", ""), **{f"cycles_{c}": cy.get(c, "") for c in CYCLE_COLUMNS}})
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}"
    return str(v)


def _step_text(e: dict[str, Any]) -> str:
    skip = {"line", "action", "layer"}
    return ", ".join(f"{k} {_fmt(v)}" for k, v in e.items() if k not in skip)


def _layer_table(summary: dict[str, Any]) -> dict[str, Any]:
    """The HTML per-layer table: layer, type, shape, the precision column(s) (``precision_columns``),
    then one SQNR column per series; ``fixed`` counts the leading text columns."""
    if not summary["images"] or not summary["layers"]:
        return {"header": [], "rows": [], "fixed": 0}
    first = summary["images"][0]["name"]
    series = list(dict.fromkeys((r["variant"], r["mode"]) for r in summary["layers"]))
    precs = precision_columns(summary)
    header = ["layer", "type", "shape", *(h for h, _ in precs), *(f"{m.upper()} {v} SQNR" for v, m in series)]
    by = {(r["variant"], r["mode"], r["index"]): r for r in summary["layers"] if r["image"] == first}
    rows = []
    idx = sorted({r["index"] for r in summary["layers"]})
    for i in idx:
        some = by[(series[0][0], series[0][1], i)]
        vals = [by[(v, m, i)]["sqnr_db"] for v, m in series]
        rows.append([i, some["type"], some["shape"], *(col[i] for _, col in precs),
                     *[float(x) if not isinstance(x, str) else x for x in vals]])
    return {"header": header, "rows": rows, "fixed": 3 + len(precs)}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _tune_context(result: ScenarioResult) -> dict[str, Any]:
    """The tune section's headline and per-layer rows (``dla.tune.report``), from the full tune.json."""
    if result.tune is None:
        return {"head": None, "rows": []}
    from dla.tune.report import headline, layer_rows

    head = headline(result.tune)
    return {"head": head, "rows": layer_rows(head["point"], head["baseline"])}


def report_html(result: ScenarioResult, plots: dict[str, list[Path]]) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("dla.scenario", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    tpl = env.get_template("report.html.j2")
    return tpl.render(s=result.summary, seconds=result.seconds, plots={k: [_data_uri(p) for p in v] for k, v in plots.items()},
                      layer_table=_layer_table(result.summary), fmt=_fmt, step_text=_step_text,
                      tune=_tune_context(result))


def write_outputs(result: ScenarioResult, out: Path) -> list[str]:
    """Write the reports into ``out`` (an existing, empty directory); returns the names written."""
    rep = result.loaded.scenario.report
    written = []
    if result.tune_dir is not None:  # tune's own outputs: tune.json, the CSV, best.qnet, report.html
        # not its resume cache: a scenario's tune always starts afresh in the run's work folder
        shutil.copytree(result.tune_dir, out / "tune", ignore=lambda d, names: ["cache"] if Path(d) ==
                        result.tune_dir else [])
        written.append("tune/")
    write_bytes_atomic(out / "summary.json", json_text(result.summary).encode())
    written.append("summary.json")
    write_bytes_atomic(out / "timing.json", (json.dumps(result.seconds, indent=1) + "\n").encode())
    written.append("timing.json")
    if rep.csv:
        write_bytes_atomic(out / "layers.csv", layers_csv(result.summary).encode())
        written.append("layers.csv")
    if rep.junit:
        write_bytes_atomic(out / "junit.xml", junit_xml([scenario_suite(result.summary, result.seconds.get("total", 0.0))]))
        written.append("junit.xml")
    if rep.html:
        from dla.scenario.plots import all_plots

        plots = all_plots(result, out / "plots")
        write_bytes_atomic(out / "report.html", report_html(result, plots).encode())
        written += ["report.html", "plots/"]
    return written
