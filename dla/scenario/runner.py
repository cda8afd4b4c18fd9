"""Executing a scenario: every mode on every input for every variant, cycles, STEP/CROSS, RTL,
then the checks.  The result is plain data (``ScenarioResult.summary`` is what ``summary.json``
holds); the reports are written from it by ``dla.scenario.outputs``.

Order of work (each stage reported to ``progress``): build (load, calibrate once, quantize per
variant) → FLOAT once per input → HYBRID/INT per variant per input, compared layer by layer
with FLOAT → cycle model → step/cross on one ``Session`` (first variant, first input) → RTL
layers (first variant, first input) → ``tune:`` (``dla.scenario.tune_step``; its metric and
space are checked right after the build) → checks (plus the case ``tune``).

Determinism: ``summary`` holds results only, and the same scenario gives the same bytes in
``summary.json`` whatever the thread count or process (``dla run`` in a terminal, a 1-thread
Dask worker of ``dla regress``).  Wall times live in ``ScenarioResult.seconds`` (``timing.json``).
The one thread-dependent computation was the golden engine's float GEMM: OpenBLAS splits the
inner dimension differently with 1 and 2 threads for some shapes (e.g. K = 464..1168 with
64 × 500 outputs on this project's AVX-512 machine), which moves float32 results by an ulp and
SQNRs by ~1e-7.  Every FLOAT computation here (calibration statistics, FLOAT runs, STEP/CROSS)
therefore runs with BLAS limited to one thread (``float_blas``); HYBRID and INT convolutions
are exact integer sums (``dla.int_kernels.exact_int_gemm``) and keep every thread.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dla import __version__, fused
from dla.compare import match_detections
from dla.cycles import network_cycles
from dla.cycles.model import NetworkCycles
from dla.cycles.report import cycles_json
from dla.engine import Engine, Mode, RunResult
from dla.metrics import error_metrics
from dla.scenario.build import Built, Input, Variant, build
from dla.scenario.checks import evaluate_checks
from dla.scenario.load import LoadedScenario
from dla.scenario.steps import Steps, run_steps
from dla.session import Session
from golden.detect import Detection, detect, top_k
from golden.errors import UserInputError
from golden.layers import Kind

Progress = Callable[[str], None]



def _cycle_totals(nc: NetworkCycles) -> dict[str, Any]:
    """One variant's cycle figures, for a precision sweep's comparison (``cycles_by_variant``)."""
    return {"total_cycles": nc.total_cycles, "latency_ms": nc.latency_ms, "fps": nc.fps, "util_pct": nc.util_pct,
            "dram_bytes": nc.dram_bytes, "weight_bytes": nc.weight_bytes}

def float_blas():
    """Context manager: BLAS limited to one thread, so that float32 GEMMs (the golden engine's
    convolutions) sum in one order whatever the machine's or the worker's thread count."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _finite(v: float) -> float | str:
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


@dataclass
class ScenarioResult:
    """Everything a report needs: ``summary`` (JSON-able) plus arrays kept for the plots."""

    loaded: LoadedScenario
    built: Built
    summary: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)  # wall times: timing.json, not summary.json
    float_runs: dict[str, RunResult] = field(default_factory=dict)  # input name -> FLOAT run
    detections: dict[tuple[str, str, str], list[Detection]] = field(default_factory=dict)  # (input, variant, mode)
    tune: dict[str, Any] | None = None  # the tune.json of the 'tune:' section (its figures go into the report)
    tune_dir: Path | None = None  # tune's outputs (in the work folder), copied to the report folder's tune/

    @property
    def passed(self) -> bool:
        return bool(self.summary["passed"])


def _outputs(net, run: RunResult, inp: Input, s, names: list[str] | None
             ) -> tuple[list[Detection] | None, list[tuple[str, float]] | None]:
    outs = run.outputs()
    if net.is_detector:
        return detect(net, outs, inp.size[0], inp.size[1], names, s.thresh, s.nms), None
    return None, top_k(outs[net.output_index], 5, names)


def _layer_rows(net, ref: RunResult, run: RunResult, variant: Variant, image: str, mode: str) -> list[dict[str, Any]]:
    """One row per layer of ``run`` against FLOAT; ``precision`` is the variant's widths of the
    layer (``quant.precision.LayerPrecision.to_dict``: the same in HYBRID and INT)."""
    rows = []
    for spec in net.layers:
        rec = run.records[spec.index]
        m = error_metrics(ref.records[spec.index].real, rec.real)
        st = rec.stats
        rows.append({"variant": variant.name, "image": image, "mode": mode, "index": spec.index,
                     "type": spec.kind.value, "shape": "x".join(map(str, spec.out_shape)),
                     "precision": variant.qnet.precision(spec).to_dict(),
                     "sqnr_db": _finite(m.sqnr_db), "max_abs": m.max_abs, "mean_abs": m.mean_abs, "cosine": m.cosine,
                     "saturated_pct": 100.0 * st.saturated / st.elements if st.elements else 0.0,
                     "overflow": st.overflow, "scale": rec.scale})
    return rows


