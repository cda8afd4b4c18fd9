"""cocotb bench of the requantizer ``rtl_bridge/rtl/dla_requant.v`` against ``dla.arith``, bit for bit.

Two halves in one module (the cocotb convention):

* ``requant_vectors`` — the ``@cocotb.test`` run inside Icarus: a ``TB`` made of a
  ``Driver`` (transactions with optional random idle cycles), a ``Monitor`` (``q`` when
  ``valid_out``), a ``Model`` (``dla.arith``) and an in-order ``Checker`` (value and latency);
* ``test_requant_runner`` — the pytest function that builds the RTL once per
  ``HardwareConfig`` variant through ``rtl_bridge.sim`` and asserts the results file;
  ``test_requant_is_plain_verilog_2005`` compiles it with ``iverilog -g2005 -Wall``.

cocotb seeds each test from ``COCOTB_RANDOM_SEED`` (fixed by the runner, overridable from the
environment) and the test's name, so the two timing variants draw different random vectors.

The runner hands the ``HardwareConfig`` to the simulator process as JSON (``DLA_HW_JSON``);
the bench checks the DUT's parameters against it and writes what it read and how many
results it checked to ``DLA_RTL_REPORT``, which the runner asserts too.
"""
from __future__ import annotations

import json
import os
import random
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

from dla import arith
from dla.config import HardwareConfig
from golden.errors import UserInputError
from rtl_bridge import sim

SOURCES = [sim.RTL_DIR / "dla_requant.v"]
"""Verilog compiled for the top level ``dla_requant``; to check your own RTL, list your wrapper and
core here instead (docs/rtl.md, "Plugging in your own RTL")."""
PERIOD_NS = 10
N_RANDOM = 10_000
"""Random (acc, multiplier, shift) triples per cocotb test, on top of the directed edge cases."""
INT32_MIN, INT32_MAX = arith.INT32_MIN, arith.INT32_MAX
SHIFT_MIN, SHIFT_MAX = -32, 31  # the 6-bit signed shift port


# ----------------------------------------------------------------------------- transactions

@dataclass(frozen=True)
class Txn:
    """One requantizer input: positive-branch and (fused leaky) negative-branch parameters."""

    acc: int
    mult: int
    shift: int
    neg_mult: int = 0
    neg_shift: int = 0
    leaky_en: bool = False
    wide: bool = False  # out_wide: int16 result (when the DUT has OUT_W = 16)


class Model:
    """The Python model: ``dla.arith`` exactly as the DLA configures it."""

    def __init__(self, hw: HardwareConfig, out_w: int = 8) -> None:
        default = HardwareConfig()
        unsupported = {k: getattr(hw, k) for k in ("requant", "rounding", "left_shift_overflow", "leaky")
                       if getattr(hw, k) != getattr(default, k)}
        assert not unsupported, f"dla_requant implements the DLA defaults only, not {unsupported}"
        self.hw, self.out_w = hw, out_w

    def predict(self, t: Txn) -> int:
        neg = t.leaky_en and t.acc < 0  # fused LeakyReLU: acc < 0 takes alpha*M
        mult, shift = (t.neg_mult, t.neg_shift) if neg else (t.mult, t.shift)
        acc32 = arith.multiply_by_quantized_multiplier(t.acc, mult, shift, bits=self.hw.multiplier_bits,
                                                       rounding=self.hw.rounding,
                                                       left_shift_overflow=self.hw.left_shift_overflow)
        return int(arith.saturate(acc32, 16 if t.wide and self.out_w == 16 else 8))


# ----------------------------------------------------------------------------- bench

class Driver:
    """Drives one transaction per accepted cycle; ``idle`` inserts random idle cycles (valid low,
    random data that the DUT must ignore).  Calls ``on_send(txn, cycle)`` for each transaction."""

    def __init__(self, dut, rng: random.Random, idle: str | None, on_send) -> None:
        self.dut, self.rng, self.idle, self.on_send = dut, rng, idle, on_send
        self._task = None

    def start(self, txns: list[Txn]) -> None:
        if self._task is not None:
            raise RuntimeError("Driver already started")
        self._task = cocotb.start_soon(self._run(txns))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def wait(self) -> None:
        await self._task

    def _put(self, valid: int, t: Txn) -> None:
        d = self.dut
        d.valid_in.value = valid
        d.acc.value, d.mult.value, d.shift.value = t.acc, t.mult, t.shift
        d.neg_mult.value, d.neg_shift.value, d.leaky_en.value = t.neg_mult, t.neg_shift, int(t.leaky_en)
        d.out_wide.value = int(t.wide)

    def _garbage(self) -> Txn:
        r, w = self.rng, len(self.dut.mult)
        return Txn(r.randint(INT32_MIN, INT32_MAX) >> (32 - len(self.dut.acc)), r.getrandbits(w - 1),
                   r.randint(SHIFT_MIN, SHIFT_MAX), r.getrandbits(w - 1), r.randint(SHIFT_MIN, SHIFT_MAX),
                   r.random() < 0.5, r.random() < 0.5)

    async def _run(self, txns: list[Txn]) -> None:
        clk = self.dut.clk
        for t in txns:
            while self.idle == "random" and self.rng.random() < 0.3:
                await RisingEdge(clk)
                self._put(0, self._garbage())
            await RisingEdge(clk)
            self._put(1, t)
            self.on_send(t, _cycle())
        await RisingEdge(clk)
        self._put(0, self._garbage())


