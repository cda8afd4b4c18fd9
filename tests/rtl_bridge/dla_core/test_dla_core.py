"""``rtl_bridge/rtl/dla_core.v`` (the weight-stationary MAC array + requantizers) against the
INT engine, bit for bit, and against the cycle model, cycle for cycle.

Two halves in one module (cocotb's runner convention):

* :func:`test_dla_core` (pytest) builds the core with Icarus for each ``HardwareConfig`` of
  :data:`CONFIGS` (one build directory each, through ``rtl_bridge.sim``) and runs the cocotb
  tests below in it; any failing cocotb test fails it.  No iverilog: it fails with the
  install command (never skips).
* the ``@cocotb.test`` coroutines run inside the simulator.  A :class:`TB` holds an
  :class:`InputDriver` (pixel vectors, optional random ``in_valid`` gaps), an
  :class:`OutputMonitor` (output beats, optional random ``out_ready`` stalls, ``done`` pulses),
  a :class:`TileSequencer` (``start``, weight rows, per-column integers), the model (tiles and
  expected int8 outputs from ``rtl_bridge.tile.conv_tiles``, i.e. ``dla.int_kernels.conv_int``)
  and an in-order :class:`Checker`.

Cycle convention (see the header of ``dla_core.v``): a tile's cycle count is the number of
rising edges from the one that samples ``start`` (with ``start_ready``) to the one that samples
``done``; with no gap and no stall it must equal ``dla.cycles.tile_cycles``.  Signals are read
right after ``RisingEdge``, i.e. the values that edge samples.

Randomness is seeded (``numpy`` generators with fixed seeds): every run draws the same cases.
"""
from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from dla.config import HardwareConfig
from dla.int_kernels import LEAKY_ALPHA, LayerPlan, conv_int, gemm_plan
from dla.requant import encode
from golden.layers import ConvSpec, Kind
from rtl_bridge.sim import RTL_DIR, CocotbResults, compile_check, read_results, run_cocotb
from rtl_bridge.tile import A_W, PACK, Tile, assemble, conv_tiles, core_parameters, layer_widths, pack, unpack

try:  # the cocotb half only runs inside the simulator; the pytest half needs none of it
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - reported by rtl_bridge.sim with the install command
    cocotb = None

ROOT = Path(__file__).resolve().parents[3]
TEST_MODULE = "tests.rtl_bridge.dla_core.test_dla_core"
HW_ENV = "DLA_CORE_HW"
BUILD_ENV = "DLA_CORE_BUILD"

#: Array geometries the core is built for (non-square 16x4 catches row/column mix-ups; on
#: 16-row arrays a 3x3 conv of one input channel, W = 9, takes one fold, on the others several).
CONFIGS: dict[str, HardwareConfig] = {
    "4x4": HardwareConfig(rows=4, cols=4),
    "8x8": HardwareConfig(rows=8, cols=8),
    "16x4": HardwareConfig(rows=16, cols=4),
    "16x16": HardwareConfig(rows=16, cols=16),  # the default DLA geometry
}


# ============================================================================ pytest runner


#: The core built without its operand modes (the w8a8 array with int8 outputs: 8-bit lanes,
#: ``COLS`` filter lanes): parameters over :func:`core_parameters`, and the cocotb tests that
#: apply (the width cases need the modes).
INT8_ONLY = {"PASSES_W8A16": 0, "PASSES_W4A16": 0, "PACK_W4A8": 0, "PASSES_W16A8": 0, "OUT_W": 8}
REDUCED: dict[str, tuple[HardwareConfig, dict[str, int], str]] = {
    "8x8-int8-only": (HardwareConfig(rows=8, cols=8), INT8_ONLY, "random_tiles|tiny_network_layers|yolov3_tiny_layers$"),
}


def _run_core(name: str, hw: HardwareConfig, overrides: dict[str, int], tests: str | None) -> CocotbResults:
    """Build ``dla_core`` for ``hw`` with ``overrides`` of its parameters and run the cocotb tests
    below (those matching the regular expression ``tests``, or all); any failure fails."""
    params = {**core_parameters(hw), **overrides}
    env = {HW_ENV: json.dumps(hw.to_dict()), BUILD_ENV: json.dumps(params)}
    if tests is not None:
        env["COCOTB_TEST_FILTER"] = tests
    results = run_cocotb("dla_core", [RTL_DIR / "dla_core.v", RTL_DIR / "dla_requant.v"], TEST_MODULE,
                         params, ROOT / "sim_build" / f"dla_core-{name}", env)
    res = read_results(results)
    assert res.ok, f"{res.failures} of {res.tests} cocotb tests failed:\n" + "\n".join(res.failed)
    return res


@pytest.mark.parametrize("name", list(CONFIGS))
def test_dla_core(name: str) -> None:
    """Build ``dla_core`` for ``CONFIGS[name]`` (every operand mode) and run every cocotb test below on it."""
    res = _run_core(name, CONFIGS[name], {}, None)
    assert res.tests == 8, f"ran {res.tests} cocotb tests"