def _rtl(ls: LoadedScenario, built: Built, tmp: Path, progress: Progress,
         seconds: dict[str, float]) -> list[dict[str, Any]]:
    """The ``rtl:`` layers; their simulation time is added to ``seconds["rtl_sim"]``."""
    from rtl_bridge.bench_core import run_layer

    if not built.variants:
        raise ls.error("the RTL runs the INT model: add 'int' or 'hybrid' to 'modes' (or give a qnet)", "rtl")
    engine = built.variants[0].engine
    out = []
    for i, e in enumerate(ls.scenario.rtl):
        progress(f"RTL layer {e.layer}")
        spec = built.net.layers[e.layer] if 0 <= e.layer < len(built.net.layers) else None
        if spec is None or spec.kind is not Kind.CONV:
            raise ls.error(f"layer {e.layer} is not a convolutional layer of {built.net.name}", "rtl", i, "layer")
        try:
            run = run_layer(engine, built.inputs[0].x, e.layer, e.tiles, build_dir=tmp / f"rtl-build-{i}")
        except UserInputError as exc:
            raise ls.error(str(exc), "rtl", i) from None
        seconds["rtl_sim"] = seconds.get("rtl_sim", 0.0) + run.sim_seconds
        out.append({"layer": e.layer, "tiles_run": len(run.tiles), "tiles_total": run.total_tiles, "ok": run.ok,
                    "mismatches": sum(t.n_mismatches for t in run.tiles),
                    "cycle_mismatches": sum(t.rtl_cycles != t.model_cycles for t in run.tiles),
                    "rtl_cycles": sum(t.rtl_cycles for t in run.tiles),
                    "model_cycles": sum(t.model_cycles for t in run.tiles), "macs": run.macs,
                    "first_mismatches": [list(m) for t in run.tiles for m in t.mismatches][:5]})
    return out


def _steps(ls: LoadedScenario, built: Built) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    s = ls.scenario
    mode = Mode(s.step_mode)
    if mode is not Mode.FLOAT and not built.variants:
        raise ls.error(f"step_mode '{mode.value}' needs a quantized model: add it to 'modes' (or give a qnet)",
                       "step_mode")
    engine = built.variants[0].engine if built.variants else Engine(built.net, None, built.hw)
    session = Session(engine, built.inputs[0].x, mode=mode)
    steps = Steps(
        step=[{"_line": ls.line("step", i), **e.model_dump(exclude_none=True)} for i, e in enumerate(s.step)],
        cross=[{"_line": ls.line("cross", i), "layer": e.layer, "continue": e.continue_} for i, e in enumerate(s.cross)])
    for e in steps.step:
        if isinstance(e.get("print"), str):
            e["print"] = [e["print"]]
    log = run_steps(session, steps, ls.path)
    return [e for e in log if e["action"] != "cross"], [e for e in log if e["action"] == "cross"]


