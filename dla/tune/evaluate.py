"""One point of the search: configuration → quantized network → real INT runs → metrics and cost.

``evaluate_point(task, config, base)`` quantizes from the task's calibration statistics
(collected once per tune, never per point), with the configuration's refinements when it
has any (``dla.refine``), checks the operand pairs against the hardware, costs it with the
cycle model (``dla.cycles.network_cycles`` at its widths) and runs the bit-exact INT engine
over every image; the metrics are those of ``dla eval`` (``dla.eval.evaluate.score``) plus
the output SQNR.  Nothing is estimated: a point exists only once it has been run.

Cache (``PointCache``): one JSON file per point in ``OUT/cache/``, named by the hash of the
task's digest (model, hardware, calibration images, scored images and labels) and the
point's canonical configuration, written atomically as soon as the point is measured, so a
tune interrupted by Ctrl-C (or run again with a wider space) re-uses every finished point.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from dla.cycles import BufferTooSmall, network_cycles
from dla.compare import cross_layer
from dla.engine import Engine, Mode
from dla.fileio import json_text, write_bytes_atomic
from dla.precision import check_precision
from dla.tune.space import Choice, Config
from dla.tune.task import Task
from golden.errors import UserInputError
from quant import quantize
from quant.qnet import QuantizedNetwork

COSTS = {"cycles": "cycles", "latency": "latency_ms", "dram": "dram_bytes", "weights": "weight_bytes"}
"""``--cost`` choice → the key of a point's ``cost`` dict."""
CACHE_VERSION = 1


def point_key(task_key: str, config: Config) -> str:
    """The cache key of ``config`` under ``task_key`` (sha256 hex)."""
    return hashlib.sha256(f"{task_key}|{config.canonical()}|v{CACHE_VERSION}".encode()).hexdigest()


def quantize_config(task: Task, config: Config, base: Choice) -> QuantizedNetwork:
    """The quantized network of ``config`` (refinements applied by ``dla.refine``)."""
    spec = config.quant_spec(base)
    if config.refinements:  # the task's statistics are re-used unless cle changed the float network
        from dla.refine import quantize_refined

        return quantize_refined(task.net, task.calib, spec, config.refinements, task.hw, use_cache=False,
                                ranges=task.ranges)
    return quantize(task.net, task.ranges, spec.granularity, task.hw.route_shared_scale, spec)  # type: ignore[arg-type]


def evaluate_point(task: Task, config: Config, base: Choice) -> dict[str, Any]:
    """The measured point of ``config`` (keys: spec, refinements, metrics, cost, layers,
    seconds), or ``{"infeasible": reason}`` when the hardware cannot run it."""
    t0 = time.perf_counter()
    qnet = quantize_config(task, config, base)
    try:
        check_precision(qnet, task.hw)
    except UserInputError as exc:
        return {"infeasible": str(exc)}
    try:
        nc = network_cycles(task.net, task.hw, qnet.precisions())
    except BufferTooSmall as exc:
        return {"infeasible": f"the cycle model cannot tile it into the hardware's buffers ({exc})"}
    engine = Engine(task.net, qnet, task.hw)
    metrics = task.run_int(engine)
    isolated = isolated_sqnr(task, engine, [i for i, _ in config.choices])
    by_layer = {row.index: row for row in nc.layers}
    layers = []
    for i, c in config.choices:
        spec = task.net.layers[i]
        layers.append({"layer": i, "kind": spec.kind.value, "precision": qnet.precision(spec).label,
                       "activations": qnet.algorithms.get(i, c.activations), "weights": c.weights,
                       "granularity": c.granularity, "weight_bits": c.weight_bits,
                       "activation_bits": qnet.tensor_bits(i), "host": qnet.on_host(spec),
                       "cycles": by_layer[i].total_cycles if i in by_layer else 0,
                       "isolated_sqnr_db": isolated.get(i)})
    return {"spec": qnet.spec.to_dict(), "refinements": list(config.refinements), "metrics": metrics,
            "cost": {"cycles": nc.total_cycles, "latency_ms": nc.latency_ms, "dram_bytes": nc.dram_bytes,
                     "weight_bytes": nc.weight_bytes},
            "layers": layers, "seconds": time.perf_counter() - t0}


def isolated_sqnr(task: Task, engine: Engine, layers: list[int]) -> dict[int, float]:
    """Each DLA layer's isolated SQNR (``dla.compare.cross_layer``: the layer in FLOAT from the
    INT run's own input, against the INT output) on the first scored image; host layers have none."""
    if not task.inputs:
        return {}
    x = task.inputs[0]
    run = engine.run(x, Mode.INT)
    out = {}
    for i in layers:
        spec = task.net.layers[i]
        if not engine.qnet.on_host(spec):  # type: ignore[union-attr]
            out[i] = cross_layer(engine, spec, Mode.INT, run.records, x).metrics.sqnr_db
    return out


class PointCache:
    """``OUT/cache/<key>.json``: measured points, re-used by a later run on the same task."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{key[:32]}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            d = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None  # absent, or damaged by a crash mid-write of another tool: measured again
        if not (isinstance(d, dict) and d.get("key") == key and isinstance(d.get("point"), dict)):
            return None
        point = d["point"]
        if isinstance(point.get("metrics"), dict):  # json_text wrote an infinite SQNR as "inf"
            point["metrics"] = {k: float(v) if isinstance(v, str) else v for k, v in point["metrics"].items()}
        return point

    def put(self, key: str, point: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path(key), json_text({"key": key, "point": point}).encode())

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0


def qnet_of(task: Task, config: Config, base: Choice) -> QuantizedNetwork:
    """The chosen point's network again (for ``best.qnet``): quantization is deterministic, so
    this is bit for bit the network that was measured."""
    return quantize_config(task, config, base)


__all__ = ["COSTS", "PointCache", "evaluate_point", "point_key", "qnet_of", "quantize_config"]