@pytest.mark.parametrize("name", list(REDUCED))
def test_reduced_core(name: str) -> None:
    """The core built without operand modes runs w8a8 to int8 as the full one does (random
    layers with gaps and stalls, the tiny network, yolov3-tiny layers 2 and 22)."""
    hw, overrides, tests = REDUCED[name]
    res = _run_core(name, hw, overrides, tests)
    assert res.tests == 6, f"ran {res.tests} cocotb tests"


@pytest.mark.parametrize("modes", ["all", "none"])
def test_core_is_plain_verilog_2005(modes: str) -> None:
    """dla_core + dla_requant compile as Verilog-2005 without a single iverilog warning, with every
    operand mode built and with none (the w8a8/int8 core)."""
    params = core_parameters(CONFIGS["16x4"])
    if modes == "none":
        params.update(INT8_ONLY)
    messages = compile_check("dla_core", [RTL_DIR / "dla_core.v", RTL_DIR / "dla_requant.v"], params, "2005")
    assert messages == "", messages


# ============================================================================ model: tiles


def random_layer_tiles(rng: np.random.Generator, hw: HardwareConfig, leaky: bool, pair: str = "w8a8",
                       out_bits: int = 8) -> list[Tile]:
    """A random 1x1 conv (``C_in ≤ 3R``: up to three reduction folds, up to two column blocks,
    ``pixels`` in a row) at operand widths ``pair`` with weights and activations over their full
    ranges (−128..127 / −8..7; int16 −32768..32767), biases (some near the accumulator's limits
    so it saturates) and per-channel multipliers ``encode``d from random reals (some ≥ 1: left
    shifts), cut into tiles by ``conv_tiles``; expected outputs from the engine's ``conv_int`` at
    the plan's widths, which must equal :func:`reference_conv`."""
    wb, ab = (int(v) for v in pair[1:].split("a"))
    cin = int(rng.integers(1, 3 * hw.rows + 1))
    filters = int(rng.integers(1, 2 * hw.cols * (PACK if pair == "w4a8" else 1) + 1))
    npx = int(rng.integers(1, 13))
    act = "leaky" if leaky else "linear"
    spec = ConvSpec(index=0, kind=Kind.CONV, in_shape=(cin, 1, npx), out_shape=(filters, 1, npx),
                    filters=filters, size=1, activation=act)
    w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), size=(filters, cin))  # (N, W)
    f = (1 << (wb - 1)) / 128 * (1 << (ab - 1)) / 128  # typical |acc| relative to w8a8
    b = rng.integers(-int((1 << 13) * f), int((1 << 13) * f), size=filters)  # (N,)
    edge = rng.random(filters) < 0.2
    b[edge] = rng.choice([hw.acc_min, hw.acc_max], size=int(edge.sum())) - rng.integers(-50000, 50000, int(edge.sum()))
    b = np.clip(b, hw.acc_min, hw.acc_max).astype(np.int64)
    # |acc| is typically ~ 5000·f·sqrt(cin) + |b|: aim most outputs inside the output range, some beyond
    real = np.exp2(rng.uniform(-2.5, 2.5, size=filters)) * 40 * (1 << (out_bits - 8)) / (5000 * f * np.sqrt(cin) + 4000 * f)
    pick = rng.random(filters)
    real[pick < 0.15] = np.exp2(rng.uniform(0, 3, size=int((pick < 0.15).sum())))  # >= 1: left shifts
    real[(pick >= 0.15) & (pick < 0.22)] = 0.0
    rq, rq_neg = encode(real, hw), encode(real * LEAKY_ALPHA, hw) if leaky else None
    dtype, chunk = gemm_plan(wb, ab)
    plan = LayerPlan(out_scale=1.0, in_scales=[1.0], out_bits=out_bits, in_bits=[ab], w_bits=wb, chunk=chunk,
                     w_q=w.astype(dtype), b_q=b, rq=rq, rq_neg=rq_neg)
    x = rng.integers(-(1 << (ab - 1)), 1 << (ab - 1), size=(cin, 1, npx)).astype(np.int8 if ab == 8 else np.int16)
    band = int(rng.integers(1, npx + 1)) if rng.random() < 0.3 else None
    engine_out = conv_int(spec, [x], plan, hw)[0]
    ref = reference_conv(spec, x, w, b, rq, rq_neg if leaky else rq, out_bits, hw)
    assert np.array_equal(engine_out, ref), f"conv_int differs from the nested-loop reference at {pair}"
    return conv_tiles(spec, plan, x, hw, band, reference=engine_out)


#: The random layers of a ``random_tiles`` run: (pair, leaky, output bits); every mode with
#: both activations and both output widths.
RANDOM_LAYERS = (("w8a8", False, 8), ("w8a16", True, 8), ("w4a8", True, 8), ("w4a16", False, 8),
                 ("w8a8", True, 16), ("w8a16", False, 16), ("w4a8", False, 16), ("w4a16", True, 16),
                 ("w16a8", True, 8), ("w16a8", False, 16))


