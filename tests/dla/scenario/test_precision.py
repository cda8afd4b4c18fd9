"""Precision sweeps in scenarios: ``quant.precision`` names sets of width overrides, each run as
one variant (like an algorithm sweep), and the reports name the variant and each layer's
widths; every mistake in the new keys is one ScenarioError naming file:line and the key."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dla.scenario import ScenarioError, load_scenario
from tests.cli_helpers import ok
from tests.dla.scenario.helpers import BASE, load_error, run_refused

# tiny-yolo: 0 conv, 1 maxpool, 2 conv, 3 maxpool, 4 conv, 5 maxpool, 6 conv, 7 conv (head), 8 yolo,
# 9 route, 10 conv, 11 upsample, 12 route, 13 conv, 14 conv (head), 15 yolo
SWEEP = BASE + """quant:
  calib: {synthetic: 2}
  precision:
    all-int8: []
    int16-heads:
      - layers: [7, 14]
        activation_bits: 16
    heads-on-host:
      - {layers: [7, 14], host: true}
modes: [float, int]
"""


def _err(tmp_path: Path, text: str) -> str:
    return load_error(tmp_path, text)


def test_precision_sweep_makes_one_named_variant_per_set(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP)
    variants = load_scenario(p).scenario.quant.variants()
    assert [(v.name, v.precision) for v in variants] == [
        ("mse/per_channel/all-int8", "all-int8"), ("mse/per_channel/int16-heads", "int16-heads"),
        ("mse/per_channel/heads-on-host", "heads-on-host")]
    assert variants[0].spec["overrides"] == []
    assert variants[1].spec["overrides"] == [{"layers": [7, 14], "activation_bits": 16}]
    assert variants[2].spec["overrides"] == [{"layers": [7, 14], "host": True}]


def test_precision_sets_follow_the_global_overrides_and_cross_the_algorithm_sweep(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(BASE + "quant:\n  activations: [max, mse]\n  overrides: [{layers: [0], activations: max}]\n"
                 "  precision:\n    a: []\n    b: [{types: [convolutional], weight_bits: 4}]\n")
    variants = load_scenario(p).scenario.quant.variants()
    assert [v.name for v in variants] == ["max/per_channel/a", "max/per_channel/b", "mse/per_channel/a",
                                          "mse/per_channel/b"]
    assert variants[1].spec["overrides"] == [{"layers": [0], "activations": "max"},
                                             {"types": ["convolutional"], "weight_bits": 4}]


def test_precision_sweep_runs_and_every_report_names_variant_and_widths(tmp_path: Path) -> None:
    """End to end on the tiny detector: the quantizer widens the heads' output tensors (and the
    yolo layers reading them), sends them to the host in the third variant, and the terminal,
    summary.json, layers.csv and report.html each say so per variant."""
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP.replace("report: {html: false}", "report: {html: true}"))
    out = tmp_path / "out"
    res = ok("run", p, "-o", out)
    head = next(line for line in res.output.splitlines() if line.lstrip().startswith("idx"))
    for v in ("all-int8", "int16-heads", "heads-on-host"):
        assert f"precision {v} " in head and f"INT mse/per_channel/{v}" in head
    summary = json.loads((out / "summary.json").read_text())
    assert [(v["name"], v["precision"]) for v in summary["variants"]] == [
        ("mse/per_channel/all-int8", "all-int8"), ("mse/per_channel/int16-heads", "int16-heads"),
        ("mse/per_channel/heads-on-host", "heads-on-host")]
    prec = {(r["variant"].rsplit("/", 1)[1], r["index"]): r["precision"] for r in summary["layers"]}
    for head_layer in (7, 14):
        assert prec[("all-int8", head_layer)]["label"] == "w8a8"
        assert prec[("int16-heads", head_layer)] == {"weight_bits": 8, "input_bits": [8], "output_bits": 16,
                                                     "host": False, "label": "w8a8>a16"}
        assert prec[("heads-on-host", head_layer)]["host"] is True
    assert prec[("int16-heads", 8)]["input_bits"] == [16]  # the yolo layer reads the int16 head
    assert {prec[("int16-heads", i)]["label"] for i in (0, 2, 4, 6, 10, 13)} == {"w8a8"}
    rows = list(csv.DictReader((out / "layers.csv").open()))
    by = {(r["variant"], r["index"]): r["precision"] for r in rows}
    assert by[("mse/per_channel/int16-heads", "7")] == "w8a8>a16" and by[("mse/per_channel/all-int8", "7")] == "w8a8"
    assert by[("mse/per_channel/heads-on-host", "14")] == "host"
    html = (out / "report.html").read_text()
    assert "<th class=\"l\">precision int16-heads</th>" in html and "w8a8&gt;a16" in html
    # the int16 heads keep more of FLOAT than int8 ones (the sweep ran three different networks)
    sqnr = {(r["variant"].rsplit("/", 1)[1], r["index"]): r["sqnr_db"] for r in summary["layers"]
            if r["image"] == "synthetic-0"}
    assert all(sqnr[("int16-heads", i)] > sqnr[("all-int8", i)] for i in (7, 14))


L = BASE + "quant:\n  calib: {synthetic: 2}\n"  # the lines below start at 6


@pytest.mark.parametrize("text, line, needle", [
    (L + "  precision:\n    wide:\n      - layers: [7]\n        activation_bits: 12\n", 9,
     "quant.precision.wide.0.activation_bits: unknown value 12 (valid: 8 or 16)"),
    (L + "  precision:\n    wide:\n      - layers: [7]\n        weight_bits: 2\n", 9,
     "quant.precision.wide.0.weight_bits: unknown value 2 (valid: 4, 8 or 16)"),
    (L + "  precision:\n    hosted:\n      - layers: [7]\n        host: \"yes\"\n", 9,
     "quant.precision.hosted.0.host: must be true or false, got 'yes'"),
    (L + "  precision:\n    off: []\n", 6, "the precision variant named False is not text"),
    (L + "  precision:\n    wide:\n      - layers: [7]\n        activation_bit: 16\n", 9,
     "quant.precision.wide.0.activation_bit: unknown key 'activation_bit' (did you mean 'activation_bits'?)"),
    (L + "  precision:\n    wide:\n      - activation_bits: 16\n", 8,
     "quant.precision.wide.0: an override names the layers it applies to"),
    (L + "  precision: {}\n", 6, "quant.precision: an empty mapping"),
    (L + "  precision:\n    ../x: []\n", 6, "'../x' cannot name a precision variant"),
    (L + "  precision: [{layers: [7], activation_bits: 16}]\n", 6, "quant.precision: Input should be a valid dictionary"),
    (L + "  overrides:\n    - layers: [7]\n      activation_bits: 12\n", 8,
     "quant.overrides.0.activation_bits: unknown value 12 (valid: 8 or 16)"),
    (L + "  input_bits: 4\n", 6, "quant.input_bits: unknown value 4 (valid: 8 or 16)"),
])
def test_bad_precision_keys_name_file_line_and_key(tmp_path: Path, text: str, line: int, needle: str) -> None:
    msg = _err(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 's.yaml'}:{line}: ") and needle in msg, msg
    run_refused(tmp_path, text, f"s.yaml:{line}: ")  # the CLI: one Error line, exit 2, nothing written


@pytest.mark.parametrize("text, line, needle", [
    (L + "  precision:\n    wide:\n      - layers: [7, 40]\n        activation_bits: 16\n", 8,
     "quant.precision.wide.0.layers.1: layer 40 is out of range: tiny-yolo has layers 0..15"),
    (L + "  precision:\n    wide:\n      - types: [conv]\n        activation_bits: 16\n", 8,
     "quant.precision.wide.0.types.0: unknown layer type 'conv' (valid: convolutional, "),
    (L + "  overrides:\n    - layers: [-1]\n      host: true\n", 7, "quant.overrides.0.layers.0: layer -1 is out of range"),
    # weight_bits on a maxpool selects nothing: the variant would be all-int8 under another name
    (L + "  precision:\n    w4:\n      - layers: [0, 1]\n        weight_bits: 4\n", 8,
     "quant.precision.w4.0.layers.1: weight_bits on layer 1 (maxpool), which has no weights"),
])
def test_overrides_naming_no_layer_are_refused_at_their_line(tmp_path: Path, text: str, line: int,
                                                             needle: str) -> None:
    """Known only once the network is read: still one error at the file's line, before any report."""
    out = run_refused(tmp_path, text, needle)
    assert f"s.yaml:{line}: " in out, out