class Monitor:
    """Calls ``on_recv(q, cycle)`` for every cycle with ``valid_out`` high."""

    def __init__(self, dut, on_recv) -> None:
        self.dut, self.on_recv = dut, on_recv
        self._task = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("Monitor already started")
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if self.dut.valid_out.value == 1:
                self.on_recv(self.dut.q.value.to_signed(), _cycle())


class Checker:
    """In order: each result must equal the model's and arrive exactly ``latency`` cycles after
    its input.  Counts errors, logs the first few in full."""

    def __init__(self, latency: int, log) -> None:
        self.latency, self.log = latency, log
        self.pending: deque[tuple[Txn, int, int]] = deque()
        self.sent = self.checked = self.errors = 0

    def expect(self, t: Txn, expected: int, cycle: int) -> None:
        self.pending.append((t, expected, cycle))
        self.sent += 1

    def observe(self, q: int, cycle: int) -> None:
        if not self.pending:
            self._error(f"unexpected output q={q} at cycle {cycle} (nothing pending)")
            return
        t, expected, sent = self.pending.popleft()
        self.checked += 1
        if q != expected or cycle - sent != self.latency:
            self._error(f"{t}: DUT q={q} after {cycle - sent} cycles, model q={expected} "
                        f"after {self.latency}")

    def _error(self, msg: str) -> None:
        self.errors += 1
        if self.errors <= 10:
            self.log.error(msg)


class TB:
    def __init__(self, dut, hw: HardwareConfig, idle: str | None) -> None:
        self.dut, self.hw = dut, hw
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.params = check_parameters(dut, hw)
        self.model = Model(hw, self.params["OUT_W"])
        self.checker = Checker(self.params["LATENCY"], dut._log)
        self.driver = Driver(dut, self.rng, idle,
                             lambda t, c: self.checker.expect(t, self.model.predict(t), c))
        self.monitor = Monitor(dut, self.checker.observe)
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())

    async def reset(self) -> None:
        self.dut.rst.value = 1
        self.dut.valid_in.value = 0
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def drain(self) -> None:
        await self.driver.wait()
        for _ in range(self.params["LATENCY"] + 3):
            await RisingEdge(self.dut.clk)
        self.driver.stop()
        self.monitor.stop()


def _cycle() -> int:
    return int(get_sim_time("ns")) // PERIOD_NS


def check_parameters(dut, hw: HardwareConfig) -> dict[str, int]:
    """Read the DUT's parameters back and fail if they differ from the ``HardwareConfig``."""
    got = {"ACC_W": int(dut.ACC_W.value), "MULT_W": int(dut.MULT_W.value), "LATENCY": int(dut.LATENCY.value),
           "OUT_W": int(dut.OUT_W.value)}
    want = {"ACC_W": hw.acc_bits, "MULT_W": hw.multiplier_bits, "LATENCY": hw.requant_latency,
            "OUT_W": int(os.environ["DLA_OUT_W"])}
    assert got == want, f"DUT parameters {got} differ from HardwareConfig {want}"
    assert len(dut.acc) == got["ACC_W"] and len(dut.mult) == got["MULT_W"], "port widths differ from parameters"
    assert len(dut.q) == got["OUT_W"], "q's width differs from OUT_W"
    return got


# ----------------------------------------------------------------------------- stimulus

def _srdhm(a: int, m: int, bits: int) -> int:
    """Plain-integer SRDHM (no saturation: only used to construct ties with m >= 0)."""
    return (a * m + (1 << (bits - 2))) >> (bits - 1)


def _acc_for(x: int, m: int, bits: int, acc_min: int, acc_max: int) -> int | None:
    """An accumulator with ``SRDHM(acc, m) == x`` (``m >= 2^(bits−2)`` hits every integer), or None."""
    guess = (x << (bits - 1)) // m
    for acc in range(guess - 3, guess + 4):
        if acc_min <= acc <= acc_max and _srdhm(acc, m, bits) == x:
            return acc
    return None


