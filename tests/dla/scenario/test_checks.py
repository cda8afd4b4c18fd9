"""Scenario checks: none passes without evidence (no detections, NaN thresholds), and a check
row's value and threshold are in the same units (cycle limits say which way)."""
from __future__ import annotations

import json
from pathlib import Path

from junitparser import Error, Failure, JUnitXml

from dla.compare import match_detections
from golden.detect import Detection
from tests.cli_helpers import fails, run
from tests.dla.scenario.helpers import TINY_CFG

A = Detection(1, "a", 0.9, (0, 0, 10, 10))


def test_empty_detection_sets_are_not_evaluable() -> None:
    both = match_detections([], [])
    assert (both.recall, both.precision, both.mean_abs_dprob, both.evaluable) == (None, None, None, False)
    assert "n/a (0 FLOAT detections)" in both.text() and "n/a (0 detections)" in both.text()
    extra = match_detections([], [A])  # INT invents a detection: precision 0, recall undefined
    assert (extra.recall, extra.precision) == (None, 0.0)
    lost = match_detections([A], [])  # INT loses it: recall 0, precision undefined
    assert (lost.recall, lost.precision, lost.mean_abs_dprob) == (0.0, None, None)
    same = match_detections([A], [A])
    assert (same.recall, same.precision, same.mean_abs_dprob, same.evaluable) == (1.0, 1.0, 0.0, True)


def test_detections_check_on_no_float_detections_is_an_error(tmp_path: Path, scenario_file) -> None:
    # thresh 0.999: no detection in any mode on the random-weight detector
    p = scenario_file(thresh=0.999, checks=[{"detections": {"mode": "int", "min_recall": 0.9, "min_precision": 0.9}},
                                            {"sqnr": {"min_db": 0}}])
    out = tmp_path / "out"
    res = run("run", p, "-o", out)
    assert res.exit_code == 1, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert all(o["detections"] == [] for o in summary["outputs"])
    det = [c for c in summary["checks"] if c["kind"] == "detections"]
    assert len(det) == 1 and det[0]["error"] is True and det[0]["passed"] is False
    assert "not evaluable" in det[0]["message"] and "0 FLOAT detections" in det[0]["message"]
    assert summary["passed"] is False
    assert "ERROR  detections int vs float" in res.output
    assert "recall n/a (0 FLOAT detections) precision n/a (0 detections)" in res.output
    assert "recall 1.00" not in res.output
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    cases = [c for suite in xml for c in suite]
    errors = [c for c in cases if any(isinstance(r, Error) for r in c.result)]
    assert [c.name for c in errors] == [det[0]["name"]]
    assert not any(isinstance(r, Failure) for c in cases for r in c.result)


def test_cycles_check_rows_compare_like_with_like(tmp_path: Path, scenario_file) -> None:
    p = scenario_file(checks=[{"cycles": {"min_fps": 1e12, "max_total": 1e12, "min_util_pct": 0}},
                              {"name": "speed", "cycles": {"min_fps": 1, "max_total": 1}}])
    out = tmp_path / "out"
    res = run("run", p, "-o", out, "-q")
    assert res.exit_code == 1
    s = json.loads((out / "summary.json").read_text())
    cy = s["cycles"]
    cases = {c["name"]: c for c in s["checks"]}
    fps = cases["cycles fps >= 1e+12 fps"]
    assert fps["value"] == cy["fps"] and fps["threshold"] == ">= 1e+12 fps" and not fps["passed"]
    total = cases["cycles total cycles <= 1e+12 cycles"]
    assert total["value"] == cy["total_cycles"] and total["passed"]
    util = cases["cycles utilization >= 0%"]
    assert util["value"] == cy["util_pct"] and util["passed"]
    # a named check with several limits: one case per limit, told apart by the limit
    assert cases["speed [fps]"]["passed"] and not cases["speed [total]"]["passed"]


def test_nan_thresholds_are_refused_and_cycle_limits_say_which_way(tmp_path: Path, scenario_file) -> None:
    p = tmp_path / "nan.yaml"
    p.write_text(f"model: {{cfg: {TINY_CFG}}}\nchecks:\n  - sqnr: {{min_db: .nan}}\n")
    fails("run", p, needle="nan.yaml:3: checks.0.sqnr.min_db:")
    res = run("run", scenario_file(checks=[{"cycles": {"min_fps": 1e12, "max_total": 1}}]), "-o", tmp_path / "o", "-q")
    assert res.exit_code == 1
    assert "fps" in res.output and "below the minimum 1e+12" in res.output and "above the maximum 1" in res.output
