"""Checks: thresholds over a scenario's results, each one a JUnit test case.

Checks on a quantized mode (sqnr, detections, overflow, saturation) are evaluated once per
variant, on the *worst* input (lowest SQNR/recall, most overflow); the message gives the
value, the threshold and where the worst case was.  ``cycles`` is evaluated once per limit
given (each case's value is in the unit of its threshold), ``rtl`` once per RTL layer.  A case
that cannot be evaluated (e.g. recall with no FLOAT detection) is an *error* (``"error": true``,
JUnit ``<error>``), never a pass.

Semantics of ``sqnr.layer``: ``final`` = the network's outputs (every YOLO/region head of a
detector, the output layer of a classifier; the minimum over them), ``all`` = the minimum over
every layer, an integer = that layer.
"""
from __future__ import annotations

import math
from typing import Any

from dla.scenario.schema import Check, Scenario
from golden.network import Network


def _num(v: Any) -> float:
    return float(v) if not isinstance(v, str) else (math.inf if v == "inf" else -math.inf)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def _case(check: Check, name: str, variant: str | None, passed: bool, value: float | None,
          threshold: str, message: str, error: bool = False, part: str | None = None) -> dict[str, Any]:
    """One check result.  ``error``: the check could not be evaluated (not a threshold failure;
    JUnit ``<error>``).  ``part`` tells apart the cases of one check that are not per variant
    (a cycles limit, an RTL layer)."""
    case = {"name": check.name or name, "kind": check.kind, "variant": variant, "passed": passed and not error,
            "value": None if value is None else (value if math.isfinite(value) else _fmt(value)),
            "threshold": threshold, "message": message}
    if error:
        case["error"] = True
    if part is not None:
        case["part"] = part
    return case


def _final_layers(net: Network) -> list[int]:
    return [h.index for h in net.heads] if net.is_detector else [net.output_index]


def _rows(summary: dict[str, Any], table: str, variant: str, mode: str) -> list[dict[str, Any]]:
    """The rows of ``summary[table]`` ("layers" or "outputs") of one variant in one mode."""
    return [r for r in summary[table] if r["variant"] == variant and r["mode"] == mode]


def _variants(summary: dict[str, Any]) -> list[str]:
    return [v["name"] for v in summary["variants"]]


