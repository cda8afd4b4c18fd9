"""Detections from yolo/region outputs, box correction and NMS, as Darknet's drivers do.

Sources read: ``yolo_layer.c: get_yolo_detections, get_yolo_box, correct_yolo_boxes``,
``region_layer.c: get_region_detections, get_region_box``, ``box.c: do_nms_sort, box_iou,
box_diou`` (pjreddie; DIoU from AlexeyAB).  Boxes are centre/size, relative to the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.image import letterbox_geometry
from golden.layers import Kind, RegionSpec, YoloSpec
from golden.network import Network


@dataclass
class Candidate:
    """One anchor's prediction: box ``(x, y, w, h)`` relative to the original image."""

    box: tuple[float, float, float, float]
    objectness: float
    probs: np.ndarray  # (classes,) float32, zero where not above threshold


@dataclass(frozen=True)
class Detection:
    """One reported ``(box, class)`` pair; ``box`` = ``[x1, y1, x2, y2]`` in original pixels."""

    cls: int
    name: str
    prob: float
    box: tuple[float, float, float, float]

    def to_json(self) -> dict:
        return {"class": self.name, "prob": round(self.prob, 6), "box": [round(v, 3) for v in self.box]}


def _correct(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, im_w: int, im_h: int,
             net_w: int, net_h: int, letterbox: bool) -> tuple[np.ndarray, ...]:
    """``correct_yolo_boxes``: undo the letterbox (no-op for a stretched input)."""
    if not letterbox:
        return x, y, w, h
    new_w, new_h = letterbox_geometry(im_w, im_h, net_w, net_h)
    x = (x - (net_w - new_w) / 2.0 / net_w) / (new_w / net_w)
    y = (y - (net_h - new_h) / 2.0 / net_h) / (new_h / net_h)
    return x, y, w * (net_w / new_w), h * (net_h / new_h)


def yolo_candidates(spec: YoloSpec, out: np.ndarray, im_w: int, im_h: int, net_w: int, net_h: int,
                    thresh: float, letterbox: bool) -> list[Candidate]:
    n = len(spec.mask)
    _, gh, gw = out.shape
    t = out.reshape(n, 5 + spec.classes, gh, gw).astype(np.float64)
    cands: list[Candidate] = []
    for a in range(n):
        obj = t[a, 4]
        rows, cols = np.nonzero(obj > thresh)
        if rows.size == 0:
            continue
        aw, ah = spec.anchors[2 * spec.mask[a]], spec.anchors[2 * spec.mask[a] + 1]
        bx = (cols + t[a, 0, rows, cols]) / gw
        by = (rows + t[a, 1, rows, cols]) / gh
        if spec.new_coords:
            bw = t[a, 2, rows, cols] ** 2 * 4 * aw / net_w
            bh = t[a, 3, rows, cols] ** 2 * 4 * ah / net_h
        else:
            bw = np.exp(t[a, 2, rows, cols]) * aw / net_w
            bh = np.exp(t[a, 3, rows, cols]) * ah / net_h
        bx, by, bw, bh = _correct(bx, by, bw, bh, im_w, im_h, net_w, net_h, letterbox)
        o = out.reshape(n, 5 + spec.classes, gh, gw)[a, 4, rows, cols]
        cls = out.reshape(n, 5 + spec.classes, gh, gw)[a, 5:, rows, cols]  # (k, classes)
        probs = (o[:, None] * cls).astype(np.float32)
        probs[probs <= thresh] = 0
        for k in range(rows.size):
            cands.append(Candidate((bx[k], by[k], bw[k], bh[k]), float(o[k]), probs[k]))
    return cands


def region_candidates(spec: RegionSpec, out: np.ndarray, im_w: int, im_h: int, net_w: int, net_h: int,
                      thresh: float, letterbox: bool) -> list[Candidate]:
    per = spec.coords + 1 + spec.classes
    _, gh, gw = out.shape
    t = out.reshape(spec.num, per, gh, gw)
    cands: list[Candidate] = []
    for a in range(spec.num):
        scale = np.ones((gh, gw), np.float32) if spec.background else t[a, spec.coords]
        rows, cols = np.nonzero(scale > thresh)
        if rows.size == 0:
            continue
        tt = t[a].astype(np.float64)
        bx = (cols + tt[0, rows, cols]) / gw
        by = (rows + tt[1, rows, cols]) / gh
        bw = np.exp(tt[2, rows, cols]) * spec.anchors[2 * a] / gw
        bh = np.exp(tt[3, rows, cols]) * spec.anchors[2 * a + 1] / gh
        bx, by, bw, bh = _correct(bx, by, bw, bh, im_w, im_h, net_w, net_h, letterbox)
        s = scale[rows, cols]
        probs = (s[:, None] * t[a, spec.coords + 1:, rows, cols]).astype(np.float32)
        probs[probs <= thresh] = 0
        for k in range(rows.size):
            cands.append(Candidate((bx[k], by[k], bw[k], bh[k]), float(s[k]), probs[k]))
    return cands


def _overlap(c1: float, w1: float, c2: float, w2: float) -> float:
    left = max(c1 - w1 / 2, c2 - w2 / 2)
    right = min(c1 + w1 / 2, c2 + w2 / 2)
    return right - left


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two centre/size boxes (``box.c: box_iou``)."""
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def box_diou(a: tuple[float, ...], b: tuple[float, ...], beta: float = 0.6) -> float:
    """AlexeyAB's DIoU-NMS criterion ``IoU − (d²/c²)^beta``."""
    left = min(a[0] - a[2] / 2, b[0] - b[2] / 2)
    right = max(a[0] + a[2] / 2, b[0] + b[2] / 2)
    top = min(a[1] - a[3] / 2, b[1] - b[3] / 2)
    bot = max(a[1] + a[3] / 2, b[1] + b[3] / 2)
    c2 = (right - left) ** 2 + (bot - top) ** 2
    d2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    iou = box_iou(a, b)
    return iou if c2 == 0 else iou - (d2 / c2) ** beta


