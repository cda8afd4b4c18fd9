"""Cross-layer equalization: the float function is unchanged, per-channel ranges become equal
(checked against the closed form sqrt(r1·r2) computed here from the original weights), and only
the chains the method allows are touched."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from golden.engine import forward
from golden.forks import DarknetFork
from golden.genweights import random_weights
from quant.fold import fold_bn
from quant.refine.cle import Pair, equalize, find_pairs
from tests.net_helpers import net_from_cfg, net_header


def _conv(filters: int, size: int, act: str, bn: bool = True, groups: int = 1) -> str:
    return (f"[convolutional]\nbatch_normalize={int(bn)}\nfilters={filters}\nsize={size}\nstride=1\n"
            f"pad=1\ngroups={groups}\nactivation={act}\n\n")


PAIR = net_header(3, 16, 16) + _conv(4, 3, "leaky") + "[maxpool]\nsize=2\nstride=2\n\n" + _conv(5, 3, "leaky")


def _ranges(net, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent of quant.refine: folded weights' max |·| per output / input channel."""
    w1, _ = fold_bn(net.layers[first], net.params[first], net.darknet)
    w2, _ = fold_bn(net.layers[second], net.params[second], net.darknet)
    return np.abs(w1).max(axis=(1, 2, 3)), np.abs(w2).max(axis=(0, 2, 3))


def _badly_scaled(text: str, bn: bool = True, fork: DarknetFork = DarknetFork.PJREDDIE):
    net = net_from_cfg(text)
    net = dataclasses.replace(net, darknet=fork)
    random_weights(net, seed=3)
    p = net.params[0]
    if bn:  # channel 2 of the first conv spans a 50x wider range than the others
        p.scales[2] *= 50.0
        p.biases[2] *= 50.0
    else:
        p.weights[2] *= 50.0
        p.biases[2] *= 50.0
    return net


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize("fork", [DarknetFork.PJREDDIE, DarknetFork.ALEXEYAB])
def test_constructed_pair_is_equalized_and_float_output_unchanged(bn: bool, fork: DarknetFork) -> None:
    text = PAIR.replace("batch_normalize=1", f"batch_normalize={int(bn)}", 1)
    net = _badly_scaled(text, bn, fork)
    r1, r2 = _ranges(net, 0, 2)
    assert r1[2] > 10 * np.delete(r1, 2).max()  # the planted outlier
    res = equalize(net)
    assert [p.pair for p in res.pairs] == [Pair(0, 2, 1)]
    e1, e2 = _ranges(res.net, 0, 2)
    want = np.sqrt(r1 * r2)  # the closed form: both ranges meet at the geometric mean
    np.testing.assert_allclose(e1, want, rtol=1e-5)
    np.testing.assert_allclose(e2, want, rtol=1e-5)
    before, after = res.pairs[0].precision_before, res.pairs[0].precision_after
    assert after[0] > before[0]
    # the outlier's lead shrinks to about its square root (50x wider → ≈ 7x)
    assert e1[2] / np.delete(e1, 2).max() < (r1[2] / np.delete(r1, 2).max()) / 3
    x = np.random.default_rng(0).random(net.input_shape, dtype=np.float32)
    a, b = forward(net, x), forward(res.net, x)
    out = net.output_index
    np.testing.assert_allclose(b[out], a[out], rtol=1e-5, atol=1e-5 * float(np.abs(a[out]).max()))
    # the input network is untouched (a new Network is returned)
    assert np.array_equal(_ranges(net, 0, 2)[0], r1)


def test_bn_layer_keeps_weights_and_statistics_and_scales_gamma_beta() -> None:
    net = _badly_scaled(PAIR)
    res = equalize(net)
    p0, q0 = net.params[0], res.net.params[0]
    assert np.array_equal(p0.weights, q0.weights)
    assert np.array_equal(p0.rolling_mean, q0.rolling_mean)
    assert np.array_equal(p0.rolling_variance, q0.rolling_variance)
    ratio = q0.scales.astype(np.float64) / p0.scales
    np.testing.assert_allclose(q0.biases / p0.biases, ratio, rtol=1e-5)
    assert np.all(ratio > 0)


@pytest.mark.parametrize("text, pairs", [
    (net_header(3, 8, 8) + _conv(4, 3, "logistic") + _conv(5, 3, "leaky"), []),  # not homogeneous
    (net_header(3, 8, 8) + _conv(4, 3, "relu") + _conv(5, 1, "linear"), [Pair(0, 1)]),
    (net_header(3, 8, 8) + _conv(4, 3, "linear") + _conv(4, 3, "leaky", groups=2), []),  # grouped second
    (net_header(3, 8, 8) + _conv(4, 3, "leaky") + _conv(5, 3, "leaky") + "[route]\nlayers=0\n\n"
     + _conv(3, 1, "leaky"), []),  # layer 0 has two consumers; layer 1 feeds no conv
    (net_header(3, 8, 8) + _conv(4, 3, "leaky") + "[maxpool]\nsize=2\nstride=1\n\n" + _conv(5, 3, "leaky"),
     [Pair(0, 2, 1)]),
])
def test_only_allowed_chains_are_pairs(text: str, pairs: list[Pair]) -> None:
    net = net_from_cfg(text)
    random_weights(net, seed=1)
    assert find_pairs(net) == pairs


def test_chain_converges_and_keeps_function() -> None:
    """conv → conv → conv: the middle conv is in two pairs; the passes repeat until stable."""
    text = net_header(3, 12, 12) + _conv(6, 3, "leaky") + _conv(6, 3, "leaky") + _conv(4, 1, "linear")
    net = _badly_scaled(text)
    res = equalize(net, iterations=200, tol=1e-7)
    assert 1 < res.iterations < 200
    for rep in res.pairs:
        e1, e2 = _ranges(res.net, rep.pair.first, rep.pair.second)
        np.testing.assert_allclose(e1, e2, rtol=1e-4)
    x = np.random.default_rng(1).random(net.input_shape, dtype=np.float32)
    a, b = forward(net, x)[2], forward(res.net, x)[2]
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * float(np.abs(a).max()))
