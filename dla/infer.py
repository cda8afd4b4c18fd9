"""One image through one network: the library call behind ``dla infer`` and ``dla demo``."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dla.engine import Engine, Mode
from golden.detect import Detection, detect, top_k
from golden.engine import forward
from golden.image import load_image, prepare_input
from golden.layers import LayerSpec
from golden.network import Network

MODES = ("float", "hybrid", "int")


@dataclass
class InferResult:
    net: Network
    image_path: Path
    image_size: tuple[int, int]  # (width, height) of the original image
    mode: str
    outputs: dict[int, np.ndarray]  # float32 view of every layer (dequantized in INT mode)
    seconds: float
    raw: dict[int, np.ndarray] = field(default_factory=dict)  # INT: int8 outputs as computed
    scales: dict[int, float] = field(default_factory=dict)  # INT: scale of each int8 output
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
          on_layer: Callable[[LayerSpec, np.ndarray], None] | None = None,
          engine: Engine | None = None) -> InferResult:
    """Load and letterbox the image, run every layer, decode detections or top-5 classes.

    FLOAT runs the golden engine directly; HYBRID and INT need an ``Engine`` built with a
    quantized network (``dla.resolve.make_engine``).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} not available (valid: {', '.join(MODES)})")
    image_path = Path(image_path)
    im = load_image(image_path)
    x = prepare_input(im, net.input_shape, letterbox=net.letter_box)
    t0 = time.perf_counter()
    raw: dict[int, np.ndarray] = {}
    scales: dict[int, float] = {}
    if mode == "float" and engine is None:
        outputs = forward(net, x, keep_all=keep_all, on_layer=on_layer)
    else:
        if engine is None:
            raise ValueError(f"mode {mode} needs an Engine with a quantized network")
        run = engine.run(x, Mode(mode), on_layer=(lambda rec: on_layer(rec.spec, rec.output)) if on_layer else None)
        outputs = run.outputs()
        if mode == "int":
            raw = {i: r.output for i, r in run.records.items()}
            raw[-1] = engine.int_tensor(-1, run.records, run.input)  # the int8 image the DLA reads
            scales = {i: r.scale for i, r in run.records.items() if r.scale is not None}
            scales[-1] = engine.qnet.scales[-1]
    seconds = time.perf_counter() - t0
    res = InferResult(net, image_path, (im.shape[2], im.shape[1]), mode, outputs, seconds, raw, scales)
    if net.is_detector:
        res.detections = detect(net, outputs, im.shape[2], im.shape[1], names, thresh, nms)
    else:
        res.top = top_k(outputs[net.output_index], 5, names)
    return res
