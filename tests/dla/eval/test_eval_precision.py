"""`dla eval --precision NAME=SPEC.yaml`: parsing, the variants it adds (their widths reach the
engine, their cost is the cycle model's at those widths), and every user mistake."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dla.catalog import shipped_model
from dla.config import HardwareConfig
from dla.cycles import network_cycles
from dla.datasets.labelled import load_labelled
from dla.datasets.shapes import write_shapes
from dla.eval import evaluate as ev
from dla.eval import precision as P
from golden.errors import UserInputError
from golden.genweights import synthetic_image
from golden.network import load_network
from quant import collect_ranges, quantize
from quant.spec import QuantSpec
from tests.cli_helpers import fails, ok

HEADS = [13, 20]  # shapes-yolo: the linear convs feeding its two [yolo] layers
HEADS_YAML = "overrides:\n  - layers: [13, 20]\n    activation_bits: 16\n"


@pytest.fixture(scope="module")
def val_det(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "det"
    write_shapes(out, 12, seed=1, size=64, val_fraction=0.5)
    return out


@pytest.fixture(scope="module")
def net():
    m = shipped_model("shapes-yolo")
    return load_network(m.cfg, m.weights)


def _spec_file(tmp_path: Path, text: str, name: str = "heads.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _precisions_of(net, spec_dict: dict):
    """Widths of ``net`` under a spec: they do not depend on calibration, so any ranges do."""
    x = synthetic_image(net.input_shape, np.random.default_rng(0))
    return quantize(net, collect_ranges(net, [x]), spec=QuantSpec.from_dict(spec_dict)).precisions()


# ------------------------------------------------------------------------------------ parsing
def test_parse_option() -> None:
    assert P.parse_option("int16-heads=a/b.yaml") == ("int16-heads", "a/b.yaml")
    assert P.parse_option("w4=x=y.yaml") == ("w4", "x=y.yaml")  # only the first '=' splits
    for bad, needle in [("heads.yaml", "expected NAME=SPEC.yaml"), ("=h.yaml", "expected NAME=SPEC.yaml"),
                        ("h=", "expected NAME=SPEC.yaml"), ("my heads=h.yaml", "may hold only"),
                        ("all-int8=h.yaml", "reserved")]:
        with pytest.raises(UserInputError, match=needle):
            P.parse_option(bad)


def test_from_data_keeps_widths_and_refuses_algorithms() -> None:
    p = P.from_data("mixed", "m.yaml", {"input_bits": 16, "overrides": [
        {"layers": [0], "weight_bits": 16}, {"types": ["convolutional"], "weight_bits": 4},
        {"layers": [13], "host": True}]})
    assert p.input_bits == 16 and [o.weight_bits for o in p.overrides] == [16, 4, None]
    spec = p.spec("mse", "per_channel")
    assert (spec.activations, spec.granularity, spec.weights, spec.input_bits) == ("mse", "per_channel", "max", 16)
    assert spec.overrides == p.overrides
    assert P.from_data("none", "e.yaml", None).overrides == ()  # an empty file: all-int8 under a name
    cases = [({"activations": "kl"}, "m.yaml: 'activations' is an algorithm key"),
             ({"overrides": [{"layers": [1], "granularity": "per_channel"}]}, "override 1: 'granularity' is an algorithm"),
             ({"overrides": [{"layers": [1]}]}, "override 1 sets no width"),
             ({"overrides": [{"layers": [1], "activation_bits": 12}]},
              "m.yaml: override 'activation_bits' must be one of 8, 16, got 12"),
             ({"input_bits": 4}, "m.yaml: 'input_bits' must be one of 8, 16"),
             ({"overrides": [{"layers": [1], "width": 8}]}, "m.yaml: unknown override key"),
             ([1, 2], "m.yaml: expected a mapping")]
    for data, needle in cases:
        with pytest.raises(UserInputError, match=needle.replace("(", r"\(")):
            P.from_data("m", "m.yaml", data)


def test_check_network_names_missing_layers_and_types(net) -> None:
    with pytest.raises(UserInputError, match=r"h.yaml: override 1: layer 22 does not exist \(shapes-yolo has layers 0-21\)"):
        P.from_data("h", "h.yaml", {"overrides": [{"layers": [13, 22], "activation_bits": 16}]}).check_network(net)
    with pytest.raises(UserInputError, match="h.yaml: override 1: unknown layer type 'conv2d'"):
        P.from_data("h", "h.yaml", {"overrides": [{"types": ["conv2d"], "weight_bits": 4}]}).check_network(net)
    # weight_bits on a layer without weights would change nothing: the row would be all-int8 renamed
    with pytest.raises(UserInputError, match=r"h.yaml: override 1: weight_bits on layer 1 \(maxpool\), which has no "):
        P.from_data("h", "h.yaml", {"overrides": [{"layers": [0, 1], "weight_bits": 4}]}).check_network(net)
    P.from_data("h", "h.yaml", {"overrides": [{"layers": [0, 1], "activation_bits": 16}]}).check_network(net)


def test_make_variants_with_and_without_precisions() -> None:
    plain = ev.make_variants(["float", "int"], ["max"], ["per_channel"])
    assert [(v.mode, v.precision) for v in plain] == [("float", "-"), ("int", "-")]
    assert plain[1].label == "INT max per-channel"
    named = ev.make_variants(["float", "hybrid", "int"], ["max", "mse"], ["per_channel"], precisions=["h16", "w4"])
    assert [(v.mode, v.activations, v.precision) for v in named][:4] == [
        ("float", "-", "-"), ("hybrid", "max", "all-int8"), ("hybrid", "max", "h16"), ("hybrid", "max", "w4")]
    assert len(named) == 1 + 2 * 2 * 3 and named[-1].label == "INT mse per-channel w4"


# ------------------------------------------------------------------------------------ library
def test_evaluate_runs_each_precision_at_its_widths(net, val_det: Path, monkeypatch) -> None:
    """The engine of each variant gets a quantized network with the named spec's widths, and the
    variant's cost is the cycle model's at exactly those widths."""
    seen: list = []
    real_engine = ev.Engine

    def spy(n, q, hw):
        seen.append(q)
        return real_engine(n, q, hw)

    monkeypatch.setattr(ev, "Engine", spy)
    data = load_labelled(val_det, 3)
    heads = P.from_data("int16-heads", "heads.yaml", {"overrides": [{"layers": HEADS, "activation_bits": 16}]})
    variants = ev.make_variants(["float", "int"], ["max"], ["per_channel"], precisions=[heads.name])
    rep = ev.evaluate(net, data, variants, [s.image for s in data.samples], precisions=[heads])
    assert [r.variant.precision for r in rep.results] == ["-", "all-int8", "int16-heads"]
    qnets = seen
    assert qnets[0] is None
    assert all(qnets[1].tensor_bits(t) == 8 for t in [-1, *range(len(net.layers))])
    assert [t for t in range(len(net.layers)) if qnets[2].tensor_bits(t) == 16] == HEADS
    hw = HardwareConfig()
    flt, base, h16 = rep.results
    assert flt.cost is None
    default = network_cycles(net, hw)  # all int8: the cycle model's default precision
    assert (base.cost.total_cycles, base.cost.weight_bytes, base.cost.dram_bytes) == (
        default.total_cycles, default.weight_bytes, default.dram_bytes)
    wide = network_cycles(net, hw, _precisions_of(net, {"overrides": [{"layers": HEADS, "activation_bits": 16}]}))
    assert (h16.cost.total_cycles, h16.cost.weight_bytes, h16.cost.dram_bytes) == (
        wide.total_cycles, wide.weight_bytes, wide.dram_bytes)
    assert h16.cost.dram_bytes > base.cost.dram_bytes and h16.cost.weight_bytes == base.cost.weight_bytes
    table = "\n".join(rep.table_lines())
    assert "precision" in table and "int16-heads" in table and f"{h16.cost.total_cycles:,}" in table


# ------------------------------------------------------------------------------------ CLI
def test_cli_precision_end_to_end(val_det: Path, tmp_path: Path) -> None:
    spec = _spec_file(tmp_path, HEADS_YAML)
    js, csv_p = tmp_path / "r.json", tmp_path / "r.csv"
    res = ok("eval", "shapes-yolo", "--data", val_det, "--modes", "float,int", "--activations", "max",
             "--granularity", "per-channel", "--limit", 3, "-q", "--precision", f"int16-heads={spec}",
             "--json", js, "--csv", csv_p)
    head = res.output.splitlines()[1]
    assert "precision" in head and "cycles" in head and "weight B" in head and "DRAM B" in head
    int_rows = [ln for ln in res.output.splitlines() if ln.startswith("INT")]
    assert len(int_rows) == 2 and "all-int8" in int_rows[0] and "int16-heads" in int_rows[1]
    rows = json.loads(js.read_text())["results"]
    assert [(r["mode"], r["precision"]) for r in rows] == [("float", "-"), ("int", "all-int8"), ("int", "int16-heads")]
    assert rows[0]["total_cycles"] is None and rows[2]["label"] == "INT max per-channel int16-heads"
    assert rows[2]["dram_bytes"] > rows[1]["dram_bytes"] > 0 and rows[2]["total_cycles"] >= rows[1]["total_cycles"]
    csv_lines = csv_p.read_text().splitlines()
    assert csv_lines[0].endswith("precision,total_cycles,weight_bytes,dram_bytes")
    assert csv_lines[3].split(",")[-4:] == ["int16-heads", str(rows[2]["total_cycles"]),
                                            str(rows[2]["weight_bytes"]), str(rows[2]["dram_bytes"])]


def test_cli_without_precision_has_no_precision_column(val_det: Path, tmp_path: Path) -> None:
    res = ok("eval", "shapes-yolo", "--data", val_det, "--modes", "float,int", "--activations", "max",
             "--granularity", "per-tensor", "--limit", 2, "-q", "--json", tmp_path / "r.json")
    lines = res.output.splitlines()
    assert "precision" not in lines[1] and "cycles" in lines[1]
    assert lines[4].startswith("INT     max          per-tensor   ")
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [r["precision"] for r in rows] == ["-", "-"] and rows[1]["label"] == "INT max per-tensor"
    assert rows[1]["total_cycles"] == network_cycles(load_network(shipped_model("shapes-yolo").cfg,
                                                                  shipped_model("shapes-yolo").weights),
                                                     HardwareConfig()).total_cycles


def test_cli_precision_mistakes(val_det: Path, tmp_path: Path) -> None:
    good = _spec_file(tmp_path, HEADS_YAML)
    js = tmp_path / "o.json"
    base = ("eval", "shapes-yolo", "--data", val_det, "--modes", "int", "--activations", "max", "--limit", 2,
            "--json", js)
    fails(*base, "--precision", f"h={tmp_path / 'nope.yaml'}", needle="nope.yaml: precision spec file not found")
    bad_yaml = _spec_file(tmp_path, "overrides:\n  - layers: [13\n", "bad.yaml")
    fails(*base, "--precision", f"h={bad_yaml}", needle=f"{bad_yaml}:")
    fails(*base, "--precision", f"h={bad_yaml}", needle="invalid YAML")
    width = _spec_file(tmp_path, "overrides:\n  - layers: [13]\n    weight_bits: 2\n", "w2.yaml")
    fails(*base, "--precision", f"h={width}", needle=f"{width}: override 'weight_bits' must be one of 4, 8, 16, got 2")
    fails(*base, "--precision", f"h={good}", "--precision", f"h={good}", needle="the name 'h' is given twice")
    algo = _spec_file(tmp_path, "activations: kl\n", "algo.yaml")
    fails(*base, "--precision", f"h={algo}", needle="'activations' is an algorithm key")
    far = _spec_file(tmp_path, "overrides:\n  - layers: [40]\n    host: true\n", "far.yaml")
    fails(*base, "--precision", f"h={far}", needle="layer 40 does not exist")
    fails(*base, "--precision", str(good), needle="expected NAME=SPEC.yaml")
    fails("eval", "shapes-yolo", "--data", val_det, "--modes", "float", "--precision", f"h={good}",
          needle="add hybrid or int to --modes")
    hw = tmp_path / "hw.yaml"
    hw.write_text("passes_w16a16: 0\n")
    first = _spec_file(tmp_path, "input_bits: 16\noverrides:\n  - layers: [0]\n    weight_bits: 16\n", "first.yaml")
    fails(*base, "--hw", hw, "--precision", f"first={first}", needle="layer 0 (convolutional): w16a16")
    assert not js.exists()


def test_cli_precision_refused_with_a_qnet(val_det: Path, tmp_path: Path) -> None:
    m = shipped_model("shapes-yolo")
    qnet = tmp_path / "m.qnet"
    ok("quantize", m.cfg, m.weights, "--calib", val_det / "train", "-o", qnet, "-q")
    fails("eval", qnet, "--data", val_det, "--modes", "int", "--precision", f"h={_spec_file(tmp_path, HEADS_YAML)}",
          needle="a .qnet already has its operand widths")


def test_cli_hw_too_small_to_tile_keeps_the_accuracy(val_det: Path, tmp_path: Path) -> None:
    """Accuracy needs no buffers: a --hw the cycle model cannot tile the network into gives the
    rows without cost and says why, instead of refusing the evaluation."""
    hw = tmp_path / "hw.yaml"
    hw.write_text("weight_buffer_kib: 1\n")
    res = ok("eval", "shapes-yolo", "--data", val_det, "--modes", "float,int", "--activations", "max",
             "--granularity", "per-tensor", "--limit", 2, "-q", "--hw", hw, "--json", tmp_path / "r.json")
    assert "cycles, weight B, DRAM B: not available: the cycle model cannot tile" in res.output
    assert "weight_buffer_kib must be at least" in res.output
    js = json.loads((tmp_path / "r.json").read_text())
    assert [r["total_cycles"] for r in js["results"]] == [None, None] and "weight_buffer_kib" in js["cost_note"]
    assert 0 < js["results"][1]["map50"] <= 1
