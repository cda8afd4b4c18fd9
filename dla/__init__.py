"""dla-sim: a bit-accurate, cycle-accurate model of an int8 DLA running Darknet networks.

The public API, in the order data flows (load → quantize → execute → compare → cycles):

* ``resolve_model``, ``make_engine`` — the model the user means (cfg or shipped name, weights or
  seeded, ``.qnet``, hardware) and its engine (calibrate now or reuse the ``.qnet``); every face uses them.
* ``HardwareConfig``, ``load_config`` — every hardware parameter, one object (docs/hardware-config.md).
* ``calibrate`` — float statistics over images → a ``QuantizedNetwork`` (docs/quantization.md).
* ``load_qnet``, ``save_qnet`` — the quantized model file (docs/file-formats.md).
* ``Engine``, ``Mode`` — run a network, or one layer, in FLOAT, HYBRID or INT (docs/arithmetic.md).
* ``Session`` — STEP/CROSS: stop at a layer, inspect, edit, re-run (docs/debugging.md).
* ``compare_modes``, ``isolated_errors``, ``cross_layer`` — per-layer error of one mode against another.
* ``network_cycles`` — the MAC array's cycle model (docs/cycle-model.md).

The float reference is ``golden`` (``golden.network.load_network``, ``golden.engine.forward``).
Names are loaded on first use (PEP 562), so ``import dla`` stays cheap for the CLI.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "resolve_model": "dla.resolve", "make_engine": "dla.resolve",
    "HardwareConfig": "dla.config", "load_config": "dla.config",
    "calibrate": "dla.calibration",
    "load_qnet": "dla.qnet_file", "save_qnet": "dla.qnet_file",
    "Engine": "dla.engine", "Mode": "dla.engine",
    "Session": "dla.session",
    "compare_modes": "dla.compare", "isolated_errors": "dla.compare", "cross_layer": "dla.compare",
    "network_cycles": "dla.cycles",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dla' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