TINY_CFG = """\
[net]
width=7
height=7
channels=1

# 0: 3x3, one input channel: W = 9 (fits 16 rows only)
[convolutional]
filters=4
size=3
stride=1
pad=1
activation=leaky

# 1: 1x1 with batch norm folded: W = 4 (fits every config), 6 filters (two column folds on 4 columns)
[convolutional]
batch_normalize=1
filters=6
size=1
stride=1
pad=1
activation=leaky

# 2: 1x1 linear: W = 6
[convolutional]
filters=3
size=1
stride=1
pad=1
activation=linear

# 3: 3x3 stride 2, three groups: W = 9 per group
[convolutional]
filters=6
size=3
stride=2
pad=1
groups=3
activation=leaky
"""

#: The window ``W = kh·kw·C_in/groups`` of each layer of :data:`TINY_CFG`: with reduction folds
#: every layer runs on every config; ``W > rows`` takes ``ceil(W/rows)`` folds.
TINY_WINDOWS = (9, 4, 6, 9)


def test_configs_fold_the_reduction() -> None:
    """Some config needs reduction folds for a tiny-network layer, some runs one in a single fold."""
    assert any(hw.rows < max(TINY_WINDOWS) for hw in CONFIGS.values())
    assert any(hw.rows >= max(TINY_WINDOWS) for hw in CONFIGS.values())


LayerTiles = tuple[ConvSpec, list[Tile], np.ndarray]  # (layer, its tiles, the INT engine's int8 output)


def tiny_network_tiles(hw: HardwareConfig, workdir: Path) -> tuple[list[LayerTiles], list[str]]:
    """:data:`TINY_CFG` with seeded random weights, calibrated and quantized per channel by
    ``quant``, run by the INT engine; per layer that fits: (spec, tiles, the engine's int8
    output).  Also the refusal messages of the layers that do not fit."""
    from dla.engine import Engine, quantize_tensor
    from golden.errors import UnsupportedError
    from golden.genweights import random_weights, synthetic_image
    from golden.network import parse_network
    from quant import collect_ranges, quantize

    cfg = workdir / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = random_weights(parse_network(cfg), seed=11)
    rng = np.random.default_rng(12)
    calib = [synthetic_image(net.input_shape, rng) for _ in range(2)]
    qnet = quantize(net, collect_ranges(net, calib), "per_channel")
    x = synthetic_image(net.input_shape, rng)
    engine = Engine(net, qnet, hw)
    run = engine.run(x, "int")
    plans = engine.plans()
    layers, refused = [], []
    for spec in net.layers:
        x_q = quantize_tensor(x, qnet.scales[-1]) if spec.index == 0 else run.records[spec.index - 1].output
        try:
            tiles = conv_tiles(spec, plans[spec.index], x_q, hw, band=20)
        except UnsupportedError as exc:
            refused.append(f"{spec.index}: {exc}")
            continue
        layers.append((spec, tiles, run.records[spec.index].output))
    return layers, refused


#: yolov3-tiny layers run through the core (at a 32x32 input so the simulation stays short):
#: layer 2 (3x3 stride 1, leaky, W = 144, 16x16 pixels) and layer 22 (1x1, linear, W = 256,
#: 255 filters, 2x2 pixels).  Per layer, how many tiles: None = all; k = the first k - 1 and
#: the last one (the partial column block).  Small arrays run a subset only.
YOLO_SIZE = 32


def yolo_selection(hw: HardwareConfig) -> dict[int, int | None]:
    if hw.rows * hw.cols >= 64:
        return {2: None, 22: 4}
    return {2: 2, 22: 3}


def yolo_network_tiles(hw: HardwareConfig, workdir: Path, selection: dict[int, int | None]) -> list[LayerTiles]:
    """yolov3-tiny at :data:`YOLO_SIZE` with seeded random weights, calibrated on two synthetic
    images and quantized per channel by ``quant``, run by the INT engine; per selected layer:
    (spec, its selected tiles, the engine's int8 output)."""
    from dla.engine import Engine
    from golden.genweights import random_weights, synthetic_image
    from golden.network import parse_network
    from quant import collect_ranges, quantize

    text = (ROOT / "dla" / "data" / "cfg" / "yolov3-tiny.cfg").read_text()
    text = text.replace("width=416", f"width={YOLO_SIZE}").replace("height=416", f"height={YOLO_SIZE}")
    cfg = workdir / "yolov3-tiny-small.cfg"
    cfg.write_text(text)
    net = random_weights(parse_network(cfg), seed=3)
    rng = np.random.default_rng(4)
    calib = [synthetic_image(net.input_shape, rng) for _ in range(2)]
    qnet = quantize(net, collect_ranges(net, calib), "per_channel")
    x = synthetic_image(net.input_shape, rng)
    engine = Engine(net, qnet, hw)
    run = engine.run(x, "int")
    plans = engine.plans()
    layers = []
    for index, k in selection.items():
        spec = net.layers[index]
        x_q = run.records[index - 1].output  # both layers take the previous layer's output
        tiles = conv_tiles(spec, plans[index], x_q, hw)
        if k is not None and k < len(tiles):
            tiles = tiles[:k - 1] + tiles[-1:]
        layers.append((spec, tiles, run.records[index].output))
    return layers


