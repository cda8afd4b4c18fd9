"""STEP/CROSS sessions, the isolated-error table and the model graph."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dla.compare import isolated_errors
from dla.config import HardwareConfig
from dla.engine import Engine, Mode, quantize_tensor
from dla.graph import graph_data, render
from dla.qnet_file import load_qnet
from dla.session import Session
from golden.errors import UserInputError
from golden.kernels import KERNELS
from golden.layers import Kind
from golden.network import parse_network
from tests.paths import shared_path


def test_edit_changes_exactly_the_receptive_field_and_undo_restores(tiny) -> None:
    net, qnet, x = tiny
    s = Session(qnet, x, "int")
    rec = s.run_to(2)  # layer 2: 3x3 conv, pad 1, stride 1
    original = rec.output.copy()
    w = s.weights
    new_value = 127 if w[5, 0, 1, 1] != 127 else -127
    s.edit_weights(index=(5, 0, 1, 1), value=new_value)
    d = s.rerun()
    assert d.n_changed > 0
    assert set(d.changed[:, 0].tolist()) == {5}  # only output channel 5 can change
    # the centre tap reads input channel 0 at the same position: changed positions are where it is non-zero
    xin = s.input[0]
    possible = set(map(tuple, np.argwhere(xin != 0).tolist()))
    assert set(map(tuple, d.changed[:, 1:].tolist())) <= possible
    s.undo()
    d2 = s.rerun()
    assert np.array_equal(s.output, original) and d2.n_changed == d.n_changed
    assert np.array_equal(s.weights, w)


def test_bad_requests_leave_the_session_unchanged(tiny) -> None:
    net, qnet, x = tiny
    s = Session(qnet, x, "int")
    s.run_to(2)
    before = s.weights.copy()
    with pytest.raises(UserInputError, match="out of range"):
        s.run_to(99)
    with pytest.raises(UserInputError, match=r"\[-127, 127\]"):
        s.edit_weights(index=(0, 0, 0, 0), value=300)
    with pytest.raises(UserInputError, match="has shape"):
        s.edit_weights(array=np.zeros((2, 2), np.int8))
    assert s.index == 2 and np.array_equal(s.weights, before) and not s.edits
    s.run_to(16)  # a yolo layer
    with pytest.raises(UserInputError, match="runs on the host"):
        s.cross()
    with pytest.raises(UserInputError, match="has no weights"):
        _ = s.weights


def test_cross_int_to_float_equals_float_layer_on_dequantized_input(tiny) -> None:
    net, qnet, x = tiny
    s = Session(qnet, x, "int")
    s.run_to(4)
    c = s.cross()
    spec = net.layers[4]
    rec_in = s.records[spec.inputs[0]]
    expected = KERNELS[spec.kind](spec, [rec_in.real], net.params[4])
    assert np.array_equal(c.other_output, expected)
    assert c.other is Mode.FLOAT and np.isfinite(c.metrics.sqnr_db)


def test_cross_continue_changes_the_rest_of_the_run(tiny) -> None:
    net, qnet, x = tiny
    a, b = Session(qnet, x, "int"), Session(qnet, x, "int")
    a.run_to(2)
    b.run_to(2)
    b.cross(continue_from_cross=True)
    a.run()
    b.run()
    assert not np.array_equal(a.records[4].output, b.records[4].output)


def test_float_session_cross_to_int(tiny) -> None:
    net, qnet, x = tiny
    s = Session(qnet, x, "float")
    s.run_to(0)
    c = s.cross()
    plan_out, _ = None, None
    ref = Engine(net, qnet).run(x, "int").records[0]  # layer 0 reads the network input: same input
    assert np.array_equal(c.other_output, ref.real)


def test_save_reload_and_export(tiny, tmp_path: Path) -> None:
    net, qnet, x = tiny
    s = Session(qnet, x, "int")
    s.run_to(6)
    s.edit_weights(scale_channel=(1, 0.5))
    s.rerun()
    s.run()
    s.save(tmp_path / "sess")
    meta, arrays = Session.load_saved(tmp_path / "sess")
    assert meta["edits"][0]["description"] == "channel 1 scaled by 0.5"
    for i, rec in s.records.items():
        assert np.array_equal(arrays[i], rec.output)
    s.export_qnet(tmp_path / "edited.qnet")
    q2, hw2, _ = load_qnet(tmp_path / "edited.qnet")
    run = Engine(q2.net, q2, hw2).run(x, "int")
    for i, rec in s.records.items():
        assert np.array_equal(run.records[i].output, rec.output)
    assert not np.array_equal(q2.layers[6].w_q, qnet.layers[6].w_q)  # the caller's model is untouched


def test_isolated_errors_separate_own_from_inherited(tiny) -> None:
    net, qnet, x = tiny
    rows = isolated_errors(Engine(net, qnet), x, threshold_db=20.0)
    assert len(rows) == len(net.layers)
    deep = [r for r in rows if r.isolated and r.spec.index > 10]
    # deep layers inherit error: their cumulative SQNR is below their own isolated SQNR
    assert any(r.cumulative.sqnr_db < r.isolated.sqnr_db for r in deep)
    host = [r for r in rows if r.spec.kind is Kind.YOLO]
    assert host and all(r.isolated is None for r in host)
    print("\n" + "\n".join(f"{r.spec.index:>3} {r.spec.kind.value:<14} cumulative {r.cumulative.sqnr_db:5.1f} dB  "
                           f"isolated {r.isolated.sqnr_db if r.isolated else float('nan'):5.1f} dB" for r in rows))


@pytest.mark.parametrize("name", ["pjreddie/yolov3-tiny.cfg", "AlexeyAB/yolov4-tiny.cfg"])
def test_graph_edges_equal_cfg_references(name: str) -> None:
    net = parse_network(shared_path("darknet-cfg", *name.split("/")))
    data = graph_data(net)
    edges = {(e["from"], e["to"]) for e in data["edges"]}
    expected = {(i, s.index) for s in net.layers for i in s.inputs}
    assert edges == expected and len(data["edges"]) == len(expected)
    refs = {(i, s.index) for s in net.layers if s.kind in (Kind.ROUTE, Kind.SHORTCUT) for i in s.inputs}
    assert refs <= {(e["from"], e["to"]) for e in data["edges"] if e["kind"] in ("route", "shortcut")}
    assert len(data["nodes"]) == len(net.layers) + 1


def test_graph_renders_svg(tmp_path: Path) -> None:
    net = parse_network(shared_path("darknet-cfg", "pjreddie", "yolov3-tiny.cfg"))
    out = render(net, tmp_path / "g.svg", {s.index: float(s.macs) for s in net.layers}, "MACs")
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "20 route" in text
    json.dumps(graph_data(net))


def test_cross_equals_isolated_error_exactly_at_every_layer(tiny) -> None:
    """One definition of the isolated error: Session.cross() after run_to(L) in INT gives exactly
    (== on the floats) the isolated metrics `dla compare --isolated` reports for L."""
    net, qnet, x = tiny
    engine = Engine(net, qnet)
    rows = isolated_errors(engine, x)
    s = Session(engine, x, "int")
    checked = 0
    for r in rows:
        s.run_to(r.spec.index)
        if r.isolated is None:
            with pytest.raises(UserInputError, match="nothing to cross"):
                s.cross()
            continue
        assert s.cross().metrics == r.isolated, r.spec.index
        checked += 1
    assert checked == sum(r.isolated is not None for r in rows) > 10
    # and it is not the other candidate definition (INT layer on the FLOAT run's input):
    ref = engine.run(x, Mode.FLOAT)
    spec = net.layers[8]
    from dla.compare import cross_layer

    other_def = cross_layer(engine, spec, Mode.FLOAT, ref.records, x).metrics
    assert other_def != rows[8].isolated


def test_step_cli_cross_prints_the_compare_isolated_number(tiny, tmp_path: Path) -> None:
    """`dla step` → cross at layer L and `dla compare --isolated --json` give the same SQNR."""
    from dla.qnet_file import save_qnet
    from PIL import Image
    from tests.cli_helpers import run

    net, qnet, x = tiny
    q = tmp_path / "t.qnet"
    save_qnet(qnet, HardwareConfig(), q)
    img = tmp_path / "in.png"
    Image.fromarray((x.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(img)
    res = run("compare", q, img, "--isolated", "--json", tmp_path / "iso.json", "-q")
    assert res.exit_code == 0, res.output
    iso = {r["index"]: r["isolated"] for r in json.loads((tmp_path / "iso.json").read_text())["layers"]}
    script = tmp_path / "cmds.txt"
    script.write_text("goto 12\ncross\n")
    res = run("step", q, img, "--mode", "int", "--script", script, "-q")
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "SQNR" in ln and "cross" in res.output)
    assert f"{iso[12]['sqnr_db']:.2f}" in res.output, (line, iso[12])
