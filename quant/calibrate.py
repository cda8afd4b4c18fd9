"""Activation ranges over calibration images (per-tensor max |x|, the ``max`` algorithm).

Runs the golden FLOAT engine on each image and keeps, per tensor, the running maximum of
``|x|`` — fixed memory whatever the number of images.  Tensor ``-1`` is the network input.
For conv/connected layers whose activation has no integer form (not in
``golden.activations.INTEGER_ACTIVATIONS``), the range of the *pre-activation* output is kept
too (``pre_act``), which a lookup-table activation needs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from golden.activations import INTEGER_ACTIVATIONS
from golden.engine import forward
from golden.errors import UserInputError
from golden.image import load_image, prepare_input
from golden.kernels import KERNELS
from golden.layers import ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant.observers import AbsHistogram

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")


@dataclass
class Ranges:
    """Streaming statistics per tensor (and per pre-activation output where needed):
    max |x| and a fixed-size histogram of |x| (``quant.observers.AbsHistogram``)."""

    absmax: dict[int, float] = field(default_factory=dict)
    pre_act: dict[int, float] = field(default_factory=dict)
    hists: dict[int, AbsHistogram] = field(default_factory=dict)
    pre_hists: dict[int, AbsHistogram] = field(default_factory=dict)
    images: int = 0

    def update(self, index: int, x: np.ndarray, pre: bool = False) -> None:
        target, hists = (self.pre_act, self.pre_hists) if pre else (self.absmax, self.hists)
        m = float(np.max(np.abs(x))) if x.size else 0.0
        target[index] = max(target.get(index, 0.0), m)
        hists.setdefault(index, AbsHistogram()).update(x)


def calibration_images(source: str | Path) -> list[Path]:
    """A folder of images or a text file listing image paths (one per line)."""
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif src.is_file():
        base = src.parent
        files = [(base / line.strip()) if not Path(line.strip()).is_absolute() else Path(line.strip())
                 for line in src.read_text().splitlines() if line.strip() and not line.startswith("#")]
    else:
        raise UserInputError(f"{src}: calibration set not found (give a folder of images or a list file)")
    if not files:
        raise UserInputError(f"{src}: calibration set is empty (no images with suffix {', '.join(IMAGE_SUFFIXES)})")
    return files


def _pre_activation(spec: LayerSpec) -> bool:
    return isinstance(spec, (ConvSpec, ConnectedSpec)) and spec.activation not in INTEGER_ACTIVATIONS


def collect_ranges(net: Network, inputs: Iterable[np.ndarray],
                   on_image: Callable[[int], None] | None = None) -> Ranges:
    """Max |x| of every tensor over network inputs (already letterboxed, ``(C, H, W)``)."""
    ranges = Ranges()

    def observe(spec: LayerSpec, out: np.ndarray) -> None:
        ranges.update(spec.index, out)

    for n, x in enumerate(inputs, start=1):
        ranges.update(-1, x)
        outs = forward(net, x, keep_all=True, on_layer=observe)
        for spec in net.layers:
            if _pre_activation(spec):
                # Invert nothing: recompute the linear output from the input (cheap next to the run).
                lin = _linear_output(net, spec, outs)
                ranges.update(spec.index, lin, pre=True)
        ranges.images = n
        if on_image:
            on_image(n)
    if ranges.images == 0:
        raise UserInputError("calibration set is empty")
    return ranges


def _linear_output(net: Network, spec: ConvSpec | ConnectedSpec, outs: dict[int, np.ndarray]) -> np.ndarray:
    lin_spec = replace(spec, activation="linear")
    return KERNELS[spec.kind](lin_spec, [outs[i] for i in spec.inputs], net.params[spec.index], net.darknet)


def image_inputs(net: Network, files: Iterable[Path]) -> Iterable[np.ndarray]:
    for f in files:
        yield prepare_input(load_image(f), net.input_shape, letterbox=net.letter_box)


__all__ = ["Ranges", "calibration_images", "collect_ranges", "image_inputs"]
