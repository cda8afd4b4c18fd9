"""What stays fixed during one ``dla tune``: the network, the hardware, the calibration
statistics, the scored images and their reference — the :class:`Task` every point is
evaluated against (shipped once to each Dask worker).

Scoring (``Task.scoring``):

* ``labels`` — the folder has labels (YOLO or COCO, read by ``dla.datasets.labelled`` exactly
  as ``dla eval`` reads them): mAP@0.5 and mAP@0.5:0.95, or top-1/top-5;
* ``agreement`` — the folder holds plain images: FLOAT's own results are the ground truth.
  Detectors: FLOAT's detections at probability ≥ :data:`AGREEMENT_THRESH` (Darknet's display
  threshold) after NMS 0.45 become the boxes every point's detections are scored against,
  with the same mAP code ("agreement mAP"); classifiers: FLOAT's top class ("agreement top-1").
  FLOAT itself is scored the same way (its agreement mAP is not exactly 1: its own
  low-probability detections count as false positives below the threshold).

Metrics: every point also gets ``sqnr_db``, the SQNR of the network's scored outputs (each
YOLO/region head's output, or the classifier's output layer) against FLOAT's over all
images, ``10·log10(Σ ref² / Σ (ref − x)²)`` (``dla.metrics``).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dla.calibration import collect_statistics, images_digest, model_digest
from dla.config import HardwareConfig
from dla.datasets.labelled import IMAGE_SUFFIXES, LabelledSet, Sample, check_classes, load_labelled
from dla.engine import Engine, Mode
from dla.eval.evaluate import DETECT_THRESH, NMS, classes_of, score
from golden.detect import detect
from golden.errors import FileMissingError, UserInputError
from golden.image import load_image, prepare_input
from golden.network import Network
from quant.calibrate import Ranges

AGREEMENT_THRESH = 0.5
"""FLOAT detections at or above this probability are the ground truth of agreement scoring."""
METRICS = {"detect": ("map50", "map50_95"), "classify": ("top1", "top5")}
SQNR = "sqnr_db"
CHOICES = ("map50", "map50_95", "top1", "sqnr")


@dataclass
class Task:
    """Everything a point's evaluation needs besides its configuration."""

    net: Network
    hw: HardwareConfig
    ranges: Ranges
    inputs: list[np.ndarray]
    sizes: list[tuple[int, int]]
    data: LabelledSet
    scoring: str  # labels | agreement
    float_outputs: list[dict[int, np.ndarray]]
    float_metrics: dict[str, float]
    key: str  # digest of everything above: part of every point's cache key
    calib: list[Path] = field(default_factory=list)  # the calibration images (refinements re-read them)

    @property
    def task(self) -> str:
        return "detect" if self.net.is_detector else "classify"

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRICS[self.task]

    def needed(self) -> list[int]:
        return [h.index for h in self.net.heads] if self.net.is_detector else [self.net.output_index]

    def run_int(self, engine: Engine) -> dict[str, float]:
        """Every metric of ``engine``'s INT runs over the images (plus ``sqnr_db``)."""
        outs = []
        for x in self.inputs:
            run = engine.run(x, Mode.INT)
            outs.append({i: run.records[i].real for i in self.needed()})
        return self.metrics_of(outs)

    def metrics_of(self, outs: list[dict[int, np.ndarray]]) -> dict[str, float]:
        metrics, _ = score(self.net, outs, self.data, self.sizes)
        metrics[SQNR] = outputs_sqnr(self.float_outputs, outs, self.needed())
        return metrics


def outputs_sqnr(ref: list[dict[int, np.ndarray]], test: list[dict[int, np.ndarray]], layers: list[int]) -> float:
    """SQNR in dB of ``test`` against ``ref`` over every image and scored layer (pairwise sums,
    independent of BLAS threads, as ``dla.metrics``); ``inf`` when equal."""
    signal = noise = 0.0
    for r, t in zip(ref, test):
        for i in layers:
            a = np.asarray(r[i], np.float64).reshape(-1)
            d = a - np.asarray(t[i], np.float64).reshape(-1)
            signal += float(np.sum(a * a))
            noise += float(np.sum(d * d))
    if noise == 0:
        return math.inf
    return -math.inf if signal == 0 else 10 * math.log10(signal / noise)


def check_metric(metric: str, net: Network) -> str:
    """Refuse a metric the model cannot produce; returns the metrics-dict key it reads."""
    if metric not in CHOICES:
        raise UserInputError(f"--max-drop: unknown metric '{metric}' (valid: {', '.join(CHOICES)})")
    if metric == "sqnr":
        return SQNR
    kind = "detect" if net.is_detector else "classify"
    if metric not in METRICS[kind]:
        what = "a detector: use map50, map50_95 or sqnr" if net.is_detector else \
            "a classifier: use top1 or sqnr"
        raise UserInputError(f"--max-drop {metric}: {net.name} is {what}")
    return metric