def make_vectors(hw: HardwareConfig, rng: random.Random, n_random: int) -> list[Txn]:
    """Directed edge cases, exact ties of both roundings, then ``n_random`` random triples."""
    bits, acc_min, acc_max = hw.multiplier_bits, max(hw.acc_min, INT32_MIN), min(hw.acc_max, INT32_MAX)
    m_one, m_half = (1 << (bits - 1)) - 1, 1 << (bits - 2)  # largest Q0.(bits-1), and 0.5
    normal = lambda: rng.randint(m_half, m_one)  # noqa: E731 - a quantize_multiplier mantissa
    out: list[Txn] = []

    # 1. corners: extreme accumulators x special multipliers x extreme shifts
    accs = [acc_min, acc_min + 1, -(1 << 30), -2, -1, 0, 1, 2, 1 << 30, acc_max - 1, acc_max]
    accs = sorted({a for a in accs if acc_min <= a <= acc_max})
    mults = [0, 1, m_half, m_one, normal()]
    shifts = [SHIFT_MIN, -31, -30, -16, -2, -1, 0, 1, 2, 16, 30, SHIFT_MAX]
    out += [Txn(a, m, s) for a in accs for m in mults for s in shifts]
    # left-shift saturation boundaries: acc = ±2^(31-left) ± 1 around the int32 limit
    for left in range(1, SHIFT_MAX + 1):
        edge = 1 << (31 - left)
        for a in (edge - 1, edge, -edge, -edge - 1):
            if acc_min <= a <= acc_max:
                out.append(Txn(a, normal(), left))

    # 2. SRDHM ties (a·m/2^(bits-1) = k + 1/2): m = u·2^j (u odd), a = odd·2^(bits-2-j)
    for _ in range(500):
        j = rng.randint(max(0, bits - 32), bits - 2)
        m = rng.randrange(1, 1 << (bits - 1 - j), 2) << j
        k = 33 - bits + j  # |odd| < 2^k keeps a = odd·2^(bits-2-j) inside int32
        a = rng.randrange(-(1 << k) + 1, 1 << k, 2) << (bits - 2 - j)
        if acc_min <= a <= acc_max:
            assert (a * m) % (1 << (bits - 1)) == 1 << (bits - 2)
            out.append(Txn(a, m, rng.randint(SHIFT_MIN, 0)))

    # 3. RoundingDivideByPOT ties: SRDHM result x = (2k+1)·2^(e-1), both signs, e = 1..31
    # (e = 32 would need x = -2^31, which SRDHM with m < 2^(bits-1) cannot produce)
    for _ in range(1000):
        e = rng.randint(1, 31)
        x = rng.randrange(-(1 << (32 - e)) + 1, 1 << (32 - e), 2) << (e - 1)
        m = rng.choice([m_half, m_one, normal()])
        acc = _acc_for(x, m, bits, acc_min, acc_max)
        if acc is not None:
            out.append(Txn(acc, m, -e))

    # 4. fused LeakyReLU: alpha·M on the negative side, both signs of acc
    for _ in range(500):
        real = 2.0 ** rng.uniform(-20, 4)
        m, s = arith.quantize_multiplier(real, bits)
        nm, ns = arith.quantize_multiplier(0.1 * real, bits)
        small = rng.randint(acc_min >> 11, acc_max >> 11)
        a = rng.choice([acc_min, acc_max, 0, -1, small, rng.randint(acc_min, acc_max)])
        out.append(Txn(a, m, s, nm, max(ns, SHIFT_MIN), True))

    # 5. random: encoded real multipliers (what the compiler emits) and raw fields
    for _ in range(n_random):
        kind = rng.random()
        if kind < 0.4:
            m, s = arith.quantize_multiplier(2.0 ** rng.uniform(-34, 30), bits)  # shift <= 30
        else:
            m = rng.choice([normal(), rng.randint(0, m_one)])
            s = rng.randint(SHIFT_MIN, SHIFT_MAX)
        width = rng.randint(1, 32)
        a = max(acc_min, min(acc_max, rng.randint(-(1 << (width - 1)), (1 << (width - 1)) - 1)))
        leaky = rng.random() < 0.25
        nm, ns = (rng.randint(0, m_one), rng.randint(SHIFT_MIN, SHIFT_MAX)) if leaky else (0, 0)
        out.append(Txn(a, m, s, nm, ns, leaky))

    # 6. the int8 and int16 saturation limits (m ~ 1, shift 0: the result is acc)
    for a in (126, 127, 128, 129, 32766, 32767, 32768, 32769):
        for sign in (1, -1):
            if acc_min <= sign * a <= acc_max:
                out.append(Txn(sign * a, m_one, 0))

    # 7. the one SRDHM overflow (MULT_W = 32 only): INT32_MIN · INT32_MIN saturates.  Outside the
    # non-negative multiplier contract, kept to show the RTL keeps gemmlowp's check.
    if bits == 32 and acc_min == INT32_MIN:
        out += [Txn(INT32_MIN, INT32_MIN, s) for s in (SHIFT_MIN, -31, -1, 0, 5)]
    # every vector asks for int8 or int16 at random (OUT_W = 8 must ignore out_wide)
    return [replace(t, wide=rng.random() < 0.5) for t in out]


