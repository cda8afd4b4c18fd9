"""Every per-layer table names the layer's operand widths (``quant.precision``): ``dla compare``'s
table, CSV and JSON (and ``--isolated``), ``dla info``'s layer table of a quantized network,
and a scenario's terminal table, HTML table and layers.csv — with widths set by hand in the
quantized network (int16 output tensor, a conv on the host), so that the reports are checked
independently of the quantizer."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from dla.calibration import calibrate
from dla.compare import compare_modes, isolated_errors
from dla.config import HardwareConfig
from dla.engine import Engine
from dla.info import layer_table
from dla.report_text import comparison_csv, comparison_json, comparison_lines, isolated_lines
from dla.scenario.outputs import _layer_table, layers_csv
from dla.scenario.text import precision_columns, summary_lines
from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from tests.dla.scenario.helpers import TINY_CFG

WIDE, HOSTED = 6, 7  # tiny-yolo: conv 6 writes int16, conv 7 runs on the host


@pytest.fixture(scope="module")
def engines() -> tuple[Engine, Engine]:
    """(all-int8, hand-widened) engines of one calibration of the tiny detector."""
    net = random_weights(parse_network(TINY_CFG), 1)
    plain = calibrate(net, 1, "per_channel")
    wide = calibrate(net, 1, "per_channel")
    wide.bits[WIDE] = 16
    wide.host = frozenset({HOSTED})
    return Engine(net, plain, HardwareConfig()), Engine(net, wide, HardwareConfig())


def _x(engine: Engine) -> np.ndarray:
    return synthetic_image(engine.net.input_shape, np.random.default_rng(0))


def _column(lines: list[str], header: str = "precision") -> list[str]:
    """The values under ``header`` in a fixed-width text table (header first, one row per layer)."""
    start = lines[0].index(header)
    return [line[start:].split()[0] for line in lines[1:]]


def test_compare_table_csv_json_name_the_widths(engines) -> None:
    plain, wide = engines
    cmp = compare_modes(wide, _x(wide), (64, 64))
    lines = comparison_lines(cmp)[:1 + len(wide.net.layers)]
    col = _column(lines)
    assert col[0] == "w8a8" and col[1] == "a8" and col[WIDE] == "w8a8>a16" and col[HOSTED] == "host"
    assert col[8] == "host" and col[9] == "a16>a8"  # yolo; the route reading conv 6's int16 output
    rows = list(csv.DictReader(io.StringIO(comparison_csv(cmp))))
    assert [r["precision"] for r in rows] == col
    js = comparison_json(cmp)["layers"]
    assert js[WIDE]["precision"] == {"weight_bits": 8, "input_bits": [8], "output_bits": 16, "host": False,
                                     "label": "w8a8>a16"}
    assert js[HOSTED]["precision"]["host"] is True
    # the all-int8 network: every DLA layer w8a8/a8, host kinds 'host'
    col = _column(comparison_lines(compare_modes(plain, _x(plain), (64, 64)))[:1 + len(plain.net.layers)])
    assert set(col) == {"w8a8", "a8", "host"}


def test_compare_without_a_quantized_network_shows_a_dash(engines) -> None:
    from dla.engine import Mode

    net = engines[0].net
    cmp = compare_modes(Engine(net, None, HardwareConfig()), _x(engines[0]), (64, 64), modes=(Mode.FLOAT,))
    assert set(_column(comparison_lines(cmp)[:1 + len(net.layers)])) == {"-"}
    assert {r["precision"] for r in csv.DictReader(io.StringIO(comparison_csv(cmp)))} == {""}
    assert all(r["precision"] is None for r in comparison_json(cmp)["layers"])


def test_isolated_table_and_json_name_the_widths(engines) -> None:
    _, wide = engines
    rows = isolated_errors(wide, _x(wide))
    col = _column(isolated_lines(rows, 20.0)[:1 + len(rows)])
    assert col[WIDE] == "w8a8>a16" and col[HOSTED] == "host"
    assert rows[WIDE].to_dict()["precision"]["output_bits"] == 16


def test_info_layer_table_of_a_quantized_network(engines) -> None:
    plain, wide = engines
    rows = layer_table(wide.net, wide.qnet)
    assert rows[1].split()[-1] == "precision"
    assert [r.split()[-1] for r in rows[2:2 + len(wide.net.layers)]][WIDE - 1:HOSTED + 1] == ["a8", "w8a8>a16", "host"]
    assert "precision" not in layer_table(wide.net)[1]  # a float model has no widths to show


def _summary(variants: dict[str, Engine]) -> dict:
    """A scenario summary's per-layer rows, as the runner writes them, for ``variants``."""
    layers = []
    for name, e in variants.items():
        for mode in ("hybrid", "int"):
            for s in e.net.layers:
                layers.append({"variant": name, "image": "a", "mode": mode, "index": s.index, "type": s.kind.value,
                               "shape": "x".join(map(str, s.out_shape)), "precision": e.qnet.precision(s).to_dict(),
                               "sqnr_db": 30.0, "max_abs": 0.1, "mean_abs": 0.01, "cosine": 0.99,
                               "saturated_pct": 0.0, "overflow": 0, "scale": 0.1})
    return {"scenario": "s", "model": {"name": "m", "weights": "w"}, "hw_source": "default",
            "hw": {"rows": 16, "cols": 16, "clock_mhz": 500}, "images": [{"name": "a"}], "layers": layers,
            "outputs": [], "cycles": None, "checks": []}