def plain_images(folder: Path) -> list[Path] | None:
    """The images of ``folder`` when it holds images and no labels at all (agreement scoring)."""
    if (folder / "val").is_dir():
        return plain_images(folder / "val")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    labelled = any(p.with_suffix(".txt").is_file() for p in images) or any(folder.glob("instances*.json")) \
        or any((folder / "annotations").glob("instances*.json"))
    return images if images and not labelled else None


def load_data(folder: str | Path, net: Network, label: str, limit: int | None) -> tuple[LabelledSet, str]:
    """The scored images and how they are scored (``labels`` | ``agreement``)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileMissingError(root, "data folder")
    plain = plain_images(root)
    if plain is not None:
        plain = plain[:limit] if limit else plain
        empty = np.zeros(0, np.int64)
        return LabelledSet(root, [Sample(p, empty, np.zeros((0, 4))) for p in plain], None, "images"), "agreement"
    data = load_labelled(root, limit)
    if not data.samples:
        raise UserInputError(f"{folder}: no labelled images")
    check_classes(data, classes_of(net), label)
    return data, "labels"


def _agreement_truth(net: Network, data: LabelledSet, outs: list[dict[int, np.ndarray]],
                     sizes: list[tuple[int, int]]) -> LabelledSet:
    """FLOAT's results as labels (see the module docstring)."""
    samples = []
    for s, out, (w, h) in zip(data.samples, outs, sizes):
        if net.is_detector:
            dets = detect(net, out, w, h, None, thresh=AGREEMENT_THRESH, nms=NMS)
            boxes = np.array([[(d.box[0] + d.box[2]) / 2 / w, (d.box[1] + d.box[3]) / 2 / h,
                               (d.box[2] - d.box[0]) / w, (d.box[3] - d.box[1]) / h] for d in dets]).reshape(-1, 4)
            samples.append(Sample(s.image, np.array([d.cls for d in dets], np.int64), boxes))
        else:
            top = int(np.argmax(out[net.output_index].reshape(-1)))
            samples.append(Sample(s.image, np.array([top], np.int64), np.array([[0.5, 0.5, 1.0, 1.0]])))
    return LabelledSet(data.root, samples, data.names, "agreement")


def data_digest(data: LabelledSet) -> str:
    h = hashlib.sha256(images_digest([s.image for s in data.samples]).encode())
    for s in data.samples:
        h.update(np.ascontiguousarray(s.classes).tobytes())
        h.update(np.ascontiguousarray(s.boxes, np.float64).tobytes())
    return h.hexdigest()


def build_task(net: Network, hw: HardwareConfig, calib: list[Path], data: LabelledSet, scoring: str,
               on_image=None) -> Task:
    """Calibration statistics (once per tune; nothing is cached outside OUT), the prepared
    inputs, FLOAT's outputs and metrics, and the task's digest."""
    ranges, _ = collect_statistics(net, calib, use_cache=False,
                                   on_image=(lambda n: on_image("calibrating")) if on_image else None)
    inputs, sizes = [], []
    for s in data.samples:
        im = load_image(s.image)
        sizes.append((im.shape[2], im.shape[1]))
        inputs.append(prepare_input(im, net.input_shape, letterbox=net.letter_box))
    engine = Engine(net, None, hw)
    needed = [h.index for h in net.heads] if net.is_detector else [net.output_index]
    float_outs = []
    for x in inputs:
        run = engine.run(x, Mode.FLOAT)
        float_outs.append({i: run.records[i].real for i in needed})
        if on_image:
            on_image("FLOAT")
    if scoring == "agreement":
        data = _agreement_truth(net, data, float_outs, sizes)
    key = hashlib.sha256(json.dumps({
        "model": model_digest(net), "darknet": net.darknet.value, "letterbox": net.letter_box,
        "hw": hw.to_dict() if hasattr(hw, "to_dict") else repr(hw), "calib": images_digest(calib),
        "data": data_digest(data), "scoring": scoring, "thresh": [DETECT_THRESH, NMS, AGREEMENT_THRESH],
        "version": 1}, sort_keys=True).encode()).hexdigest()
    task = Task(net, hw, ranges, inputs, sizes, data, scoring, float_outs, {}, key, list(calib))
    task.float_metrics = task.metrics_of(float_outs)
    return task


__all__ = ["AGREEMENT_THRESH", "CHOICES", "SQNR", "Task", "build_task", "check_metric", "load_data",
           "outputs_sqnr", "plain_images"]
