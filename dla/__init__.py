"""The DLA model: hardware config, integer arithmetic and kernels, engines, CLI.

``dla.Session`` (STEP/CROSS, ``dla.session``) and ``dla.Engine`` are importable from here;
they are loaded on first use (module ``__getattr__``, PEP 562) so that ``import dla`` stays
cheap for the CLI and for code that needs only ``dla.__version__``.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {"Session": "dla.session", "Engine": "dla.engine", "Mode": "dla.engine", "HardwareConfig": "dla.config"}

__all__ = ["Engine", "HardwareConfig", "Mode", "Session", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dla' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
