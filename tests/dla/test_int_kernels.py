"""Every INT kernel (``dla.int_kernels.INT_KERNELS``) against the slow plain-integer reference
(``tests/reference/int_kernels_ref.py``), bit for bit, under every arithmetic variant of the
``HardwareConfig``.

Layers come from tiny cfg texts through the real parser (``golden.network.parse_network``);
plans from ``dla.int_kernels.build_plan`` on a hand-made ``QuantizedNetwork`` (random int8
weights in [−127, 127], int32 biases, random scales); inputs are random int8 in [−128, 127].
The reference receives the same encoded integers (``plan.rq.mult``/``.shift`` …) and the
``QuantLayer``'s int8 weights and biases and recomputes the datapath in Python ints, so an
equality checks the integer datapath; :func:`test_encode_gemmlowp_is_tflite_quantize_multiplier`
checks the encoding itself.  Every comparison is ``np.array_equal`` (never a tolerance), and the
``LayerStats`` counts (accumulator overflows, int8 saturations) must equal the reference's.
Randomness is seeded numpy: every run draws the same cases.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from dla.config import HardwareConfig
from dla.engine import Engine
from dla.int_kernels import INT_KERNELS, build_plan, exact_int_gemm
from dla.requant import encode
from golden.errors import UnsupportedError, UserInputError
from golden.kernels import KERNELS
from golden.layers import ConnectedSpec, ConvSpec, Kind, ShortcutSpec
from golden.network import LayerParams, Network
from quant.qnet import QuantizedNetwork, QuantLayer
from tests.dla.int_kernel_helpers import (ACTIVATIONS, HW_VARIANTS, INT32_MAX, INT32_MIN, VARIANT_IDS, _hw_for, _seed,
                                         _table_scales, assert_same, p2, quant_layer, random_conv, random_int8,
                                         run_kernel)
from tests.net_helpers import net_from_cfg, net_header
from tests.reference import int_kernels_ref as ref

# --------------------------------------------------------------------------- encoding


def test_encode_gemmlowp_is_tflite_quantize_multiplier() -> None:
    """``dla.requant.encode`` gives exactly TFLite ``QuantizeMultiplier``'s ``(M0, shift)`` for the
    gemmlowp scheme (independent frexp-based encoder), the clamped single-rounding values, and the
    16-bit multipliers (same frexp rule, flush below shift −31)."""
    rng = np.random.default_rng(_seed("encode"))
    reals = list(2.0 ** rng.uniform(-40, 40, size=3000))
    reals += [0.0, 0.5, 1.0, 2.0, 3.0, 0.75, 1 - 2**-40, 1 - 2**-32, 1 - 2**-31, 0.5 + 2**-33,
              2.0**-31, 2.0**-32, 2.0**-31 * (1 - 2**-40), 2.0**-32 * (1 - 2**-40), 2.0**30, 2.0**31, 2.0**40,
              1e-3, 0.1, 1.0 / 3, 123.456]
    gem = encode(np.array(reals), HardwareConfig())
    single = encode(np.array(reals), HardwareConfig(requant="single_round"))
    for i, r in enumerate(reals):
        assert (int(gem.mult[i]), int(gem.shift[i])) == ref.quantize_multiplier(r), r
        assert (int(single.mult[i]), int(single.shift[i])) == ref.quantize_multiplier_single_round(r), r
    narrow = encode(np.array(reals), HardwareConfig(multiplier_bits=16))
    for i, r in enumerate(reals):
        assert (int(narrow.mult[i]), int(narrow.shift[i])) == ref.quantize_multiplier(r, 16), r
    assert ref.quantize_multiplier(0.5) == (2**30, 0)
    assert ref.quantize_multiplier(1 - 2**-40) == (2**30, 1)


def test_encode_scale_shift_is_most_precise_fit() -> None:
    """scale_shift encoding: ``scaling`` fits ``multiplier_bits`` (signed), ``shift`` fits
    ``shift_bits``, ``scaling = round_half_away(real·2^shift)``, and no larger shift would fit."""
    hw = HW_VARIANTS["scale_shift"]
    rng = np.random.default_rng(_seed("scale_shift"))
    reals = 2.0 ** rng.uniform(-30, 14, size=500)
    rq = encode(reals, hw)
    limit = 2 ** (hw.multiplier_bits - 1) - 1
    for r, m, s in zip(reals, rq.mult.tolist(), rq.shift.tolist()):
        assert 0 <= s <= 2**hw.shift_bits - 1 and 0 < m <= limit, (r, m, s)
        assert m == ref.round_half_away(Fraction(float(r)) * 2**s), (r, m, s)
        if s < 2**hw.shift_bits - 1:
            assert ref.round_half_away(Fraction(float(r)) * 2 ** (s + 1)) > limit, (r, m, s)


# --------------------------------------------------------------------------- conv / connected


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_conv_int_matches_reference(variant: str) -> None:
    """Random conv layers (groups incl. depthwise, stride_x ≠ stride_y, padding, kernel 1/3, odd
    sizes, C not a multiple of 8), every activation, per-tensor and per-channel weight scales,
    occasional extreme biases/inputs/weights and multipliers ≥ 1: output and counts equal the reference."""
    rng = np.random.default_rng(_seed("conv", variant))
    for case in range(50):
        act = ACTIVATIONS[case % len(ACTIVATIONS)]
        gran = "per_channel" if case % 2 else "per_tensor"
        hw = _hw_for(HW_VARIANTS[variant], act)
        net, qnet, x = random_conv(rng, act, gran)
        spec = net.layers[0]
        out, stats = run_kernel(spec, [x], qnet, hw)
        plan = build_plan(spec, qnet, hw)
        ql = qnet.layers[0]
        want, want_stats = ref.conv(spec, x, ql.w_q, ql.b_q, plan, hw)
        assert_same(out, stats, want, want_stats, f"{variant} case {case} {spec}")


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_connected_int_matches_reference(variant: str) -> None:
    """Random connected layers on (C, H, W) inputs (flattened C-major), every activation."""
    rng = np.random.default_rng(_seed("connected", variant))
    for case in range(10):
        act = ACTIVATIONS[case % len(ACTIVATIONS)]
        hw = _hw_for(HW_VARIANTS[variant], act)
        c, h, w = (int(v) for v in rng.integers(1, 8, size=3))
        n = int(rng.integers(1, 20))
        net = net_from_cfg(net_header(c, h, w) + f"[connected]\noutput={n}\nactivation={act}\n")
        spec = net.layers[0]
        assert isinstance(spec, ConnectedSpec)
        pow2 = bool(rng.random() < 0.35)
        s_in = p2(rng, -8, -2, pow2)
        gran = "per_channel" if case % 2 else "per_tensor"
        ql, s_out = quant_layer(rng, spec, s_in, gran, spec.weight_shape, (np.log2(15), np.log2(250)), pow2)
        qnet = QuantizedNetwork(net, {-1: s_in, 0: s_out}, layers={0: ql}, granularity=gran)
        if act == "logistic":
            _table_scales(qnet, 0)
        x = random_int8(rng, net.input_shape)
        out, stats = run_kernel(spec, [x], qnet, hw)
        want, want_stats = ref.connected(spec, x, ql.w_q, ql.b_q, build_plan(spec, qnet, hw), hw)
        assert_same(out, stats, want, want_stats, f"{variant} case {case}")


def _overflow_conv(hw: HardwareConfig) -> tuple[ConvSpec, QuantizedNetwork, np.ndarray]:
    """3×3 pad 1 conv on a 3×5×5 all-127 input: channel 0 has all weights +127 (every accumulator
    ≥ 4·3·127² = 193548 > 32767), channel 1 all −127 (every one < −32768), channel 2 all 1
    (|acc| ≤ 3429, never overflows), channel 3 is +127 on input channel 0's centre tap only
    (acc = 16129, fits) with bias 20000 (sum 36129 overflows).  Multiplier 1/2048."""
    net = net_from_cfg(net_header(3, 5, 5) + "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=linear\n")
    spec = net.layers[0]
    w = np.zeros((4, 3, 3, 3), dtype=np.int8)
    w[0], w[1], w[2] = 127, -127, 1
    w[3, 0, 1, 1] = 127
    b = np.array([0, 0, 0, 20000], dtype=np.int64)
    s_in, ws = 0.05, 0.01
    ql = QuantLayer(0, w, np.full(4, ws), b, np.zeros(4), np.zeros(w.shape))
    qnet = QuantizedNetwork(net, {-1: s_in, 0: s_in * ws * 2048}, layers={0: ql})
    return spec, qnet, np.full((3, 5, 5), 127, dtype=np.int8)


@pytest.mark.parametrize("mode", ["saturate", "wrap"])
@pytest.mark.parametrize("requant", ["gemmlowp", "single_round", "scale_shift"])
def test_acc16_overflow_is_counted_and_resolved_as_configured(mode: str, requant: str) -> None:
    """A layer that certainly overflows a 16-bit accumulator: the overflow count is exactly the
    75 accumulators of channels 0, 1 and 3; with ``saturate`` they become ±32767/−32768 (outputs
    16 and −16 after ×1/2048), with ``wrap`` the two's-complement residue; all equal the reference."""
    extra = {"multiplier_bits": 16, "shift_bits": 6} if requant == "scale_shift" else {}
    hw = HardwareConfig(acc_bits=16, acc_overflow=mode, requant=requant, **extra)
    spec, qnet, x = _overflow_conv(hw)
    out, stats = run_kernel(spec, [x], qnet, hw)
    want, want_stats = ref.conv(spec, x, qnet.layers[0].w_q, qnet.layers[0].b_q, build_plan(spec, qnet, hw), hw)
    assert_same(out, stats, want, want_stats, f"acc16 {mode} {requant}")
    assert stats.overflow == want_stats.overflow == 3 * 25
    assert stats.saturated == 0
    # exact accumulators of the 3x3 pad-1 conv on a constant 5x5: taps per position 4, 6 or 9
    taps = np.array([[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]])
    exact0 = 3 * taps * 127 * 127
    if mode == "saturate":
        assert np.all(out[0] == 16) and np.all(out[1] == -16) and np.all(out[3] == 16)
    else:
        def requant(a: np.ndarray) -> np.ndarray:
            return np.array([[ref.round_div(int(v), 2048, "half_away") for v in row] for row in a])
        wrapped = (exact0 + 2**15) % 2**16 - 2**15
        assert np.all(np.abs(out[0] - requant(wrapped)) <= 1)  # the wrapped value, up to the rounding mode
        assert np.all(np.abs(out[1] - requant(-wrapped)) <= 1)
        assert np.all(np.abs(out[3] - ref.round_div(36129 - 65536, 2048, "half_away")) <= 1)
    assert np.all(out[2] == np.vectorize(lambda v: ref.round_div(int(v), 2048, "half_away"))(3 * taps * 127))


