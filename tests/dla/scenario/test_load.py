"""Scenario validation: every mistake names the file, the line and the key, and nothing runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dla.scenario import ScenarioError, load_scenario
from dla.scenario.load import expand_matrix
from dla.scenario.schema import Scenario
from tests.cli_helpers import fails
from tests.dla.scenario.helpers import BASE, QUANT, TINY_CFG, load_error, run_refused
from tests.paths import ROOT



def _err(tmp_path: Path, text: str) -> str:
    return load_error(tmp_path, text)


def test_minimal_scenario_takes_defaults(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("model: {cfg: yolov3-tiny}\n")
    s = load_scenario(p).scenario
    assert s.modes == ["float", "hybrid", "int"] and s.quant.variants()[0].spec["activations"] == "mse"
    assert load_scenario(p).name == "m"


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    msg = _err(tmp_path, "model:\n  cfg: yolov3-tiny\n  seed: [1, 2\n")
    assert msg.startswith(f"{tmp_path / 's.yaml'}:") and "invalid YAML, column" in msg


@pytest.mark.parametrize("text, line, needle", [
    ("model: {cfg: yolov3-tiny}\nmodes: [float, int]\nquant:\n  activatons: kl\n", 4,
     "quant.activatons: unknown key 'activatons' (did you mean 'activations'?)"),
    ("model:\n  cfg: yolov3-tiny\n  wieghts: w.weights\n", 3, "model.wieghts: unknown key 'wieghts' (did you mean 'weights'?)"),
    ("model: {cfg: yolov3-tiny}\nchekcs: []\n", 2, "chekcs: unknown key 'chekcs' (did you mean 'checks'?)"),
    ("model: {cfg: yolov3-tiny}\nquant:\n  activations: [mse, kll]\n", 3, "unknown value 'kll' (valid: max, percentile, mse"),
    ("model: {cfg: yolov3-tiny}\nmodes: [float, integer]\n", 2, "unknown value 'integer'"),
    ("model: {cfg: yolov3-tiny}\nchecks:\n  - sqnr: {mode: int}\n", 3, "checks.0.sqnr.min_db: required key is missing"),
    ("model: {cfg: yolov3-tiny}\nchecks:\n  - sqnr: {min_db: 3}\n    cycles: {min_fps: 1}\n", 3, "exactly one of sqnr"),
    ("model: {cfg: yolov3-tiny}\nmodes: [float]\nchecks:\n  - sqnr: {min_db: 3}\n", 4,
     "checks.0.sqnr.mode: this check is on mode 'int', which 'modes' does not run (float)"),
    ("model: {cfg: yolov3-tiny}\nchecks:\n  - rtl: {equal: true}\n", 3, "checks.0.rtl: an rtl check needs"),
    ("model: {cfg: yolov3-tiny, qnet: q}\n", 1, "give one of 'trained'"),
    ("model: {trained: shapes-yolo, weights: w}\n", 1, "brings its own weights"),
    ("name: x\n", None, "model: required key is missing"),
    ("- a\n- b\n", None, "a scenario is a mapping"),
])
def test_invalid_scenarios_name_line_and_key(tmp_path: Path, text: str, line: int | None, needle: str) -> None:
    msg = _err(tmp_path, text)
    assert needle in msg, msg
    where = f"{tmp_path / 's.yaml'}:{line}:" if line else f"{tmp_path / 's.yaml'}:"
    assert msg.startswith(where), msg


@pytest.mark.parametrize("text, needle", [
    ("model: {cfg: nets/none.cfg}\n", "model.cfg: "),
    ("model: {cfg: yolov3-tiny, weights: nets/none.weights}\n", "model.weights: weights file not found: nets/none.weights"),
    ("model: {cfg: yolov3-tiny}\nimages: [dog, pics/cat.jpg]\n", "images.1: image not found: pics/cat.jpg"),
    ("model: {cfg: yolov3-tiny}\nhw: hw/none.yaml\n", "hw: hardware config not found: hw/none.yaml"),
    ("model: {cfg: yolov3-tiny}\nhw: tiny99\n", "not a shipped hardware config: 'tiny99' (shipped: acc16, default, small8"),
    ("model: {cfg: yolov3-tiny}\nquant:\n  calib: {images: calib/}\n", "calibration images not found: calib/"),
])
def test_missing_files_are_named_relative_to_the_scenario(tmp_path: Path, text: str, needle: str) -> None:
    msg = _err(tmp_path, text)
    assert needle in msg, msg
    if "not found:" in msg:
        assert f"(relative to the scenario: {tmp_path}" in msg


def test_inline_hw_errors_have_the_scenario_line(tmp_path: Path, scenario_file) -> None:
    p = tmp_path / "hw.yaml"
    p.write_text(f"model: {{cfg: {TINY_CFG}}}\nhw:\n  rows: 8\n  colls: 8\n")
    fails("run", p, "-o", tmp_path / "out", needle="hw.yaml:4: unknown key 'colls' (did you mean 'cols'?)")
    assert not (tmp_path / "out").exists()


def test_matrix_expands_and_run_refuses_it(tmp_path: Path) -> None:
    p = tmp_path / "mx.yaml"
    p.write_text("model: {cfg: yolov3-tiny}\nmatrix:\n  hw: [default, small8]\n  quant.activations: [mse, kl]\n")
    with pytest.raises(ScenarioError, match="matrix .4 combinations.: run it with 'dla regress'"):
        load_scenario(p)
    names = [ls.name for ls in expand_matrix(load_scenario(p, allow_matrix=True))]
    assert names == ["mx-default-mse", "mx-default-kl", "mx-small8-mse", "mx-small8-kl"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {cfg: yolov3-tiny}\nmatrix:\n  quant.activations: [mse, kll]\n")
    with pytest.raises(ScenarioError, match="unknown value 'kll'"):
        expand_matrix(load_scenario(bad, allow_matrix=True))
    bad.write_text("model: {cfg: yolov3-tiny}\nmatrix:\n  hardware: [default]\n")
    with pytest.raises(ScenarioError, match="bad.yaml:2: matrix: matrix key 'hardware' is not a scenario key"):
        load_scenario(bad, allow_matrix=True)


def test_unknown_shipped_scenario_lists_the_shipped_ones() -> None:
    fails("run", "demoo", needle="not a shipped scenario (shipped: acc16-overflow, algorithms, demo")


def test_json_schema_in_docs_is_current() -> None:
    """docs/scenario.schema.json is `dla scenarios --schema` (regenerate it when the format changes)."""
    doc = json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
    assert doc == Scenario.model_json_schema(by_alias=True)


def test_every_shipped_scenario_and_docs_example_validates() -> None:
    from dla.scenario.load import SCENARIO_DIR, shipped_scenarios

    assert len(shipped_scenarios()) >= 7
    for name in shipped_scenarios():
        load_scenario(SCENARIO_DIR / f"{name}.yaml", allow_matrix=True)
    assert sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml")) == sorted(f"{n}.yaml" for n in shipped_scenarios())


def test_the_format_example_in_the_docs_is_valid() -> None:
    """The long example of docs/scenarios.md passes the schema and the consistency rules."""
    import re

    import yaml

    from dla.scenario.load import LoadedScenario, check_consistency, parse_yaml, validate

    text = (ROOT / "docs" / "scenarios.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    path = ROOT / "docs" / "example.yaml"
    data, lines = parse_yaml(path, block)
    scn = validate(data, path, lines)
    check_consistency(LoadedScenario(scn, path, lines, data))
    assert len(scn.quant.variants()) == 2 * 2 and len(scn.checks) == 7 and scn.matrix
    assert yaml.safe_load(block)["hw"] == "small8"


@pytest.mark.parametrize("text, needle", [
    (f"model: {{cfg: {TINY_CFG}, seed: -5}}\n", "s.yaml:1: model.seed: "),
    (f"model: {{cfg: {TINY_CFG}}}\nimages: {{synthetic: 1, seed: -1}}\n", "s.yaml:2: images.seed: "),
])
def test_negative_seeds_are_refused_not_a_traceback(tmp_path: Path, text: str, needle: str) -> None:
    run_refused(tmp_path, text, needle)


@pytest.mark.parametrize("text, needle", [
    (f"model: {{cfg: {TINY_CFG}}}\nimages: []\nchecks:\n  - detections: {{min_recall: 0.5}}\n",
     "s.yaml:2: images: "),
    (BASE + "quant: {activations: [], calib: {synthetic: 2}}\n", "s.yaml:4: quant.activations: "),
    (BASE + "quant: {granularity: [], calib: {synthetic: 2}}\n", "s.yaml:4: quant.granularity: "),
    (BASE + "quant: {calib: {images: []}}\n", "s.yaml:4: quant.calib.images: "),
    (BASE + "quant:\n  activations: [mse, kl, mse]\n", "s.yaml:5: quant.activations: "),
    (BASE + "quant:\n  granularity: [per_tensor, per_tensor]\n", "s.yaml:5: quant.granularity: "),
])
def test_empty_or_repeated_lists_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    """No input made every check pass on nothing; no variant ran HYBRID/INT on nothing; a repeated
    algorithm gave two variants with the same name."""
    run_refused(tmp_path, text, needle)


@pytest.mark.parametrize("calib, needle", [
    ("list.txt", "s.yaml:4: quant.calib.images: "),  # a list file naming a missing image
    ("[bad.jpg]", "s.yaml:4: quant.calib.images"),  # a file that is not an image
])
def test_bad_calibration_images_name_the_scenario_line(tmp_path: Path, calib: str, needle: str) -> None:
    (tmp_path / "list.txt").write_text("missing.jpg\n")
    (tmp_path / "bad.jpg").write_text("not an image")
    run_refused(tmp_path, BASE + f"quant: {{calib: {{images: {calib}}}}}\n", needle)


def test_an_hw_path_that_is_a_folder_names_the_scenario_line(tmp_path: Path) -> None:
    (tmp_path / "hwdir").mkdir()
    run_refused(tmp_path, BASE + "hw: hwdir/\n", "s.yaml:4: hw: hardware config not found: hwdir/")


@pytest.mark.parametrize("check", ["detections: {}", "detections: {mode: int}", "cycles: {}"])
def test_a_check_without_any_threshold_is_refused(tmp_path: Path, check: str) -> None:
    """It passed whatever the results ('agreement with FLOAT within  on 1 input(s)')."""
    run_refused(tmp_path, BASE + QUANT + f"checks:\n  - {check}\n", "s.yaml:6: checks.0.")


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "."])
def test_a_scenario_name_is_a_plain_folder_name(tmp_path: Path, name: str) -> None:
    """`dla regress` wrote OUT/<name>/: '../escape' put a report outside the output directory."""
    run_refused(tmp_path, BASE + QUANT + f"name: '{name}'\n", "s.yaml:5: name: ")


def test_histograms_of_unknown_layers_are_an_error_not_silently_dropped(tmp_path: Path) -> None:
    run_refused(tmp_path, BASE.replace("report: {html: false}", "report: {html: true, histograms: [0, 99]}") + QUANT,
           "s.yaml:3: report.histograms.1: ")


@pytest.mark.parametrize("text, needle", [
    (BASE + QUANT + "modes: [float, int]\nmodes: [float]\n", "s.yaml:6: modes: written twice (first on line 5)"),
    (BASE + "quant:\n  calib: {synthetic: 2}\n  calib: {synthetic: 3}\n",
     "s.yaml:6: quant.calib: written twice (first on line 5)"),
])
def test_a_key_written_twice_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    """YAML loaders keep the last one silently: the first section was ignored without a word."""
    run_refused(tmp_path, text, needle)


def test_a_trained_model_name_under_cfg_is_refused_with_the_key_to_use(tmp_path: Path) -> None:
    """`cfg: shapes-yolo` would mean seeded weights, or the trained ones with `seed` ignored:
    neither silently — the message names the line and the `trained:` key."""
    out = run_refused(tmp_path, "model:\n  cfg: shapes-yolo\n  seed: 3\nimages: [dog]\n",
                      needle="shapes-yolo is a shipped trained model: write 'trained: shapes-yolo'")
    assert "s.yaml:2" in out
