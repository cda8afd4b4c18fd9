"""A scenario with a ``tune:`` section, run for real on shapes-yolo and its 6 shipped labelled
images: outputs in tune/, the JUnit case "tune", the report section, and `dla regress`.

The space is one choice (layer 0: int8 or int4 weights), so each run measures two points in a
few seconds.  On these images all-int8 loses 0.105 of mAP@0.5:0.95 against FLOAT (docs/accuracy.md
gives the same order on the held-out set), so a budget of 0 cannot be met and one of 0.5 is."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dla.scenario import run_to_dir
from tests.cli_helpers import run

SPACE = {"defaults": {"weight_bits": [8], "activation_bits": [8]}, "layers": [{"layers": [0], "weight_bits": [8, 4]}]}


def _scenario(folder: Path, max_drop: float, name: str = "tuned", **tune: object) -> Path:
    data = {"name": name, "model": {"trained": "shapes-yolo"}, "images": ["shapes/00200.png"], "modes": ["float"],
            "cycles": False, "tune": {"data": "shapes", "max_drop": {"map50_95": max_drop}, "space": SPACE, **tune}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _tune_case(junit: Path) -> ET.Element:
    cases = [c for c in ET.parse(junit).iter("testcase") if c.get("name") == "tune"]
    assert len(cases) == 1
    return cases[0]


def test_a_met_budget_passes_and_writes_tune_outputs(tmp_path: Path) -> None:
    res = run("run", _scenario(tmp_path, 0.5), "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "tune").iterdir()) == ["best.qnet", "report.html", "tune.csv", "tune.json"]
    tune = json.loads((out / "tune" / "tune.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert tune["met"] and summary["tune"]["met"] and summary["tune"]["chosen"] == tune["chosen"]
    assert summary["tune"]["point"]["id"] == tune["chosen"] and len(tune["points"]) == 2
    case = _tune_case(out / "junit.xml")
    assert case.find("failure") is None and case.find("error") is None
    page = (out / "report.html").read_text()
    start = page.index('<h2 id="tune"')
    section = page[start:page.index("<h2", start + 1)]
    assert "BUDGET MET" in section and tune["chosen"] in section and section.count('<img class="plot"') == 2
    assert 'href="tune/report.html"' in section
    assert "PASS  tune:" in res.output


def test_a_budget_no_point_meets_fails_the_case_with_the_shortfall(tmp_path: Path) -> None:
    res = run("run", _scenario(tmp_path, 0.0), "-o", tmp_path / "out", "-q")
    assert res.exit_code == 1, res.output  # a failed check, not a user mistake
    out = tmp_path / "out"
    tune = json.loads((out / "tune" / "tune.json").read_text())
    assert not tune["met"] and tune["shortfall"] > 0.05
    failure = _tune_case(out / "junit.xml").find("failure")
    assert failure is not None and f"shortfall {tune['shortfall']:.4g}" in failure.get("message", "")
    page = (out / "report.html").read_text()
    assert 'id="tune-shortfall"' in page and "BUDGET NOT MET" in page
    assert (out / "tune" / "best.qnet").is_dir()  # the best point found, as dla tune writes it


def test_summary_is_the_same_in_two_runs(tmp_path: Path) -> None:
    p = _scenario(tmp_path, 0.5)
    a = run_to_dir(p, tmp_path / "a")
    b = run_to_dir(p, tmp_path / "b")
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
    assert a.seconds["tune"] > 0 and "seconds" not in json.dumps(a.summary["tune"]) and b.tune is not None


def test_a_metric_the_model_cannot_produce_is_refused_at_its_line(tmp_path: Path) -> None:
    p = _scenario(tmp_path, 0.5)
    data = yaml.safe_load(p.read_text())
    data["tune"]["max_drop"] = {"top1": 0.01}  # a detector has no top-1
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.strip() == "top1: 0.01")
    res = run("run", p, "-o", tmp_path / "out", "-q")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{p}:{line}: tune.max_drop.top1: shapes-yolo is a detector: use map50, map50_95 or sqnr" \
        in res.output
    assert not (tmp_path / "out").exists()


def test_an_inline_space_mistake_names_its_line(tmp_path: Path) -> None:
    p = _scenario(tmp_path, 0.5)
    data = yaml.safe_load(p.read_text())
    data["tune"]["space"] = {"defaults": {"weight_bits": [8, 3]}}
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    res = run("run", p, "-o", tmp_path / "out", "-q")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.strip() == "space:")
    assert f"{p}:{line}: tune.space: " in res.output and "3" in res.output
    # the location is said once, not "x.yaml:5: tune.space: x.yaml:5: tune.space: defaults: ..."
    assert f"{p}:{line}: tune.space: defaults: 'weight_bits' option 3 is not valid" in res.output
    assert res.output.count("tune.space") == 1, res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_regress_reports_the_tune_case(tmp_path: Path) -> None:
    _scenario(tmp_path, 0.5, name="met")
    _scenario(tmp_path, 0.0, name="missed")
    res = run("regress", tmp_path / "met.yaml", tmp_path / "missed.yaml", "-j", "2", "-o", tmp_path / "reg", "-q")
    assert res.exit_code == 1, res.output
    reg = tmp_path / "reg"
    suites = {s.get("name"): s for s in ET.parse(reg / "junit.xml").iter("testsuite")}
    assert set(suites) == {"met", "missed"}
    assert suites["met"].get("failures") == "0" and suites["missed"].get("failures") == "1"
    assert "shortfall" in (reg / "index.html").read_text()
    assert (reg / "missed" / "tune" / "tune.json").is_file()