def run_scenario(ls: LoadedScenario, work_dir: Path, progress: Progress | None = None) -> ScenarioResult:
    """Run everything ``ls`` names.  ``work_dir`` is scratch space (RTL builds); user mistakes
    found while running raise ``ScenarioError`` naming the scenario's line."""
    progress = progress or (lambda _msg: None)
    s = ls.scenario
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    if s.rtl:  # the missing tools are named now, not after the calibration and the other modes
        from rtl_bridge.sim import require_rtl_tools

        try:
            require_rtl_tools("the 'rtl:' section")
        except UserInputError as exc:
            raise ls.error(str(exc), "rtl") from None
    progress("building the model and calibrating")
    with float_blas():
        built = build(ls)
    net = built.net
    if isinstance(s.report.histograms, list):
        for i, layer in enumerate(s.report.histograms):
            if not 0 <= layer < len(net.layers):
                raise ls.error(f"layer {layer} is out of range: {net.name} has layers 0..{len(net.layers) - 1}",
                               "report", "histograms", i)
    tune_space = None
    if s.tune is not None:  # its mistakes now, not after every other part of the scenario has run
        from dla.scenario.tune_step import check_tune

        tune_space = check_tune(ls, built)
    seconds["build"] = time.perf_counter() - t0
    result = ScenarioResult(ls, built, {})
    float_engine = Engine(net, None, built.hw)
    layers: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    mode_seconds: dict[str, list[float]] = {m: [] for m in s.modes}
    for inp in built.inputs:
        progress(f"FLOAT on {inp.name}")
        with float_blas():
            ref = float_engine.run(inp.x, Mode.FLOAT)
        mode_seconds["float"].append(ref.seconds)
        result.float_runs[inp.name] = ref
        dets, top = _outputs(net, ref, inp, s, built.names)
        result.detections[(inp.name, "", "float")] = dets or []
        outputs.append({"image": inp.name, "variant": None, "mode": "float",
                        "detections": [d.to_json() for d in dets] if dets is not None else None,
                        "top5": [{"class": n, "prob": p} for n, p in top] if top is not None else None})
        for v in built.variants:
            for mode in s.quantized_modes():
                progress(f"{mode.upper()} {v.name} on {inp.name}")
                compiled = fused.compile_seconds()
                run = v.engine.run(inp.x, Mode(mode))
                compiled = fused.compile_seconds() - compiled  # numba's first-run compile, not the run's
                seconds["compile"] = seconds.get("compile", 0.0) + compiled
                mode_seconds[mode].append(run.seconds - compiled)
                layers += _layer_rows(net, ref, run, v, inp.name, mode)
                mdets, mtop = _outputs(net, run, inp, s, built.names)
                row: dict[str, Any] = {"image": inp.name, "variant": v.name, "mode": mode, "detections": None,
                                       "top5": None}
                if mdets is not None:
                    result.detections[(inp.name, v.name, mode)] = mdets
                    row["detections"] = [d.to_json() for d in mdets]
                    row["agreement"] = match_detections(dets or [], mdets).to_dict()
                else:
                    assert mtop is not None and top is not None
                    row["top5"] = [{"class": n, "prob": p} for n, p in mtop]
                    row["agreement"] = {"top1_match": mtop[0][0] == top[0][0]}
                outputs.append(row)
    seconds.update({f"{m}_per_image": float(np.mean(v)) if v else 0.0 for m, v in mode_seconds.items()})
    cycles, cycles_by_variant = None, None
    if s.cycles:
        progress("cycle model")
        try:
            cycles = cycles_json(network_cycles(net, built.hw, built.first_precisions()))
            cycles_by_variant = {name: _cycle_totals(network_cycles(net, built.hw, prec))
                                 for name, prec in built.distinct_precisions().items()} or None
        except UserInputError as exc:
            raise ls.error(str(exc), "hw") from None
    step_log, cross_log = ([], [])
    if s.step or s.cross:
        progress("step / cross")
        with float_blas():
            step_log, cross_log = _steps(ls, built)
    rtl = _rtl(ls, built, work_dir, progress, seconds) if s.rtl else []
    summary: dict[str, Any] = {
        "scenario": ls.name, "description": s.description, "source": str(ls.path), "dla_version": __version__,
        "model": {"name": net.name, **built.model_source, "input_shape": list(net.input_shape),
                  "layers": len(net.layers), "macs": net.macs, "detector": net.is_detector},
        "hw_source": built.hw_source, "hw": built.hw.to_dict(), "modes": list(s.modes),
        "variants": [{"name": v.name, **({"precision": v.precision} if v.precision is not None else {}),
                      "spec": v.spec.to_dict()} for v in built.variants],
        "images": [{"name": i.name, "source": str(i.path) if i.path else "generated", "size": list(i.size)}
                   for i in built.inputs],
        "layers": layers, "outputs": outputs, "cycles": cycles, "cycles_by_variant": cycles_by_variant, "step": step_log, "cross": cross_log, "rtl": rtl,
    }
    if s.tune is not None:  # dla/scenario/tune_step.py: after everything else, it is the longest part
        from dla.scenario.tune_step import run_tune, tune_case, tune_summary

        result.tune_dir = work_dir / "tune"
        with float_blas():  # its calibration and FLOAT references: the same sums in any process
            result.tune = run_tune(ls, built, tune_space, result.tune_dir, progress)
        summary["tune"] = tune_summary(result.tune)
        seconds["tune"] = float(result.tune.get("seconds") or 0.0)
    progress("checks")
    summary["checks"] = evaluate_checks(s, summary, net)
    if result.tune is not None:
        summary["checks"].append(tune_case(result.tune))
    summary["passed"] = all(c["passed"] for c in summary["checks"])
    seconds["total"] = time.perf_counter() - t0
    result.summary = summary
    result.seconds = seconds
    return result


__all__ = ["ScenarioResult", "Variant", "run_scenario"]