def test_acc32_overflow_with_extreme_bias() -> None:
    """At the default 32-bit accumulator, ``bias = INT32_MAX`` plus a positive sum overflows; the
    count equals the number of positive sums and the accumulator saturates (output 127)."""
    net = net_from_cfg(net_header(2, 3, 3) + "[convolutional]\nfilters=2\nsize=1\nstride=1\nactivation=linear\n")
    spec = net.layers[0]
    x = np.array([[[1, 0, -1], [2, 0, -2], [3, 0, -3]], [[0] * 3] * 3], dtype=np.int8)
    w = np.array([[[[1]], [[0]]], [[[-1]], [[0]]]], dtype=np.int8)
    b = np.array([INT32_MAX, INT32_MIN], dtype=np.int64)
    ql = QuantLayer(0, w, np.full(2, 0.01), b, np.zeros(2), np.zeros(w.shape))
    qnet = QuantizedNetwork(net, {-1: 0.1, 0: 0.001 * 2**20}, layers={0: ql})
    for variant in ("gemmlowp", "single_round", "scale_shift", "gemmlowp-leftwrap"):
        hw = HW_VARIANTS[variant]
        out, stats = run_kernel(spec, [x], qnet, hw)
        want, want_stats = ref.conv(spec, x, w, b, build_plan(spec, qnet, hw), hw)
        assert_same(out, stats, want, want_stats, variant)
        assert stats.overflow == 6  # three positive sums on channel 0, three on channel 1 (−x)


