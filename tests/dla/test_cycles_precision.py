"""The cycle model at per-layer operand widths, against an independent fold-by-fold reference.

The reference (:func:`reference_conv`) re-derives one conv/connected layer's figures from the
rules in docs/cycle-model.md ("Operand widths") in the plainest way: sizes counted in bits and
rounded up to bytes, the band height found by a linear search, every fold and every pass of
every tile counted in nested loops, double buffering walked tile by tile.  It shares no code
with ``dla.cycles`` (only the layer geometry of ``golden.layers``).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dla.config import HardwareConfig
from dla.cycles import conv_cycles, network_cycles, tile_cycles
from dla.cycles.compute import UnsupportedPrecision
from golden.errors import UserInputError
from golden.layers import ConnectedSpec, ConvSpec, Kind
from golden.network import parse_network
from quant.precision import LayerPrecision, default_precision

#: Every (weight, activation) pair a spec can ask for; w8a8 costs 1 by definition.
PAIRS = [(8, 8), (4, 8), (8, 16), (16, 16), (4, 16), (16, 8)]


def cfg_net(tmp_path: Path, body: str, c: int = 8, hw_: int = 8, name: str = "n"):
    p = tmp_path / f"{name}.cfg"
    p.write_text(f"[net]\nwidth={hw_}\nheight={hw_}\nchannels={c}\n{body}")
    return parse_network(p)


def conv_layer(tmp_path: Path, c: int, hw_: int, filters: int, size: int = 1, stride: int = 1, groups: int = 1
               ) -> ConvSpec:
    pad = 1 if size == 3 else 0
    net = cfg_net(tmp_path, f"[convolutional]\nfilters={filters}\nsize={size}\nstride={stride}\npad={pad}\n"
                            f"groups={groups}\nactivation=linear\n", c, hw_, f"c{c}_{hw_}_{filters}_{size}_{stride}_{groups}")
    return net.layers[0]  # type: ignore[return-value]


def prec(w: int, a: int, out: int | None = None) -> LayerPrecision:
    return LayerPrecision(w, (a,), a if out is None else out)


# ------------------------------------------------------------------------------------------ reference
def nbytes(count: int, bits: int) -> int:
    """Bytes of ``count`` values of ``bits`` each, counted in bits and rounded up."""
    total = count * bits
    return total // 8 + (1 if total % 8 else 0)


def reference_conv(spec: ConvSpec | ConnectedSpec, hw: HardwareConfig, w_bits: int, a_bits: int,
                   out_bits: int) -> dict[str, float]:
    """One layer's figures on the array, from the documented rules, by counting."""
    cost = 1.0 if (w_bits, a_bits) == (8, 8) else getattr(hw, f"passes_w{w_bits}a{a_bits}")
    assert cost > 0
    n_pass, pack = (int(cost), 1) if cost >= 1 else (1, round(1 / cost))
    if isinstance(spec, ConvSpec):
        c_in, _, w_in = spec.in_shape
        f_out, oh, ow = spec.out_shape
        k, s, pad, groups = spec.size, spec.stride_y, spec.padding, spec.groups
    else:
        c_in, w_in, k, s, pad, groups = spec.n_inputs, 1, 1, 1, 0, 1
        f_out, oh, ow = spec.output, 1, 1
    window = k * k * (c_in // groups)
    k_group = f_out // groups
    block = min(pack * hw.cols, k_group)
    half_in, half_w, half_out = hw.input_buffer_kib * 512, hw.weight_buffer_kib * 512, hw.output_buffer_kib * 512
    w_block = nbytes(window * block, w_bits) + 4 * block
    assert w_block <= half_w

    def band_in(t: int) -> int:
        if isinstance(spec, ConnectedSpec):
            return nbytes(c_in, a_bits)
        return nbytes(((t - 1) * s + k) * (w_in + 2 * pad) * c_in, a_bits)

    t = 0
    for cand in range(1, oh + 1):  # the tallest band whose input and accumulators fit half a buffer
        if band_in(cand) <= half_in and cand * ow * block * 4 <= half_out:
            t = cand
    assert t >= 1
    bands = [min(t, oh - r0) for r0 in range(0, oh, t)]
    busy = skew = reads = writes = 0
    work, loads, stores = [], [], []
    xfer = lambda b: 0 if b <= 0 else hw.dram_latency_cycles + -(-b // hw.dram_bytes_per_cycle)  # noqa: E731
    for _g in range(groups):
        for f0 in range(0, k_group, block):
            cols = min(block, k_group - f0)
            for i, rows in enumerate(bands):
                px = rows * ow
                tile_busy = tile_skew = 0
                if hw.dataflow == "weight_stationary":
                    for _r0 in range(0, window, hw.rows):
                        for _p in range(n_pass):
                            tile_busy += px
                            tile_skew += 2 * hw.rows + hw.cols - 2
                else:
                    for _p0 in range(0, px, hw.rows):
                        for _p in range(n_pass):
                            tile_busy += window
                            tile_skew += hw.rows + hw.cols - 2
                busy, skew = busy + tile_busy, skew + tile_skew
                work.append(tile_busy + tile_skew)
                load = band_in(rows) + (w_block if i == 0 else 0)
                loads.append(xfer(load))
                stores.append(xfer(nbytes(px * cols, out_bits)))
                reads += load
                writes += nbytes(px * cols, out_bits)
    total = loads[0]
    for i, w in enumerate(work):
        total += max(w, (loads[i + 1] if i + 1 < len(loads) else 0) + (stores[i - 1] if i else 0))
    total += stores[-1] + hw.requant_latency
    macs = spec.macs
    return {"compute_cycles": busy, "fill_drain_cycles": skew + hw.requant_latency, "total_cycles": total,
            "dram_read_bytes": reads, "dram_write_bytes": writes, "tiles": len(work),
            "transfer_cycles": sum(loads) + sum(stores), "peak_weight_bytes": w_block,
            "peak_input_bytes": band_in(t), "peak_output_bytes": t * ow * block * 4,
            "weight_bytes": nbytes(window * f_out, w_bits) + 4 * f_out,
            "util_pct": 100.0 * macs * cost / (hw.rows * hw.cols * total),
            "mapping_util_pct": 100.0 * macs * cost / (hw.rows * hw.cols * busy)}


def assert_matches_reference(spec, hw: HardwareConfig, w: int, a: int, out: int) -> None:
    lc = conv_cycles(spec, hw, prec(w, a, out))
    ref = reference_conv(spec, hw, w, a, out)
    got = {k: getattr(lc, k) for k in ref}
    for key in ("util_pct", "mapping_util_pct"):
        assert got.pop(key) == pytest.approx(ref.pop(key), rel=1e-12)
    assert got == ref
    assert lc.passes == (1.0 if (w, a) == (8, 8) else getattr(hw, f"passes_w{w}a{a}"))
    assert lc.precision == prec(w, a, out) and lc.bound in ("compute", "memory")


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("pair", PAIRS, ids=[f"w{w}a{a}" for w, a in PAIRS])
@pytest.mark.parametrize("dataflow", ["weight_stationary", "output_stationary"])
def test_every_pair_matches_the_reference(tmp_path: Path, pair: tuple[int, int], dataflow: str) -> None:
    """Small buffers (several bands and channel blocks), odd sizes (partial folds, int4 rounding)."""
    w, a = pair
    hw = HardwareConfig(rows=8, cols=8, input_buffer_kib=8, output_buffer_kib=4, weight_buffer_kib=64,
                        dataflow=dataflow, dram_latency_cycles=20, dram_bytes_per_cycle=8)
    for spec in (conv_layer(tmp_path, 13, 20, 37, 3), conv_layer(tmp_path, 16, 18, 24, 3, stride=2),
                 conv_layer(tmp_path, 12, 10, 12, 3, groups=4), conv_layer(tmp_path, 7, 9, 5, 1)):
        for out in (8, 16):
            assert_matches_reference(spec, hw, w, a, out)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(3, 20), st.integers(1, 70), st.sampled_from([1, 3]), st.sampled_from(PAIRS),
       st.sampled_from([8, 16]), st.sampled_from([4, 8, 16]), st.sampled_from([0.25, 0.5, 1, 2, 4]))
def test_random_layers_and_pass_tables_match_the_reference(tmp_path_factory, c: int, size: int, filters: int, k: int,
                                                           pair: tuple[int, int], out: int, array: int,
                                                           cost: float) -> None:
    """Any layer, any pair, and any value of that pair's passes_* field (digit passes or packing)."""
    w, a = pair
    hw = HardwareConfig(rows=array, cols=array, input_buffer_kib=16, output_buffer_kib=16, weight_buffer_kib=1024)
    if pair != (8, 8):
        hw = hw.replace(**{f"passes_w{w}a{a}": cost})
    spec = conv_layer(tmp_path_factory.mktemp("r"), c, size, filters, k)
    assert_matches_reference(spec, hw, w, a, out)


def test_connected_layer_matches_the_reference(tmp_path: Path) -> None:
    """A connected layer reads its whole C·H·W input (at the input width) once per channel block."""
    net = cfg_net(tmp_path, "[connected]\noutput=40\nactivation=linear\n", c=3, hw_=5)
    spec = net.layers[0]
    hw = HardwareConfig(rows=8, cols=8)
    for w, a in PAIRS:
        assert_matches_reference(spec, hw, w, a, 8)
    lc = conv_cycles(spec, hw, prec(8, 16))
    assert lc.dram_read_bytes == 5 * (75 * 2) + 40 * 75 + 4 * 40  # 5 blocks of 8 filters: input each time


def test_default_and_explicit_w8a8_are_the_same_figures(tmp_path: Path) -> None:
    spec = conv_layer(tmp_path, 24, 16, 40, 3)
    hw = HardwareConfig()
    assert conv_cycles(spec, hw) == conv_cycles(spec, hw, prec(8, 8)) == conv_cycles(spec, hw, default_precision(spec))


def test_digit_passes_double_the_folds_and_keep_their_length(tmp_path: Path) -> None:
    """w8a16 at 2 passes: every fold twice — compute and fill/drain exactly double (big buffers:
    one band; so the only thing added is array time)."""
    hw = HardwareConfig(input_buffer_kib=4096, output_buffer_kib=4096, weight_buffer_kib=4096)
    spec = conv_layer(tmp_path, 32, 8, 32, 1)
    base, wide = conv_cycles(spec, hw), conv_cycles(spec, hw, prec(8, 16, 8))
    assert wide.compute_cycles == 2 * base.compute_cycles == 2 * 4 * 64
    assert wide.fill_drain_cycles - hw.requant_latency == 2 * (base.fill_drain_cycles - hw.requant_latency)
    assert wide.mapping_util_pct == base.mapping_util_pct == 100.0  # every PE busy in both passes
    assert wide.dram_read_bytes == base.dram_read_bytes + 8 * 8 * 32 * 2  # the input at 2 bytes, read by 2 blocks
    w16 = conv_cycles(spec, hw.replace(passes_w16a16=4), prec(16, 16))
    assert w16.compute_cycles == 4 * base.compute_cycles and w16.weight_bytes == 32 * 32 * 2 + 4 * 32


def test_packing_halves_the_channel_blocks(tmp_path: Path) -> None:
    """w4a8 at 0.5: two filters per PE, a fold covers 2·C filters; the fold still takes
    n + 2R + C − 2 with the physical C."""
    hw = HardwareConfig(rows=16, cols=16, input_buffer_kib=4096, output_buffer_kib=4096, weight_buffer_kib=4096)
    spec = conv_layer(tmp_path, 32, 8, 64, 1)
    base, packed = conv_cycles(spec, hw), conv_cycles(spec, hw, prec(4, 8))
    assert base.tiles == 4 and packed.tiles == 2
    assert packed.compute_cycles == 2 * 2 * 64 == base.compute_cycles // 2
    assert packed.fill_drain_cycles == 2 * 2 * (2 * 16 + 16 - 2) + hw.requant_latency
    assert packed.weight_bytes == 32 * 64 // 2 + 4 * 64 and base.weight_bytes == 32 * 64 + 4 * 64
    assert packed.peak_weight_bytes == 32 * 32 // 2 + 4 * 32 and packed.peak_output_bytes == 64 * 32 * 4
    assert packed.mapping_util_pct == 100.0


def test_bytes_follow_the_widths(tmp_path: Path) -> None:
    """int4 weights pack two per byte (odd counts round up), int16 activations take two bytes,
    biases stay 4 bytes per filter."""
    hw = HardwareConfig(input_buffer_kib=4096, output_buffer_kib=4096, weight_buffer_kib=4096)
    spec = conv_layer(tmp_path, 3, 8, 5, 3)  # 27·5 = 135 weights: 68 bytes at int4
    in_elems, out_elems = 10 * 10 * 3, 8 * 8 * 5
    for (w, a, out), wbytes in {(4, 8, 8): 68, (8, 8, 16): 135, (16, 16, 8): 270, (4, 16, 16): 68}.items():
        lc = conv_cycles(spec, hw, prec(w, a, out))
        assert lc.weight_bytes == wbytes + 20
        assert lc.dram_read_bytes == in_elems * a // 8 + wbytes + 20
        assert lc.dram_write_bytes == out_elems * out // 8
        assert lc.peak_input_bytes == in_elems * a // 8


def test_int16_input_bands_are_shorter(tmp_path: Path) -> None:
    """The band (output rows per tile) is sized in bytes: int16 inputs fit half as many rows."""
    hw = HardwareConfig(input_buffer_kib=16, output_buffer_kib=4096)
    spec = conv_layer(tmp_path, 32, 64, 16, 1)  # a 1x1 row: 64·32 elements
    a8, a16 = conv_cycles(spec, hw, prec(8, 8)), conv_cycles(spec, hw, prec(8, 16))
    assert a8.peak_input_bytes == 4 * 64 * 32 and a16.peak_input_bytes == 2 * 64 * 32 * 2
    assert a16.tiles == 2 * a8.tiles == 32


def test_unsupported_pair_names_layer_pair_and_field(tmp_path: Path) -> None:
    net = cfg_net(tmp_path, "[convolutional]\nfilters=8\nsize=1\nactivation=linear\n"
                            "[convolutional]\nfilters=8\nsize=1\nactivation=linear\n")
    hw = HardwareConfig(passes_w4a16=0)
    precisions = {1: prec(4, 16)}
    with pytest.raises(UnsupportedPrecision) as info:
        network_cycles(net, hw, precisions)
    msg = str(info.value)
    assert msg.startswith("layer 1 (convolutional): ") and "w4a16" in msg and "passes_w4a16" in msg
    assert isinstance(info.value, UserInputError)
    assert network_cycles(net, HardwareConfig(), precisions).layers[1].passes == 2.0  # the default runs it
    with pytest.raises(UnsupportedPrecision, match=r"layer 0 \(convolutional\).*w8a16.*passes_w8a16"):
        conv_cycles(net.layers[0], HardwareConfig(passes_w8a16=0), prec(8, 16))


def test_tile_cycles_per_width() -> None:
    hw = HardwareConfig(rows=8, cols=8, requant_latency=3)
    one = 100 + 2 * 8 + 8 - 2
    assert tile_cycles(8, 8, 100, hw, folds=3, passes=2) == 3 * 2 * one + 3
    assert tile_cycles(8, 8, 100, hw, folds=3, passes=4.0) == 3 * 4 * one + 3
    assert tile_cycles(8, 16, 100, hw, folds=3, passes=0.5) == 3 * one + 3  # 16 filters on 8 columns, packed
    assert tile_cycles(8, 32, 100, hw, passes=0.25) == one + 3
    with pytest.raises(ValueError):
        tile_cycles(8, 17, 100, hw, passes=0.5)
    with pytest.raises(ValueError):
        tile_cycles(8, 9, 100, hw, passes=2)
    for bad in (0, 0.3, 1.5, 1e-320):  # not a whole number of passes nor a packing 1/n
        with pytest.raises(ValueError):
            tile_cycles(8, 8, 100, hw, passes=bad)


def test_host_layers_cost_their_transfer(tmp_path: Path) -> None:
    """A conv or maxpool sent to the host: no MAC or pooling cycles, its inputs to the host and
    its output back at the tensors' widths; the host kinds (yolo) keep their 0-cycle row."""
    net = cfg_net(tmp_path, "[convolutional]\nfilters=16\nsize=3\npad=1\nactivation=leaky\n[maxpool]\nsize=2\nstride=2\n"
                            "[convolutional]\nfilters=18\nsize=1\nactivation=linear\n"
                            "[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n", c=3, hw_=16)
    hw = HardwareConfig(dram_latency_cycles=50, dram_bytes_per_cycle=16)
    host = {0: LayerPrecision(8, (8,), 16, host=True), 1: LayerPrecision(None, (16,), 16, host=True)}
    nc = network_cycles(net, hw, host)
    conv0, pool, _, yolo = nc.layers
    xfer = lambda b: 50 + -(-b // 16)  # noqa: E731
    assert (conv0.dram_read_bytes, conv0.dram_write_bytes) == (3 * 16 * 16, 16 * 16 * 16 * 2)
    assert conv0.total_cycles == conv0.transfer_cycles == xfer(768) + xfer(8192)
    assert (pool.dram_read_bytes, pool.dram_write_bytes) == (16 * 16 * 16 * 2, 16 * 8 * 8 * 2)
    assert pool.total_cycles == xfer(8192) + xfer(2048)
    for lc in (conv0, pool):
        assert lc.bound == "host" and lc.macs == lc.compute_cycles == lc.fill_drain_cycles == 0
        assert lc.weight_bytes == 0 and lc.passes is None and lc.stall_cycles == lc.total_cycles
    assert yolo.bound == "host" and yolo.total_cycles == yolo.dram_read_bytes == 0
    assert nc.layers[2].precision.pair == "w8a8"
    assert nc.weight_bytes == nc.layers[2].weight_bytes == 16 * 18 + 4 * 18


def test_stream_layers_move_bytes_at_their_widths(tmp_path: Path) -> None:
    """A route of an int8 and an int16 tensor reads each at its width, writes at the output's."""
    net = cfg_net(tmp_path, "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                            "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n"
                            "[route]\nlayers=-1,-2\n[upsample]\nstride=2\n", c=3, hw_=8)
    hw = HardwareConfig(dram_latency_cycles=0, dram_bytes_per_cycle=1)
    ps = {2: LayerPrecision(None, (16, 8), 16), 3: LayerPrecision(None, (16,), 16)}
    route, up = network_cycles(net, hw, ps).layers[2:]
    assert route.dram_read_bytes == 64 * 6 * 2 + 64 * 4 and route.dram_write_bytes == 64 * 10 * 2
    assert route.total_cycles == route.dram_read_bytes + route.dram_write_bytes
    assert up.dram_read_bytes == 64 * 10 * 2 and up.dram_write_bytes == 256 * 10 * 2
    assert route.to_dict()["precision"] == "a8+a16>a16" and route.to_dict()["input_bits"] == [16, 8]


def test_network_utilization_weights_macs_by_their_pair(tmp_path: Path) -> None:
    """Σ MACs·passes / (R·C·total): a w8a16 layer spends the array twice per MAC."""
    net = cfg_net(tmp_path, "[convolutional]\nfilters=16\nsize=1\nactivation=linear\n"
                            "[convolutional]\nfilters=16\nsize=1\nactivation=linear\n", c=16)
    hw = HardwareConfig()
    nc = network_cycles(net, hw, {1: prec(8, 16)})
    macs = [l.macs for l in nc.layers]
    assert nc.util_pct == pytest.approx(100 * (macs[0] + 2 * macs[1]) / (256 * nc.total_cycles), rel=1e-12)
    assert all(0 < l.util_pct <= 100 for l in nc.layers)


def test_to_dict_carries_the_widths(tmp_path: Path) -> None:
    spec = conv_layer(tmp_path, 8, 8, 8, 1)
    d = conv_cycles(spec, HardwareConfig(), prec(4, 8, 16)).to_dict()
    assert {k: d[k] for k in ("precision", "weight_bits", "input_bits", "output_bits", "host", "passes")} == \
        {"precision": "w4a8>a16", "weight_bits": 4, "input_bits": [8], "output_bits": 16, "host": False,
         "passes": 0.5}
    assert d["weight_bytes"] == 8 * 8 // 2 + 4 * 8
    assert spec.kind is Kind.CONV


def test_the_documented_worked_example() -> None:
    """docs/cycle-model.md works yolov3-tiny layer 8 at w8a16, w4a8 and on the host by hand;
    the model gives those figures (and they match the reference above)."""
    root = Path(__file__).resolve().parents[2]
    spec = parse_network(root / "dla" / "data" / "cfg" / "yolov3-tiny.cfg").layers[8]
    hw = HardwareConfig()
    a16 = conv_cycles(spec, hw, prec(8, 16, 8))
    assert (a16.compute_cycles, a16.fill_drain_cycles, a16.dram_read_bytes, a16.total_cycles, a16.tiles) == \
        (1_557_504, 423_939, 4_195_328, 1_986_961, 64)
    w4 = conv_cycles(spec, hw, prec(4, 8))
    assert (w4.compute_cycles, w4.fill_drain_cycles, w4.weight_bytes, w4.total_cycles, w4.dram_read_bytes) == \
        (389_376, 79_491, 148_480, 473_107, 1_065_984)
    host = conv_cycles(spec, hw, LayerPrecision(8, (8,), 8, host=True))
    assert host.total_cycles == (100 + 86_528 // 16) + (100 + 173_056 // 16) == 16_424
    text = (root / "docs" / "cycle-model.md").read_text()
    for figure in ("1,557,504", "423,939", "4,195,328", "1,986,961", "389,376", "79,491", "148,480", "473,107",
                   "16,424"):
        assert figure in text, figure
    for w, a, out in ((8, 16, 8), (4, 8, 8)):
        assert_matches_reference(spec, hw, w, a, out)

