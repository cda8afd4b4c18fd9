"""What a ``dla step`` command returns: plain data, which the terminal (``dla.debugger.text``)
and the web page (``dla.web.stepping``) each render in their own way.

Every result is a frozen dataclass with a ``kind`` ("moved", "info", "stats", ...).
``data()`` gives it as JSON-able data for a face on another machine: numpy scalars as Python
numbers, a value that is not finite (the SQNR of bit-identical outputs is +inf) as its
string ("inf", "-inf", "nan", since JSON has no such numbers), error metrics as their four
keys beside the others, and **no path of this machine** (fields marked ``PRIVATE``: a
picture's file, the folder ``save`` wrote).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dla.metrics import ErrorMetrics

#: Field metadata of a value that stays on this machine (``data()`` leaves it out).
PRIVATE = {"private": True}


def metrics_data(m: ErrorMetrics) -> dict[str, Any]:
    """``m`` as JSON-able data (a value that is not finite as its string)."""
    return {k: float(v) if math.isfinite(v) else str(float(v)) for k, v in m.to_dict().items()}


def sqnr_text(m: ErrorMetrics) -> str:
    """The SQNR as the terminal and the pictures' titles write it: 2 decimals, or inf/-inf."""
    if math.isinf(m.sqnr_db):
        return "inf" if m.sqnr_db > 0 else "-inf"
    return f"{m.sqnr_db:.2f}"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    return value


def _fields(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.metadata.get("private"):
            continue
        value = getattr(obj, f.name)
        if isinstance(value, ErrorMetrics):
            out.update(metrics_data(value))
        else:
            out[f.name] = _plain(value)
    return out


@dataclass(frozen=True)
class Result:
    """The answer to one command."""

    kind: ClassVar[str] = ""

    def data(self) -> dict[str, Any]:
        """JSON-able, without this machine's paths (see the module's docstring)."""
        return {"kind": self.kind, **_fields(self)}


@dataclass(frozen=True)
class Failed(Result):
    """The command failed and changed nothing; ``message`` says what was wrong, in one line."""

    kind: ClassVar[str] = "failed"
    message: str


@dataclass(frozen=True)
class Moved(Result):
    """``next``/``goto``: the layer now current (its record) and how the session got there."""

    kind: ClassVar[str] = "moved"
    layer: int
    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dtype: str  # of the output as the mode computes it
    scale: float | None  # the output's int8 scale
    range: tuple[float, float] | None  # min and max of the real output values (None: empty)
    saturated: int
    overflow: int
    host_float: bool  # a host layer, computed in float in an int/hybrid session
    ran: int  # layers run (0 or less: the session went back, or stayed)
    ms: float  # wall time of running them
    back_from: int | None  # the layer it was at, when it went back


@dataclass(frozen=True)
class LayerInfo(Result):
    """``info``: the layer's row of the layer table (``dla info``), its inputs, scales and edits."""

    kind: ClassVar[str] = "info"
    layer: int
    table_header: str
    table_row: str
    inputs: tuple[int, ...]  # -1: the network input
    host: bool  # runs on the host in float
    mode: str
    precision: str | None  # the quantized network's widths of the layer ("w8a8>a16"); None: a float model
    in_scales: tuple[float, ...] | None  # None: a float model
    out_scale: float | None
    weight_scales: tuple[float, ...] | None  # one, or one per output channel; None: no weights
    edits: int  # edits in effect
    edits_here: int  # of which at this layer


@dataclass(frozen=True)
class StatsRow:
    """One view of a tensor's values: ``name`` "int8" (as stored), "real" (× scale) or "float"."""

    name: str
    min: float
    max: float
    mean: float
    std: float
    zeros_pct: float
    saturated_pct: float | None  # int8 only: % at -128 or 127


@dataclass(frozen=True)
class TensorStats:
    label: str  # "output", "input (the network input)", "input 1: from layer 5", "weights"
    shape: tuple[int, ...]
    dtype: str
    scale_text: str  # "scale 0.0123", "scale 0.001..0.004 (per channel, 16)", ""
    rows: tuple[StatsRow, ...]


@dataclass(frozen=True)
class Statistics(Result):
    """``stats``: each tensor asked for (a layer may have several inputs)."""

    kind: ClassVar[str] = "stats"
    layer: int
    type: str
    tensors: tuple[TensorStats, ...]


@dataclass(frozen=True)
class Picture:
    """A PNG that ``show`` drew: ``kind`` grid, histogram or scatter; ``key`` names it without
    the layer ("output_grid", "input1_hist", "cross_scatter")."""

    kind: str
    key: str
    path: Path = field(metadata=PRIVATE)


@dataclass(frozen=True)
class Crossed(Result):
    """``cross``: the layer in ``mode`` and in ``other`` from the same input (float is the
    reference); ``continued``: the session now holds the other mode's output."""

    kind: ClassVar[str] = "cross"
    layer: int
    type: str
    mode: str
    other: str
    metrics: ErrorMetrics
    continued: bool = False


@dataclass(frozen=True)
class Pictures(Result):
    """``show``: the pictures drawn; ``show cross`` also gives the CROSS it drew."""

    kind: ClassVar[str] = "pictures"
    layer: int
    type: str
    pictures: tuple[Picture, ...]
    cross: Crossed | None = None


@dataclass(frozen=True)
class Edited(Result):
    """An edit of the current layer's weights."""

    kind: ClassVar[str] = "edited"
    layer: int
    change: str  # "w[3,0,1,1] = -5", "output channel 3 x 0.5", "weights from FILE"
    changed: int  # weights that changed
    was: Any = None  # the value before, when one weight was set (a numpy scalar of the weights' dtype)


@dataclass(frozen=True)
class Undone(Result):
    """``undo``: the edit taken back (``change`` as the session describes it)."""

    kind: ClassVar[str] = "undone"
    layer: int
    change: str
    restored: int
    current: bool  # the edit's layer is the current one (a rerun shows the effect)


@dataclass(frozen=True)
class RerunDiff(Result):
    """``rerun`` (and ``diff``, the last one again): what running the layer again changed."""

    kind: ClassVar[str] = "rerun"
    layer: int
    type: str
    changed: int  # outputs that changed
    total: int
    channels: tuple[int, ...]  # output channels with a change
    metrics: ErrorMetrics  # new vs previous output
    vs_unedited: int | None  # outputs that differ from the unedited run (None: not known)


@dataclass(frozen=True)
class Saved(Result):
    kind: ClassVar[str] = "saved"
    folder: Path = field(metadata=PRIVATE)
    layers: int
    edits: int
    crosses: int


@dataclass(frozen=True)
class Exported(Result):
    kind: ClassVar[str] = "exported"
    path: Path = field(metadata=PRIVATE)
    edits: int


@dataclass(frozen=True)
class HelpText(Result):
    kind: ClassVar[str] = "help"
    text: str


__all__ = ["PRIVATE", "Crossed", "Edited", "Exported", "Failed", "HelpText", "LayerInfo", "Moved", "Picture",
           "Pictures", "RerunDiff", "Result", "Saved", "Statistics", "StatsRow", "TensorStats", "Undone",
           "metrics_data", "sqnr_text"]