# ============================================================================ model: operand widths

#: yolov3-tiny quantized at operand widths by the spec's overrides (``quant``), run by the INT
#: engine: per case the overrides and the (pair, output bits) layers 2 and 22 get.  Layer 2 reads
#: layer 1 (the maxpool of layer 0's output, same tensor group), layer 22 reads layer 21.
WIDTH_CASES: tuple[tuple[tuple[dict, ...], dict[int, tuple[str, int]]], ...] = (
    (({"layers": (0, 2, 22), "activation_bits": 16}, {"layers": (22,), "weight_bits": 16}),
     {2: ("w8a16", 16), 22: ("w16a8", 16)}),
    (({"layers": (2, 22), "weight_bits": 4}, {"layers": (22,), "activation_bits": 16}),
     {2: ("w4a8", 8), 22: ("w4a8", 16)}),
    (({"layers": (0, 21), "activation_bits": 16}, {"layers": (2,), "weight_bits": 4}),
     {2: ("w4a16", 8), 22: ("w8a16", 8)}),
)


def reference_conv(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray, rq, rq_neg,
                   out_bits: int, hw: HardwareConfig) -> np.ndarray:
    """The INT conv at any operand widths, independently of the engine's GEMM: a loop over the
    kernel offsets of int64 products (exact), ``+ b``, fitted to ``acc_bits``, requantized by
    ``dla.requant.apply`` (fused leaky: ``apply_select``) and saturated to ``out_bits``."""
    from dla import arith
    from dla.requant import apply, apply_select

    n, oh, ow = spec.out_shape
    c, k, s, pad = spec.in_shape[0], spec.size, spec.stride_y, spec.padding
    assert spec.groups == 1 and spec.stride_x == s
    xp = np.zeros((c, x.shape[1] + 2 * pad + k, x.shape[2] + 2 * pad + k), dtype=np.int64)
    xp[:, pad:pad + x.shape[1], pad:pad + x.shape[2]] = x
    w4 = np.asarray(w).reshape(n, c, k, k).astype(np.int64)
    acc = np.zeros((n, oh, ow), dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, ky:ky + s * oh:s, kx:kx + s * ow:s]  # (C, OH, OW)
            acc += np.einsum("nc,chw->nhw", w4[:, :, ky, kx], patch)
    acc = arith.fit(acc + b.reshape(-1, 1, 1), hw.acc_bits, hw.acc_overflow)
    y = apply_select(acc, rq, rq_neg, hw) if spec.activation == "leaky" else apply(acc, rq, hw)
    return arith.saturate(y, out_bits)


def yolo_width_tiles(hw: HardwareConfig, workdir: Path) -> list[tuple[str, int, ConvSpec, list[Tile]]]:
    """Per :data:`WIDTH_CASES` entry: yolov3-tiny at :data:`YOLO_SIZE` with seeded random weights,
    calibrated on two synthetic images and quantized per channel at the case's widths, run by the
    INT engine; for layers 2 (3x3 leaky, W = 144, cut into bands of 32 pixels so the case stays
    short) and 22 (1x1 linear, W = 256, 255 filters): (pair, output bits, spec, the first and the
    last tile — a partial filter block), expected outputs the engine's record of the layer.  The
    nested-loop :func:`reference_conv` on the engine's plan must give the same record."""
    from dla.engine import Engine
    from golden.genweights import random_weights, synthetic_image
    from golden.network import parse_network
    from quant import QuantSpec, collect_ranges, quantize
    from quant.spec import Override

    text = (ROOT / "dla" / "data" / "cfg" / "yolov3-tiny.cfg").read_text()
    text = text.replace("width=416", f"width={YOLO_SIZE}").replace("height=416", f"height={YOLO_SIZE}")
    cfg = workdir / "yolov3-tiny-widths.cfg"
    cfg.write_text(text)
    net = random_weights(parse_network(cfg), seed=3)
    rng = np.random.default_rng(4)
    calib = [synthetic_image(net.input_shape, rng) for _ in range(2)]
    ranges = collect_ranges(net, calib)
    x = synthetic_image(net.input_shape, rng)
    cases = []
    for overrides, layers in WIDTH_CASES:
        spec_q = QuantSpec(granularity="per_channel", overrides=tuple(Override(**o) for o in overrides))
        engine = Engine(net, quantize(net, ranges, spec=spec_q), hw)
        run = engine.run(x, "int")
        plans = engine.plans()
        for index, (pair, out_bits) in layers.items():
            spec, plan, record = net.layers[index], plans[index], run.records[index].output
            x_in = engine.int_tensor(spec.inputs[0], run.records, x)
            wb, ab, ob = layer_widths(plan)
            assert (f"w{wb}a{ab}", ob) == (pair, out_bits), (index, overrides, (wb, ab, ob))
            ref = reference_conv(spec, x_in, plan.w_q, plan.b_q, plan.rq,
                                 plan.rq_neg if plan.rq_neg is not None else plan.rq, ob, hw)
            assert np.array_equal(ref, record), f"reference_conv differs from the engine: layer {index} {pair}"
            tiles = conv_tiles(spec, plan, x_in, hw, band=32 if index == 2 else None, reference=record)
            cases.append((pair, out_bits, spec, [tiles[0], tiles[-1]]))
    return cases


