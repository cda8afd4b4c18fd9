"""A hand-built tune.json mapping (version 1, the schema of /docs/tune.md) for the report and
scenario tests: plain code, imported (tests/test_test_imports.py).

Four layers, a baseline, two sensitivity points, two search points and one refinement; the
chosen point ``c0ffee000004`` lowers layer 0 to int4 weights and keeps the rest; its numbers are
chosen so that every figure the report prints can be checked by hand."""
from __future__ import annotations

import copy
from typing import Any

KINDS = ["convolutional", "maxpool", "convolutional", "yolo"]


def _layers(precisions: list[str], cycles: list[int], host: int | None = None) -> list[dict[str, Any]]:
    return [{"layer": i, "kind": k, "precision": "host" if i == host else p, "activations": "mse",
             "weights": "max" if k == "convolutional" else None, "granularity": "per_channel",
             "host": i == host, "cycles": c}
            for i, (k, p, c) in enumerate(zip(KINDS, precisions, cycles, strict=True))]


def _point(pid: str, phase: str, label: str, m5095: float, cycles: int, wbytes: int, precisions: list[str],
           layer_cycles: list[int], refinements: list[str] | None = None) -> dict[str, Any]:
    drop = round(0.64 - m5095, 6)
    changes = [f"L{i} weight_bits=4" for i, p in enumerate(precisions) if p == "w4a8"] + \
        [f"+{r}" for r in refinements or []]
    return {"id": pid, "phase": phase, "label": label, "changes": changes, "spec": {"activations": "mse", "overrides": []},
            "refinements": refinements or [], "metrics": {"map50": m5095 + 0.3, "map50_95": m5095, "sqnr_db": 100 * m5095 - 30},
            "drop": drop, "cost": {"cycles": cycles, "latency_ms": cycles / 1e5, "dram_bytes": 5 * wbytes,
                                   "weight_bytes": wbytes},
            "layers": _layers(precisions, layer_cycles), "seconds": 1.5, "meets": drop <= 0.01}


BASE_PREC = ["w8a8", "a8", "w8a8", "a8"]


def tune_json(**changes: Any) -> dict[str, Any]:
    """The fixture, with top-level keys replaced by ``changes``."""
    points = [
        _point("ba5e00000001", "baseline", "all-int8", 0.625, 10000, 4000, BASE_PREC, [6000, 500, 3000, 500]),
        _point("5e0500000002", "sensitivity", "L0 weight_bits=4", 0.634, 8000, 3000,
               ["w4a8", "a8", "w8a8", "a8"], [4000, 500, 3000, 500]),
        _point("5e0500000003", "sensitivity", "L2 weight_bits=4", 0.600, 8500, 3000,
               ["w8a8", "a8", "w4a8", "a8"], [6000, 500, 1500, 500]),
        _point("5ea400000005", "search", "L0,L2 weight_bits=4", 0.598, 6500, 2000,
               ["w4a8", "a8", "w4a8", "a8"], [4000, 500, 1500, 500]),
        _point("c0ffee000004", "refine", "L0 weight_bits=4 + bias_correction", 0.6345, 8000, 3000,
               ["w4a8", "a8", "w8a8", "a8"], [4000, 500, 3000, 500], ["bias_correction"]),
    ]
    data: dict[str, Any] = {
        "version": 1, "model": "shapes-yolo", "data": "/data/shapes/val", "images": 40, "scoring": "labels",
        "metric": "map50_95", "max_drop": 0.01, "cost": "cycles",
        "hw": {"rows": 16, "cols": 16, "clock_mhz": 500.0},
        "float": {"map50": 0.94, "map50_95": 0.64}, "baseline": "ba5e00000001", "points": points,
        "sensitivity": [
            {"layer": 2, "kind": "convolutional", "option": "weight_bits=4", "drop": 0.04, "delta_cost": -1500,
             "isolated_sqnr_db": 18.5, "point": "5e0500000003"},
            {"layer": 0, "kind": "convolutional", "option": "weight_bits=4", "drop": 0.006, "delta_cost": -2000,
             "isolated_sqnr_db": 31.2, "point": "5e0500000002"}],
        "pareto": ["5ea400000005", "c0ffee000004"], "chosen": "c0ffee000004", "met": True, "shortfall": 0.0,
        "relative_cost": 0.8, "evaluations": 5, "cached": 1, "exhaustive": "3^2 = 9",
        "method": "sensitivity + greedy with refinement (docs/tune.md)", "seconds": 12.5, "workers": "local:2",
    }
    data.update(copy.deepcopy(changes))
    return data


def not_met_json() -> dict[str, Any]:
    """The fixture with a budget no point meets (max_drop 0.0001): the best point is the refined
    one (drop 0.0055), 0.0054 short."""
    data = tune_json(max_drop=0.0001, met=False, chosen=None, shortfall=0.0054, relative_cost=None)
    for p in data["points"]:
        p["meets"] = False
    return data