# --------------------------------------------------------------------------- pooling and data movement


def test_maxpool_int_matches_reference() -> None:
    """Darknet maxpool windows (size 1–4, stride_x/stride_y 1–3, padding 0..2·size−2, i.e. windows
    hanging over every border) on int8 incl. −128: exact, no events."""
    rng = np.random.default_rng(_seed("maxpool"))
    hw = HardwareConfig()
    for case in range(80):
        c, h, w = int(rng.integers(1, 6)), int(rng.integers(1, 10)), int(rng.integers(1, 10))
        size = int(rng.integers(1, 5))
        sx, sy = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        padding = int(rng.integers(0, max(1, 2 * size - 1)))
        if h + padding < size or w + padding < size:
            continue
        net = net_from_cfg(net_header(c, h, w) + f"[maxpool]\nsize={size}\nstride_x={sx}\nstride_y={sy}\n"
                           f"padding={padding}\n")
        spec = net.layers[0]
        qnet = QuantizedNetwork(net, {-1: 0.1, 0: 0.1})
        x = random_int8(rng, net.input_shape)
        out, stats = run_kernel(spec, [x], qnet, hw)
        assert_same(out, stats, ref.maxpool(spec, x), ref.RefStats(), f"maxpool case {case} {spec}")


def test_upsample_and_reorg_int_match_reference() -> None:
    """Upsample (nearest, stride 1–3) and Darknet's legacy reorg index mapping (stride 1–3): exact."""
    rng = np.random.default_rng(_seed("upsample-reorg"))
    hw = HardwareConfig()
    for case in range(12):
        c, h, w, s = int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(1, 4))
        net = net_from_cfg(net_header(c, h, w) + f"[upsample]\nstride={s}\n")
        x = random_int8(rng, net.input_shape)
        out, stats = run_kernel(net.layers[0], [x], QuantizedNetwork(net, {-1: 0.1, 0: 0.1}), hw)
        assert_same(out, stats, ref.upsample(net.layers[0], x), ref.RefStats(), f"upsample {case}")
    for case in range(12):
        s = int(rng.integers(1, 4))
        c = s * s * int(rng.integers(1, 4))
        h, w = s * int(rng.integers(1, 5)), s * int(rng.integers(1, 5))
        net = net_from_cfg(net_header(c, h, w) + f"[reorg]\nstride={s}\n")
        x = random_int8(rng, net.input_shape)
        out, stats = run_kernel(net.layers[0], [x], QuantizedNetwork(net, {-1: 0.1, 0: 0.1}), hw)
        assert_same(out, stats, ref.reorg(net.layers[0], x), ref.RefStats(), f"reorg {case}")


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_route_int_matches_reference(variant: str) -> None:
    """Route of 1–3 inputs with groups/group_id; each input's scale equals the output's (copied)
    or not (rescaled by its own requantizer, multipliers 1/8…8 incl. left shifts), saturations counted."""
    rng = np.random.default_rng(_seed("route", variant))
    hw = HW_VARIANTS[variant]
    for case in range(12):
        n_in = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 1, 2, 3]))
        group_id = int(rng.integers(0, groups))
        chans = [groups * int(rng.integers(1, 5)) for _ in range(n_in)]
        h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        text = net_header(3, h, w)
        for c in chans:  # layer i: a 1x1 conv on the previous layer (shape (c, h, w))
            text += f"[convolutional]\nfilters={c}\nsize=1\nactivation=linear\n\n"
        order = [int(v) for v in rng.permutation(n_in)]
        text += f"[route]\nlayers={','.join(map(str, order))}\ngroups={groups}\ngroup_id={group_id}\n"
        net = net_from_cfg(text)
        spec = net.layers[n_in]
        pow2 = bool(rng.random() < 0.35)
        s_out = p2(rng, -6, -2, pow2)
        scales = {-1: 0.1, n_in: s_out}
        for i in range(n_in):
            scales[i] = s_out if rng.random() < 0.3 else s_out * p2(rng, -3, 3, pow2)
        qnet = QuantizedNetwork(net, scales)
        inputs = [random_int8(rng, net.layers[i].out_shape) for i in spec.inputs]
        out, stats = run_kernel(spec, inputs, qnet, hw)
        want, want_stats = ref.route(spec, inputs, build_plan(spec, qnet, hw), hw)
        assert_same(out, stats, want, want_stats, f"{variant} route case {case} {spec}")