def model_cycles(folds: int, passes: float, pixels: int, hw: HardwareConfig) -> int:
    """The cycle rule of a tile, written out here: ``folds·n·(pixels + 2R + C − 2) + requant_latency``
    for ``n = passes ≥ 1`` digit passes; packing (``passes < 1``) costs one pass."""
    n = int(passes) if passes >= 1 else 1
    return folds * n * (pixels + 2 * hw.rows + hw.cols - 2) + hw.requant_latency


# ============================================================================ test bench

Pattern = Callable[[], bool] | None


def random_pattern(seed: int, p: float) -> Callable[[], bool]:
    """True with probability ``p`` each cycle (seeded)."""
    rng = np.random.default_rng(seed)
    return lambda: bool(rng.random() < p)


class InputDriver:
    """Drives ``in_valid``/``in_data`` from a queue of int8 vectors; with ``idle``, inserts a
    gap before a beat when ``idle()`` says so (a raised ``in_valid`` stays up until accepted)."""

    def __init__(self, dut, rows: int, idle: Pattern = None) -> None:
        """Lanes of ``A_W`` bits (16 when the core has w8a16; int8 values sign-extended)."""
        self.dut, self.rows, self.idle = dut, rows, idle
        self.a_w = len(dut.in_data) // rows
        self.queue: deque[np.ndarray] = deque()
        self.accepted = 0
        self._task = None

    def send(self, vectors: np.ndarray) -> None:
        self.queue.extend(np.asarray(vectors))  # (beats, ROWS) int8/int16 values

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("InputDriver already started")
        self.dut.in_valid.value = 0
        self.dut.in_data.value = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        dut = self.dut
        valid = False
        while True:
            await RisingEdge(dut.clk)
            if valid and dut.in_ready.value == 1:
                self.queue.popleft()
                self.accepted += 1
                valid = False
            if self.queue and (valid or self.idle is None or not self.idle()):
                dut.in_data.value = pack(self.queue[0], self.a_w)
                valid = True
            dut.in_valid.value = int(valid)


class OutputMonitor:
    """Records output beats (``PACK·COLS`` lanes of ``OUT_W`` bits each) and the edges of
    ``done`` pulses; drives ``out_ready`` low when ``backpressure()`` says so."""

    def __init__(self, dut, nq: int, out_w: int, period_ns: int, backpressure: Pattern = None) -> None:
        self.dut, self.nq, self.out_w, self.period, self.backpressure = dut, nq, out_w, period_ns, backpressure
        self.beats: list[np.ndarray] = []
        self.done_edges: list[int] = []
        self._task = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("OutputMonitor already started")
        self.dut.out_ready.value = 1
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            if dut.out_valid.value == 1 and dut.out_ready.value == 1:
                self.beats.append(unpack(int(dut.out_data.value.to_unsigned()), self.nq, self.out_w))
            if dut.done.value == 1:
                self.done_edges.append(edge_index(self.period))
            dut.out_ready.value = int(self.backpressure is None or not self.backpressure())


def edge_index(period_ns: int) -> int:
    """Index of the rising edge just awaited (the clock starts high at t = 0: edges at k·period)."""
    return int(cocotb.utils.get_sim_time(unit="ns")) // period_ns


class TileSequencer:
    """Runs tiles back to back: holds ``start`` high with the next tile's ``pixels``, ``folds``,
    ``mode``, ``out_wide``, per-lane integers and weight row 0 until the core takes it
    (``start_ready``), then presents weight rows 1..R-1 on the next R-1 cycles (checking
    ``w_load``); for every further fold, presents its row 0 until ``w_load`` takes it, then rows
    1..R-1 on the next cycles (a fold's second digit pass keeps its weights: no ``w_load``)."""

    def __init__(self, dut, hw: HardwareConfig, nq: int, period_ns: int) -> None:
        self.dut, self.hw, self.nq, self.period = dut, hw, nq, period_ns
        self.start_edges: list[int] = []
        self.errors: list[str] = []

    async def run(self, tiles: Sequence[Tile]) -> None:
        dut, acc, mw = self.dut, self.hw.acc_bits, self.hw.multiplier_bits
        for t in tiles:
            dut.pixels.value = t.pixels
            dut.folds.value = t.folds
            dut.mode.value = t.mode
            dut.out_wide.value = int(t.out_bits == 16)
            q = self.nq  # the core's filter lanes (tiles carry PACK·C, zero past cols_used)
            assert t.cols_used <= q
            dut.bias.value = pack(t.bias[:q], acc)
            dut.mult.value = pack(t.mult[:q], mw)
            dut.shift.value = pack(t.shift[:q], 6)
            dut.neg_mult.value = pack(t.neg_mult[:q], mw)
            dut.neg_shift.value = pack(t.neg_shift[:q], 6)
            dut.leaky_en.value = int(t.leaky)
            dut.w_row.value = pack(t.weights[0, 0], 8)
            dut.start.value = 1
            while True:
                await RisingEdge(dut.clk)
                if dut.start_ready.value == 1:
                    break
            self.start_edges.append(edge_index(self.period))
            dut.start.value = 0
            beats = t.weights.reshape(-1, self.hw.cols)  # (folds·R, C)
            for k in range(1, len(beats)):
                dut.w_row.value = pack(beats[k], 8)
                await RisingEdge(dut.clk)
                if k % self.hw.rows == 0:  # a fold's first beat: when the core is ready for it
                    while dut.w_load.value != 1:
                        await RisingEdge(dut.clk)
                elif dut.w_load.value != 1:
                    self.errors.append(f"w_load low in weight beat {k}")
        dut.start.value = 0


