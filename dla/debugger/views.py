"""The current layer's tensors as ``stats`` and ``show`` present them, and ``show``'s pictures.

One place for both faces: the web page draws the same pictures as ``dla step``'s ``show``
(same functions, same titles; a test compares the bytes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dla.debugger.commands import TENSORS, StepError
from dla.engine import Mode
from dla.session import Session
from golden.layers import ConvSpec, LayerSpec
from quant.numerics import signed_range
from quant.qnet import QuantizedNetwork


@dataclass
class View:
    """One tensor as ``stats`` and ``show`` present it."""

    label: str  # "output", "input 0: from layer 5", "weights"
    tag: str  # file-name part: output, input, input1, weights
    stored: np.ndarray  # the values the mode computes with (int8 in INT)
    real: np.ndarray  # the real values (stored × scale for int8)
    scale: float | None  # the one scale of an int8 tensor (None: float, or per-channel scales)
    scale_text: str  # "scale 0.0123", "scale 0.001..0.004 (per channel, 16)", ""
    clip: float | None  # the quantization range ±clip of the real values, when known


def _top(qnet: QuantizedNetwork, tensor: int) -> float:
    """The largest real value tensor ``tensor`` holds: ``(2^(b−1) − 1)·scale`` at its width."""
    return signed_range(qnet.tensor_bits(tensor))[1] * qnet.scales[tensor]


def current_layer(session: Session) -> LayerSpec:
    """The current layer's spec (``StepError`` before the first layer ran)."""
    if session.index < 0:
        raise StepError("no layer has run yet: 'next' runs layer 0, 'goto N' runs up to layer N")
    return session.net.layers[session.index]


def scale_text(ws: np.ndarray) -> str:
    """Weight scales in words: one value "(per tensor)", or their range "(per channel, N)"."""
    if ws.size and np.all(ws == ws.flat[0]):
        return f"{float(ws.flat[0]):.6g} (per tensor)"
    return f"{float(ws.min()):.6g}..{float(ws.max()):.6g} (per channel, {ws.size})"


def tensor_views(session: Session, what: str) -> list[View]:
    """The current layer's ``what`` (one of ``TENSORS``; ``input``: one view per input)."""
    if what not in TENSORS:
        raise StepError(f"expected one of {', '.join(TENSORS)}, got {what!r}")
    s = session
    spec = current_layer(s)
    qnet = s.engine.qnet
    if what == "output":
        rec = s.records[spec.index]
        clip = _top(qnet, spec.index) if qnet is not None and not qnet.on_host(spec) else None
        return [View("output", "output", rec.output, rec.real, rec.scale,
                     f"scale {rec.scale:.6g}" if rec.scale is not None else "", clip)]
    if what == "input":
        views = []
        for k, (src, arr) in enumerate(zip(spec.inputs, s.inputs)):
            label = "input (the network input)" if src == -1 else f"input from layer {src}"
            if len(spec.inputs) > 1:
                label = f"input {k}: " + label.split(" ", 1)[1]
            scale = qnet.scales[src] if np.issubdtype(arr.dtype, np.integer) else None
            real = arr.astype(np.float32) * np.float32(scale) if scale is not None else arr
            clip = _top(qnet, src) if qnet is not None else None
            views.append(View(label, "input" if len(spec.inputs) == 1 else f"input{k}", arr, real, scale,
                              f"scale {scale:.6g}" if scale is not None else "", clip))
        return views
    stored = s.weights  # raises "has no weights" for layers without
    real = s.weights_float
    scale, text, clip = None, "", None
    if qnet is not None and spec.index in qnet.layers:
        ws = qnet.layers[spec.index].w_scale
        if s.mode is not Mode.FLOAT:
            text = "scale " + scale_text(ws)
            scale = float(ws.flat[0]) if np.all(ws == ws.flat[0]) else None
        # the integer range ±(2^(b−1)−1)·scale applies to the folded weights: not to raw float ones beside batch norm
        if s.mode is not Mode.FLOAT or not (isinstance(spec, ConvSpec) and spec.batch_normalize):
            clip = signed_range(qnet.layers[spec.index].w_bits)[1] * float(ws.max())
    return [View("weights", "weights", stored, real, scale, text, clip)]


def title(session: Session, view: View) -> str:
    """The title of ``view``'s pictures: layer, type, tensor and mode."""
    spec = current_layer(session)
    return f"layer {spec.index} {spec.kind.value} {view.label} [{session.mode.value}]"


def draw_grid(view: View, path: Path, title: str) -> Path:
    """The feature-map grid of ``view`` (its stored values) as a PNG at ``path``."""
    from dla.pictures import feature_map_grid  # matplotlib: loaded when the first picture is drawn, not by `dla step`

    return feature_map_grid(view.stored, path, title, scale=view.scale)


def draw_histogram(view: View, path: Path, title: str) -> Path:
    """The histogram of ``view``'s real values (with its ±clip range) as a PNG at ``path``."""
    from dla.pictures import histogram

    return histogram(view.real, path, title + (" (real values)" if np.issubdtype(view.stored.dtype, np.integer) else ""),
                     clip=view.clip)


def draw_scatter(float_values: np.ndarray, quantized: np.ndarray, path: Path, title: str) -> Path:
    """CROSS's scatter: the float output against the int/hybrid one, as a PNG at ``path``."""
    from dla.pictures import scatter

    return scatter(float_values, quantized, path, title)


__all__ = ["View", "current_layer", "draw_grid", "draw_histogram", "draw_scatter", "scale_text", "tensor_views",
           "title"]
