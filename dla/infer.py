"""One image through one network: the library call behind ``dla infer`` and ``dla demo``."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.detect import Detection, detect, top_k
from golden.engine import forward
from golden.image import load_image, prepare_input
from golden.layers import LayerSpec
from golden.network import Network

MODES = ("float",)


@dataclass
class InferResult:
    net: Network
    image_path: Path
    image_size: tuple[int, int]  # (width, height) of the original image
    mode: str
    outputs: dict[int, np.ndarray]
    seconds: float
    detections: list[Detection] = field(default_factory=list)
    top: list[tuple[str, float]] = field(default_factory=list)

    def summary_lines(self, limit: int = 25) -> list[str]:
        if self.net.is_detector:
            if not self.detections:
                return ["no detections above threshold"]
            lines = [f"{d.name:<16} {d.prob:6.1%}  box [{d.box[0]:.1f}, {d.box[1]:.1f}, {d.box[2]:.1f}, "
                     f"{d.box[3]:.1f}]" for d in self.detections[:limit]]
            if len(self.detections) > limit:
                lines.append(f"... and {len(self.detections) - limit} more (see --json)")
            return lines
        return [f"{name:<24} {prob:6.2%}" for name, prob in self.top]


def infer(net: Network, image_path: str | Path, mode: str = "float", names: list[str] | None = None,
          thresh: float = 0.5, nms: float = 0.45, keep_all: bool = True,
          on_layer: Callable[[LayerSpec, np.ndarray], None] | None = None) -> InferResult:
    """Load and letterbox the image, run every layer, decode detections or top-5 classes."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} not available (valid: {', '.join(MODES)})")
    image_path = Path(image_path)
    im = load_image(image_path)
    x = prepare_input(im, net.input_shape, letterbox=net.letter_box)
    t0 = time.perf_counter()
    outputs = forward(net, x, keep_all=keep_all, on_layer=on_layer)
    seconds = time.perf_counter() - t0
    res = InferResult(net, image_path, (im.shape[2], im.shape[1]), mode, outputs, seconds)
    if net.is_detector:
        res.detections = detect(net, outputs, im.shape[2], im.shape[1], names, thresh, nms)
    else:
        res.top = top_k(outputs[net.output_index], 5, names)
    return res