class Checker:
    """In-order comparison of each tile's output beats with its expected int8 outputs."""

    def __init__(self, log) -> None:
        self.log = log
        self.errors = 0

    def check(self, i: int, tile: Tile, beats: np.ndarray) -> None:
        got = beats[:, :tile.cols_used]  # (pixels, cols_used)
        if not np.array_equal(got, tile.expected):
            self.errors += 1
            bad = np.argwhere(got != tile.expected)[0] if got.shape == tile.expected.shape else None
            self.log.error(f"tile {i} (layer {tile.layer} group {tile.group} filters {tile.filter0}+{tile.cols_used} "
                           f"pixels {tile.pixel0}+{tile.pixels}): first mismatch at (pixel, col) {bad}: got "
                           f"{got[tuple(bad)] if bad is not None else got.shape}, expected "
                           f"{tile.expected[tuple(bad)] if bad is not None else tile.expected.shape}")

    def check_cycles(self, i: int, tile: Tile, cycles: int) -> None:
        if cycles != tile.expected_cycles:
            self.errors += 1
            self.log.error(f"tile {i} ({tile.rows_used}x{tile.cols_used}x{tile.pixels}, {tile.folds} folds): "
                           f"{cycles} cycles, "
                           f"dla.cycles.tile_cycles says {tile.expected_cycles}")


class TB:
    """Clock, reset, geometry check, driver/monitor/sequencer and checker around ``dla_core``."""

    PERIOD_NS = 10

    def __init__(self, dut, idle: Pattern = None, backpressure: Pattern = None) -> None:
        self.dut = dut
        self.hw = HardwareConfig(**json.loads(os.environ[HW_ENV]))
        self.params = json.loads(os.environ[BUILD_ENV])  # the Verilog parameters of this build
        self.check_geometry()
        self.driver = InputDriver(dut, self.hw.rows, idle)
        self.monitor = OutputMonitor(dut, self.nq, self.params["OUT_W"], self.PERIOD_NS, backpressure)
        self.sequencer = TileSequencer(dut, self.hw, self.nq, self.PERIOD_NS)
        self.checker = Checker(dut._log)
        self.timed = idle is None and backpressure is None

    @property
    def nq(self) -> int:
        """Filter lanes of the build: ``PACK·COLS`` with w4a8, else ``COLS``."""
        return self.hw.cols * (PACK if self.params["PACK_W4A8"] else 1)

    def runs(self, pair: str, out_bits: int) -> bool:
        """Whether this build has the mode of ``pair`` and outputs of ``out_bits``."""
        p = self.params
        built = {"w8a8": True, "w8a16": p["PASSES_W8A16"] > 0, "w4a16": p["PASSES_W4A16"] > 0,
                 "w4a8": p["PACK_W4A8"] > 0, "w16a8": p["PASSES_W16A8"] > 0}
        return built[pair] and out_bits <= p["OUT_W"]

    def check_geometry(self) -> None:
        """The DUT's parameters (and its requantizer's LATENCY) must be the config's."""
        dut, hw = self.dut, self.hw
        want = self.params  # core_parameters(hw), the operand modes possibly turned off
        assert want == {**core_parameters(hw), **{k: want[k] for k in INT8_ONLY}}, f"build parameters {want}"
        got = {name: int(getattr(dut, name).value) for name in want}
        assert got == want, f"DUT parameters {got} differ from the build's {want}"
        latency = int(dut.g_col[0].u_rq.LATENCY.value)
        assert latency == hw.requant_latency, \
            f"dla_requant LATENCY={latency} but HardwareConfig.requant_latency={hw.requant_latency}"
        a_w = A_W if want["PASSES_W8A16"] else 8
        assert len(dut.w_row) == 8 * hw.cols and len(dut.in_data) == a_w * hw.rows, "port widths"
        assert len(dut.out_data) == want["OUT_W"] * self.nq and len(dut.bias) == hw.acc_bits * self.nq, \
            "port widths"

    async def reset(self) -> None:
        dut = self.dut
        Clock(dut.clk, self.PERIOD_NS, unit="ns").start()
        dut.rst.value = 1
        dut.start.value = 0
        for name in ("pixels", "folds", "mode", "out_wide", "w_row", "bias", "mult", "shift", "neg_mult", "neg_shift",
                     "leaky_en"):
            getattr(dut, name).value = 0
        self.driver.start()
        self.monitor.start()
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def run(self, tiles: Sequence[Tile]) -> None:
        """Every tile back to back; then every output checked, and cycles when untimed stalls are off."""
        for t in tiles:
            self.driver.send(t.input_beats())  # fold by fold, pass by pass
        budget = 4 * sum(t.expected_cycles for t in tiles) + 100 * len(tiles) + 100
        seq = cocotb.start_soon(self.sequencer.run(tiles))
        for _ in range(budget):
            if len(self.monitor.done_edges) == len(tiles):
                break
            await RisingEdge(self.dut.clk)
        if not seq.done():  # a hung core: report it below instead of waiting forever
            seq.cancel()
        self.driver.stop()
        self.monitor.stop()
        assert len(self.monitor.done_edges) == len(tiles), \
            f"{len(self.monitor.done_edges)} of {len(tiles)} tiles done after {budget} cycles"
        assert not self.sequencer.errors, self.sequencer.errors
        beats = np.array(self.monitor.beats).reshape(-1, self.nq)  # (Σ pixels, NQ)
        pixels = sum(t.pixels for t in tiles)
        assert len(beats) == pixels, f"{len(beats)} beats for {pixels} pixels"
        p = 0
        for i, t in enumerate(tiles):
            self.checker.check(i, t, beats[p:p + t.pixels])
            p += t.pixels
            start, done = self.sequencer.start_edges[i], self.monitor.done_edges[i]
            if i + 1 < len(tiles) and self.sequencer.start_edges[i + 1] != done:
                self.checker.errors += 1
                self.dut._log.error(f"tile {i + 1} started at edge {self.sequencer.start_edges[i + 1]}, "
                                    f"not in tile {i}'s done cycle {done}")
            if self.timed:
                self.checker.check_cycles(i, t, done - start)