SHORTCUT_TOPOLOGIES = (
    # (cfg body after [net], index of the shortcut); every conv is 1x1 linear on the layer before
    ("[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[shortcut]\nfrom=-2\nactivation={act}\nalpha={alpha}\nbeta={beta}\n", 2),
    # channels differ: only min(C) channels add
    ("[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[convolutional]\nfilters={b}\nsize=1\nactivation=linear\n\n"
     "[shortcut]\nfrom=-2\nactivation={act}\nalpha={alpha}\nbeta={beta}\n", 2),
    # from is larger (stride 2 sampling of the from layer)
    ("[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[convolutional]\nfilters={b}\nsize=1\nstride=2\nactivation=linear\n\n"
     "[shortcut]\nfrom=-2\nactivation={act}\nalpha={alpha}\nbeta={beta}\n", 2),
    # from is smaller (added at every second position of the output)
    ("[convolutional]\nfilters={a}\nsize=1\nstride=2\nactivation=linear\n\n"
     "[upsample]\nstride=2\n\n"
     "[shortcut]\nfrom=-2\nactivation={act}\nalpha={alpha}\nbeta={beta}\n", 2),
    # two from layers, equal shapes
    ("[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[convolutional]\nfilters={a}\nsize=1\nactivation=linear\n\n"
     "[shortcut]\nfrom=-2,-3\nactivation={act}\n", 3),
)


