"""`dla demo` on another model: the checks fit the model chosen, every check
left out is named, and real weights can be given."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dla.scenario.demo import demo_plan
from dla.catalog import shipped_model
from tests.cli_helpers import fails, ok
from tests.paths import shared_path


def _checks(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["checks"]


def test_demo_on_yolov3_tiny_with_seeded_weights_passes_with_checks_that_fit(tmp_path: Path) -> None:
    out = tmp_path / "d"
    res = ok("demo", "--model", "yolov3-tiny", "--image", "dog.jpg", "-o", out, "-q")  # the README's command
    checks = _checks(out)
    assert [c["kind"] for c in checks] == ["sqnr", "sqnr", "overflow"] and all(c["passed"] for c in checks)
    # the left-out checks are said, on the terminal and in the report
    assert "no fps check" in res.output and "no detections check" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert "no fps check" in summary["description"] and summary["cycles"]["fps"] > 0
    assert summary["cross"][0]["layer"] == 8 and summary["model"]["cfg"].endswith("yolov3-tiny.cfg")


def test_demo_plan_keeps_every_check_for_the_shipped_model_and_its_cfg() -> None:
    assert demo_plan().notes == [] and [next(iter(c)) for c in demo_plan().data["checks"]] == \
        ["sqnr", "sqnr", "detections", "overflow", "cycles"]
    plan = demo_plan(weights=shipped_model("shapes-yolo").weights)  # --weights alone: the demo's own cfg
    assert plan.notes == [] and len(plan.data["checks"]) == 5 and plan.data["quant"]["calib"] == {"images": "shapes"}


def test_demo_with_weights_for_its_own_cfg(tmp_path: Path) -> None:
    w = tmp_path / "mine.weights"
    shutil.copyfile(shipped_model("shapes-yolo").weights, w)
    out = tmp_path / "d"
    ok("demo", "--weights", w, "-o", out, "-q")
    checks = _checks(out)
    assert {c["kind"] for c in checks} == {"sqnr", "detections", "overflow", "cycles"}
    assert all(c["passed"] for c in checks)


@pytest.mark.shared
def test_demo_with_real_yolov3_tiny_weights(tmp_path: Path) -> None:
    weights = shared_path("models", "yolov3-tiny.weights")
    image = shared_path("images", "dog.jpg")
    out = tmp_path / "d"
    res = ok("demo", "--model", "yolov3-tiny", "--weights", weights, "--image", image, "-o", out, "-q")
    checks = _checks(out)
    assert [c["kind"] for c in checks] == ["sqnr", "sqnr", "detections", "overflow"]
    assert all(c["passed"] for c in checks), res.output
    dets = {d["class"] for o in json.loads((out / "summary.json").read_text())["outputs"] if o["mode"] == "float"
            for d in o["detections"]}
    assert {"dog", "bicycle"} <= dets  # real weights: the photo's objects


def test_demo_option_mistakes(tmp_path: Path) -> None:
    fails("demo", "--seed", "3", "-o", tmp_path / "x", needle="--seed goes with --model")
    fails("demo", "--model", "yolov3-tiny", "--seed", "1", "--weights", __file__, "-o", tmp_path / "x",
          needle="does not go with --weights")
    fails("demo", "--image", "nope.jpg", "-o", tmp_path / "x", needle="--image nope.jpg: file not found")
    fails("demo", "--model", "yolov3-tiny", "--weights", tmp_path / "no.weights", "-o", tmp_path / "x",
          needle="no.weights: file not found")
    fails("demo", "--weights", __file__, "-o", tmp_path / "x", needle="shapes-yolo.cfg needs")
    assert not (tmp_path / "x").exists()