# ============================================================================ cocotb tests

if cocotb is not None:

    @cocotb.test()
    @cocotb.parametrize(idle=[False, True], backpressure=[False, True])
    async def random_tiles(dut, idle: bool, backpressure: bool) -> None:
        """Random 1x1 layers at every operand pair (leaky on and off, int8 and int16 outputs) tile by
        tile: outputs = conv_int (w8a8 to int8) or the nested-loop reference; cycles = the cycle rule
        unless gaps or stalls are inserted."""
        seed = 100 + 2 * idle + backpressure
        tb = TB(dut, idle=random_pattern(seed, 0.3) if idle else None,
                backpressure=random_pattern(seed + 50, 0.4) if backpressure else None)
        rng = np.random.default_rng(seed)
        layers = [lay for lay in RANDOM_LAYERS if tb.runs(lay[0], lay[2])]
        if len(layers) == 1:  # the w8a8/int8 core: ten w8a8 layers, leaky and linear
            layers = [("w8a8", bool(k % 2), 8) for k in range(len(RANDOM_LAYERS))]
        assert len(layers) == len(RANDOM_LAYERS), layers
        tiles = [t for pair, leaky, out_bits in layers for t in random_layer_tiles(rng, tb.hw, leaky, pair, out_bits)]
        inside = [np.abs(t.expected.ravel()) < (1 << (t.out_bits - 1)) - 1 for t in tiles]  # not at a rail
        assert np.count_nonzero(np.concatenate(inside)) > sum(v.size for v in inside) // 3, "random cases mostly saturate"
        await tb.reset()
        await tb.run(tiles)
        assert tb.checker.errors == 0

    @cocotb.test()
    async def tiny_network_layers(dut) -> None:
        """The conv layers of a tiny quantized network that fit the array, tile by tile: the
        assembled outputs equal the INT engine's; each tile's cycles equal tile_cycles."""
        tb = TB(dut)
        layers, refused = tiny_network_tiles(tb.hw, Path.cwd())
        assert [s.index for s, _, _ in layers] == list(range(len(TINY_WINDOWS))), refused
        assert [t.folds for _, ts, _ in layers for t in ts[:1]] == [-(-w // tb.hw.rows) for w in TINY_WINDOWS]
        await tb.reset()
        tiles = [t for _, ts, _ in layers for t in ts]
        await tb.run(tiles)
        beats = np.array(tb.monitor.beats).reshape(-1, tb.nq)
        p = 0
        for spec, ts, engine_out in layers:
            outs = []
            for t in ts:
                outs.append(beats[p:p + t.pixels])
                p += t.pixels
            assert np.array_equal(assemble(spec, ts, outs), engine_out), f"layer {spec.index}"
        assert tb.checker.errors == 0

    @cocotb.test()
    async def yolov3_tiny_layers(dut) -> None:
        """yolov3-tiny layer 2 (3x3 s1 leaky, W = 144) and layer 22 (1x1, W = 256) with seeded random
        weights quantized per channel, tile by tile with reduction folds: each tile's outputs equal the
        INT engine's record of the layer and its cycles equal tile_cycles, exactly."""
        tb = TB(dut)
        selection = yolo_selection(tb.hw)
        layers = yolo_network_tiles(tb.hw, Path.cwd(), selection)
        assert all(t.folds > 1 for _, ts, _ in layers for t in ts), "these layers must need reduction folds"
        await tb.reset()
        tiles = [t for _, ts, _ in layers for t in ts]
        await tb.run(tiles)
        beats = np.array(tb.monitor.beats).reshape(-1, tb.nq)
        p = 0
        for spec, ts, engine_out in layers:
            flat = engine_out.reshape(spec.filters, -1)  # (N, Npx): the INT engine's record
            outs = []
            for t in ts:
                outs.append(beats[p:p + t.pixels])
                c0 = t.group * (spec.filters // spec.groups) + t.filter0
                want = flat[c0:c0 + t.cols_used, t.pixel0:t.pixel0 + t.pixels].T
                assert np.array_equal(outs[-1][:, :t.cols_used], want), \
                    f"layer {spec.index} tile filters {c0}+{t.cols_used} pixels {t.pixel0}+{t.pixels}"
                p += t.pixels
            if selection[spec.index] is None:  # the whole layer: assembled output = engine output
                assert np.array_equal(assemble(spec, ts, outs), engine_out), f"layer {spec.index}"
        assert tb.checker.errors == 0

    @cocotb.test()
    async def yolov3_tiny_widths(dut) -> None:
        """yolov3-tiny layers 2 and 22 quantized at every operand pair of the core (w8a16 and w4a16 by
        two digit passes, w4a8 by two filters per PE) and int8/int16 outputs: each tile's outputs equal
        the INT engine's record of the layer (np.array_equal) and its cycles the cycle rule at the
        config's passes."""
        tb = TB(dut)
        cases = yolo_width_tiles(tb.hw, Path.cwd())
        tiles = [t for _, _, _, ts in cases for t in ts]
        for pair, out_bits, spec, ts in cases:
            wb, ab = (int(v) for v in pair[1:].split("a"))
            for t in ts:
                assert (t.pair, t.out_bits) == (pair, out_bits)
                assert t.expected_cycles == model_cycles(t.folds, tb.hw.passes(wb, ab), t.pixels, tb.hw), (pair, t)
            outs = np.concatenate([t.expected.ravel() for t in ts])
            if out_bits == 16:  # the int16 range is used, beyond int8
                assert np.abs(outs).max() > 127, (pair, spec.index)
            assert np.count_nonzero(np.abs(outs) < (1 << (out_bits - 1)) - 1) > outs.size // 2, "mostly saturated"
        packed = [t for t in tiles if t.pair == "w4a8"]
        assert any(t.cols_used > tb.hw.cols for t in packed), "a w4a8 tile must use the packed filters"
        await tb.reset()
        await tb.run(tiles)
        assert tb.checker.errors == 0

    @cocotb.test()
    async def int16_sums_beyond_the_accumulator(dut) -> None:
        """w8a16 1x1 layer with a window of 1200 rows of int16 extremes: a partial sum beyond
        acc_bits that ends inside it (the buffer must stay exact across folds and passes) and
        sums beyond acc_bits (saturated once, as the engine does); int16 outputs equal the
        engine's conv_int (and the nested-loop reference), cycles the rule."""
        tb = TB(dut)
        if not tb.runs("w8a16", 16):
            raise AssertionError("this build has no w8a16 mode; run the test on a full core only")
        cin, half = 1200, 600
        spec = ConvSpec(index=0, kind=Kind.CONV, in_shape=(cin, 1, 2), out_shape=(3, 1, 2), filters=3, size=1,
                        activation="linear")
        x = np.empty((cin, 1, 2), dtype=np.int16)
        x[:half, 0, 0], x[half:, 0, 0], x[:, 0, 1] = 32767, -32768, 32767
        w = np.empty((3, cin), dtype=np.int64)
        w[0], w[1, :half], w[1, half:], w[2] = 127, -128, 127, -128
        b = np.array([5, -7, 0], dtype=np.int64)
        rq = encode(np.full(3, 2.0 ** -17), tb.hw)
        ref = reference_conv(spec, x, w, b, rq, rq, 16, tb.hw)
        exact = (w @ x[:, 0, :].astype(np.int64)) + b[:, None]  # (3, 2)
        partial = w[:, :half] @ x[:half, 0, :].astype(np.int64)
        assert (np.abs(exact) > tb.hw.acc_max).any() and (np.abs(exact) <= tb.hw.acc_max).any()
        assert ((np.abs(partial) > tb.hw.acc_max) & (np.abs(exact) <= tb.hw.acc_max)).any()
        assert len(set(ref.ravel().tolist())) >= 3, ref
        dtype, chunk = gemm_plan(8, 16)
        plan = LayerPlan(out_scale=1.0, in_scales=[1.0], out_bits=16, in_bits=[16], w_bits=8, chunk=chunk,
                         w_q=w.astype(dtype), b_q=b, rq=rq)
        assert np.array_equal(conv_int(spec, [x], plan, tb.hw)[0], ref), "the engine differs from the reference"
        tiles = conv_tiles(spec, plan, x, tb.hw)
        assert len(tiles) == 1 and tiles[0].folds == -(-cin // tb.hw.rows)
        await tb.reset()
        await tb.run(tiles)
        assert tb.checker.errors == 0
