"""The one module that runs an HDL simulator (STYLE rule 12): cocotb 2.1's runner on Icarus Verilog.

The cocotb runner (``cocotb_tools.runner``) is marked experimental, so every ``build()`` and
``test()`` call of the project goes through :func:`run_cocotb`; test benches never import it.
A missing ``iverilog``, cocotb or pyverilog is an error with the one install hint of every RTL
feature, :data:`INSTALL_HINT` (``dla.doctor.RTL_HINT``: the ``[rtl]`` extra and the apt line),
never a skip; commands check with :func:`require_rtl_tools` before doing any work.  Results come back as the path of cocotb's JUnit XML file; :func:`read_results`
parses it.

Notes on the runner (cocotb 2.1), handled here so callers need not know them:

* it skips recompiling when the sources are older than ``sim.vvp``, even if ``parameters``
  changed — so callers give one ``build_dir`` per parameter set, and ``build.json`` written
  next to ``sim.vvp`` forces a rebuild when the top level, sources or parameters differ;
* under pytest its ``test()`` calls ``sys.exit`` when a cocotb test fails; that is turned back
  into a normal return so the caller can report the failures from the results file;
* a failed compile only says "Command failed with return code"; the compiler's own messages
  are captured in ``build.log`` and put into the raised error;
* the simulator's own output (cocotb's GPI banner, its log) goes to ``sim.log`` in the build
  directory, not to the user's terminal; :func:`sim_log_tail` gives its end for error messages.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from dla.doctor import RTL_HINT
from golden.errors import DlaError, UserInputError

RTL_DIR = Path(__file__).resolve().parent / "rtl"
"""Where the project's Verilog sources live (``rtl_bridge/rtl/<module>.v``)."""

INSTALL_HINT = RTL_HINT
"""How to install everything the RTL features need (one hint for all of them)."""

SIM_LOG = "sim.log"
"""The simulator's output, in the build directory."""


class SimulationError(DlaError):
    """Raised when the HDL cannot be compiled or the simulator ends without a results file."""


def missing_rtl_tools(simulator: bool = True, cocotb: bool = True, pyverilog: bool = False) -> list[str]:
    """Which of the asked-for RTL tools are not installed: ``iverilog`` (on PATH), the Python
    packages ``cocotb`` and ``pyverilog`` (found without importing them)."""
    missing = []
    if pyverilog and importlib.util.find_spec("pyverilog") is None:
        missing.append("pyverilog")
    if cocotb and importlib.util.find_spec("cocotb_tools") is None:
        missing.append("cocotb")
    if simulator and shutil.which("iverilog") is None:
        missing.append("iverilog")
    return missing


def require_rtl_tools(feature: str, simulator: bool = True, cocotb: bool = True, pyverilog: bool = False) -> None:
    """Raise one ``UserInputError`` naming every missing tool ``feature`` needs, with
    :data:`INSTALL_HINT`; called before any work (calibration, builds) starts."""
    missing = missing_rtl_tools(simulator, cocotb, pyverilog)
    if missing:
        raise UserInputError(f"{feature} needs {', '.join(missing)}, not installed here: install the RTL tools "
                             f"with {INSTALL_HINT} (Debian/Ubuntu; 'dla doctor' checks)")


def require_simulator() -> str:
    """Path of ``iverilog``; raises ``UserInputError`` with :data:`INSTALL_HINT` if it is missing."""
    require_rtl_tools("simulating the RTL", simulator=True, cocotb=False)
    return shutil.which("iverilog")


def _runner():  # noqa: ANN202 - cocotb_tools' Runner, imported lazily (cocotb is the [rtl] extra)
    require_rtl_tools("simulating the RTL", simulator=False, cocotb=True)
    from cocotb_tools.runner import get_runner

    return get_runner("icarus")


def sim_log_tail(build_dir: str | Path, lines: int = 30) -> str:
    """The last ``lines`` lines of the simulator's log in ``build_dir`` ("" if there is none)."""
    log = Path(build_dir) / SIM_LOG
    if not log.is_file():
        return ""
    tail = log.read_text(errors="replace").rstrip().splitlines()[-lines:]
    return f"last lines of {log}:\n" + "\n".join(tail)


