"""Run one conv layer of a quantized network through ``rtl/dla_core.v`` (``dla rtl run``).

Two halves in one module (cocotb's convention):

* :func:`run_layer` (host side) cuts the layer into tiles (``rtl_bridge.tile.conv_tiles``),
  writes their stimulus to a temporary ``.npz`` whose path goes to the simulator in the
  environment variable :data:`STIMULUS_ENV`, builds the core with Icarus and runs the cocotb
  test :func:`run_tiles` below through ``rtl_bridge.sim.run_cocotb``; it reads back each
  tile's output beats and measured cycles (``.npz`` at :data:`RESULT_ENV`) and returns a
  :class:`LayerRun`: per tile, RTL cycles vs ``dla.cycles.tile_cycles`` and the first
  mismatching outputs (as ``(c, y, x)`` of the layer) against the INT kernel.
* :func:`run_tiles` (inside the simulator) drives the tiles back to back with no input gap
  and no output stall, and measures each tile as the number of rising edges from the one that
  samples ``start`` to the one that samples ``done`` (the convention of ``dla_core.v``).

With ``vcd``, the bench writes a VCD of the core's ports and main control states, sampled at
every rising edge (the values that edge samples, stamped 1 ns before it; the clock drawn at
its period).  cocotb's Icarus runner starts ``vvp -none`` unless waves are on (and then FST),
so the dump is written from the bench rather than by ``$dumpvars``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dla.config import HardwareConfig
from golden.errors import UnsupportedError
from rtl_bridge.tile import A_W, OUT_W, PACK, Tile, conv_tiles, core_parameters, pack, unpack

STIMULUS_ENV = "DLA_RTL_STIMULUS"
RESULT_ENV = "DLA_RTL_RESULT"
HW_ENV = "DLA_RTL_HW"
TEST_MODULE = "rtl_bridge.bench_core"
PERIOD_NS = 10

VCD_ENV = "DLA_RTL_VCD"

#: Signals written to the VCD (``--vcd``): the core's ports and a few internal states.
VCD_SIGNALS = ("rst", "start", "start_ready", "pixels", "folds", "mode", "out_wide", "busy", "done", "w_load", "w_row", "leaky_en",
               "in_valid", "in_ready", "in_data", "out_valid", "out_ready", "out_data", "loading", "draining",
               "fold_left", "pass_hi", "acc_valid", "acc_idx")


# ============================================================================ host side


@dataclass
class TileResult:
    tile: Tile
    rtl_cycles: int
    model_cycles: int
    mismatches: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """First mismatches ``(c, y, x, got, expected)`` in layer coordinates (at most 5)."""
    n_mismatches: int = 0

    @property
    def ok(self) -> bool:
        return self.n_mismatches == 0 and self.rtl_cycles == self.model_cycles


@dataclass
class LayerRun:
    layer: int
    hw: HardwareConfig
    tiles: list[TileResult]
    total_tiles: int  # of the whole layer
    sim_seconds: float  # wall time of the simulation loop (inside the simulator)
    wall_seconds: float  # build + simulation, as seen by the host

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tiles)

    @property
    def macs(self) -> int:
        return sum(t.tile.macs for t in self.tiles)

    @property
    def macs_per_second(self) -> float:
        return self.macs / self.sim_seconds if self.sim_seconds > 0 else 0.0


def layer_input(engine, run_records: dict, spec, x: np.ndarray) -> np.ndarray:
    """The integer input of conv ``spec`` as the INT engine feeds it (``Engine.int_tensor``)."""
    return engine.int_tensor(spec.inputs[0], run_records, x)


def engine_layer(engine, x: np.ndarray, index: int):
    """Run the INT engine up to layer ``index``: (its int8 input, its INT output record)."""
    from dla.engine import Mode

    if not 0 <= index < len(engine.net.layers):
        from golden.errors import UserInputError

        raise UserInputError(f"--layer {index}: the network has layers 0..{len(engine.net.layers) - 1}")
    engine.plans()
    x = np.ascontiguousarray(x, dtype=np.float32)
    records: dict = {}
    for spec in engine.net.layers[:index + 1]:
        records[spec.index] = engine.layer(spec, Mode.INT, engine.layer_inputs(spec, Mode.INT, records, x))
    spec = engine.net.layers[index]
    return layer_input(engine, records, spec, x), records[index]


def write_stimulus(path: Path, tiles: Sequence[Tile]) -> None:
    arrays = {}
    for i, t in enumerate(tiles):
        arrays[f"w{i}"] = t.weights
        arrays[f"x{i}"] = t.input_beats()
        arrays[f"rq{i}"] = np.stack([t.bias, t.mult, t.shift, t.neg_mult, t.neg_shift])
        arrays[f"meta{i}"] = np.array([t.pixels, t.folds, int(t.leaky), t.mode, int(t.out_bits == 16)])
    np.savez(path, n=np.array(len(tiles)), **arrays)


def run_layer(engine, x: np.ndarray, index: int, max_tiles: int | None = None, vcd: str | Path | None = None,
              build_dir: str | Path | None = None) -> LayerRun:
    """Layer ``index`` (or its first ``max_tiles`` tiles) of ``engine``'s network on input ``x``
    (float, the network's input shape) through the RTL core; see the module docstring."""
    from rtl_bridge.sim import RTL_DIR, SimulationError, read_results, require_rtl_tools, run_cocotb, sim_log_tail

    require_rtl_tools("running a layer on the RTL core")
    hw = engine.hw
    spec = engine.net.layers[index]
    if engine.qnet.on_host(spec):
        raise UnsupportedError(f"layer {index} ({spec.kind.value}) runs on the host (host: true in the model's "
                               "quantization spec): the RTL core runs the DLA's layers only")
    x_q, record = engine_layer(engine, x, index)
    tiles = conv_tiles(spec, engine.plans()[index], x_q, hw)
    total = len(tiles)
    if max_tiles is not None:
        tiles = tiles[:max_tiles]
    params = core_parameters(hw)
    with tempfile.TemporaryDirectory(prefix="dla-rtl-run-") as tmp:
        tmp = Path(tmp)
        stim, res_path = tmp / "stimulus.npz", tmp / "result.npz"
        write_stimulus(stim, tiles)
        sources = [RTL_DIR / "dla_core.v", RTL_DIR / "dla_requant.v"]
        if build_dir is None:
            build_dir = Path(tempfile.gettempdir()) / f"dla-rtl-build-{hw.rows}x{hw.cols}-{os.getuid()}"
        env = {STIMULUS_ENV: str(stim), RESULT_ENV: str(res_path), HW_ENV: json.dumps(hw.to_dict()),
               "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")}  # the report is ours
        if vcd is not None:
            env[VCD_ENV] = str(Path(vcd).resolve())
        t0 = time.perf_counter()
        results = run_cocotb("dla_core", sources, TEST_MODULE, params, build_dir, env)
        wall = time.perf_counter() - t0
        res = read_results(results)
        if not res.ok or not res_path.is_file():
            raise SimulationError("the RTL run failed:\n" + "\n".join(res.failed) + "\n" + sim_log_tail(build_dir))
        with np.load(res_path) as r:
            beats, cycles, sim_seconds = r["beats"], r["cycles"], float(r["seconds"])
    out = []
    oh, ow = spec.out_shape[1], spec.out_shape[2]
    ng = spec.filters // spec.groups
    flat = record.output.reshape(spec.filters, -1)
    p = 0
    for t, cyc in zip(tiles, cycles.tolist(), strict=True):
        got = beats[p:p + t.pixels, :t.cols_used].T  # (cols_used, pixels)
        p += t.pixels
        c0 = t.group * ng + t.filter0
        want = flat[c0:c0 + t.cols_used, t.pixel0:t.pixel0 + t.pixels]
        bad = np.argwhere(got != want)
        first = [(c0 + int(c), (t.pixel0 + int(q)) // ow, (t.pixel0 + int(q)) % ow, int(got[c, q]), int(want[c, q]))
                 for c, q in bad[:5]]
        out.append(TileResult(t, int(cyc), t.expected_cycles, first, len(bad)))
    assert oh * ow == flat.shape[1]
    return LayerRun(index, hw, out, total, sim_seconds, wall)


# ============================================================================ simulator side

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - the host side needs no cocotb
    cocotb = None


def _load_tiles(path: str) -> list[dict]:
    tiles = []
    with np.load(path) as z:
        for i in range(int(z["n"])):
            pixels, folds, leaky, mode, wide = (int(v) for v in z[f"meta{i}"])
            tiles.append({"w": z[f"w{i}"], "x": z[f"x{i}"], "rq": z[f"rq{i}"], "pixels": pixels, "folds": folds,
                          "leaky": leaky, "mode": mode, "wide": wide})
    return tiles


class VcdWriter:
    """A minimal VCD of ``signals`` of ``dut``, one sample per rising edge (see the module docstring)."""

    def __init__(self, dut, path: str, period_ns: int) -> None:
        self.f = open(path, "w")  # noqa: SIM115 - closed in close()
        self.period = period_ns
        self.handles = []
        lines = ["$timescale 1ns $end", "$scope module dla_core $end", "$var wire 1 ! clk $end"]
        for i, name in enumerate(VCD_SIGNALS):
            if not hasattr(dut, name):
                continue
            h = getattr(dut, name)
            ident = chr(65 + i)
            self.handles.append((h, ident, len(h)))
            lines.append(f"$var wire {len(h)} {ident} {name} $end")
        lines += ["$upscope $end", "$enddefinitions $end"]
        self.f.write("\n".join(lines) + "\n")
        self.last: dict[str, str] = {}

    def sample(self, edge: int) -> None:
        t = edge * self.period
        changes = []
        for h, ident, width in self.handles:
            v = str(h.value).lower()
            if self.last.get(ident) != v:
                self.last[ident] = v
                changes.append(f"{v}{ident}" if width == 1 else f"b{v} {ident}")
        self.f.write(f"#{t - 1}\n" + "".join(c + "\n" for c in changes) + f"#{t}\n1!\n#{t + self.period // 2}\n0!\n")

    def close(self) -> None:
        self.f.close()


if cocotb is not None:

    @cocotb.test()
    async def run_tiles(dut) -> None:
        """Every tile of the stimulus file back to back (no gaps, no stalls): output beats and
        cycles (done edge − start edge) per tile into the result file."""
        hw = HardwareConfig(**json.loads(os.environ[HW_ENV]))
        tiles = _load_tiles(os.environ[STIMULUS_ENV])
        rows, cols, acc, mw = hw.rows, hw.cols, hw.acc_bits, hw.multiplier_bits
        Clock(dut.clk, PERIOD_NS, unit="ns").start()
        dut.rst.value = 1
        for name in ("start", "pixels", "folds", "mode", "out_wide", "w_row", "bias", "mult", "shift", "neg_mult", "neg_shift",
                     "leaky_en", "in_valid", "in_data"):
            getattr(dut, name).value = 0
        dut.out_ready.value = 1
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

        beats: list[np.ndarray] = []
        starts: list[int] = []
        dones: list[int] = []

        def now() -> int:
            return int(cocotb.utils.get_sim_time(unit="ns")) // PERIOD_NS

        vcd = VcdWriter(dut, os.environ[VCD_ENV], PERIOD_NS) if os.environ.get(VCD_ENV) else None

        async def monitor() -> None:
            while True:
                await RisingEdge(dut.clk)
                if vcd is not None:
                    vcd.sample(now())
                if dut.out_valid.value == 1:
                    beats.append(unpack(int(dut.out_data.value.to_unsigned()), PACK * cols, OUT_W))
                if dut.done.value == 1:
                    dones.append(now())

        async def driver() -> None:
            vectors = [v for t in tiles for v in t["x"].reshape(-1, rows)]
            k = 0
            if vectors:
                dut.in_data.value = pack(vectors[0], A_W)
                dut.in_valid.value = 1
            while k < len(vectors):
                await RisingEdge(dut.clk)
                if dut.in_ready.value == 1:
                    k += 1
                    if k < len(vectors):
                        dut.in_data.value = pack(vectors[k], A_W)
                    else:
                        dut.in_valid.value = 0

        async def sequencer() -> None:
            for t in tiles:
                b, m, s, nm, ns = t["rq"]
                dut.pixels.value = t["pixels"]
                dut.folds.value = t["folds"]
                dut.mode.value = t["mode"]
                dut.out_wide.value = t["wide"]
                dut.bias.value = pack(b, acc)
                dut.mult.value = pack(m, mw)
                dut.shift.value = pack(s, 6)
                dut.neg_mult.value = pack(nm, mw)
                dut.neg_shift.value = pack(ns, 6)
                dut.leaky_en.value = t["leaky"]
                w = t["w"].reshape(-1, cols)
                dut.w_row.value = pack(w[0], 8)
                dut.start.value = 1
                while True:
                    await RisingEdge(dut.clk)
                    if dut.start_ready.value == 1:
                        break
                starts.append(now())
                dut.start.value = 0
                for k in range(1, len(w)):
                    dut.w_row.value = pack(w[k], 8)
                    while True:
                        await RisingEdge(dut.clk)
                        if dut.w_load.value == 1:
                            break

        t0 = time.perf_counter()
        mon = cocotb.start_soon(monitor())
        drv = cocotb.start_soon(driver())
        seq = cocotb.start_soon(sequencer())
        budget = 2 * sum(2 * t["folds"] * (t["pixels"] + 2 * rows + cols) + 10 for t in tiles) + 100
        for _ in range(budget):
            if len(dones) == len(tiles):
                break
            await RisingEdge(dut.clk)
        seconds = time.perf_counter() - t0
        for task in (mon, drv, seq):
            task.cancel()
        if vcd is not None:
            vcd.close()
        assert len(dones) == len(tiles), f"{len(dones)} of {len(tiles)} tiles done after {budget} cycles"
        np.savez(os.environ[RESULT_ENV], beats=np.array(beats, dtype=np.int64).reshape(-1, PACK * cols),
                 cycles=np.array(dones) - np.array(starts), seconds=np.array(seconds))


__all__ = ["LayerRun", "TileResult", "engine_layer", "run_layer"]
