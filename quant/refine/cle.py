"""Cross-layer equalization (CLE) of a float Darknet network.

Semantics follow Nagel, van Baalen, Blankevoort, Welling, "Data-Free Quantization Through
Weight Equalization and Bias Correction", ICCV 2019, §4.1 (read for the method; nothing copied).

**Which pairs.**  ``conv1 → [maxpool] → conv2`` where

* ``conv1`` is a ``[convolutional]`` whose activation is positively homogeneous,
  ``f(x/s) = f(x)/s`` for every ``s > 0``: ``linear``, ``relu``, ``leaky``
  (:data:`HOMOGENEOUS`);
* ``conv1``'s output has exactly one consumer: ``conv2``, or a ``[maxpool]`` (max commutes with a
  positive per-channel scale; Darknet's out-of-bounds ``−FLT_MAX`` stays out of play) whose
  output in turn has exactly one consumer, ``conv2``;
* ``conv2`` is an ungrouped ``[convolutional]`` (``groups=1``) reading that tensor alone.

**What changes.**  Output channel ``i`` of ``conv1`` is divided by ``s_i > 0`` and input channel
``i`` of ``conv2``'s weights multiplied by ``s_i``, so the network computes the same function.
The division is applied to the *Darknet parameters*, so the result stays a valid Darknet
network (FLOAT, ``.weights`` and ``.qnet`` keep working): with batch norm, BN's ``scales`` (γ) and
``biases`` (β) of channel ``i`` (``γ(x−μ)/σ + β`` scales by ``1/s_i``; ``μ``, ``σ²`` and the
conv weights stay); without, the conv's ``weights[i]`` and ``biases[i]``.  ``conv2``'s raw
``weights[:, i]`` are multiplied (its own BN, applied after the sum, is untouched).  Values are
computed in float64 and stored as float32, so FLOAT changes only by float rounding.

**Which scale.**  With ``r1_i`` = max |·| of ``conv1``'s *BN-folded* weights of output channel
``i`` (what the weight quantizer sees, ``quant.fold``) and ``r2_i`` = max |·| of ``conv2``'s
folded weights reading input channel ``i``: ``s_i = sqrt(r1_i / r2_i)`` (the paper's
``s_i = sqrt(r1_i·r2_i) / r2_i``), which makes both ranges ``sqrt(r1_i·r2_i)``.  A channel with
``r1_i = 0`` or ``r2_i = 0`` keeps ``s_i = 1``.  A conv is the second layer of one pair and the
first of the next, so the pass over all pairs repeats (as in the paper) until no scale moves by
more than ``tol`` (relative) or ``iterations`` passes were made.

**Report.**  Per pair the mean per-channel *precision* ``mean_i(r_i / max_j r_j)`` of both layers'
folded weights (the paper's measure: 1 when every channel spans the layer's range, near 0
when one channel dominates a per-tensor scale), before and after.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from golden.layers import ConvSpec, LayerParams, MaxPoolSpec
from golden.network import Network
from quant.fold import fold_bn

HOMOGENEOUS = ("linear", "relu", "leaky")
"""Activations with ``f(x/s) = f(x)/s`` for ``s > 0`` (leaky: ``max(x, 0.1x)`` scales too)."""


@dataclass(frozen=True)
class Pair:
    """One equalizable chain: ``first`` → (``via``, a maxpool, or None) → ``second``."""

    first: int
    second: int
    via: int | None = None


@dataclass
class PairReport:
    """One pair's effect: mean per-channel precision of each layer's folded weights, before/after."""

    pair: Pair
    precision_before: tuple[float, float]
    precision_after: tuple[float, float]

    def to_dict(self) -> dict:
        return {"first": self.pair.first, "second": self.pair.second, "via": self.pair.via,
                "precision_before": list(self.precision_before), "precision_after": list(self.precision_after)}


@dataclass
class CleResult:
    """The equalized network, the per-pair report and the passes made."""

    net: Network
    pairs: list[PairReport]
    iterations: int


def find_pairs(net: Network) -> list[Pair]:
    """Every chain CLE may equalize (rules in the module docstring), in network order."""
    consumers = net.consumers()
    pairs = []
    for spec in net.layers:
        if not isinstance(spec, ConvSpec) or spec.activation not in HOMOGENEOUS or spec.index not in net.params:
            continue
        nxt = consumers.get(spec.index, [])
        if len(nxt) != 1:
            continue
        via, j = None, nxt[0]
        if isinstance(net.layers[j], MaxPoolSpec):
            via, after = j, consumers.get(j, [])
            if len(after) != 1:
                continue
            j = after[0]
        second = net.layers[j]
        if (isinstance(second, ConvSpec) and second.groups == 1 and second.index in net.params
                and second.inputs == ((via if via is not None else spec.index),)):
            pairs.append(Pair(spec.index, j, via))
    return pairs


def _folded(net: Network, i: int) -> np.ndarray:
    w, _ = fold_bn(net.layers[i], net.params[i], net.darknet)  # type: ignore[arg-type]
    return w


def channel_ranges(net: Network, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """``(r1, r2)``: max |folded weight| per output channel of ``first`` and per input channel of
    ``second``, float64."""
    w1, w2 = _folded(net, pair.first), _folded(net, pair.second)
    return np.abs(w1).reshape(w1.shape[0], -1).max(axis=1), np.abs(w2).max(axis=(0, 2, 3))


def precision(r: np.ndarray) -> float:
    """Mean of ``r_i / max r`` (1.0 for an all-zero range)."""
    top = float(r.max(initial=0.0))
    return float(np.mean(r / top)) if top > 0 else 1.0


def equalization_scales(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """``s_i = sqrt(r1_i / r2_i)``, 1 where either range is 0 (float64)."""
    ok = (r1 > 0) & (r2 > 0)
    s = np.ones_like(r1, dtype=np.float64)
    s[ok] = np.sqrt(r1[ok] / r2[ok])
    return s


def apply_scales(net: Network, pair: Pair, s: np.ndarray) -> None:
    """Divide ``first``'s output channels by ``s`` and multiply ``second``'s input channels by it,
    in place on ``net.params`` (Darknet parameters, float32; see the module docstring)."""
    p1, p2 = net.params[pair.first], net.params[pair.second]
    spec1 = net.layers[pair.first]
    inv = 1.0 / s
    if spec1.batch_normalize:  # type: ignore[union-attr]
        p1.scales = (p1.scales.astype(np.float64) * inv).astype(np.float32)
    else:
        p1.weights = (p1.weights.astype(np.float64) * inv.reshape(-1, 1, 1, 1)).astype(np.float32)
    p1.biases = (p1.biases.astype(np.float64) * inv).astype(np.float32)
    p2.weights = (p2.weights.astype(np.float64) * s.reshape(1, -1, 1, 1)).astype(np.float32)


def copy_network(net: Network) -> Network:
    """``net`` with its own copies of every parameter array (specs are immutable and shared)."""
    params = {i: LayerParams(**{k: v.copy() for k, v in p.arrays().items()}) for i, p in net.params.items()}
    return dataclasses.replace(net, params=params, warnings=list(net.warnings))


def equalize(net: Network, iterations: int = 20, tol: float = 1e-4) -> CleResult:
    """A new network with every :func:`find_pairs` pair equalized (``net`` is not modified)."""
    out = copy_network(net)
    pairs = find_pairs(out)
    before = {p: channel_ranges(out, p) for p in pairs}
    done = 0
    for done in range(1, iterations + 1):
        moved = 0.0
        for p in pairs:
            s = equalization_scales(*channel_ranges(out, p))
            apply_scales(out, p, s)
            moved = max(moved, float(np.abs(s - 1.0).max(initial=0.0)))
        if moved <= tol:
            break
    reports = []
    for p in pairs:
        r1, r2 = channel_ranges(out, p)
        b1, b2 = before[p]
        reports.append(PairReport(p, (precision(b1), precision(b2)), (precision(r1), precision(r2))))
    return CleResult(out, reports, done if pairs else 0)


__all__ = ["CleResult", "HOMOGENEOUS", "Pair", "PairReport", "apply_scales", "channel_ranges", "copy_network",
           "equalization_scales", "equalize", "find_pairs", "precision"]