def test_scenario_tables_one_column_when_the_variants_agree(engines) -> None:
    plain, _ = engines
    s = _summary({"max/per_tensor": plain, "mse/per_tensor": plain})  # an algorithm sweep
    assert [h for h, _ in precision_columns(s)] == ["precision"]
    lines = summary_lines(s)
    assert _column(lines[2:3 + len(plain.net.layers)])[0] == "w8a8"
    html = _layer_table(s)
    assert html["header"][:4] == ["layer", "type", "shape", "precision"] and html["fixed"] == 4
    assert html["rows"][0][3] == "w8a8"


def test_scenario_tables_one_column_per_precision_set(engines) -> None:
    """With set names (summary.json's variants), one column per set, whatever the algorithms."""
    plain, wide = engines
    s = _summary({"max/per_channel/a": plain, "max/per_channel/b": wide, "mse/per_channel/a": plain,
                  "mse/per_channel/b": wide})
    s["variants"] = [{"name": n, "precision": n.rsplit("/", 1)[1]} for n in
                     ("max/per_channel/a", "max/per_channel/b", "mse/per_channel/a", "mse/per_channel/b")]
    cols = precision_columns(s)
    assert [h for h, _ in cols] == ["precision a", "precision b"] and cols[1][1][WIDE] == "w8a8>a16"


def test_scenario_tables_one_column_per_variant_when_widths_differ(engines) -> None:
    plain, wide = engines
    s = _summary({"mse/per_channel/all-int8": plain, "mse/per_channel/int16": wide})
    assert [h for h, _ in precision_columns(s)] == ["precision mse/per_channel/all-int8",
                                                    "precision mse/per_channel/int16"]
    lines = summary_lines(s)[2:3 + len(plain.net.layers)]
    assert _column(lines, "precision mse/per_channel/int16")[WIDE] == "w8a8>a16"
    assert _column(lines, "precision mse/per_channel/all-int8")[WIDE] == "w8a8"
    html = _layer_table(s)
    assert html["fixed"] == 5 and html["rows"][HOSTED][3:5] == ["w8a8", "host"]
    rows = list(csv.DictReader(io.StringIO(layers_csv(s))))
    by = {(r["variant"], int(r["index"])): r["precision"] for r in rows if r["mode"] == "int"}
    assert by[("mse/per_channel/int16", WIDE)] == "w8a8>a16" and by[("mse/per_channel/all-int8", WIDE)] == "w8a8"
    assert by[("mse/per_channel/int16", HOSTED)] == "host"


def test_float_only_scenario_has_no_precision_column() -> None:
    s = {"layers": [], "images": [{"name": "a"}], "cycles": {"layers": [{"index": 0, "type": "convolutional"}]}}
    assert precision_columns(s) == []
    rows = list(csv.DictReader(io.StringIO(layers_csv(s))))
    assert rows[0]["precision"] == ""  # the CSV keeps its columns; the cell is empty


def test_isolated_table_says_host_for_a_layer_sent_to_the_host(engines) -> None:
    _, wide = engines
    rows = isolated_errors(wide, _x(wide))
    assert rows[HOSTED].isolated is None and rows[WIDE].isolated is not None
    cells = isolated_lines(rows, 20.0)[1 + HOSTED].split()  # idx, type, precision, cumulative, isolated
    assert cells[2] == "host" and cells[4] == "host" and len(cells) == 5


def test_step_session_layer_view_names_the_widths(engines) -> None:
    """What `dla step`'s info and the web STEP page's layer table show (Session.layer)."""
    from dla.session import Session

    plain, wide = engines
    s = Session(wide, _x(wide), mode="int")
    s.run_to(WIDE)
    assert s.layer["precision"] == "w8a8>a16" and s.layer["host"] is False
    s.run_to(HOSTED)
    assert s.layer["precision"] == "host" and s.layer["host"] is True
    f = Session(Engine(plain.net, None, HardwareConfig()), _x(plain), mode="float")
    f.run_to(0)
    assert "precision" not in f.layer  # a float model: no widths
