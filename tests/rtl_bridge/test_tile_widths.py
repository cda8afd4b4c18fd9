"""The tile adapter (``rtl_bridge/tile.py``) at operand widths, without a simulator: which core
mode a layer takes, what it refuses (one message naming the layer and the config field), the
``w_row`` beats of packed int4 weights, the repeated input beats of digit passes, and the cycle
rule per pair."""
from __future__ import annotations

import re

import numpy as np
import pytest

from dla.config import HardwareConfig
from dla.int_kernels import LayerPlan
from dla.requant import encode
from golden.errors import UnsupportedError
from golden.layers import ConvSpec, Kind
from rtl_bridge.tile import PACK, conv_tiles, expected_cycles, unpack

HW = HardwareConfig(rows=4, cols=4)


def layer(filters: int, cin: int, npx: int, wb: int, seed: int = 0) -> tuple[ConvSpec, LayerPlan]:
    rng = np.random.default_rng(seed)
    spec = ConvSpec(index=7, kind=Kind.CONV, in_shape=(cin, 1, npx), out_shape=(filters, 1, npx), filters=filters,
                    size=1, activation="linear")
    w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), size=(filters, cin))
    plan = LayerPlan(out_scale=1.0, in_scales=[1.0], w_q=w.astype(np.float32), b_q=np.zeros(filters, np.int64),
                     rq=encode(np.full(filters, 0.01), HW))
    return spec, plan


def rule(folds: int, n: int, pixels: int, hw: HardwareConfig) -> int:
    """The cycle rule of the issue, written out: ``folds·n·(pixels + 2R + C − 2) + requant_latency``."""
    return folds * n * (pixels + 2 * hw.rows + hw.cols - 2) + hw.requant_latency


def test_w4a8_packs_two_filters_per_pe() -> None:
    """13 filters on 4 columns: tiles of up to 8 filters; w_row byte c holds filter c (low nibble)
    and filter 4 + c (high nibble); one tile of 8 filters costs what one of 4 costs."""
    spec, plan = layer(13, 6, 3, 4)
    x = np.random.default_rng(1).integers(-128, 128, size=spec.in_shape).astype(np.int8)
    ref = np.zeros(spec.out_shape, dtype=np.int64)
    tiles = conv_tiles(spec, plan, x, HW, widths=(4, 8, 8), reference=ref)
    assert [t.cols_used for t in tiles] == [8, 5] and all(t.mode == 2 and t.passes == 1 for t in tiles)
    w = plan.w_q.astype(np.int64)
    for t in tiles:
        beats = t.weights.reshape(-1, HW.cols).astype(np.int64) & 0xFF  # (folds·R, C) bytes
        lo = np.where(beats & 0xF >= 8, (beats & 0xF) - 16, beats & 0xF)
        hi = np.where(beats >> 4 >= 8, (beats >> 4) - 16, beats >> 4)
        got = np.concatenate([lo, hi], axis=1)[:6, :t.cols_used].T  # (filters, W)
        assert np.array_equal(got, w[t.filter0:t.filter0 + t.cols_used])
        assert t.expected_cycles == rule(2, 1, 3, HW) == expected_cycles(2, t.cols_used, 3, HW, 2, "w4a8")
        assert len(t.bias) == PACK * HW.cols


def test_a16_sends_each_fold_twice() -> None:
    spec, plan = layer(3, 6, 5, 8)
    x = np.random.default_rng(2).integers(-32768, 32768, size=spec.in_shape).astype(np.int16)
    (t,) = conv_tiles(spec, plan, x, HW, widths=(8, 16, 16), reference=np.zeros(spec.out_shape, np.int64))
    assert (t.pair, t.mode, t.passes, t.out_bits) == ("w8a16", 1, 2, 16)
    beats = t.input_beats()  # fold 0 twice, then fold 1 twice
    assert beats.shape == (2 * 2 * 5, HW.rows)
    f0, f1 = t.inputs
    assert np.array_equal(beats, np.concatenate([f0, f0, f1, f1]))
    assert np.array_equal(f0[:, :4].T, x[:4, 0, :]) and int(np.abs(beats).max()) > 127
    assert t.expected_cycles == rule(2, 2, 5, HW)
    assert unpack(0xFFFF8000, 2, 16).tolist() == [-32768, -1]


def test_w16a8_sends_lo_then_hi_weight_bytes() -> None:
    """Per fold, two weight phases: the lo bytes (unsigned, sent as two's-complement int8), then
    the hi bytes (signed); lo + 256·hi gives the int16 weights back."""
    spec, plan = layer(3, 6, 2, 16)
    x = np.random.default_rng(3).integers(-128, 128, size=spec.in_shape).astype(np.int8)
    (t,) = conv_tiles(spec, plan, x, HW, widths=(16, 8, 16), reference=np.zeros(spec.out_shape, np.int64))
    assert (t.mode, t.passes, t.folds) == (3, 2, 2) and t.weights.shape == (4, HW.rows, HW.cols)
    lo = t.weights[0::2].astype(np.int64) & 0xFF  # (folds, R, C)
    hi = t.weights[1::2].astype(np.int64)
    w = (lo + 256 * hi).reshape(-1, HW.cols)[:6, :3].T
    assert np.array_equal(w, plan.w_q.astype(np.int64)) and int(np.abs(w).max()) > 127
    assert t.expected_cycles == rule(2, 2, 2, HW)
    assert np.array_equal(t.input_beats(), np.concatenate([t.inputs[0], t.inputs[0], t.inputs[1], t.inputs[1]]))


@pytest.mark.parametrize("hw,widths,needle", [
    (HW, (16, 16, 8), "layer 7 (convolutional): operands w16a16 have no mode in the core "
                      "(it runs w8a8, w8a16, w4a16, w4a8, w16a8)"),
    (HW.replace(passes_w8a16=4), (8, 16, 8),
     "layer 7 (convolutional): the core runs w8a16 at passes 2, the hardware config has passes_w8a16 = 4"),
    (HW.replace(passes_w4a8=0), (4, 8, 8),
     "layer 7 (convolutional): the core runs w4a8 at passes 0.5, the hardware config has passes_w4a8 = 0"),
    (HW, (8, 8, 32), "layer 7 (convolutional): output width 32 bits: the core writes 8 or 16"),
    (HW, (4, 8, 8), "layer 7 (convolutional): a weight is outside int4"),
])
def test_refusals_name_the_layer_and_field(hw: HardwareConfig, widths: tuple[int, int, int], needle: str) -> None:
    spec, plan = layer(3, 2, 2, 8)
    x = np.zeros(spec.in_shape, dtype=np.int8)
    with pytest.raises(UnsupportedError, match="^" + re.escape(needle)):
        conv_tiles(spec, plan, x, hw, widths=widths, reference=np.zeros(spec.out_shape, np.int64))


def test_input_outside_its_width_is_refused() -> None:
    spec, plan = layer(3, 2, 2, 8)
    x = np.full(spec.in_shape, 300, dtype=np.int16)
    with pytest.raises(ValueError, match="layer 7: input values 300..300 do not fit int8"):
        conv_tiles(spec, plan, x, HW, widths=(8, 8, 8))