MATRIX = BASE + """quant: {calib: {synthetic: 2}}
matrix:
  hw: [default, small8]
  quant.overrides:
    all-int8: []
    int16-heads:
      - layers: [7, 14]
        activation_bits: 16
"""


def test_matrix_over_named_override_sets(tmp_path: Path) -> None:
    """``dla regress``'s form of the sweep: one scenario per named set (× the other keys), named after it."""
    from dla.scenario.load import expand_matrix

    p = tmp_path / "m.yaml"
    p.write_text(MATRIX)
    jobs = expand_matrix(load_scenario(p, allow_matrix=True))
    assert [j.name for j in jobs] == ["m-default-all-int8", "m-default-int16-heads", "m-small8-all-int8",
                                      "m-small8-int16-heads"]
    ovs = [j.scenario.quant.overrides for j in jobs]
    assert ovs[0] == [] and [(o.layers, o.activation_bits) for o in ovs[1]] == [([7, 14], 16)]


@pytest.mark.parametrize("bad, line, needle", [
    ("        activation_bits: 12\n", 11, "quant.overrides.0.activation_bits: unknown value 12 (valid: 8 or 16)"),
    ("        host: maybe\n", 11, "quant.overrides.0.host: must be true or false, got 'maybe'"),
    ("        bits: 16\n", 11, "quant.overrides.0.bits: unknown key 'bits'"),
])
def test_matrix_override_mistakes_name_their_line(tmp_path: Path, bad: str, line: int, needle: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(MATRIX.replace("        activation_bits: 16\n", bad))
    out = tmp_path / "out"
    from tests.cli_helpers import fails

    res = fails("regress", p, "-o", out, "-q", needle=needle)
    assert f"m.yaml:{line}: " in res.output and not out.exists()


def test_matrix_value_names_must_be_plain(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(BASE + "matrix:\n  quant.overrides:\n    a/b: []\n")
    with pytest.raises(ScenarioError, match=r"m.yaml:4: matrix: matrix key 'quant.overrides': 'a/b' cannot name"):
        load_scenario(p, allow_matrix=True)


def test_the_documented_precision_sweep_is_valid(tmp_path: Path) -> None:
    """docs/scenarios.md's 'Precision sweeps' example, under a model, loads as written."""
    from tests.paths import ROOT

    doc = (ROOT / "docs" / "scenarios.md").read_text()
    block = doc.split("### Precision sweeps", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    p = tmp_path / "doc.yaml"
    p.write_text("model: {cfg: yolov3-tiny}\n" + block)
    names = [v.precision for v in load_scenario(p).scenario.quant.variants()]
    assert names == ["all-int8", "int16-heads", "heads-on-host", "w4-body"]


def test_a_width_the_hardware_lacks_is_named_at_the_sets_line(tmp_path: Path) -> None:
    """Widening conv 0's output makes conv 2 a w8a16 layer; a DLA without w8a16 refuses the set,
    at its line, naming the layer, the pair and the config field, before anything is written."""
    text = BASE + """hw: {passes_w8a16: 0}
quant:
  calib: {synthetic: 2}
  precision:
    all-int8: []
    wide-body:
      - {layers: [0], activation_bits: 16}
"""
    out = run_refused(tmp_path, text, "s.yaml:9: quant.precision.wide-body: mse/per_channel/wide-body: layer 2 ")
    assert "w8a16" in out and "passes_w8a16" in out


def test_precision_sweep_costs_each_variant_at_its_own_widths(tmp_path: Path) -> None:
    """With ``cycles: true`` the cycle model runs once per distinct precision set: the int16
    heads move more DRAM bytes than all-int8, the host heads fewer MAC cycles; a cycles check
    is one case per variant; a scenario without a sweep has no per-variant table."""
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP + "cycles: true\nchecks:\n  - cycles: {max_total: 1000000000}\n")
    out = tmp_path / "out"
    res = ok("run", p, "-o", out)
    summary = json.loads((out / "summary.json").read_text())
    by = summary["cycles_by_variant"]
    names = [v["name"] for v in summary["variants"]]
    assert list(by) == names
    assert by[names[0]]["total_cycles"] == summary["cycles"]["total_cycles"]
    assert by[names[1]]["dram_bytes"] > by[names[0]]["dram_bytes"]
    assert by[names[2]]["total_cycles"] < by[names[0]]["total_cycles"]
    assert by[names[2]]["weight_bytes"] < by[names[0]]["weight_bytes"]
    cases = [c for c in summary["checks"] if c["kind"] == "cycles"]
    assert sorted(c["variant"] for c in cases) == sorted(names) and all(c["passed"] for c in cases)
    assert "mse/per_channel/int16-heads: " in res.output and " cycles (1.00x)" in res.output
    plain = tmp_path / "plain.yaml"
    plain.write_text(BASE + "quant:\n  calib: {synthetic: 2}\nmodes: [float, int]\ncycles: true\n")
    ok("run", plain, "-o", tmp_path / "o2")
    assert json.loads((tmp_path / "o2" / "summary.json").read_text())["cycles_by_variant"] is None
