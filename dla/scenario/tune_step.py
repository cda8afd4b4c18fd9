"""The ``tune:`` section of a scenario: ``dla tune`` on the scenario's model and hardware.

``run_tune`` calls ``dla.tune.tune`` with the section's data, calibration folder, budget, cost
and space, writing tune's own outputs (tune.json, the CSV, best.qnet, report.html) into a
folder that ``dla.scenario.outputs`` copies to the report folder's ``tune/``.  It runs with one
worker: a scenario is itself one task of ``dla regress`` (a 1-thread Dask worker, which cannot
start a cluster of its own), and ``dla run`` keeps to the same work so that both give the
same summary.

What it adds to the scenario's results:

* ``summary["tune"]`` (``tune_summary``): the deterministic part of tune.json — the budget, the
  verdict, the chosen (or best) point with its metrics, costs and per-layer choices, the Pareto
  front — without wall times, worker names or cache counts, so that ``summary.json`` keeps the
  same bytes in any process;
* the check case ``tune`` (``tune_case``) in ``summary["checks"]``: passed when the budget is
  met, a failure whose message gives the shortfall when it is not (JUnit ``<failure>``; a
  scenario whose tune could not run at all raises ``ScenarioError`` as any other mistake).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dla.scenario.load import LoadedScenario, tune_paths
from golden.errors import UserInputError

#: tune.json keys copied into summary["tune"] as they are (results, not circumstances).
SUMMARY_KEYS = ("model", "images", "scoring", "metric", "max_drop", "cost", "float", "met", "shortfall",
                "relative_cost", "evaluations", "exhaustive", "method", "baseline", "chosen")
POINT_KEYS = ("id", "phase", "label", "changes", "refinements", "metrics", "drop", "cost", "meets", "layers")


def _space(ls: LoadedScenario, net: Any, hw: Any, path: Path | None) -> Any:
    """The search space the section names (a file, an inline mapping, or ``None`` = defaults)."""
    t = ls.scenario.tune
    assert t is not None
    if t.space is None:
        return None
    from dla.tune.space import build_space, load_space

    where = f"{ls.path}:{ls.line('tune', 'space')}: tune.space"
    try:
        if path is not None:
            return load_space(path, net, hw.supported_pairs())
        return build_space(t.space, net, hw.supported_pairs(), where)
    except UserInputError as exc:
        # an inline space's message already starts with ``where`` (its source); ls.error adds
        # the same location, so drop it here to say it once
        msg = str(exc) if path is not None else str(exc).removeprefix(f"{where}: ")
        raise ls.error(msg, "tune", "space") from None


def check_tune(ls: LoadedScenario, built: Any) -> Any:
    """Before anything runs: the budget's metric is one the network produces, and the space is
    valid for it; returns the space (``None`` = tune's defaults) for ``run_tune``."""
    t = ls.scenario.tune
    assert t is not None
    if t.metric != "sqnr" and (t.metric == "top1") == built.net.is_detector:
        what = "a detector: use map50, map50_95 or sqnr" if built.net.is_detector else \
            "a classifier: use top1 or sqnr"
        raise ls.error(f"{built.net.name} is {what}", "tune", "max_drop", t.metric)
    return _space(ls, built.net, built.hw, tune_paths(ls)["space"])


def run_tune(ls: LoadedScenario, built: Any, space: Any, out: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the section's search into ``out`` (created) on the scenario's network and hardware,
    in ``space`` (``check_tune``'s); returns the tune.json mapping, also when the budget is not
    met (tune.json then holds the best point and its shortfall)."""
    from dla.resolve import ResolvedModel
    from dla.tune import TuneRequest, tune

    t = ls.scenario.tune
    assert t is not None
    paths = tune_paths(ls)
    m = ls.scenario.model
    label = m.trained or m.qnet or m.cfg or built.net.name
    model = ResolvedModel(built.net, None, built.hw, "given", built.model_source, label, built.names)
    req = TuneRequest(model=model, data=paths["data"], metric=t.metric, max_drop=t.drop, cost=t.cost,
                      calib=paths["calib"], space=space, workers=1, out_dir=out, limit=t.limit, quiet=True)
    progress(f"tune: {t.metric} within {t.drop:g} of FLOAT at the lowest {t.cost}")
    try:
        result = tune(req)
        result.write(out)
    except UserInputError as exc:
        raise ls.error(str(exc), "tune") from None
    return result.to_json()


def _point(data: dict[str, Any], pid: Any) -> dict[str, Any] | None:
    p = next((p for p in data.get("points") or [] if p.get("id") == pid), None)
    return None if p is None else {k: p.get(k) for k in POINT_KEYS}


def tune_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The deterministic part of a tune.json (see the module docstring)."""
    from dla.tune.report import best_point

    best = best_point(data)
    out = {k: data.get(k) for k in SUMMARY_KEYS}
    out["point"] = _point(data, best.get("id")) if best else None
    out["pareto"] = [_point(data, i) for i in data.get("pareto") or []]
    for p in out["pareto"]:
        if p is not None:
            p.pop("layers", None)
    return out


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _g(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _what(point: dict[str, Any] | None, base: str = "all-int8") -> str:
    """A point in a few words: how many layers it changes from the baseline ``base`` (all-int8
    with the default space; tune.json ``changes``), else its search label."""
    if point is None:
        return "?"
    changes = point.get("changes")
    if isinstance(changes, list):
        return f"{base} (no change)" if not changes else f"{len(changes)} change(s) from {base}"
    return str(point.get("label"))


def tune_case(data: dict[str, Any]) -> dict[str, Any]:
    """The check case ``tune`` (the format of ``dla.scenario.checks``)."""
    from dla.tune.plots import baseline_name, metric_label
    from dla.tune.report import best_point

    best = best_point(data)
    base = baseline_name(next((p for p in data.get("points") or [] if p.get("id") == data.get("baseline")), None))
    drop = best.get("drop") if best else None
    label = metric_label(data)
    threshold = f"drop of {label} ≤ {data.get('max_drop')}"
    if data.get("met"):
        rel = data.get("relative_cost")
        rel_text = f", {rel:.3f}× the {data.get('cost')} of {base}" if isinstance(rel, (int, float)) else ""
        message = f"{_what(best, base)}: drop {_g(drop)}{rel_text} " \
                  f"({_int(data.get('evaluations')) + _int(data.get('cached'))} configurations measured)"
    elif best is None:
        message = "no configuration was evaluated"
    else:
        message = f"budget NOT met: shortfall {_g(data.get('shortfall'))} — the best configuration " \
                  f"({_what(best, base)}) drops {label} by {_g(drop)}, more than {data.get('max_drop')}"
    return {"name": "tune", "kind": "tune", "variant": None, "passed": bool(data.get("met")),
            "value": drop, "threshold": threshold, "message": message}
