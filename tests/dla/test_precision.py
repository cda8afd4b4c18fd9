"""Per-layer operand widths end to end: spec → quantizer → INT/HYBRID engine → .qnet → errors.

yolov3-tiny at 96×96 with seeded weights (layers 15 and 22 are the linear 1×1 convs feeding the
two [yolo] heads).  The kernels themselves are checked against the plain-integer reference at
every width in ``test_int_widths.py``; here: the spec's choices reach the right tensors, the
engine runs them with the right types, the widths survive a .qnet round trip, and every
unsupported choice is one clear error naming the layer, the width and the config field.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from dla.config import HardwareConfig
from dla.engine import Engine, Mode
from dla.precision import check_precision, worst_case_accumulator
from dla.qnet_file import QnetError, load_qnet, save_qnet
from golden import engine as golden_engine
from golden.errors import UnsupportedError, UserInputError
from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from quant import collect_ranges, quantize
from quant.spec import QuantSpec
from tests.paths import shared_path

HEADS = (15, 22)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("prec")
    text = shared_path("darknet-cfg", "pjreddie", "yolov3-tiny.cfg").read_text()
    cfg = tmp / "yolov3-tiny.cfg"
    cfg.write_text(text.replace("width=416", "width=96").replace("height=416", "height=96"))
    net = random_weights(parse_network(cfg), 5)
    rng = np.random.default_rng(2)
    ranges = collect_ranges(net, [synthetic_image(net.input_shape, rng) for _ in range(2)])
    return net, ranges, synthetic_image(net.input_shape, rng)


def _q(model, **spec):
    net, ranges, _ = model
    return quantize(net, ranges, spec=QuantSpec.from_dict(spec))


def test_int16_heads_reach_only_the_heads(model) -> None:
    """``activation_bits: 16`` on layers 15 and 22: those two tensors are 16-bit on the same
    threshold (scale 127/32767 of the int8 one); the INT run outputs int16 there, int8 on every
    other DLA layer, and the heads' own rounding error shrinks by more than 100x."""
    net, _, x = model
    base = _q(model)
    wide = _q(model, overrides=[{"layers": list(HEADS), "activation_bits": 16}])
    assert wide.bits == {15: 16, 22: 16}
    for h in HEADS:
        assert wide.scales[h] == base.scales[h] * 127 / 32767
        assert wide.precision(net.layers[h]).label == "w8a8>a16"
        assert wide.precision(net.layers[h + 1]).host  # the yolo layer reads it on the host
    runs = {name: Engine(net, q).run(x, Mode.INT) for name, q in (("int8", base), ("int16", wide))}
    for spec in net.layers:
        rec = runs["int16"].records[spec.index]
        if rec.scale is None:
            continue
        assert rec.output.dtype == (np.int16 if spec.index in HEADS else np.int8), spec.index
        if spec.index < 15:  # nothing upstream of the first head changed
            assert np.array_equal(rec.output, runs["int8"].records[spec.index].output)
    for h in HEADS:  # the head's own output error: INT vs the same integer MACs kept in float (HYBRID)
        err = {}
        for name, q in (("int8", base), ("int16", wide)):
            eng, records = Engine(net, q), runs[name].records
            exact = eng.layer(h, Mode.HYBRID, eng.layer_inputs(h, Mode.HYBRID, records, x)).output
            err[name] = float(np.abs(records[h].real - exact).max())
        assert err["int16"] < err["int8"] / 100, (h, err)


def test_pass_through_layers_share_the_width_of_their_group(model) -> None:
    """An override on a maxpool widens its whole scale group (its producer conv too)."""
    net, _, x = model
    q = _q(model, overrides=[{"layers": [1], "activation_bits": 16}])  # 1 = maxpool after conv 0
    assert q.tensor_bits(0) == q.tensor_bits(1) == 16
    assert q.precision(net.layers[2]).pair == "w8a16"
    out = Engine(net, q).run(x, Mode.INT)
    assert out.records[0].output.dtype == out.records[1].output.dtype == np.int16


def test_int4_weights_and_int16_input(model) -> None:
    """``weight_bits: 4`` on every conv but the first; ``input_bits: 16`` and 16-bit weights on
    layer 0 (w16a16): narrow ranges, types, and INT/HYBRID run."""
    net, _, x = model
    q = _q(model, input_bits=16, overrides=[{"types": ["convolutional"], "weight_bits": 4},
                                            {"layers": [0], "weight_bits": 16}])
    assert q.tensor_bits(-1) == 16
    assert q.layers[0].w_bits == 16 and q.layers[0].w_q.dtype == np.int16
    assert np.abs(q.layers[0].w_q).max() > 127
    for i, ql in q.layers.items():
        if i:
            assert ql.w_bits == 4 and ql.w_q.dtype == np.int8 and np.abs(ql.w_q).max() <= 7
    assert q.precision(net.layers[0]).pair == "w16a16" and q.precision(net.layers[2]).pair == "w4a8"
    eng = Engine(net, q)
    assert eng.run(x, Mode.INT).records[0].output.dtype == np.int8
    hyb = eng.run(x, Mode.HYBRID).outputs()
    assert all(np.isfinite(v).all() for v in hyb.values())