def _shortcut_case(rng: np.random.Generator, topo: int, act: str) -> tuple[ShortcutSpec, QuantizedNetwork, list[np.ndarray]]:
    """A random shortcut of topology ``topo`` with random channels, scales, alpha/beta and int8 inputs."""
    body, idx = SHORTCUT_TOPOLOGIES[topo]
    a, b = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    pow2 = bool(rng.random() < 0.35)
    alpha, beta = (1.0, 1.0) if rng.random() < 0.5 else (p2(rng, -1.5, 1, pow2), p2(rng, -1.5, 1, pow2))
    side = 2 * int(rng.integers(1, 5))  # even sides: stride-2 layers halve exactly
    net = net_from_cfg(net_header(3, side, side) + body.format(a=a, b=b, act=act, alpha=alpha, beta=beta))
    spec = net.layers[idx]
    assert spec.kind is Kind.SHORTCUT
    scales = {-1: 0.1}
    for i in range(idx):
        scales[i] = p2(rng, -7, -2, pow2)
    if net.layers[idx - 1].kind is Kind.UPSAMPLE:
        scales[idx - 1] = scales[idx - 2]
    s_sum = abs(alpha) * scales[spec.inputs[0]] + sum(abs(beta) * scales[i] for i in spec.inputs[1:])
    scales[idx] = p2(rng, -1.5, 0.5, pow2) * (2.0 ** np.round(np.log2(s_sum)) if pow2 else s_sum)
    qnet = QuantizedNetwork(net, scales)
    if act == "logistic":
        qnet.pre_act_scales[idx] = 8.0 / 127
        qnet.scales[idx] = 1.0 / 127
    return spec, qnet, [random_int8(rng, net.layers[i].out_shape) for i in spec.inputs]


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_shortcut_int_matches_reference(variant: str) -> None:
    """Shortcut (TFLite ADD in the int32 domain, left shift 20): equal shapes with alpha/beta,
    channel mismatch, larger and smaller ``from``, two ``from`` layers; every activation."""
    rng = np.random.default_rng(_seed("shortcut", variant))
    for case in range(4 * len(SHORTCUT_TOPOLOGIES)):
        act = ACTIVATIONS[case % len(ACTIVATIONS)]
        hw = _hw_for(HW_VARIANTS[variant], act)
        spec, qnet, inputs = _shortcut_case(rng, case % len(SHORTCUT_TOPOLOGIES), act)
        out, stats = run_kernel(spec, inputs, qnet, hw)
        want, want_stats = ref.shortcut(spec, inputs, build_plan(spec, qnet, hw), hw)
        assert_same(out, stats, want, want_stats, f"{variant} shortcut case {case} {spec}")


def test_shortcut_every_allowed_left_shift_stays_int32() -> None:
    """For every ``shortcut_left_shift`` the config accepts, the operands ``q·2^L`` live in the
    int32 domain (DESIGN §4): the kernel equals the reference, which fits them to int32 by
    ``left_shift_overflow``.  (A config that rejects large shifts passes this test too.)"""
    rng = np.random.default_rng(_seed("shortcut-ls"))
    accepted = []
    failures = []
    for ls in range(0, 31):
        for lso in ("saturate", "wrap"):
            try:
                hw = HardwareConfig(shortcut_left_shift=ls, left_shift_overflow=lso)
            except UserInputError:
                continue
            accepted.append(ls)
            spec, qnet, inputs = _shortcut_case(rng, 0, "linear")
            inputs = [np.full_like(inputs[0], 127), np.full_like(inputs[1], -128)]
            inputs[0].flat[0], inputs[1].flat[0] = 100, 100
            out, stats = run_kernel(spec, inputs, qnet, hw)
            want, want_stats = ref.shortcut(spec, inputs, build_plan(spec, qnet, hw), hw)
            if not (np.array_equal(out, want) and stats.saturated == want_stats.saturated):
                failures.append((ls, lso))
    assert 20 in accepted
    assert not failures, f"shortcut_left_shift values whose operands leave int32: {failures}"


def test_shortcut_alpha_scales_only_where_darknet_adds() -> None:
    """Darknet's ``shortcut_cpu`` computes ``out = α·out + β·from`` only at the positions a smaller
    ``from`` reaches (``out[k][j·sample][i·sample]``); every other position keeps ``prev`` unscaled
    (as ``golden.kernels.shortcut`` does).  With power-of-two scales, α = 0.5 and even ``prev``
    values every step is exact, so the INT output must be exactly those integers."""
    net = net_from_cfg(net_header(3, 4, 4) + "[convolutional]\nfilters=2\nsize=1\nstride=2\nactivation=linear\n\n"
                       "[upsample]\nstride=2\n\n[shortcut]\nfrom=-2\nalpha=0.5\nactivation=linear\n")
    spec = net.layers[2]
    s = 2.0**-4
    qnet = QuantizedNetwork(net, {-1: 0.1, 0: s, 1: s, 2: s})
    prev = (2 * np.arange(-16, 16)).reshape(2, 4, 4).astype(np.int8)
    frm = np.array([[[1, 2], [3, 4]], [[-1, -2], [-3, -4]]], dtype=np.int8)
    want = prev.astype(np.int64)  # Darknet: unvisited positions keep prev
    for k in range(2):
        for j in range(2):
            for i in range(2):
                want[k, 2 * j, 2 * i] = prev[k, 2 * j, 2 * i] // 2 + frm[k, j, i]
    for variant in ("gemmlowp", "single_round", "scale_shift"):
        out, _ = run_kernel(spec, [prev, frm], qnet, HW_VARIANTS[variant])
        assert np.array_equal(out, want), (variant, out[0].tolist(), want[0].tolist())


