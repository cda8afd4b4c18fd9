"""`dla cycles MODEL.qnet`: the cycle model at the .qnet's per-layer widths (table, JSON, CSV)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dla.config import HardwareConfig
from dla.cycles import network_cycles
from dla.qnet_file import save_qnet
from golden.genweights import synthetic_image
from golden.network import parse_network
from golden.weights import read_weights
from quant import collect_ranges, quantize
from quant.precision import LayerPrecision, default_precision
from tests.cli_helpers import fails, run

MODELS = Path(__file__).resolve().parents[2] / "dla" / "data" / "models"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory):
    """shapes-yolo calibrated on two synthetic images, then given widths by hand: layer 2 w4a8,
    layer 4's output (and the maxpool 5 that passes it on) int16 so conv 6 is w8a16, the two
    heads (13, 20) writing int16 (and the yolo layers passing them on), conv 10 on the host.  Returns (path, net, expected precisions)."""
    net = read_weights(parse_network(MODELS / "shapes-yolo.cfg"), MODELS / "shapes-yolo.weights")
    rng = np.random.default_rng(0)
    qnet = quantize(net, collect_ranges(net, [synthetic_image(net.input_shape, rng) for _ in range(2)]))
    ql = qnet.layers[2]
    ql.w_bits, ql.w_q = 4, np.clip(ql.w_q, -7, 7)
    qnet.bits.update({4: 16, 5: 16, 13: 16, 14: 16, 20: 16, 21: 16})
    qnet.host = frozenset({10})
    path = save_qnet(qnet, HardwareConfig(), tmp_path_factory.mktemp("q") / "mixed.qnet")
    expected = {s.index: default_precision(s) for s in net.layers}
    expected.update({2: LayerPrecision(4, (8,), 8), 4: LayerPrecision(8, (8,), 16), 5: LayerPrecision(None, (16,), 16),
                     6: LayerPrecision(8, (16,), 8), 10: LayerPrecision(8, (8,), 8, host=True),
                     13: LayerPrecision(8, (8,), 16), 14: LayerPrecision(None, (16,), 16, host=True),
                     20: LayerPrecision(8, (8,), 16), 21: LayerPrecision(None, (16,), 16, host=True)})
    return path, net, expected


def test_json_shows_each_layers_widths_and_costs(mixed, tmp_path: Path) -> None:
    path, net, expected = mixed
    res = run("cycles", path, "--json", tmp_path / "c.json", "--csv", tmp_path / "c.csv")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "c.json").read_text())
    want = network_cycles(net, HardwareConfig(), expected)
    assert [l["precision"] for l in data["layers"]] == [expected[i].label for i in range(len(net.layers))]
    assert data["layers"] == [l.to_dict() for l in want.layers]
    assert (data["total_cycles"], data["dram_bytes"], data["weight_bytes"]) == \
        (want.total_cycles, want.dram_bytes, want.weight_bytes)
    by = {l["index"]: l for l in data["layers"]}
    assert (by[2]["weight_bits"], by[2]["passes"], by[6]["input_bits"], by[6]["passes"]) == (4, 0.5, [16], 2.0)
    assert by[10]["bound"] == "host" and by[10]["macs"] == 0 and by[10]["dram_read_bytes"] > 0
    assert (by[13]["output_bits"], by[13]["precision"]) == (16, "w8a8>a16")
    # the same model at int8 costs less at layer 6 (two passes) and more weight bytes at layer 2 (int4)
    int8 = {l.index: l for l in network_cycles(net, HardwareConfig()).layers}
    assert by[6]["compute_cycles"] == 2 * int8[6].compute_cycles
    assert by[2]["weight_bytes"] < int8[2].weight_bytes
    assert "w4a8" in res.output and "host" in res.output and " precision " in res.output.splitlines()[1]
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert (rows[6]["precision"], rows[6]["input_bits"], rows[18]["input_bits"]) == ("w8a16>a8", "16", "8+8")


def test_a_cfg_runs_at_int8(tmp_path: Path) -> None:
    res = run("cycles", "yolov3-tiny", "--json", tmp_path / "c.json")
    assert res.exit_code == 0, res.output
    layers = json.loads((tmp_path / "c.json").read_text())["layers"]
    assert {l["precision"] for l in layers} == {"w8a8", "a8", "host"}


def test_unsupported_pair_is_one_error(mixed, tmp_path: Path) -> None:
    path, _, _ = mixed
    hw = tmp_path / "no-int4.yaml"
    hw.write_text("passes_w4a8: 0\n")
    res = fails("cycles", path, "--hw", hw, "--json", tmp_path / "c.json", needle="layer 2 (convolutional)")
    assert "w4a8" in res.output and "passes_w4a8" in res.output and not (tmp_path / "c.json").exists()


def test_a_quantized_spec_with_overrides_reaches_the_cycle_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """The issue's path end to end: `dla quantize --spec` with int16 heads, an int4 layer and a
    host layer, then `dla cycles m.qnet --json`: each layer's widths as the spec said, the heads
    write twice the bytes of the int8 model, the host layer costs its transfer only."""
    monkeypatch.setenv("DLA_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "spec.yaml"
    spec.write_text("overrides:\n  - layers: [13, 20]\n    activation_bits: 16\n"
                    "  - layers: [2]\n    weight_bits: 4\n  - layers: [10]\n    host: true\n")
    q = tmp_path / "m.qnet"
    res = run("quantize", MODELS / "shapes-yolo.cfg", MODELS / "shapes-yolo.weights", "--calib-synthetic", 1,
              "--spec", spec, "-o", q, "-q")
    assert res.exit_code == 0, res.output
    res = run("cycles", q, "--json", tmp_path / "c.json")
    assert res.exit_code == 0, res.output
    by = {l["index"]: l for l in json.loads((tmp_path / "c.json").read_text())["layers"]}
    assert {i: by[i]["precision"] for i in (2, 10, 13, 20)} == \
        {2: "w4a8", 10: "host", 13: "w8a8>a16", 20: "w8a8>a16"}
    assert {l["precision"] for i, l in by.items() if i not in (2, 10, 13, 14, 20, 21)} <= {"w8a8", "a8"}
    int8 = {l.index: l for l in network_cycles(parse_network(MODELS / "shapes-yolo.cfg"), HardwareConfig()).layers}
    for head in (13, 20):
        assert by[head]["dram_write_bytes"] == 2 * int8[head].dram_write_bytes
    assert by[10]["compute_cycles"] == 0 and by[10]["total_cycles"] == by[10]["transfer_cycles"] > 0
    assert by[2]["passes"] == 0.5 and by[2]["weight_bits"] == 4
    assert by[2]["weight_bytes"] - 4 * 16 == (int8[2].weight_bytes - 4 * 16) // 2  # 16 filters: int4 halves the weights