# ----------------------------------------------------------------------------- cocotb test

@cocotb.test()
@cocotb.parametrize(idle=[None, "random"])
async def requant_vectors(dut, idle: str | None) -> None:
    """Directed + random vectors, back to back (idle=None) or with random idle cycles."""
    hw = HardwareConfig(**json.loads(os.environ["DLA_HW_JSON"]))
    tb = TB(dut, hw, idle)
    vectors = make_vectors(hw, tb.rng, N_RANDOM)
    await tb.reset()
    tb.monitor.start()
    tb.driver.start(vectors)
    await tb.drain()
    errors, sent, checked = tb.checker.errors, tb.checker.sent, tb.checker.checked
    _report(f"idle={idle}", {**tb.params, "sent": sent, "checked": checked})
    assert errors == 0, (f"{errors} of {checked} results differ from dla.arith or arrived off-latency "
                         "(the first ones are logged above)")
    assert checked == sent == len(vectors), f"sent {sent}, checked {checked}, of {len(vectors)} vectors"


def _report(name: str, values: dict[str, int]) -> None:
    path = Path(os.environ["DLA_RTL_REPORT"])
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = values
    path.write_text(json.dumps(data, indent=1))


# ----------------------------------------------------------------------------- pytest runner

HW_VARIANTS = [
    pytest.param(HardwareConfig(), 8, id="mult32"),
    pytest.param(HardwareConfig(multiplier_bits=16), 8, id="mult16"),
    pytest.param(HardwareConfig(), 16, id="mult32-out16"),
]


def require_simulator() -> None:
    """A missing iverilog fails the test with the install command (never a skip)."""
    try:
        sim.require_simulator()
    except UserInputError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.parametrize("hw,out_w", HW_VARIANTS)
def test_requant_runner(hw: HardwareConfig, out_w: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Build dla_requant with this config's widths (and ``OUT_W``) and run the cocotb bench; every
    cocotb test must pass, at least one must run, and the DUT's LATENCY must be ``requant_latency``."""
    require_simulator()
    build_dir = tmp_path / "sim_build" / request.node.callspec.id
    report = build_dir / "observed.json"
    report.unlink(missing_ok=True)
    results = sim.run_cocotb(
        toplevel="dla_requant", sources=SOURCES, test_module=__name__,
        parameters={"ACC_W": hw.acc_bits, "MULT_W": hw.multiplier_bits, "OUT_W": out_w}, build_dir=build_dir,
        extra_env={"DLA_HW_JSON": json.dumps(hw.to_dict()), "DLA_RTL_REPORT": str(report), "DLA_OUT_W": str(out_w),
                   "COCOTB_RANDOM_SEED": "20240611"})
    outcome = sim.read_results(results)
    assert outcome.ok, f"cocotb: {outcome.tests} tests, {outcome.failures} failed: {outcome.failed}"
    assert outcome.tests == 2, f"expected the 2 parametrizations of requant_vectors, ran {outcome.tests}"
    observed = json.loads(report.read_text())
    assert set(observed) == {"idle=None", "idle=random"}, observed
    for name, seen in observed.items():
        assert seen["LATENCY"] == HardwareConfig().requant_latency, (name, seen)
        assert seen["MULT_W"] == hw.multiplier_bits and seen["ACC_W"] == hw.acc_bits, (name, seen)
        assert seen["OUT_W"] == out_w, (name, seen)
        assert seen["checked"] == seen["sent"] >= N_RANDOM, (name, seen)


@pytest.mark.parametrize("hw,out_w", HW_VARIANTS)
def test_requant_is_plain_verilog_2005(hw: HardwareConfig, out_w: int) -> None:
    """The RTL compiles as Verilog-2005 (no SystemVerilog) without a single iverilog warning."""
    require_simulator()
    messages = sim.compile_check("dla_requant", SOURCES, {"ACC_W": hw.acc_bits, "MULT_W": hw.multiplier_bits,
                                                          "OUT_W": out_w}, generation="2005")
    assert messages == "", messages