def _sqnr(c: Check, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    cfg = c.sqnr
    assert cfg is not None
    if isinstance(cfg.layer, int):
        if not 0 <= cfg.layer < len(net.layers):
            raise ValueError(f"layer {cfg.layer} is out of range (0..{len(net.layers) - 1})")
        wanted = {cfg.layer}
    else:
        wanted = set(_final_layers(net)) if cfg.layer == "final" else set(range(len(net.layers)))
    out = []
    for v in _variants(summary):
        rows = [r for r in _rows(summary, "layers", v, cfg.mode) if r["index"] in wanted]
        worst = min(rows, key=lambda r: _num(r["sqnr_db"]))
        val = _num(worst["sqnr_db"])
        ok = val >= cfg.min_db
        name = f"sqnr {cfg.mode} layer {cfg.layer} >= {cfg.min_db:g} dB [{v}]"
        out.append(_case(c, name, v, ok, val, f">= {cfg.min_db:g} dB",
                         f"SQNR {_fmt(val)} dB at layer {worst['index']} ({worst['type']}) on {worst['image']}, "
                         f"threshold {cfg.min_db:g} dB"))
    return out


def _detections(c: Check, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    """Recall / precision / mean |dprob| against FLOAT on every input.  A limit on a ratio whose
    set is empty (recall with 0 FLOAT detections, precision with 0 detections, mean |dprob|
    with no match) cannot be evaluated: the case is an *error* naming the input, never a pass."""
    cfg = c.detections
    assert cfg is not None
    why = {"recall": "0 FLOAT detections", "precision": "0 detections in this mode",
           "mean_abs_dprob": "no detection matched FLOAT"}
    out = []
    for v in _variants(summary):
        rows = _rows(summary, "outputs", v, cfg.mode)
        problems: list[str] = []
        not_evaluable: list[str] = []
        values: dict[str, list[float]] = {"recall": [], "precision": [], "mean_abs_dprob": []}
        for r in rows:
            a = r["agreement"]
            if "top1_match" in a:  # a classifier: recall = the top-1 class agrees with FLOAT
                a = {"recall": float(a["top1_match"]), "precision": float(a["top1_match"]), "mean_abs_dprob": 0.0}
            for key, limit, worse in (("recall", cfg.min_recall, lambda x, t: x < t),
                                      ("precision", cfg.min_precision, lambda x, t: x < t),
                                      ("mean_abs_dprob", cfg.max_mean_dprob, lambda x, t: x > t)):
                if limit is None:
                    continue
                if a.get(key) is None:
                    not_evaluable.append(f"{key} on {r['image']} ({why[key]})")
                    continue
                values[key].append(a[key])
                if worse(a[key], limit):
                    problems.append(f"{key} {a[key]:.3f} on {r['image']} (limit {limit:g})")
        # the reported value: the worst recall, else the worst precision, else the worst mean |dprob|
        key = next((k for k in ("recall", "precision", "mean_abs_dprob") if values[k]), None)
        first = None if key is None else (max if key == "mean_abs_dprob" else min)(values[key])
        limits = ", ".join(f"{k} {v:g}" for k, v in (("min recall", cfg.min_recall), ("min precision", cfg.min_precision),
                                                      ("max mean |dprob|", cfg.max_mean_dprob)) if v is not None)
        name = f"detections {cfg.mode} vs float [{v}]"
        if not_evaluable:
            out.append(_case(c, name, v, False, first, limits,
                             "not evaluable: " + "; ".join(not_evaluable) + (f"; also {'; '.join(problems)}"
                                                                             if problems else ""), error=True))
            continue
        out.append(_case(c, name, v, not problems, first, limits,
                         "; ".join(problems) if problems else
                         f"agreement with FLOAT within {limits} on {len(rows)} input(s)"))
    return out


def _overflow(c: Check, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    cfg = c.overflow
    assert cfg is not None
    out = []
    for v in _variants(summary):
        per_image: dict[str, int] = {}
        for r in _rows(summary, "layers", v, cfg.mode):
            per_image[r["image"]] = per_image.get(r["image"], 0) + r["overflow"]
        image, worst = max(per_image.items(), key=lambda kv: kv[1])
        fewest = min(per_image.values())
        ok = (cfg.upper is None or worst <= cfg.upper) and (cfg.min is None or fewest >= cfg.min)
        bounds = " and ".join(b for b in ((f"<= {cfg.upper}" if cfg.upper is not None else ""),
                                          (f">= {cfg.min}" if cfg.min is not None else "")) if b)
        out.append(_case(c, f"overflow {cfg.mode} {bounds} [{v}]", v, ok, float(worst), bounds,
                         f"{worst} accumulator overflow event(s) on {image} (all inputs: "
                         f"{', '.join(f'{k} {n}' for k, n in per_image.items())}), expected {bounds}"))
    return out


def _saturation(c: Check, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    cfg = c.saturation
    assert cfg is not None
    out = []
    for v in _variants(summary):
        rows = _rows(summary, "layers", v, "int")
        worst = max(rows, key=lambda r: r["saturated_pct"])
        ok = worst["saturated_pct"] <= cfg.max_pct
        out.append(_case(c, f"saturation int <= {cfg.max_pct:g}% [{v}]", v, ok, worst["saturated_pct"],
                         f"<= {cfg.max_pct:g}%", f"{worst['saturated_pct']:.3f}% of outputs clipped at layer "
                         f"{worst['index']} ({worst['type']}) on {worst['image']}"))
    return out


def _cycles(c: Check, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    """One case per limit given, each with its own value and unit (total cycles against
    ``max_total``, fps against ``min_fps``, utilization against ``min_util_pct``)."""
    cfg = c.cycles
    assert cfg is not None
    # a precision sweep is costed per variant (its own widths); otherwise once
    per_variant = summary.get("cycles_by_variant") or {None: summary["cycles"]}
    out = []
    for variant, cy in per_variant.items():
        for part, label, value, limit, is_max, unit in (
                ("total", "total cycles", cy["total_cycles"], cfg.max_total, True, " cycles"),
                ("fps", "fps", cy["fps"], cfg.min_fps, False, " fps"),
                ("util", "utilization", cy["util_pct"], cfg.min_util_pct, False, "%")):
            if limit is None:
                continue
            ok = not ((value > limit) if is_max else (value < limit))
            bound = f"{'<=' if is_max else '>='} {limit:g}{unit}"
            msg = (f"{label} {_fmt(value)}{unit}, limit {bound}" if ok else
                   f"{label} {_fmt(value)}{unit} is {'above the maximum' if is_max else 'below the minimum'} "
                   f"{limit:g}{unit}")
            out.append(_case(c, f"cycles {label} {bound}", variant, ok, float(value), bound,
                             f"{msg} ({cy['total_cycles']:,} cycles, {cy['fps']:.4g} fps at "
                             f"{summary['hw']['clock_mhz']:g} MHz)", part=part))
    return out


def _rtl(c: Check, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    out = []
    for r in summary["rtl"]:
        ok = r["ok"]
        msg = (f"layer {r['layer']}: {r['tiles_run']} tile(s), outputs and cycles equal (RTL {r['rtl_cycles']} = "
               f"model {r['model_cycles']} cycles)" if ok else
               f"layer {r['layer']}: {r['mismatches']} output mismatch(es) (first: {r['first_mismatches']}), "
               f"{r['cycle_mismatches']} tile(s) with different cycles (RTL {r['rtl_cycles']} vs model "
               f"{r['model_cycles']})")
        out.append(_case(c, f"rtl layer {r['layer']} equals INT engine and cycle model", None, ok,
                         float(r["mismatches"]), "0 mismatches", msg, part=f"layer {r['layer']}"))
    return out


EVALUATORS = {"sqnr": _sqnr, "detections": _detections, "overflow": _overflow, "saturation": _saturation,
              "cycles": _cycles, "rtl": _rtl}


def evaluate_checks(s: Scenario, summary: dict[str, Any], net: Network) -> list[dict[str, Any]]:
    """One result per (check, variant); a check that cannot be evaluated is a failed case saying why."""
    out: list[dict[str, Any]] = []
    for i, c in enumerate(s.checks):
        if c.kind in ("sqnr", "detections", "overflow", "saturation") and not summary["variants"]:
            out.append(_case(c, f"{c.kind} (check {i})", None, False, None, "-",
                             "no quantized variant ran (modes has only float)"))
            continue
        try:
            cases = EVALUATORS[c.kind](c, summary, net)
            if c.name and len(cases) > 1:  # one case per variant (cycles: per limit, rtl: per layer)
                for case in cases:
                    case["name"] = f"{c.name} [{case['variant'] or case['part']}]"
            out += cases
        except ValueError as exc:
            out.append(_case(c, f"{c.kind} (check {i})", None, False, None, "-", str(exc)))
    return out
