"""``OUT/report.html`` of ``dla tune``: one self-contained page from the tune.json mapping alone.

What it shows, top to bottom (docs/tune.md, "The report"):

1. the headline: budget met or NOT MET (then the shortfall, in red, first thing on the page),
   the chosen cost relative to all-int8, configurations evaluated against the count an
   exhaustive search would need, the wall time and the workers;
2. the Pareto plots (``dla.tune.plots``): accuracy against the chosen cost and against weight
   bytes, every evaluated configuration coloured by phase, the front, the budget line, the
   all-int8 baseline and the chosen point;
3. the chosen point's per-layer choices (precision, algorithms, host, cycles) beside the
   baseline's, changed layers highlighted;
4. the sensitivity ranking (bar chart and table);
5. every evaluated configuration (a collapsed table).

The accuracy metric is named "agreement ..." everywhere when tune.json's ``scoring`` is
``"agreement"`` (plain images scored against FLOAT's own detections).  Everything taken from
tune.json is HTML-escaped (Jinja2 autoescape): a model or folder name is data, never markup.
The PNGs are embedded as data URIs, so the page needs no other file, no script and no network.
"""
from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import jinja2

from dla.fileio import write_bytes_atomic
from dla.tune.plots import (
    COST_AXES,
    baseline_name,
    budget_of,
    cost_of,
    figures,
    metric_key,
    metric_label,
    metric_of,
    ran_on,
    reference_of,
)
from golden.errors import UserInputError

REPORT_NAME = "report.html"
#: tune.json versions this report reads.
VERSIONS = (1,)