def _iou_one_to_many(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``box_iou`` of one centre/size box ``a`` (4,) against many ``b`` (n, 4)."""
    w = np.minimum(a[0] + a[2] / 2, b[:, 0] + b[:, 2] / 2) - np.maximum(a[0] - a[2] / 2, b[:, 0] - b[:, 2] / 2)
    h = np.minimum(a[1] + a[3] / 2, b[:, 1] + b[:, 3] / 2) - np.maximum(a[1] - a[3] / 2, b[:, 1] - b[:, 3] / 2)
    inter = np.where((w < 0) | (h < 0), 0.0, w * h)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _diou_one_to_many(a: np.ndarray, b: np.ndarray, beta: float) -> np.ndarray:
    left = np.minimum(a[0] - a[2] / 2, b[:, 0] - b[:, 2] / 2)
    right = np.maximum(a[0] + a[2] / 2, b[:, 0] + b[:, 2] / 2)
    top = np.minimum(a[1] - a[3] / 2, b[:, 1] - b[:, 3] / 2)
    bot = np.maximum(a[1] + a[3] / 2, b[:, 1] + b[:, 3] / 2)
    c2 = (right - left) ** 2 + (bot - top) ** 2
    d2 = (a[0] - b[:, 0]) ** 2 + (a[1] - b[:, 1]) ** 2
    iou = _iou_one_to_many(a, b)
    ratio = np.divide(d2, c2, out=np.zeros_like(d2), where=c2 > 0)
    return np.where(c2 > 0, iou - ratio ** beta, iou)


def do_nms_sort(cands: list[Candidate], classes: int, nms: float, diou_beta: float | None = None) -> None:
    """Per class: sort by that class's prob; each box still above 0 zeroes that class in every
    later box whose IoU (or DIoU) with it is > ``nms``.  Boxes with prob 0 for a class can
    neither suppress nor be changed for it, so only the others are visited (same result)."""
    live = [c for c in cands if c.objectness != 0]
    if not live:
        return
    boxes = np.array([c.box for c in live], dtype=np.float64)  # (n, 4) centre/size
    probs = np.stack([c.probs for c in live])  # (n, classes), rows are views written back below
    for k in range(classes):
        idx = np.nonzero(probs[:, k] > 0)[0]
        if idx.size < 2:
            continue
        idx = idx[np.argsort(-probs[idx, k], kind="stable")]
        alive = np.ones(idx.size, dtype=bool)
        for i in range(idx.size - 1):
            if not alive[i]:
                continue
            rest = idx[i + 1:]
            score = (_iou_one_to_many(boxes[idx[i]], boxes[rest]) if diou_beta is None
                     else _diou_one_to_many(boxes[idx[i]], boxes[rest], diou_beta))
            alive[i + 1:] &= ~(score > nms)
        probs[idx[~alive], k] = 0
    for c, row in zip(live, probs):
        c.probs[:] = row


def detect(net: Network, outputs: dict[int, np.ndarray], im_w: int, im_h: int, names: list[str] | None = None,
           thresh: float = 0.5, nms: float = 0.45) -> list[Detection]:
    """All heads' candidates → NMS → one ``Detection`` per (box, class) above ``thresh``, best first."""
    _, net_h, net_w = net.input_shape
    cands: list[Candidate] = []
    classes = 0
    diou: float | None = None
    for spec in net.heads:
        out = outputs[spec.index]
        if spec.kind is Kind.YOLO:
            assert isinstance(spec, YoloSpec)
            cands += yolo_candidates(spec, out, im_w, im_h, net_w, net_h, thresh, net.letter_box)
            if spec.nms_kind == "greedynms":
                diou = 0.6  # AlexeyAB box_diou: IoU − (d²/c²)^0.6, exponent fixed
            elif spec.nms_kind == "diounms":
                diou = spec.beta_nms  # box_diounms(a, b, beta_nms)
        else:
            assert isinstance(spec, RegionSpec)
            cands += region_candidates(spec, out, im_w, im_h, net_w, net_h, thresh, net.letter_box)
        classes = max(classes, spec.classes)
    if nms > 0:
        do_nms_sort(cands, classes, nms, diou)
    dets: list[Detection] = []
    for c in cands:
        x, y, w, h = c.box
        box = ((x - w / 2) * im_w, (y - h / 2) * im_h, (x + w / 2) * im_w, (y + h / 2) * im_h)
        for k in np.nonzero(c.probs > thresh)[0]:
            name = names[k] if names and k < len(names) else str(int(k))
            dets.append(Detection(int(k), name, float(c.probs[k]), tuple(float(v) for v in box)))
    dets.sort(key=lambda d: -d.prob)
    return dets


def top_k(probs: np.ndarray, k: int = 5, names: list[str] | None = None) -> list[tuple[str, float]]:
    """Classifier output → the ``k`` best ``(name, prob)``."""
    flat = probs.reshape(-1)
    idx = np.argsort(-flat, kind="stable")[:k]
    return [(names[i] if names and i < len(names) else str(int(i)), float(flat[i])) for i in idx]


def iou_xyxy(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes (for comparing detections across runs)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


__all__ = ["Candidate", "Detection", "box_diou", "box_iou", "detect", "do_nms_sort", "iou_xyxy",
           "region_candidates", "top_k", "yolo_candidates"]
