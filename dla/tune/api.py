"""``tune(TuneRequest) -> TuneResult``: the one entry point of ``dla tune`` (CLI, scenarios, bench).

Usage::

    from dla.tune import TuneRequest, tune
    result = tune(TuneRequest(model="shapes-yolo", data="shapes-val", calib="shapes-val/train",
                              metric="map50_95", max_drop=0.01, cost="cycles", out_dir=Path("out")))
    result.write(Path("out"))        # tune.json, tune.csv, best.qnet, report.html
    result.raise_if_not_met()        # TuneBudgetNotMet (exit code 3) when no point met the budget

Everything the user gave is checked before the first point runs (model, data folder and its
classes, metric vs model, budget, cost, space, output folder), so a mistake leaves no ``OUT``
behind.  ``OUT/cache/`` is written point by point while the search runs (the resume state);
a run that fails on a user mistake after ``OUT`` was created by it removes ``OUT`` again,
while Ctrl-C (or a crash) keeps it, so the next run resumes.
"""
from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dla.config import HardwareConfig
from dla.tune.evaluate import COSTS, qnet_of
from dla.tune.parallel import Evaluator
from dla.tune.result import TuneBudgetNotMet, TuneResult, build_json
from dla.tune.search import Search
from dla.tune.space import SearchSpace, build_space, load_space
from dla.tune.task import build_task, check_metric, load_data
from golden.errors import UserInputError

CALIB_IMAGES = 64
"""Calibration images used by default (the first ones in name order), as ``dla eval``."""


@dataclass
class TuneRequest:
    """What to tune, against what, within which budget.

    * ``model`` — a shipped trained model name (``"shapes-yolo"``), a ``.qnet`` path (its float
      network is re-quantized; its hardware config is used unless ``hw`` is given), a cfg path
      or shipped cfg name with ``weights``, or a ``dla.resolve.ResolvedModel``;
    * ``data`` — a labelled folder (YOLO/COCO, as ``dla eval``; a folder with ``val/`` uses
      ``val/``) or a folder of plain images (agreement scoring against FLOAT);
    * ``calib`` — calibration images (folder or list file); ``None``: ``DATA/train`` if it
      exists, else the scored images; at most ``calib_images`` of them (first in name order);
    * ``metric``/``max_drop`` — the budget: ``map50``, ``map50_95``, ``top1``: at most
      ``max_drop`` below FLOAT's value on the same images; ``sqnr``: the output SQNR at most
      ``max_drop`` dB below the baseline's (FLOAT's SQNR is infinite);
    * ``cost`` — ``cycles`` | ``latency`` (ms at ``hw.clock_mhz``) | ``dram`` (bytes per image)
      | ``weights`` (weight bytes);
    * ``space`` — a :class:`SearchSpace`, a YAML path, a parsed mapping, or ``None`` (defaults);
    * ``workers``/``scheduler`` — 1 = in this process; N = a local Dask cluster; or an address;
    * ``limit`` — score only the first N images;
    * ``quiet`` — kept for callers that forward a ``-q``; the library itself never prints
      (progress goes to ``on_progress``).
    """

    model: Any
    data: str | Path
    metric: str = "map50_95"
    max_drop: float = 0.01
    cost: str = "cycles"
    calib: str | Path | None = None
    space: SearchSpace | str | Path | dict | None = None
    hw: HardwareConfig | str | Path | None = None
    weights: str | Path | None = None
    workers: int = 1
    scheduler: str | None = None
    out_dir: Path = Path("tune-out")
    limit: int | None = None
    calib_images: int = CALIB_IMAGES
    darknet: str = "auto"
    quiet: bool = True


def _resolve(req: TuneRequest):
    from dla.resolve import ResolvedModel, resolve_model

    if isinstance(req.model, ResolvedModel):
        return req.model if req.hw is None else ResolvedModel(req.model.net, req.model.qnet, _hw(req.hw),
                                                              "given", req.model.source, req.model.label,
                                                              req.model.names)
    return resolve_model(req.model, req.weights, darknet=req.darknet, hw=req.hw)


def _hw(hw: Any) -> HardwareConfig:
    from dla.resolve import load_hardware

    return load_hardware(hw) or HardwareConfig()