def _fmt(v: Any, digits: int = 4) -> str:
    """A table cell: numbers to ``digits`` significant digits (integers with separators), '—' for none."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
        if v == int(v) and abs(v) >= 1e4:
            return f"{int(v):,}"
        return f"{v:.{digits}g}"
    return str(v)


def check_tune_json(data: Any) -> None:
    """Refuse a mapping that is not a tune.json this report can read (one message, no traceback)."""
    if not isinstance(data, dict):
        raise UserInputError("tune.json: not a JSON object")
    if data.get("version") not in VERSIONS:
        raise UserInputError(f"tune.json: version {data.get('version')!r} is not one this report reads "
                             f"({', '.join(map(str, VERSIONS))})")
    if not isinstance(data.get("points"), list):
        raise UserInputError("tune.json: 'points' is not a list of evaluated configurations")
    for i, p in enumerate(data["points"]):
        if not isinstance(p, dict) or "id" not in p:
            raise UserInputError(f"tune.json: points[{i}] is not an object with an 'id'")


def best_point(data: dict[str, Any]) -> dict[str, Any] | None:
    """The point the report is about: tune.json's ``chosen``; when no point met the budget and
    ``chosen`` is null, the evaluated point with the smallest drop (the best found)."""
    by_id = {str(p["id"]): p for p in data["points"]}
    if data.get("chosen") is not None and str(data["chosen"]) in by_id:
        return by_id[str(data["chosen"])]
    drops = [p for p in data["points"] if isinstance(p.get("drop"), (int, float))]
    return min(drops, key=lambda p: (p["drop"], cost_of(p, _cost_key(data)) or 0.0)) if drops else None


def _cost_key(data: dict[str, Any]) -> str:
    return COST_AXES.get(str(data.get("cost")), COST_AXES["cycles"])[0]


def headline(data: dict[str, Any]) -> dict[str, Any]:
    """The facts of the first paragraph, as plain values (also used by the scenario report)."""
    met = bool(data.get("met"))
    point = best_point(data)
    by_id = {str(p["id"]): p for p in data["points"]}
    base = by_id.get(str(data.get("baseline")))
    key = _cost_key(data)
    rel = data.get("relative_cost")
    if rel is None and point is not None and base is not None and cost_of(base, key):
        rel = (cost_of(point, key) or 0.0) / (cost_of(base, key) or 1.0)
    return {"met": met, "shortfall": data.get("shortfall"), "point": point, "baseline": base,
            "relative_cost": rel, "cost_key": key, "cost_label": COST_AXES.get(str(data.get("cost")),
                                                                               COST_AXES["cycles"])[1],
            "metric_label": metric_label(data), "budget": budget_of(data), "float_value": reference_of(data),
            "reference": baseline_name(base) if metric_key(data) == "sqnr_db" else "FLOAT",
            "base_name": baseline_name(base),
            "ran_on": ran_on(data.get("workers")),
            "value": metric_of(point, metric_key(data)) if point else None,
            "base_value": metric_of(base, metric_key(data)) if base else None,
            "measured": _int(data.get("evaluations")) + _int(data.get("cached"))}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def layer_rows(point: dict[str, Any] | None, base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The chosen point's per-layer choices beside the baseline's (by layer index); ``changed``
    is true where precision, algorithms, granularity or host differ from the baseline."""
    if point is None:
        return []
    base_by = {r.get("layer"): r for r in (base or {}).get("layers") or []}
    rows = []
    for r in point.get("layers") or []:
        b = base_by.get(r.get("layer"), {})
        keys = ("precision", "activations", "weights", "granularity", "host")
        changed = bool(b) and any(r.get(k) != b.get(k) for k in keys)
        cyc, bcyc = r.get("cycles"), b.get("cycles")
        delta = cyc - bcyc if isinstance(cyc, (int, float)) and isinstance(bcyc, (int, float)) else None
        rows.append({**r, "base_precision": b.get("precision"), "base_cycles": bcyc, "delta_cycles": delta,
                     "changed": changed})
    return rows


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dla tune — {{ d.model }}</title>
<style>
 body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; padding: 0 1em; }
 h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
 table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
 th, td { border: 1px solid #ddd; padding: 2px 7px; text-align: right; }
 th { background: #f4f4f4; } td.l, th.l { text-align: left; }
 .badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; }
 .badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; }
 .notmet { border: 2px solid #c62828; background: #fdecea; padding: .6em 1em; font-size: 15px; }
 .notmet b { color: #b00020; }
 img.plot { max-width: 100%; border: 1px solid #eee; margin: .4em 0; }
 .muted { color: #777; } code { background: #f6f6f6; padding: 0 3px; }
 tr.chg td { background: #fff6d6; } tr.chosen td { background: #fff2b3; font-weight: 600; }
</style>
</head>
<body>
<h1>dla tune: {{ d.model }} <span class="badge {{ 'pass' if h.met else 'fail' }}" id="verdict">{{ 'BUDGET MET' if h.met else 'BUDGET NOT MET' }}</span></h1>
{% if not h.met %}
<p class="notmet" id="shortfall"><b>No configuration in the search space meets the budget.</b>
The best point found{% if h.point %} (<code>{{ h.point.id }}</code>, {{ h.point.label }}){% endif %} loses
<b>{{ fmt(h.point.drop if h.point else none) }}</b> of {{ h.metric_label }} against {{ h.reference }}, more than the allowed
{{ fmt(d.max_drop) }}: <b>shortfall {{ fmt(d.shortfall) }}</b>. It is shown below as the best point, not as a result
that meets the budget (<code>dla tune</code> exits with code 3; a scenario's case <code>tune</code> fails).</p>
{% endif %}
<p id="headline">{% if h.point %}{{ 'Chosen' if h.met else 'Best' }} configuration <code>{{ h.point.id }}</code> ({{ h.point.label }}):
{{ h.metric_label }} <b>{{ fmt(h.value) }}</b> ({{ h.reference }} {{ fmt(h.float_value) }}, drop {{ fmt(h.point.drop) }},
budget: drop ≤ {{ fmt(d.max_drop) }}{% if h.budget is not none %}, i.e. ≥ {{ fmt(h.budget) }}{% endif %}) ·
{{ h.cost_label }} <b>{{ fmt(h.point.cost[h.cost_key] if h.point.cost else none) }}</b>{% if h.relative_cost is not none %}
= <b>{{ '%.3f'|format(h.relative_cost) }}×</b> {{ h.base_name }}{% endif %}{% if h.baseline %} ({{ h.base_name }}: {{ fmt(h.baseline.cost[h.cost_key] if h.baseline.cost else none) }},
{{ h.metric_label }} {{ fmt(h.base_value) }}, drop {{ fmt(h.baseline.drop) }}){% endif %}.
{% if h.point.changes is defined %}<br>Changes from {{ h.base_name }}: {% if h.point.changes %}<b>{{ h.point.changes|join(', ') }}</b>{% else %}none{% endif %}.{% endif %}
{% else %}No configuration was evaluated.{% endif %}</p>
<p id="search">{{ fmt(h.measured) }} configurations measured{% if d.cached %} ({{ fmt(d.evaluations) }} run now, {{ fmt(d.cached) }} from the cache of an earlier run){% endif %}{% if d.infeasible %}, {{ d.infeasible|length }} refused by the hardware{% endif %};
an exhaustive search would need {{ fmt(d.exhaustive) }} · method: {{ d.method or '—' }} ·
{{ '%.1f'|format(d.seconds) if d.seconds is number else '—' }} s {{ h.ran_on }}.</p>
<p class="muted">Model <code>{{ d.model }}</code> · data <code>{{ d.data }}</code> ({{ fmt(d.images) }} images{% if d.calibration_images is number %}, {{ fmt(d.calibration_images) }} calibration images{% endif %},
{% if d.scoring == 'agreement' %}<b>no labels: scored against FLOAT's own detections ("agreement" metrics)</b>{% else %}scored against labels{% endif %}) ·
metric {{ d.metric }}{% if d.reference_note %} (drops against {{ d.reference_note }}){% endif %} · cost {{ d.cost }} · hardware {{ d.hw.rows if d.hw and d.hw.rows is defined else '?' }}×{{ d.hw.cols if d.hw and d.hw.cols is defined else '?' }}
at {{ d.hw.clock_mhz if d.hw and d.hw.clock_mhz is defined else '?' }} MHz ·
FLOAT: {% for k, v in (d.float or {}).items() %}{{ k }} {{ fmt(v) }}{{ ' · ' if not loop.last }}{% endfor %}
{% if h.point and h.point.refinements %} · refinements of the chosen point: {{ h.point.refinements|join(', ') }}{% endif %}</p>

<h2 id="pareto">Accuracy against cost</h2>
{% for name in ('pareto_cost.png', 'pareto_weights.png') %}{% if name in plots %}<img class="plot" alt="{{ name }}" src="{{ plots[name] }}">{% endif %}{% endfor %}
<p class="muted">Each dot is one configuration measured by a bit-exact INT run on the data set (never estimated);
the step line is the Pareto front (no other point is both cheaper and more accurate); the dashed line is the budget.</p>

<h2 id="layers">Per-layer choices of the {{ 'chosen' if h.met else 'best' }} configuration</h2>
{% if rows %}
<table id="layer-table"><tr><th>layer</th><th class="l">kind</th><th class="l">precision</th><th class="l">activations</th><th class="l">weights</th>
<th class="l">granularity</th><th class="l">host</th><th>isolated SQNR (dB)</th><th>cycles</th><th class="l">{{ h.base_name }} precision</th><th>{{ h.base_name }} cycles</th><th>Δ cycles</th></tr>
{% for r in rows %}<tr class="{{ 'chg' if r.changed else '' }}"><td>{{ r.layer }}</td><td class="l">{{ r.kind }}</td><td class="l">{{ r.precision }}</td>
<td class="l">{{ r.activations or '—' }}</td><td class="l">{{ r.weights or '—' }}</td><td class="l">{{ r.granularity or '—' }}</td><td class="l">{{ 'host' if r.host else '' }}</td>
<td>{{ fmt(r.isolated_sqnr_db) }}</td><td>{{ fmt(r.cycles) }}</td><td class="l">{{ r.base_precision or '—' }}</td><td>{{ fmt(r.base_cycles) }}</td><td>{{ fmt(r.delta_cycles) }}</td></tr>{% endfor %}
</table>
<p class="muted">Highlighted: layers whose choice differs from {{ h.base_name }}.</p>
{% else %}<p class="muted">No per-layer data.</p>{% endif %}

<h2 id="sensitivity">Sensitivity ranking</h2>
{% if 'sensitivity.png' in plots %}<img class="plot" alt="sensitivity" src="{{ plots['sensitivity.png'] }}">{% endif %}
{% if d.sensitivity %}
<table id="sensitivity-table"><tr><th>rank</th><th>layer</th><th class="l">kind</th><th class="l">option</th><th>drop</th><th>Δ cost</th><th>isolated SQNR (dB)</th><th class="l">point</th></tr>
{% for r in d.sensitivity %}<tr><td>{{ loop.index }}</td><td>{{ r.layer }}</td><td class="l">{{ r.kind }}</td><td class="l">{{ r.option }}</td><td>{{ fmt(r.drop) }}</td>
<td>{{ fmt(r.delta_cost) }}</td><td>{{ fmt(r.isolated_sqnr_db) }}</td><td class="l"><code>{{ r.point }}</code></td></tr>{% endfor %}
</table>
{% else %}<p class="muted">No sensitivity ranking in tune.json.</p>{% endif %}

<h2 id="points">Every evaluated configuration ({{ d.points|length }})</h2>
<details><summary>table, by {{ h.cost_label }}</summary>
<table id="points-table"><tr><th class="l">id</th><th class="l">phase</th><th class="l">label</th><th>{{ d.metric }}</th><th>drop</th>
<th>{{ h.cost_label }}</th><th>weight bytes</th><th class="l">meets</th><th class="l">Pareto</th><th>seconds</th><th class="l">changes from {{ h.base_name }}</th></tr>
{% for p in points %}<tr class="{{ 'chosen' if h.point and p.id == h.point.id else '' }}"><td class="l"><code>{{ p.id }}</code></td><td class="l">{{ p.phase }}</td><td class="l">{{ p.label }}</td>
<td>{{ fmt(metric(p)) }}</td><td>{{ fmt(p.drop) }}</td><td>{{ fmt(p.cost[h.cost_key] if p.cost else none) }}</td><td>{{ fmt(p.cost.weight_bytes if p.cost else none) }}</td>
<td class="l">{{ fmt(p.meets) }}</td><td class="l">{{ '✓' if p.id in pareto else '' }}</td><td>{{ fmt(p.seconds, 3) }}</td>
<td class="l">{{ p.changes|join(', ') if p.changes is defined and p.changes else '' }}</td></tr>{% endfor %}
</table></details>
<p class="muted">Beside this page: <code>tune.json</code> (everything above), the CSV, <code>best.qnet</code>. dla tune report.</p>
</body>
</html>
"""


def _env() -> jinja2.Environment:
    # autoescape on for every value: names and labels in tune.json come from files and users
    return jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)


def report_html(data: dict[str, Any], plots: dict[str, bytes] | None = None) -> str:
    """The page as text (``plots``: ``figures(data)``'s PNGs, computed here when not given)."""
    check_tune_json(data)
    plots = figures(data) if plots is None else plots
    h = headline(data)
    key = h["cost_key"]
    points = sorted(data["points"], key=lambda p: (cost_of(p, key) is None, cost_of(p, key) or 0.0, str(p["id"])))
    uris = {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in plots.items()}
    return _env().from_string(_TEMPLATE).render(
        d=data, h=h, rows=layer_rows(h["point"], h["baseline"]), plots=uris, points=points,
        pareto={str(i) for i in data.get("pareto") or []}, fmt=_fmt,
        metric=lambda p: metric_of(p, metric_key(data)))


def write_report(data: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` (atomically) from the tune.json mapping ``data``; returns its path.
    A tune.json whose budget was not met is reported too, with the shortfall first."""
    path = Path(out_dir) / REPORT_NAME
    write_bytes_atomic(path, report_html(data).encode())
    return path


__all__ = ["best_point", "check_tune_json", "figures", "headline", "layer_rows", "report_html", "write_report"]