def test_host_layer_runs_the_float_kernel_on_its_dequantized_input(model) -> None:
    net, _, x = model
    q = _q(model, overrides=[{"layers": [15], "host": True}])
    assert q.host == frozenset({15}) and q.precision(net.layers[15]).label == "host"
    eng = Engine(net, q)
    assert 15 not in eng.plans()
    run = eng.run(x, Mode.INT)
    rec = run.records[15]
    assert rec.scale is None and rec.output.dtype == np.float32
    inputs = eng.layer_inputs(15, Mode.INT, run.records, x)
    assert inputs[0].dtype == np.float32
    assert np.array_equal(rec.output, golden_engine.layer(net, net.layers[15], inputs))


def test_widths_survive_a_qnet_round_trip(model, tmp_path) -> None:
    net, _, x = model
    q = _q(model, input_bits=16, overrides=[{"layers": list(HEADS), "activation_bits": 16},
                                            {"layers": [0], "weight_bits": 16}, {"layers": [4], "weight_bits": 4},
                                            {"layers": [13], "host": True}])
    hw = HardwareConfig()
    path = save_qnet(q, hw, tmp_path / "m.qnet")
    meta = json.loads((path / "model.json").read_text())
    assert meta["host_layers"] == [13]
    assert {t["index"]: t["bits"] for t in meta["tensors"] if "bits" in t} == {-1: 16, 15: 16, 22: 16}
    back, _, _ = load_qnet(path)
    assert back.bits == q.bits and back.host == q.host
    assert {i: ql.w_bits for i, ql in back.layers.items()} == {i: ql.w_bits for i, ql in q.layers.items()}
    assert back.layers[0].w_q.dtype == np.int16 and np.array_equal(back.layers[0].w_q, q.layers[0].w_q)
    a, b = Engine(net, q).run(x, Mode.INT), Engine(back.net, back).run(x, Mode.INT)
    for i in a.records:
        assert np.array_equal(a.records[i].output, b.records[i].output), i
    again = save_qnet(back, hw, tmp_path / "again.qnet")
    assert (again / "model.json").read_bytes() == (path / "model.json").read_bytes()
    assert (again / "weights.npz").read_bytes() == (path / "weights.npz").read_bytes()


def test_all_int8_qnet_has_no_width_fields(model, tmp_path) -> None:
    """Files without widths are what they were before widths existed."""
    meta = json.loads((save_qnet(_q(model), HardwareConfig(), tmp_path / "m.qnet") / "model.json").read_text())
    assert "host_layers" not in meta and "input_bits" not in meta["spec"]
    assert not any("bits" in t for t in meta["tensors"]) and not any("weight_bits" in e for e in meta["layers"])


def _edit(path, fn) -> None:
    mf = path / "model.json"
    meta = json.loads(mf.read_text())
    fn(meta)
    mf.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit,expect", [
    (lambda m: m["tensors"][3].__setitem__("bits", 12), "layer 2 field 'bits': must be one of 8, 16, got 12"),
    # a string is shown as one: "got 16" would read as if 16 were refused
    (lambda m: m["tensors"][3].__setitem__("bits", "16"), "layer 2 field 'bits': must be one of 8, 16, got '16'"),
    (lambda m: m["layers"][2].__setitem__("weight_bits", "4"), "field 'weight_bits': must be one of 4, 8, 16, got '4'"),
    (lambda m: m["layers"][0].__setitem__("weight_bits", 16), "16-bit weights have shape"),
    (lambda m: m["tensors"][2].__setitem__("bits", 16), "layer 1 field 'bits': is 16-bit, but a maxpool outputs"),
    (lambda m: m.__setitem__("host_layers", [99]), "field 'host_layers': must be a list of layer indices"),
    (lambda m: m["hardware"].__setitem__("passes_w4a8", 0), "w4a8"),
])
def test_bad_widths_in_a_qnet_are_named(model, tmp_path, edit, expect) -> None:
    q = _q(model, overrides=[{"layers": [4], "weight_bits": 4}])
    path = save_qnet(q, HardwareConfig(), tmp_path / "m.qnet")
    _edit(path, edit)
    with pytest.raises(QnetError) as err:
        load_qnet(path)
    assert expect in str(err.value) and "model.json" in str(err.value)


def test_unsupported_pair_names_layer_pair_and_field(model) -> None:
    net, _, x = model
    q = _q(model, input_bits=16)
    with pytest.raises(UnsupportedError, match=r"layer 0 \(convolutional\): w8a16 .* \(passes_w8a16 = 0\)"):
        Engine(net, q, HardwareConfig(passes_w8a16=0)).run(x, Mode.INT)


