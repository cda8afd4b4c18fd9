"""The scenario section ``tune:``: validation (every mistake at its line and key, before anything
runs), the JUnit case and the summary extract (from a hand-built tune.json)."""
from __future__ import annotations

from pathlib import Path

import pytest

from dla.scenario import load_scenario
from dla.scenario.junit import junit_xml, scenario_suite
from dla.scenario.tune_step import tune_case, tune_summary
from tests.dla.scenario.helpers import load_error
from tests.dla.tune.tune_data import not_met_json, tune_json

HEAD = "model: {trained: shapes-yolo}\nimages: [shapes/00200.png]\n"  # lines 1-2; tune: starts at line 3


def test_a_tune_section_loads_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    p = tmp_path / "s.yaml"
    p.write_text(HEAD + "tune:\n  data: val\n  max_drop: {map50_95: 0.01}\n")
    t = load_scenario(p).scenario.tune
    assert t is not None and (t.metric, t.drop, t.cost, t.space, t.limit, t.calib) == \
        ("map50_95", 0.01, "cycles", None, None, None)
    p.write_text(HEAD + "tune:\n  data: shapes\n  calib: shapes\n  max_drop: {sqnr: 3}\n  cost: weights\n"
                 "  limit: 5\n  space: {defaults: {weight_bits: [8, 4]}}\n")
    t = load_scenario(p).scenario.tune
    assert t is not None and (t.metric, t.cost, t.limit) == ("sqnr", "weights", 5)
    assert t.space == {"defaults": {"weight_bits": [8, 4]}}


@pytest.mark.parametrize("body, line, needle", [
    ("tune:\n  data: shapes\n  max_drop: {map50_95: 0.01}\n  cots: cycles\n", 6,
     "tune.cots: unknown key 'cots' (did you mean 'cost'?)"),
    ("tune:\n  data: shapes\n  max_drop: {map5: 0.01}\n", 5, "unknown value 'map5' (valid: map50, map50_95, top1 or sqnr)"),
    ("tune:\n  data: shapes\n  max_drop: {map50: 0.01, top1: 0.01}\n", 5, "tune.max_drop: give exactly one metric"),
    ("tune:\n  data: shapes\n  max_drop: {}\n", 5, "tune.max_drop: give exactly one metric"),
    ("tune:\n  data: shapes\n  max_drop: {map50: -0.1}\n", 5, "a drop is at least 0"),
    ("tune:\n  data: shapes\n  max_drop: {map50: .nan}\n", 5, "tune.max_drop.map50"),
    ("tune:\n  data: shapes\n  max_drop: {map50: 0.01}\n  cost: energy\n", 6,
     "unknown value 'energy' (valid: cycles, latency, dram or weights)"),
    ("tune:\n  data: shapes\n  max_drop: {map50: 0.01}\n  limit: 0\n", 6, "tune.limit"),
    ("tune:\n  data: shapes\n", 3, "tune.max_drop: required key is missing"),
    ("tune:\n  max_drop: {map50: 0.01}\n", 3, "tune.data: required key is missing"),
    ("tune:\n  data: nowhere\n  max_drop: {map50: 0.01}\n", 4, "tune.data: tune data folder not found: nowhere"),
    ("tune:\n  data: shapes\n  calib: nocalib\n  max_drop: {map50: 0.01}\n", 5,
     "tune.calib: calibration images folder not found: nocalib"),
    ("tune:\n  data: shapes\n  space: none.yaml\n  max_drop: {map50: 0.01}\n", 5,
     "tune.space: search space file not found: none.yaml"),
    ("tune: yes\n", 3, "tune: Input should be a valid dictionary"),
])
def test_tune_mistakes_name_line_and_key(tmp_path: Path, body: str, line: int, needle: str) -> None:
    msg = load_error(tmp_path, HEAD + body)
    assert needle in msg, msg
    assert msg.startswith(f"{tmp_path / 's.yaml'}:{line}:"), msg


def test_the_tune_case_passes_when_the_budget_is_met() -> None:
    case = tune_case(tune_json())
    assert case["passed"] and case["name"] == "tune" and case["value"] == pytest.approx(0.0055)
    assert case["message"].startswith("2 change(s) from all-int8: drop 0.0055, 0.800× the cycles of all-int8 (6 ")
    assert case["threshold"] == "drop of mAP@0.5:0.95 ≤ 0.01"


def test_the_tune_case_names_a_baseline_that_is_not_all_int8_as_the_baseline() -> None:
    # space weight_bits: [4, 8]: the baseline has int4 weights; "0.8x the cycles of all-int8" was false
    data = tune_json()
    for row in next(p for p in data["points"] if p["id"] == data["baseline"])["layers"]:
        row["precision"] = row["precision"].replace("w8", "w4")
    case = tune_case(data)
    assert case["message"].startswith("2 change(s) from the baseline: drop 0.0055, 0.800× the cycles of the "
                                      "baseline (6 "), case["message"]


def test_the_tune_case_fails_with_the_shortfall() -> None:
    case = tune_case(not_met_json())
    assert not case["passed"] and not case.get("error")
    assert case["message"].startswith("budget NOT met: shortfall 0.0054 — the best configuration (2 change(s) from "
                                      "all-int8) drops mAP@0.5:0.95 by 0.0055, more than 0.0001")
    xml = junit_xml([scenario_suite({"scenario": "s", "checks": [case]})]).decode()
    assert 'failures="1"' in xml and '<testcase classname="dla.scenario.s" name="tune"' in xml
    assert "shortfall 0.0054" in xml and "<error" not in xml


def test_agreement_is_named_in_the_case() -> None:
    assert "agreement mAP@0.5:0.95" in tune_case(tune_json(scoring="agreement"))["threshold"]


def test_the_summary_extract_holds_no_wall_time() -> None:
    s = tune_summary(tune_json())
    assert s["point"]["id"] == "c0ffee000004" and s["met"] and s["relative_cost"] == 0.8
    assert [p["id"] for p in s["pareto"]] == ["5ea400000005", "c0ffee000004"]
    text = repr(s)
    assert "seconds" not in text and "local:2" not in text and "cached" not in text
    assert tune_summary(not_met_json())["point"]["id"] == "c0ffee000004"  # the best point when none meets


def test_the_section_offers_what_dla_tune_accepts() -> None:
    """The scenario's metric and cost choices are dla tune's own (no value one accepts and the other refuses)."""
    from dla.scenario.schema import TuneCost, TuneMetric
    from dla.tune.evaluate import COSTS
    from dla.tune.task import CHOICES

    assert set(TuneMetric.__args__) == set(CHOICES)  # type: ignore[attr-defined]
    assert set(TuneCost.__args__) == set(COSTS)  # type: ignore[attr-defined]
