"""Review findings: user mistakes that crashed, were silently accepted or passed vacuously."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import fails, run

from tests.dla.scenario.helpers import TINY_CFG

BASE = f"model: {{cfg: {TINY_CFG}, seed: 1}}\nimages: {{synthetic: 1}}\nreport: {{html: false}}\n"
QUANT = "quant: {calib: {synthetic: 2}}\n"  # fast calibration (line 4 when it follows BASE)


def _fails(tmp_path: Path, text: str, needle: str) -> str:
    """`dla run` of ``text``: exit 2, one Error line with ``needle``, nothing written."""
    p = tmp_path / "s.yaml"
    p.write_text(text)
    res = fails("run", p, "-o", tmp_path / "out", "-q", needle=needle)
    assert not (tmp_path / "out").exists()
    return res.output


@pytest.mark.parametrize("text, needle", [
    (f"model: {{cfg: {TINY_CFG}, seed: -5}}\n", "s.yaml:1: model.seed: "),
    (f"model: {{cfg: {TINY_CFG}}}\nimages: {{synthetic: 1, seed: -1}}\n", "s.yaml:2: images.seed: "),
])
def test_negative_seeds_are_refused_not_a_traceback(tmp_path: Path, text: str, needle: str) -> None:
    _fails(tmp_path, text, needle)


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
    _fails(tmp_path, text, needle)


@pytest.mark.parametrize("edit, needle", [
    ("{bogus: 1}", "s.yaml:7: step.1.edit.bogus: unknown key 'bogus'"),
    ("{scale_channel: banana}", "s.yaml:7: step.1.edit.scale_channel: "),
    ("{index: [0, 0, 0, 0]}", "s.yaml:7: step.1.edit: "),
    ("{array: w.npy, value: 3}", "s.yaml:7: step.1.edit: "),
    ("{array: w.npy}", "s.yaml:7: step.1.edit.array: "),
])
def test_bad_step_edits_are_one_error_line(tmp_path: Path, edit: str, needle: str) -> None:
    """An unknown edit key was a TypeError traceback; a file that is not a .npy array a ValueError one."""
    (tmp_path / "w.npy").write_text("not an array")
    _fails(tmp_path, BASE + QUANT + f"step:\n  - stop: 0\n  - edit: {edit}\n", needle)


def test_a_valid_step_edit_still_runs(tmp_path: Path) -> None:
    import numpy as np

    from dla.scenario import run_to_dir

    np.save(tmp_path / "w.npy", np.zeros((8, 3, 3, 3), dtype=np.int8))
    p = tmp_path / "s.yaml"
    p.write_text(BASE + QUANT + "step:\n  - stop: 0\n  - edit: {array: w.npy}\n    rerun: true\n"
                 "  - edit: {index: [0, 0, 1, 1], value: 5}\n  - edit: {scale_channel: [1, 0.5]}\n")
    r = run_to_dir(p, tmp_path / "o")
    assert [e["action"] for e in r.summary["step"]] == ["stop", "edit", "rerun", "edit", "edit"]


@pytest.mark.parametrize("calib, needle", [
    ("list.txt", "s.yaml:4: quant.calib.images: "),  # a list file naming a missing image
    ("[bad.jpg]", "s.yaml:4: quant.calib.images"),  # a file that is not an image
])
def test_bad_calibration_images_name_the_scenario_line(tmp_path: Path, calib: str, needle: str) -> None:
    (tmp_path / "list.txt").write_text("missing.jpg\n")
    (tmp_path / "bad.jpg").write_text("not an image")
    _fails(tmp_path, BASE + f"quant: {{calib: {{images: {calib}}}}}\n", needle)


def test_an_hw_path_that_is_a_folder_names_the_scenario_line(tmp_path: Path) -> None:
    (tmp_path / "hwdir").mkdir()
    _fails(tmp_path, BASE + "hw: hwdir/\n", "s.yaml:4: hw: hardware config not found: hwdir/")


@pytest.mark.parametrize("hw, needle", [("hw:\n  rows: 0\n", "s.yaml:6: rows=0 must be positive"),
                                        ("hw: bad-hw.yaml\n", "bad-hw.yaml:1: unknown key 'colls'")])
def test_hardware_is_validated_before_a_campaign_starts(tmp_path: Path, hw: str, needle: str) -> None:
    """docs: every scenario is validated before the campaign starts; a bad inline or YAML hw
    was only found by the worker (an 'error' row after the others had run)."""
    from dla.scenario.regress import collect
    from golden.errors import UserInputError

    (tmp_path / "bad-hw.yaml").write_text("colls: 8\n")
    p = tmp_path / "s.yaml"
    p.write_text(BASE + QUANT + hw)
    with pytest.raises(UserInputError, match=needle):
        collect([str(p)])


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


@pytest.mark.parametrize("check", ["detections: {}", "detections: {mode: int}", "cycles: {}"])
def test_a_check_without_any_threshold_is_refused(tmp_path: Path, check: str) -> None:
    """It passed whatever the results ('agreement with FLOAT within  on 1 input(s)')."""
    _fails(tmp_path, BASE + QUANT + f"checks:\n  - {check}\n", "s.yaml:6: checks.0.")


def test_regress_job_folders_are_unique_and_inside_the_output(tmp_path: Path) -> None:
    """'a', 'a' and 'a-2' gave two jobs 'a-2' (one report overwrote the other, one row was lost);
    a scenario named 'junit.xml' crashed the campaign when it wrote OUT/junit.xml."""
    from dla.scenario.regress import collect

    for f, name in (("a", "a"), ("b", "a"), ("c", "a-2"), ("d", "junit.xml"), ("e", "index.html")):
        (tmp_path / f"{f}.yaml").write_text(BASE + QUANT + f"name: {name}\n")
    ids = [j.id for j in collect([str(tmp_path)])]
    assert len(set(ids)) == 5 and not {"junit.xml", "index.html", "regress.json"} & set(ids), ids


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "."])
def test_a_scenario_name_is_a_plain_folder_name(tmp_path: Path, name: str) -> None:
    """`dla regress` wrote OUT/<name>/: '../escape' put a report outside the output directory."""
    _fails(tmp_path, BASE + QUANT + f"name: '{name}'\n", "s.yaml:5: name: ")


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


def test_histograms_of_unknown_layers_are_an_error_not_silently_dropped(tmp_path: Path) -> None:
    _fails(tmp_path, BASE.replace("report: {html: false}", "report: {html: true, histograms: [0, 99]}") + QUANT,
           "s.yaml:3: report.histograms.1: ")


@pytest.mark.parametrize("text, needle", [
    (BASE + QUANT + "modes: [float, int]\nmodes: [float]\n", "s.yaml:6: modes: written twice (first on line 5)"),
    (BASE + "quant:\n  calib: {synthetic: 2}\n  calib: {synthetic: 3}\n",
     "s.yaml:6: quant.calib: written twice (first on line 5)"),
])
def test_a_key_written_twice_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    """YAML loaders keep the last one silently: the first section was ignored without a word."""
    _fails(tmp_path, text, needle)


def test_nan_thresholds_are_refused_and_cycle_limits_say_which_way(tmp_path: Path, scenario_file) -> None:
    p = tmp_path / "nan.yaml"
    p.write_text(f"model: {{cfg: {TINY_CFG}}}\nchecks:\n  - sqnr: {{min_db: .nan}}\n")
    fails("run", p, needle="nan.yaml:3: checks.0.sqnr.min_db:")
    res = run("run", scenario_file(checks=[{"cycles": {"min_fps": 1e12, "max_total": 1}}]), "-o", tmp_path / "o", "-q")
    assert res.exit_code == 1
    assert "fps" in res.output and "below the minimum 1e+12" in res.output and "above the maximum 1" in res.output