def test_accumulator_refusal_uses_the_exact_worst_case(model) -> None:
    net, _, _ = model
    q = _q(model, overrides=[{"layers": [0], "weight_bits": 16}])
    ql = q.layers[0]
    worst = worst_case_accumulator(ql.w_q, ql.b_q, 8)
    w = np.abs(ql.w_q.reshape(ql.w_q.shape[0], -1).astype(object)).sum(axis=1)
    assert worst == max(int(a) * 128 + abs(int(b)) for a, b in zip(w, ql.b_q))
    check_precision(q, HardwareConfig(acc_range_check="refuse"))  # 32 bits suffice here...
    assert worst > (1 << 23)
    with pytest.raises(UnsupportedError, match=r"layer 0 \(convolutional\): at w16a8 the worst-case sum .* "
                                               r"acc_bits=24; acc_range_check is 'refuse'"):
        check_precision(q, HardwareConfig(acc_bits=24, acc_range_check="refuse"))
    check_precision(q, HardwareConfig(acc_bits=24))  # ...and 'count' runs and counts


def test_host_layer_without_float_weights_is_refused(model) -> None:
    net, _, _ = model
    q = _q(model, overrides=[{"layers": [15], "host": True}])
    saved = net.params.pop(15)
    try:
        with pytest.raises(UnsupportedError, match="layer 15 .*'host: true'.*no float weights"):
            Engine(net, q).plans()
    finally:
        net.params[15] = saved


def test_shortcut_shift_too_small_for_int16_is_refused(tmp_path) -> None:
    text = ("[net]\nwidth=4\nheight=4\nchannels=2\n\n" + "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n\n" * 2
            + "[shortcut]\nfrom=-2\nactivation=linear\n")
    cfg = tmp_path / "s.cfg"
    cfg.write_text(text)
    net = random_weights(parse_network(cfg), 1)
    rng = np.random.default_rng(0)
    q = quantize(net, collect_ranges(net, [rng.random(net.input_shape, dtype=np.float32)]),
                 spec=QuantSpec.from_dict({"overrides": [{"layers": [0], "activation_bits": 16}]}))
    with pytest.raises(UnsupportedError, match=r"layer 2 \(shortcut\): input 1 is 16-bit; shortcut_left_shift=4"):
        Engine(net, q, HardwareConfig(shortcut_left_shift=4)).plans()


def test_set_weights_keeps_the_layer_width(model) -> None:
    net, _, _ = model
    q = _q(model, overrides=[{"layers": [0], "weight_bits": 16}, {"layers": [2], "weight_bits": 4}])
    eng = Engine(net, q)
    w16 = q.layers[0].w_q.copy()
    w16[0, 0, 0, 0] = 30000
    eng.set_weights(0, w16)
    assert q.layers[0].w_q[0, 0, 0, 0] == 30000
    with pytest.raises(UserInputError, match="16-bit weights are int16, got int8"):
        eng.set_weights(0, w16.astype(np.int8))
    w4 = q.layers[2].w_q.copy()
    w4[0, 0, 0, 0] = 8
    with pytest.raises(UserInputError, match=r"4-bit weights lie in \[-7, 7\]"):
        eng.set_weights(2, w4)


def test_spec_errors_are_one_line() -> None:
    for bad, msg in [({"input_bits": 4}, "'input_bits' must be one of 8, 16, got 4"),
                     ({"overrides": [{"layers": [1], "activation_bits": 16.0}]}, "got 16.0"),
                     ({"overrides": [{"layers": [1], "weight_bits": 2}]}, "'weight_bits' must be one of 4, 8, 16"),
                     ({"overrides": [{"layers": [1], "host": 1}]}, "'host' must be true or false"),
                     ({"overrides": [{"layers": [1], "bits": 8}]}, "unknown override key(s) ['bits']")]:
        with pytest.raises(UserInputError) as err:
            QuantSpec.from_dict(bad)
        assert msg in str(err.value), (bad, str(err.value))


def test_spec_round_trips_widths() -> None:
    d = {"activations": "max", "weights": "max", "granularity": "per_tensor", "percentile": 99.99,
         "input_bits": 16, "overrides": [{"layers": [15, 22], "activation_bits": 16},
                                         {"types": ["convolutional"], "weight_bits": 4}, {"layers": [3], "host": True}]}
    assert QuantSpec.from_dict(d).to_dict() == d
    assert not QuantSpec.from_dict(d).is_all_int8 and QuantSpec().is_all_int8


def test_isolated_errors_and_step_cross_respect_widths(model) -> None:
    """CROSS at an int16 layer continues with int16 codes; a ``host: true`` layer has no
    isolated error (float in every mode), like yolo."""
    from dla.compare import isolated_errors
    from dla.session import Session

    net, _, x = model
    q = _q(model, overrides=[{"layers": [15], "activation_bits": 16}, {"layers": [13], "host": True}])
    rows = isolated_errors(Engine(net, q), x)
    assert rows[13].isolated is None and rows[15].isolated is not None and rows[16].isolated is None
    s = Session(Engine(net, q), x, mode="int")
    s.run_to(15)
    s.cross(continue_from_cross=True)
    rec = s.records[15]
    assert rec.output.dtype == np.int16 and rec.scale == q.scales[15]
    s.run_to(12)
    s.step()  # layer 13, on the host
    with pytest.raises(UserInputError, match="runs on the host"):
        s.cross()