def run_cocotb(toplevel: str, sources: Sequence[str | Path], test_module: str,
               parameters: Mapping[str, object], build_dir: str | Path,
               extra_env: Mapping[str, str] | None = None) -> Path:
    """Compile ``sources`` with ``parameters`` into ``build_dir`` and run the cocotb tests of
    ``test_module`` (a dotted module name importable from ``sys.path``) on ``toplevel``.

    Returns the path of the JUnit results file (``build_dir/results.xml``).  Raises
    ``UserInputError`` if ``iverilog`` or cocotb is missing, ``SimulationError`` with the
    compiler's messages if the build fails or if the simulator wrote no results (then with the
    end of ``build_dir/sim.log``, where the simulator's output goes).
    Environment variables already set in the calling process take precedence over
    ``extra_env`` (the runner's behaviour), so ``COCOTB_RANDOM_SEED=…`` reproduces a run.
    """
    require_simulator()
    runner = _runner()
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    params = {k: parameters[k] for k in sorted(parameters)}
    srcs = [Path(s).resolve() for s in sources]
    # The runner rebuilds only when a source is newer than sim.vvp: record what was built.
    stamp = build_dir / "build.json"
    built = {"toplevel": toplevel, "sources": [str(s) for s in srcs], "parameters": params}
    stale = not stamp.is_file() or json.loads(stamp.read_text()) != built
    log = build_dir / "build.log"
    try:
        runner.build(sources=srcs, hdl_toplevel=toplevel, parameters=params, build_dir=build_dir,
                     always=stale, timescale=("1ns", "1ps"), log_file=log)
    except RuntimeError as exc:
        stamp.unlink(missing_ok=True)
        msg = log.read_text(errors="replace").strip() if log.is_file() else str(exc)
        raise SimulationError(f"iverilog could not build {toplevel} with {params}:\n{msg}") from None
    stamp.write_text(json.dumps(built))

    results = build_dir / "results.xml"
    results.unlink(missing_ok=True)  # a previous run's file must not pass for this one's
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                    parameters=params, extra_env=dict(extra_env or {}), results_xml=str(results),
                    timescale=("1ns", "1ps"), log_file=build_dir / SIM_LOG)
    except SystemExit:
        pass  # failed cocotb tests (or a crashed simulator): judged from the results file below
    if not results.is_file():
        raise SimulationError(f"the simulation of {toplevel} ended without writing {results} "
                              f"(simulator crash or cocotb could not load the test module); "
                              f"{sim_log_tail(build_dir)}")
    return results


def compile_check(toplevel: str, sources: Sequence[str | Path], parameters: Mapping[str, object],
                  generation: str = "2005") -> str:
    """Compile ``sources`` with ``iverilog -g<generation> -Wall`` (no simulation) and return its
    messages ("" for a clean compile); raises ``SimulationError`` with them if compiling fails.
    Used to keep RTL within plain Verilog-2005 (the cocotb build itself runs ``-g2012``)."""
    iverilog = require_simulator()
    cmd = [iverilog, f"-g{generation}", "-Wall", "-o", os.devnull, "-s", toplevel]
    cmd += [f"-P{toplevel}.{k}={v}" for k, v in sorted(parameters.items())]
    cmd += [str(s) for s in sources]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    messages = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise SimulationError(f"iverilog -g{generation} could not compile {toplevel} with {dict(parameters)}:\n"
                              f"{messages}")
    return messages


@dataclass(frozen=True)
class CocotbResults:
    """What a cocotb JUnit results file reports: one entry per cocotb test case."""

    tests: int
    failures: int
    """Failed, errored and skipped cases: the project never skips silently."""
    failed: list[str] = field(default_factory=list)
    """``"name: status: message"`` of each case counted in ``failures``."""

    @property
    def ok(self) -> bool:
        """At least one test ran and none failed (a run that tested nothing is not a pass)."""
        return self.tests > 0 and self.failures == 0


def read_results(path: str | Path) -> CocotbResults:
    """Parse cocotb's results XML (``<testsuites><testsuite><testcase>…``); a skipped case
    counts as a failure."""
    root = ElementTree.parse(path).getroot()
    tests = failures = 0
    failed = []
    for case in root.iter("testcase"):
        tests += 1
        for status in ("failure", "error", "skipped"):
            bad = case.find(status)
            if bad is not None:
                failures += 1
                reason = (bad.get("message") or bad.text or "").strip()
                failed.append(f"{case.get('name')}: {status}: {reason}")
                break
    return CocotbResults(tests, failures, failed)


__all__ = ["CocotbResults", "INSTALL_HINT", "RTL_DIR", "SIM_LOG", "SimulationError", "compile_check",
           "missing_rtl_tools", "read_results", "require_rtl_tools", "require_simulator", "run_cocotb",
           "sim_log_tail"]
