"""Running one scenario: the reports, the checks as JUnit cases, exit codes, nothing half-written."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from dla.scenario import run_to_dir
from tests.cli_helpers import fails, ok, run
from tests.dla.scenario.helpers import BASE, TINY_CFG


def test_reports_hold_every_variant_mode_input_and_layer(tmp_path: Path, scenario_file) -> None:
    p = scenario_file(quant={"activations": ["mse", "max"], "granularity": ["per_tensor", "per_channel"],
                             "calib": {"synthetic": 2}},
                      checks=[{"sqnr": {"min_db": 5}}, {"overflow": {}}, {"cycles": {"min_fps": 1}}])
    out = tmp_path / "out"
    res = ok("run", p, "-o", out, "-q")
    assert "checks passed" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert [v["name"] for v in summary["variants"]] == ["mse/per_tensor", "mse/per_channel", "max/per_tensor",
                                                        "max/per_channel"]
    n_layers = summary["model"]["layers"]
    rows = list(csv.DictReader((out / "layers.csv").open()))
    assert len(rows) == len(summary["layers"]) == 4 * 2 * 2 * n_layers  # variants x inputs x (hybrid, int) x layers
    assert {r["mode"] for r in rows} == {"hybrid", "int"} and rows[0]["cycles_total_cycles"]
    assert summary["cycles"]["total_cycles"] > 0
    # FLOAT once per input, HYBRID/INT per variant per input
    assert len(summary["outputs"]) == 2 * (1 + 4 * 2)
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    assert xml.tests == len(summary["checks"]) == 4 + 4 + 1 and xml.failures == 0 and xml.errors == 0


def test_int_results_match_the_engine_run_directly(tmp_path: Path, scenario_file) -> None:
    """The scenario's INT numbers are the library's: same calibration, same SQNR."""
    import numpy as np

    from dla.calibration import calibrate
    from dla.config import HardwareConfig
    from dla.engine import Engine
    from dla.metrics import error_metrics
    from golden.genweights import random_weights, synthetic_image
    from golden.network import load_network
    from quant.spec import QuantSpec

    r = run_to_dir(scenario_file(modes=["float", "int"]), tmp_path / "o")
    net = load_network(TINY_CFG, None)
    random_weights(net, 1)
    hw = HardwareConfig()
    engine = Engine(net, calibrate(net, 2, "per_channel", hw, spec=QuantSpec("mse", granularity="per_channel")), hw)
    x = synthetic_image(net.input_shape, np.random.default_rng(0))
    ref, got = engine.run(x, "float"), engine.run(x, "int")
    want = [error_metrics(ref.records[i].real, got.records[i].real).sqnr_db for i in range(len(net.layers))]
    have = [row["sqnr_db"] for row in r.summary["layers"] if row["image"] == "synthetic-0"]
    assert have == [w if np.isfinite(w) else "inf" for w in want]


def test_a_failing_check_is_exactly_one_junit_failure_with_its_numbers(tmp_path: Path, scenario_file) -> None:
    p = scenario_file(modes=["float", "int"], checks=[{"sqnr": {"min_db": 5}},
                                                      {"name": "impossible", "sqnr": {"layer": "all", "min_db": 200}},
                                                      {"overflow": {"max": 0}}])
    out = tmp_path / "out"
    res = run("run", p, "-o", out, "-q")
    assert res.exit_code == 1, res.output
    assert "FAIL  impossible: SQNR" in res.output
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    cases = [c for suite in xml for c in suite]
    failed = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert len(cases) == 3 and len(failed) == 1 and not any(isinstance(r, Error) for c in cases for r in c.result)
    failure = failed[0].result[0]
    assert failed[0].name == "impossible"
    assert "threshold 200 dB" in failure.message and "dB at layer" in failure.message
    value = json.loads((out / "summary.json").read_text())["checks"][1]["value"]
    assert f"value {value}" in failure.text


def test_overflow_study_counts_events(tmp_path: Path, scenario_file) -> None:
    p = scenario_file(modes=["float", "int"], hw={"acc_bits": 12},
                      checks=[{"overflow": {"min": 1}}, {"name": "none allowed", "overflow": {}}])
    res = run("run", p, "-o", tmp_path / "o", "-q")
    assert res.exit_code == 1
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    total = sum(r["overflow"] for r in s["layers"] if r["image"] == "synthetic-0")
    assert total > 0
    assert s["checks"][0]["passed"] and not s["checks"][1]["passed"]


def test_step_and_cross_sections_run_in_the_scenario(tmp_path: Path, scenario_file) -> None:
    p = scenario_file(step=[{"stop": 2, "print": ["output", "weights"]},
                            {"edit": {"scale_channel": [0, 0.5]}, "rerun": True}, {"undo": True}, {"rerun": True}],
                      cross=[{"layer": 4}])
    r = run_to_dir(p, tmp_path / "o")
    actions = [e["action"] for e in r.summary["step"]]
    assert actions == ["stop", "stats", "stats", "edit", "rerun", "undo", "rerun"]
    reruns = [e for e in r.summary["step"] if e["action"] == "rerun"]
    assert reruns[0]["changed"] > 0 and reruns[1]["changed"] == reruns[0]["changed"]  # undo moves them all back
    assert r.summary["cross"][0]["layer"] == 4 and r.summary["cross"][0]["other"] == "float"


def test_a_failing_step_names_its_scenario_line(tmp_path: Path, scenario_file) -> None:
    p = scenario_file(step=[{"stop": 2}, {"stop": 99}])
    out = tmp_path / "o"
    fails("run", p, "-o", out, "-q", needle="layer 99 is out of range")
    res = run("run", p, "-o", out, "-q")
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if "stop: 99" in t)
    assert f"tiny.yaml:{line}:" in res.output
    assert not out.exists()  # nothing half-written


def test_classifier_scenario(tmp_path: Path) -> None:
    cfg = tmp_path / "cls.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\n"
                   "stride=1\npad=1\nactivation=leaky\n\n[maxpool]\nsize=2\nstride=2\n\n[convolutional]\nfilters=10\n"
                   "size=1\nstride=1\npad=1\nactivation=linear\n\n[avgpool]\n\n[softmax]\ngroups=1\n")
    p = tmp_path / "c.yaml"
    p.write_text(f"model: {{cfg: {cfg}}}\nquant: {{calib: {{synthetic: 2}}}}\nimages: {{synthetic: 2}}\n"
                 "checks:\n  - detections: {min_recall: 0.0}\n")
    r = run_to_dir(p, tmp_path / "o")
    top = [o for o in r.summary["outputs"] if o["mode"] == "int"]
    assert len(top) == 2 and all(len(o["top5"]) == 5 and "top1_match" in o["agreement"] for o in top)
    assert (tmp_path / "o" / "report.html").is_file()


def test_rerun_replaces_its_own_report_but_never_a_foreign_folder(tmp_path: Path, scenario_file) -> None:
    p = scenario_file()
    out = tmp_path / "o"
    ok("run", p, "-o", out, "-q")
    ok("run", p, "-o", out, "-q")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    fails("run", p, "-o", foreign, "-q", needle="directory exists and is not empty")
    assert (foreign / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("weights_bytes, needle", [(b"\x00" * 10, "weights"), (None, "cfg")])
def test_bad_model_files_are_one_error_naming_the_scenario(tmp_path: Path, weights_bytes, needle) -> None:
    w = tmp_path / "w.weights"
    if weights_bytes is not None:
        w.write_bytes(weights_bytes)
        text = f"model: {{cfg: {TINY_CFG}, weights: w.weights}}\n"
    else:
        (tmp_path / "bad.cfg").write_text("[net]\nwidth=64\n[convolutional]\nfilters=banana\n")
        text = "model: {cfg: bad.cfg}\n"
    p = tmp_path / "s.yaml"
    p.write_text(text)
    res = fails("run", p, "-o", tmp_path / "o", "-q", needle=needle)
    assert "s.yaml:1: model:" in res.output
    assert not (tmp_path / "o").exists()


def test_trained_model_with_shipped_images_and_class_names(tmp_path: Path) -> None:
    """`model: {trained: shapes-yolo}` brings its weights and names; shipped sample images by name."""
    p = tmp_path / "t.yaml"
    p.write_text("model: {trained: shapes-yolo}\nimages: [shapes/00200.png]\nquant: {calib: {images: shapes}}\n"
                 "modes: [float, int]\ncycles: false\nreport: {html: false}\n")
    r = run_to_dir(p, tmp_path / "o")
    from dla.catalog import shipped_model

    names = set(shipped_model("shapes-yolo").names)
    dets = [d for o in r.summary["outputs"] for d in (o["detections"] or [])]
    assert dets and {d["class"] for d in dets} <= names
    assert r.summary["model"]["weights"] == "shipped (shapes-yolo)"
    bad = tmp_path / "b.yaml"
    bad.write_text("model: {trained: shapes-yolov9}\n")
    fails("run", bad, needle="b.yaml:1: model.trained: shapes-yolov9: not a shipped trained model")


def test_a_zipped_qnet_runs_like_its_folder(tmp_path: Path) -> None:
    """The workbench downloads a .qnet as NAME.qnet.zip; a scenario's `model.qnet` takes it as the
    commands do, with the same results as the folder (it was refused as 'not found')."""
    import shutil

    import yaml

    w, q = tmp_path / "t.weights", tmp_path / "t.qnet"
    ok("gen-weights", TINY_CFG, "--seed", 1, "-o", w)
    ok("quantize", TINY_CFG, w, "--calib-synthetic", 2, "-o", q)
    shutil.make_archive(str(tmp_path / "t.qnet"), "zip", q)  # -> t.qnet.zip, members at the top
    summaries = []
    for name, model in (("folder", "t.qnet"), ("zip", "t.qnet.zip")):
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump({"name": "q", "model": {"qnet": model}, "images": {"synthetic": 2},
                                     "report": {"html": False}}))
        ok("run", p, "-o", tmp_path / name, "-q")
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        summary.pop("scenario"), summary.pop("source")  # name the scenario file
        summary["model"].pop("qnet", None)  # names the model file
        summaries.append(summary)
    assert summaries[0] == summaries[1]


def test_junit_xml_stays_well_formed_with_control_characters(tmp_path: Path) -> None:
    """A check name from YAML ("\\x01") or an error message with ANSI colours (\\x1b) made
    junit.xml unparseable: XML 1.0 has no such characters, even escaped."""
    import xml.etree.ElementTree as ET

    from junitparser import JUnitXml

    from dla.scenario.junit import error_suite, junit_xml, scenario_suite

    summary = {"scenario": "s\x01<&>\"", "seconds": {"total": 1.0}, "checks": [
        {"name": "bad \x01 <name> & ]]>", "passed": False, "value": 1.0, "threshold": "< \x02", "message": "m\x0c"},
        {"name": "ok", "passed": True, "value": 1.0, "threshold": "-", "message": "fine \x1b[0m"}]}
    path = tmp_path / "junit.xml"
    path.write_bytes(junit_xml([scenario_suite(summary), error_suite("e", "\x1b[31mboom\x1b[0m\nline 2")]))
    ET.parse(path)
    cases = [c for suite in JUnitXml.fromfile(str(path)) for c in suite]
    assert [c.name for c in cases] == ["bad \ufffd <name> & ]]>", "ok", "run"]
    assert cases[2].result[0].message == "\ufffd[31mboom\ufffd[0m\nline 2"


def test_a_named_check_over_several_variants_gives_distinct_junit_cases(tmp_path: Path) -> None:
    """Both variants' cases were called 'our bar': CI merged them and the variant was lost."""
    from junitparser import JUnitXml

    from dla.scenario import run_to_dir

    p = tmp_path / "s.yaml"
    p.write_text(BASE.replace("report: {html: false}", "report: {html: false, junit: true}")
                 + "quant: {activations: [mse, max], calib: {synthetic: 2}}\nmodes: [float, int]\n"
                 "checks:\n  - name: our bar\n    sqnr: {min_db: -100}\n  - name: single\n    cycles: {min_fps: 1}\n")
    r = run_to_dir(p, tmp_path / "o")
    names = [c.name for suite in JUnitXml.fromfile(str(tmp_path / "o" / "junit.xml")) for c in suite]
    assert names == ["our bar [mse/per_channel]", "our bar [max/per_channel]", "single"]
    assert [c["name"] for c in r.summary["checks"]] == names