def test_shortcut_two_froms_with_alpha_keeps_every_operand() -> None:
    """``[shortcut] from=-2,-3 alpha=0.5``: the golden float kernel applies ``out = α·out + β·from``
    once per ``from`` (``α²·prev + α·β·f1 + β·f2``).  Darknet itself has no such layer (pjreddie:
    one ``from``; AlexeyAB: no α/β), so INT mode may refuse it (``UnsupportedError``) — but if it
    runs it, no operand may be lost: with power-of-two scales and values chosen so every step is
    exact, the INT output must equal the golden result exactly."""
    net = net_from_cfg(net_header(3, 2, 2) + "".join(
        "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n\n" for _ in range(3))
        + "[shortcut]\nfrom=-2,-3\nalpha=0.5\nactivation=linear\n")
    spec = net.layers[3]
    s = 2.0**-4
    qnet = QuantizedNetwork(net, {-1: 0.1, 0: s, 1: s, 2: s, 3: s})
    prev = (4 * np.arange(-4, 4)).reshape(2, 2, 2).astype(np.int8)  # inputs: (prev=2, from 1, from 0)
    f1 = (2 * np.arange(1, 9)).reshape(2, 2, 2).astype(np.int8)
    f2 = np.arange(-3, 5).reshape(2, 2, 2).astype(np.int8)
    inputs = [prev, f1, f2]
    assert spec.inputs == (2, 1, 0)
    golden = KERNELS[Kind.SHORTCUT](spec, [x.astype(np.float32) * np.float32(s) for x in inputs], None) / s
    want = (prev.astype(np.int64) // 4 + f1 // 2 + f2)  # 0.25·prev + 0.5·f1 + f2, all exact
    assert np.array_equal(golden, want)
    for variant in ("gemmlowp", "single_round", "scale_shift"):
        hw = HW_VARIANTS[variant]
        try:
            plan = build_plan(spec, qnet, hw)
        except UnsupportedError:
            continue
        out, _ = INT_KERNELS[spec.kind](spec, inputs, plan, hw)
        assert np.array_equal(out, want), (variant, out.tolist(), want.tolist())


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_avgpool_int_matches_reference(variant: str) -> None:
    """Global avgpool: exact int sum requantized by ``s_x/(H·W·s_y)``, saturations counted."""
    rng = np.random.default_rng(_seed("avgpool", variant))
    hw = HW_VARIANTS[variant]
    for case in range(12):
        c, h, w = int(rng.integers(1, 9)), int(rng.integers(1, 12)), int(rng.integers(1, 12))
        net = net_from_cfg(net_header(c, h, w) + "[avgpool]\n")
        pow2 = bool(rng.random() < 0.35)
        s_in = p2(rng, -7, -2, pow2)
        qnet = QuantizedNetwork(net, {-1: s_in, 0: s_in * p2(rng, -4, 1, pow2)})
        x = random_int8(rng, net.input_shape)
        out, stats = run_kernel(net.layers[0], [x], qnet, hw)
        want, want_stats = ref.avgpool(net.layers[0], x, build_plan(net.layers[0], qnet, hw), hw)
        assert_same(out, stats, want, want_stats, f"{variant} avgpool case {case}")


@pytest.mark.parametrize("variant", ["gemmlowp", "single_round", "scale_shift", "leaky_shift"])
def test_scale_channels_int_matches_reference(variant: str) -> None:
    """scale_channels (per channel and ``scale_wh``): int8×int8 products requantized and activated."""
    rng = np.random.default_rng(_seed("scale_channels", variant))
    for case in range(8):
        act = ACTIVATIONS[case % len(ACTIVATIONS)]
        hw = _hw_for(HW_VARIANTS[variant], act)
        c, h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        wh = case % 2 == 1
        second = "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n" if wh else "[avgpool]\n"
        net = net_from_cfg(net_header(3, h, w) + f"[convolutional]\nfilters={c}\nsize=1\nactivation=linear\n\n"
                           f"{second}\n[scale_channels]\nfrom=0\nscale_wh={int(wh)}\nactivation={act}\n")
        spec = net.layers[2]
        pow2 = bool(rng.random() < 0.35)
        sa, sb = p2(rng, -7, -2, pow2), p2(rng, -7, -2, pow2)
        qnet = QuantizedNetwork(net, {-1: 0.1, 0: sb, 1: sa, 2: sa * sb * 128 * p2(rng, -1, 7, pow2)})
        if act == "logistic":
            qnet.pre_act_scales[2] = 8.0 / 127
            qnet.scales[2] = 1.0 / 127
        inputs = [random_int8(rng, net.layers[i].out_shape) for i in spec.inputs]
        out, stats = run_kernel(spec, inputs, qnet, hw)
        want, want_stats = ref.scale_channels(spec, inputs, build_plan(spec, qnet, hw), hw)
        assert_same(out, stats, want, want_stats, f"{variant} scale_channels case {case}")


# --------------------------------------------------------------------------- exact GEMM


@pytest.mark.parametrize("k", [1, 7, 1023, 1024, 1025, 2048, 3000, 4097, 5000])
def test_exact_int_gemm_equals_int64_matmul(k: int) -> None:
    """The float-GEMM exactness claim: ``exact_int_gemm`` on int8-valued float32 operands equals
    an int64 ``np.matmul``, for random data and for the worst cases (−127·−128 and 127·127
    everywhere, and mixed signs), with inner dimensions across the 1024-chunk boundaries up to 5000."""
    rng = np.random.default_rng(_seed("gemm", k))
    n, p = 9, 13
    cases = [
        (rng.integers(-127, 128, size=(n, k)), rng.integers(-128, 128, size=(k, p))),
        (np.full((n, k), -127), np.full((k, p), -128)),
        (np.full((n, k), 127), np.full((k, p), 127)),
        (np.full((n, k), 127), np.full((k, p), -128)),
        (np.where(rng.random((n, k)) < 0.5, 127, -127), np.where(rng.random((k, p)) < 0.5, 127, -128)),
    ]
    for w, col in cases:
        got = exact_int_gemm(w.astype(np.float32), col.astype(np.float32))
        want = np.matmul(w.astype(np.int64), col.astype(np.int64))
        assert np.array_equal(np.asarray(got).astype(np.int64), want)
        assert np.array_equal(np.asarray(got), want.astype(np.float64))  # integral, no rounding at all
    assert int(np.matmul(np.full((1, k), -127, dtype=np.int64), np.full((k, 1), -128, dtype=np.int64))[0, 0]) == k * 16256


# --------------------------------------------------------------------------- engine


YOLO_NET = """[net]
width=9
height=9
channels=3

[convolutional]
filters=6
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=18
size=1
stride=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=1
num=3
"""

ROUTE_NET = """[net]
width=7
height=7
channels=4

[convolutional]
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=8
size=1
stride=1
activation=linear

[shortcut]
from=0
activation=leaky

[convolutional]
filters=6
size=3
stride=1
pad=1
groups=2
activation=relu

[route]
layers=-1,-3

[route]
layers=2
groups=2
group_id=1

[convolutional]
filters=8
size=1
stride=1
activation=linear

[upsample]
stride=2

[reorg]
stride=2

[avgpool]

[connected]
output=5
activation=leaky
"""


def _calibrated_scale(real: np.ndarray, rng: np.random.Generator, pow2: bool) -> float:
    """``max|real| / 127`` times a random factor in [0.7, 1.3] (a little saturation now and then);
    rounded to a power of two when ``pow2``."""
    m = float(np.max(np.abs(real), initial=0.0))
    s = max(m, 1e-3) / 127 * float(rng.uniform(0.7, 1.3))
    return float(2.0 ** np.round(np.log2(s))) if pow2 else s


def calibrated_reference_run(net: Network, hw: HardwareConfig, x: np.ndarray, rng: np.random.Generator,
                             pow2: bool) -> tuple[QuantizedNetwork, dict[int, tuple[np.ndarray, ref.RefStats]]]:
    """Build a ``QuantizedNetwork`` for ``net`` while chaining the reference kernels layer by layer.

    Each conv/connected gets random int8 weights (per-channel scales on odd layers), int32 biases of
    about one accumulator standard deviation, and each tensor a scale "calibrated" on this input:
    the golden float kernel on the dequantized int8 inputs gives the layer's real output, whose
    ``max|·|/127`` (times 0.7–1.3) is the scale; pass-through layers keep their input's scale.  The
    reference output of layer ``i`` depends only on the scales of layers ``≤ i``, so the chained
    reference outputs are final.  Host layers (yolo) are skipped: nothing follows them here.
    """
    scales: dict[int, float] = {-1: _calibrated_scale(x, rng, pow2)}
    qnet = QuantizedNetwork(net, scales)
    outs: dict[int, np.ndarray] = {-1: ref.quantize_input(x, scales[-1])}
    result: dict[int, tuple[np.ndarray, ref.RefStats]] = {}
    for spec in net.layers:
        if spec.kind is Kind.YOLO:
            continue
        ins = [outs[i] for i in spec.inputs]
        reals = [q.astype(np.float32) * np.float32(scales[i]) for q, i in zip(ins, spec.inputs)]
        if isinstance(spec, (ConvSpec, ConnectedSpec)):
            shape = spec.weight_shape
            w_q = rng.integers(-127, 128, size=shape).astype(np.int8)
            n = shape[0]
            w_scale = (np.full(n, p2(rng, -9, -5, pow2)) if spec.index % 2 == 0
                       else p2(rng, -9, -5, pow2) * p2(rng, -1.5, 1.5, pow2, size=n))
            s_in = scales[spec.inputs[0]]
            w_real = (w_q.astype(np.float64) * w_scale.reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.float32)
            linear = dataclasses.replace(spec, activation="linear")
            acc = KERNELS[spec.kind](linear, reals, LayerParams(np.zeros(n, np.float32), w_real))
            acc_int_std = float(np.std(acc)) / (s_in * float(np.mean(w_scale))) + 1.0
            b_q = rng.integers(-int(acc_int_std), int(acc_int_std) + 1, size=n).astype(np.int64)
            b_real = (b_q * s_in * w_scale).astype(np.float32)
            real = KERNELS[spec.kind](spec, reals, LayerParams(b_real, w_real))
            qnet.layers[spec.index] = QuantLayer(spec.index, w_q, w_scale, b_q, b_real.astype(np.float64),
                                                 w_real.astype(np.float64))
            scales[spec.index] = _calibrated_scale(real, rng, pow2)
        elif spec.kind in (Kind.MAXPOOL, Kind.UPSAMPLE, Kind.REORG) or (
                spec.kind is Kind.ROUTE and len(spec.inputs) == 1):
            scales[spec.index] = scales[spec.inputs[0]]
        else:
            scales[spec.index] = _calibrated_scale(KERNELS[spec.kind](spec, reals, None), rng, pow2)
        plan = build_plan(spec, qnet, hw)
        stats = ref.RefStats()
        if spec.kind in (Kind.CONV, Kind.CONNECTED):
            kernel = ref.conv if spec.kind is Kind.CONV else ref.connected
            ql = qnet.layers[spec.index]
            out, stats = kernel(spec, ins[0], ql.w_q, ql.b_q, plan, hw)
        elif spec.kind is Kind.MAXPOOL:
            out = ref.maxpool(spec, ins[0])
        elif spec.kind is Kind.ROUTE:
            out, stats = ref.route(spec, ins, plan, hw)
        elif spec.kind is Kind.SHORTCUT:
            out, stats = ref.shortcut(spec, ins, plan, hw)
        elif spec.kind is Kind.UPSAMPLE:
            out = ref.upsample(spec, ins[0])
        elif spec.kind is Kind.REORG:
            out = ref.reorg(spec, ins[0])
        elif spec.kind is Kind.AVGPOOL:
            out, stats = ref.avgpool(spec, ins[0], plan, hw)
        else:
            raise AssertionError(f"no reference for {spec.kind}")
        outs[spec.index] = out
        result[spec.index] = (out, stats)
    return qnet, result


@pytest.mark.parametrize("variant", ["gemmlowp", "single_round-half_up", "scale_shift", "leaky_shift",
                                     "acc16-wrap"])
@pytest.mark.parametrize("scales", ["random", "pow2"])
@pytest.mark.parametrize("cfg", ["yolo", "route_shortcut"])
def test_engine_int_run_equals_chained_reference(cfg: str, scales: str, variant: str) -> None:
    """``Engine(net, qnet, hw).run(x, "int")`` on conv-leaky → maxpool → conv-linear → yolo, and on a
    shortcut/route(groups)/upsample/reorg/avgpool/connected net: every int8 layer output (and its
    event counts) equals the reference kernels chained layer by layer from the same float input;
    with random scales and with power-of-two scales (every multiplier a rounding shift)."""
    hw = HW_VARIANTS[variant]
    net = net_from_cfg(YOLO_NET if cfg == "yolo" else ROUTE_NET)
    rng = np.random.default_rng(_seed("engine", cfg, scales, variant))
    x = rng.uniform(-1.2, 1.2, size=net.input_shape).astype(np.float32)
    qnet, want = calibrated_reference_run(net, hw, x, rng, scales == "pow2")
    run = Engine(net, qnet, hw).run(x, "int")
    assert set(want) == {i for i, r in run.records.items() if r.scale is not None}
    for spec in net.heads:  # host layer: float, on the dequantized int8 input
        (src,) = spec.inputs
        deq = want[src][0].astype(np.float32) * np.float32(qnet.scales[src])
        assert np.array_equal(run.records[spec.index].output, KERNELS[spec.kind](spec, [deq], None))
    for i, (out, stats) in want.items():
        rec = run.records[i]
        assert rec.output.dtype == np.int8
        assert_same(rec.output, rec.stats, out, stats, f"{cfg}/{variant} layer {i} ({net.layers[i].kind.value})")
    n_distinct = [len(np.unique(out)) for out, _ in want.values()]
    assert min(n_distinct) > 1, "a layer's output is constant: the test would not see much"
