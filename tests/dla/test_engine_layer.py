"""``Engine.layer`` / ``layer_inputs`` / ``int_tensor`` / ``set_weights``: one layer in one mode,
checked against independent references (round-half-away written out here, int64 sums, the
golden kernels), on a tiny net where a host layer (softmax) feeds the DLA."""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from dla.compare import cross_layer
from dla.engine import Engine, Mode
from dla.int_kernels import INT_KERNELS, build_plan
from dla.session import Session
from golden.engine import forward
from golden.errors import UserInputError
from golden.genweights import random_weights, synthetic_image
from golden.kernels import KERNELS
from golden.network import parse_network
from quant import collect_ranges, quantize
from tests.paths import ROOT

CFG = """[net]
width=8
height=8
channels=3

[convolutional]
filters=4
size=3
stride=1
pad=1
activation=leaky

[softmax]
groups=1

[convolutional]
filters=2
size=1
stride=1
pad=0
activation=linear

[maxpool]
size=2
stride=2
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    cfg = tmp_path_factory.mktemp("net") / "host-feeds-dla.cfg"
    cfg.write_text(CFG)
    net = random_weights(parse_network(cfg), 0)
    xs = [synthetic_image(net.input_shape, np.random.default_rng(s)) for s in range(2)]
    qnet = quantize(net, collect_ranges(net, xs))
    return cfg, net, qnet, xs[0]


def ref_quantize(v: np.ndarray, scale: float) -> np.ndarray:
    """Round half away from zero, saturate to int8 — written out, not ``dla.arith``."""
    t = v.astype(np.float64) / scale
    r = np.where(t >= 0, np.floor(t + 0.5), np.ceil(t - 0.5))
    return np.clip(r, -128, 127).astype(np.int8)


def test_float_run_is_the_golden_forward(tiny) -> None:
    _, net, qnet, x = tiny
    seen: list[int] = []
    run = Engine(net, qnet).run(x, Mode.FLOAT, on_layer=lambda r: seen.append(r.spec.index))
    ref = forward(net, x)
    assert seen == [0, 1, 2, 3]
    for i, rec in run.records.items():
        assert rec.scale is None and rec.seconds >= 0
        assert np.array_equal(rec.output, ref[i])


def test_int_inputs_network_input_and_host_output_are_quantized_with_their_scales(tiny) -> None:
    _, net, qnet, x = tiny
    eng = Engine(net, qnet)
    run = eng.run(x, Mode.INT)
    s = qnet.scales
    assert np.array_equal(eng.int_tensor(-1, run.records, x), ref_quantize(x, s[-1]))
    assert run.records[1].scale is None and run.records[1].output.dtype == np.float32  # softmax: host
    host_q = ref_quantize(run.records[1].output, s[1])
    assert np.array_equal(eng.int_tensor(1, run.records, x), host_q)
    (got,) = eng.layer_inputs(2, Mode.INT, run.records, x)
    assert np.array_equal(got, host_q)
    # the host layer itself reads the dequantized int8 of layer 0
    (host_in,) = eng.layer_inputs(1, Mode.INT, run.records, x)
    assert host_in.dtype == np.float32
    assert np.array_equal(host_in, run.records[0].output.astype(np.float32) * np.float32(s[0]))
    # layer 2 from those inputs: the INT kernel with the layer's plan, output on the layer's scale
    out, stats = INT_KERNELS[net.layers[2].kind](net.layers[2], [host_q], build_plan(net.layers[2], qnet, eng.hw),
                                                  eng.hw)
    rec = eng.layer(2, Mode.INT, [host_q])
    assert np.array_equal(rec.output, out) and rec.scale == s[2] and rec.stats == stats
    assert np.array_equal(run.records[2].output, out)


def test_hybrid_conv_is_int_mac_then_float(tiny) -> None:
    _, net, qnet, x = tiny
    eng = Engine(net, qnet)
    run = eng.run(x, Mode.HYBRID)
    s_x, ql = qnet.scales[1], qnet.layers[2]
    xq = ref_quantize(run.records[1].output, s_x).astype(np.int64)
    acc = np.einsum("oc,cyx->oyx", ql.w_q.reshape(2, 4).astype(np.int64), xq)  # exact int64 sums
    want = (acc.astype(np.float64) * (s_x * ql.w_scale).reshape(-1, 1, 1)
            + ql.b_float.reshape(-1, 1, 1)).astype(np.float32)  # linear activation
    assert np.array_equal(run.records[2].output, want)
    assert np.array_equal(eng.layer(2, Mode.HYBRID, [run.records[1].output]).output, want)


def test_session_steps_and_cross_use_the_engines_inputs(tiny) -> None:
    _, net, qnet, x = tiny
    eng = Engine(net, qnet)
    run = eng.run(x, Mode.INT)
    s = Session(qnet, x, mode="int")
    s.run_to(3)
    for i in range(4):
        assert np.array_equal(s.records[i].output, run.records[i].output)
    crossed = cross_layer(eng, net.layers[2], Mode.INT, run.records, x)
    deq = ref_quantize(run.records[1].output, qnet.scales[1]).astype(np.float32) * np.float32(qnet.scales[1])
    assert np.array_equal(crossed.other_real, KERNELS[net.layers[2].kind](net.layers[2], [deq], net.params[2]))


def test_set_weights_rebuilds_the_plan(tiny) -> None:
    _, net, qnet, x = tiny
    q = copy.deepcopy(qnet)
    eng = Engine(q.net, q)
    run = eng.run(x, Mode.INT)  # plans built
    ins = eng.layer_inputs(2, Mode.INT, run.records, x)
    w = q.layers[2].w_q.copy()
    w[0] = -w[0]
    eng.set_weights(2, w)
    assert np.array_equal(q.layers[2].w_q, w) and q.layers[2].w_q is not w
    fresh = Engine(q.net, q)  # plans built from the edited weights
    got = eng.layer(2, Mode.INT, ins).output
    assert np.array_equal(got, fresh.layer(2, Mode.INT, ins).output)
    assert not np.array_equal(got, run.records[2].output)
    wf = q.net.params[0].weights * np.float32(2)
    eng.set_weights(0, wf)
    assert np.array_equal(q.net.params[0].weights, wf)


def test_bad_requests_name_the_layer(tiny) -> None:
    cfg, net, qnet, x = tiny
    eng = Engine(net, qnet)
    with pytest.raises(UserInputError, match=r"layer 4 is out of range: .* has layers 0\.\.3"):
        eng.layer(4, Mode.FLOAT, [x])
    with pytest.raises(UserInputError, match=r"layer 0 \(convolutional\) reads 1 tensor\(s\), got 2"):
        eng.layer(0, Mode.FLOAT, [x, x])
    with pytest.raises(UserInputError, match=r"layer 0 \(convolutional\) in INT reads int8; input 0 is float32"):
        eng.layer(0, Mode.INT, [x])
    with pytest.raises(UserInputError, match=r"layer 2: weights have shape \(2, 4, 1, 1\), got \(2, 4\)"):
        eng.set_weights(2, np.zeros((2, 4), np.int8))
    with pytest.raises(UserInputError, match="INT mode needs a quantized network"):
        Engine(net).set_weights(2, np.zeros((2, 4, 1, 1), np.int8))
    with pytest.raises(UserInputError, match="HYBRID mode needs a quantized network"):
        Engine(net).layer(0, Mode.HYBRID, [x])


def test_missing_weights_one_message_in_every_float_path(tiny) -> None:
    cfg, _, _, x = tiny
    bare = parse_network(cfg)  # no weights loaded
    msg = r"layer 0 \(convolutional\) has no weights loaded"
    with pytest.raises(UserInputError, match=msg):
        forward(bare, x)
    with pytest.raises(UserInputError, match=msg):
        Engine(bare).run(x, Mode.FLOAT)
    with pytest.raises(UserInputError, match=msg):
        Engine(bare).layer(0, Mode.FLOAT, [x])


def test_faces_do_not_reach_into_the_engine() -> None:
    """Session, compare and the web use the Engine's public methods, not its private members."""
    files = [ROOT / "dla" / "session.py", ROOT / "dla" / "compare.py", *sorted((ROOT / "dla" / "web").glob("*.py")),
             *sorted((ROOT / "dla" / "debugger").glob("*.py"))]
    bad = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files
           for m in re.finditer(r"engine\._\w+", p.read_text())]
    assert len(files) > 4 and bad == []
