"""Reading the RTL's interface with pyverilog: module parameters and ports.

``dla rtl check`` uses it to verify that the Verilog's parameters agree with the
``HardwareConfig`` a comparison runs with, that the operand pairs the core declares (and what
each costs) are the ones the config's ``passes_w*a*`` table says, and that a (user) core has
every port the adapter drives.

Operand pairs: a core declares each pair it runs besides w8a8 as a parameter,
``PASSES_W<w>A<a> = n`` (every fold runs ``n`` digit passes: cost ``n``) or
``PACK_W<w>A<a> = n`` (``n`` filters per PE: cost ``1/n``); 0 (or no such parameter) = the
pair is not built.  w8a8 is always there at cost 1.  The cost is compared with
``HardwareConfig.passes(w, a)``.  pyverilog 1.3 writes its parser tables into the current directory and evaluates
``$clog2`` to 0 without warning, so it runs in a temporary directory and only plain integer
parameters are compared (derived localparams are the simulator's business).
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dla.config import HardwareConfig
from golden.errors import FileMissingError, UserInputError

RTL_DIR = Path(__file__).resolve().parent / "rtl"
CORE = RTL_DIR / "dla_core.v"

#: Verilog parameter -> HardwareConfig field it must equal.
PARAMETER_FIELDS = {"ROWS": "rows", "COLS": "cols", "ACC_W": "acc_bits", "MULT_W": "multiplier_bits",
                    "REQUANT_LATENCY": "requant_latency"}
#: Ports the tile adapter drives or reads.
CORE_PORTS = ("clk", "rst", "start", "start_ready", "pixels", "folds", "mode", "out_wide", "busy", "done", "w_load",
              "w_row", "bias", "mult",
              "shift", "neg_mult", "neg_shift", "leaky_en", "in_valid", "in_ready", "in_data", "out_valid",
              "out_ready", "out_data")


@dataclass(frozen=True)
class Interface:
    module: str
    parameters: dict[str, int | None]  # None: not a plain integer (an expression)
    ports: dict[str, str]  # name -> direction


@contextlib.contextmanager
def _in_tmpdir():
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(old)


def read_interface(path: str | Path = CORE, module: str | None = None) -> Interface:
    path = Path(path).resolve()
    if not path.is_file():
        raise FileMissingError(path, "Verilog source")
    try:
        from pyverilog.vparser.ast import Input, Inout, ModuleDef, Output, Parameter
        from pyverilog.vparser.parser import parse
    except ImportError:
        from rtl_bridge.sim import require_rtl_tools

        require_rtl_tools("reading the RTL's interface", simulator=False, cocotb=False, pyverilog=True)
        raise  # pyverilog is there but does not import: its own error says why
    with _in_tmpdir():
        try:
            ast, _ = parse([str(path)], debug=False)
        except Exception as exc:  # pyverilog raises plain exceptions on syntax errors
            raise UserInputError(f"{path}: pyverilog cannot parse it: {exc}") from None
    mods = [d for d in ast.description.definitions if isinstance(d, ModuleDef)]
    if not mods:
        raise UserInputError(f"{path}: no module found")
    mod = next((m for m in mods if m.name == module), None) if module else mods[0]
    if mod is None:
        raise UserInputError(f"{path}: no module '{module}' (found: {', '.join(m.name for m in mods)})")
    params: dict[str, int | None] = {}
    for p in (mod.paramlist.params if mod.paramlist else ()):
        for decl in getattr(p, "list", [p]):
            if isinstance(decl, Parameter):
                try:
                    params[decl.name] = int(str(decl.value.var))
                except (ValueError, AttributeError):
                    params[decl.name] = None
    ports: dict[str, str] = {}
    for port in mod.portlist.ports:
        first = getattr(port, "first", port)
        kind = {Input: "input", Output: "output", Inout: "inout"}.get(type(first), "port")
        ports[first.name] = kind
    return Interface(mod.name, params, ports)


_PAIR_PARAM = re.compile(r"^(PASSES|PACK)_W(\d+)A(\d+)$")


@dataclass(frozen=True)
class PairCost:
    """One operand pair as the RTL declares it: ``passes`` in ``HardwareConfig.passes`` units
    (0 = not built, None = an expression pyverilog cannot evaluate) and the parameter saying so."""

    pair: str
    passes: float | None
    parameter: str | None  # None for w8a8 (always built)


def rtl_pairs(iface: Interface) -> dict[str, PairCost]:
    """The operand pairs the RTL declares (module docstring), w8a8 first, then by name."""
    out = {"w8a8": PairCost("w8a8", 1.0, None)}
    for name in sorted(iface.parameters):
        m = _PAIR_PARAM.match(name)
        if not m:
            continue
        kind, wb, ab = m.group(1), int(m.group(2)), int(m.group(3))
        n = iface.parameters[name]
        cost = None if n is None else 0.0 if n <= 0 else float(n) if kind == "PASSES" else 1.0 / n
        out[f"w{wb}a{ab}"] = PairCost(f"w{wb}a{ab}", cost, name)
    return out


def pair_problems(iface: Interface, hw: HardwareConfig) -> list[str]:
    """Pairs both the RTL and ``hw`` run, at different costs: the RTL's tile cycles would then
    disagree with the cycle model's.  (A pair only one side runs is :func:`missing_pairs`' business.)"""
    rtl = rtl_pairs(iface)
    problems = []
    for pair in hw.supported_pairs():
        wb, ab = (int(v) for v in pair[1:].split("a"))
        want, got = hw.passes(wb, ab), rtl.get(pair)
        if got is not None and got.passes not in (None, 0.0) and got.passes != want:
            problems.append(f"{pair}: the RTL core runs it at passes {got.passes:g} ({got.parameter} = "
                            f"{iface.parameters[got.parameter]}), but the hardware config has passes_{pair} = {want:g}")
    return problems


def missing_pairs(iface: Interface, hw: HardwareConfig) -> list[str]:
    """Pairs ``hw`` runs (and the INT engine and cycle model therefore accept) that the RTL core
    has no mode for.  Not a disagreement — nothing runs differently; ``dla rtl run`` refuses such a
    layer by name — but worth saying: the RTL cannot confirm those layers.  (A pair the RTL runs
    and the config does not is no note at all: the engine never sends such a layer.)"""
    rtl = rtl_pairs(iface)
    notes = []
    for pair in hw.supported_pairs():
        got = rtl.get(pair)
        if got is None or got.passes == 0:
            why = f"{got.parameter} = 0" if got is not None else f"no PASSES_{pair.upper()} or PACK_{pair.upper()} parameter"
            wb, ab = (int(v) for v in pair[1:].split("a"))
            notes.append(f"{pair}: the hardware config runs it (passes_{pair} = {hw.passes(wb, ab):g}) but the RTL "
                         f"core has no mode for it ({why}); `dla rtl run` refuses such layers")
    return notes


def check_against(iface: Interface, hw: HardwareConfig, required_ports: tuple[str, ...] = CORE_PORTS) -> list[str]:
    """Problems (empty = the RTL fits the config and the adapter): parameters, operand pairs
    (:func:`pair_problems`), ports."""
    problems = []
    for pname, field in PARAMETER_FIELDS.items():
        if pname not in iface.parameters:
            problems.append(f"parameter {pname} is missing (expected {field} = {getattr(hw, field)})")
        elif iface.parameters[pname] is not None and iface.parameters[pname] != getattr(hw, field):
            problems.append(f"parameter {pname} = {iface.parameters[pname]} in the RTL, but the hardware config has "
                            f"{field} = {getattr(hw, field)}")
    problems += pair_problems(iface, hw)
    for port in required_ports:
        if port not in iface.ports:
            problems.append(f"port '{port}' is missing from module {iface.module}")
    return problems