def check_out_dir(out: Path) -> bool:
    """Refuse an output folder that is not ours; returns whether it already exists."""
    if out.exists():
        if not out.is_dir():
            raise UserInputError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not ((out / "tune.json").is_file() or (out / "cache").is_dir()):
            raise UserInputError(f"{out}: directory exists and is not an earlier 'dla tune' output "
                                 "(no tune.json or cache/): choose another output directory")
        return True
    if not out.parent.is_dir():
        raise UserInputError(f"{out}: directory {out.parent} does not exist")
    return False


def _calibration(req: TuneRequest, data_root: Path, scored: list[Path]) -> list[Path]:
    from quant import calibration_images

    if req.calib is not None:
        files = calibration_images(req.calib)
    else:
        train = Path(req.data) / "train"
        files = calibration_images(train) if train.is_dir() else scored
    return files[: req.calib_images]


def tune(req: TuneRequest, on_progress: Callable[[dict[str, Any]], None] | None = None) -> TuneResult:
    """Run the search of ``dla.tune.search`` (resuming from ``req.out_dir/cache``).

    ``on_progress(event)`` receives ``{"phase": "calibrating"|"FLOAT"}`` per image while the
    task is prepared, then ``{"point": ..., "cached": bool, "expected": int, "best": {...} | None}`` per
    point (``expected``: the points the search expects to measure in all, an estimate refined
    after each phase).
    Never raises for a missed budget: see ``TuneResult.met`` / ``raise_if_not_met``."""
    t0 = time.perf_counter()
    if req.cost not in COSTS:
        raise UserInputError(f"--cost: unknown cost '{req.cost}' (valid: {', '.join(COSTS)})")
    if not (isinstance(req.max_drop, (int, float)) and math.isfinite(req.max_drop) and req.max_drop >= 0):
        raise UserInputError(f"--max-drop: the budget must be a finite number ≥ 0, got {req.max_drop!r}")
    if req.workers < 1:
        raise UserInputError(f"-j: at least one worker, got {req.workers}")
    out = Path(req.out_dir)
    existed = check_out_dir(out)
    model = _resolve(req)
    net, hw = model.net, model.hw
    metric_key = check_metric(req.metric, net)
    if isinstance(req.space, SearchSpace):
        space = req.space
    elif isinstance(req.space, dict):
        space = build_space(req.space, net, hw.supported_pairs(), "the search space")
    else:
        space = load_space(req.space, net, hw.supported_pairs())
    data, scoring = load_data(req.data, net, model.label or net.name, req.limit)
    if not data.samples:
        raise UserInputError(f"{req.data}: no images")
    calib = _calibration(req, data.root, [s.image for s in data.samples])

    def phase(name: str) -> None:
        if on_progress:
            on_progress({"phase": name})

    task = build_task(net, hw, calib, data, scoring, on_image=phase)
    base = space.base_choice()
    search: Search | None = None

    def on_point(ev: dict[str, Any]) -> None:
        if on_progress:
            best = search.best() if search is not None and search.points else None
            on_progress({**ev, "expected": search.expected if search is not None else 0,
                         "best": None if best is None else
                         {"id": best.id, "drop": best.drop, "meets": best.meets, "cost": search.cost(best)}})

    evaluator = Evaluator(task, base, out / "cache", req.workers, req.scheduler, on_point)
    reference = None if metric_key == "sqnr_db" else task.float_metrics[metric_key]
    search = Search(space, evaluator, metric_key, float(req.max_drop), COSTS[req.cost], reference)
    try:
        chosen = search.run()
    except UserInputError:
        if not existed and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)  # a mistake found mid-run (e.g. a baseline the
        raise                                       # hardware cannot run) leaves no OUT behind
    finally:
        evaluator.close()
    qnet = qnet_of(task, chosen.config, base) if chosen is not None else None
    doc = build_json(req, model, task, space, search, chosen, time.perf_counter() - t0, evaluator)
    return TuneResult(doc, qnet, hw)


__all__ = ["CALIB_IMAGES", "TuneBudgetNotMet", "TuneRequest", "check_out_dir", "tune"]
