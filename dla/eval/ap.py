"""Average precision of detections against ground truth: pure functions, no I/O.

Matching (COCO's, ``pycocotools/cocoeval.py: COCOeval.evaluateImg``): per image and class,
detections are visited by decreasing score; each takes the *unmatched* ground-truth box
with the highest IoU, if that IoU is ≥ the threshold (true positive), else it is a false
positive.  Per class, all images' detections are then ranked by score (stable order for
ties: image order, then score order within the image) to trace the precision/recall curve.

Two interpolations, both on the monotone precision envelope
``p̂(r) = max_{r' ≥ r} p(r')``:

* ``all_point_ap`` — the area under the envelope at every recall step (VOC2010+ and
  Darknet's ``validate_detector_map`` "all points" mode); used for **mAP@0.5**;
* ``coco101_ap`` — the mean of ``p̂`` sampled at the 101 recalls ``0, 0.01, …, 1``
  (``COCOeval.accumulate``); averaged over IoU thresholds ``0.50, 0.55, …, 0.95`` it is
  **mAP@0.5:0.95**.

mAP is the mean over classes that have at least one ground-truth box (as COCOeval, which
reports −1 for the others and leaves them out).  Boxes are ``[x1, y1, x2, y2]`` in pixels;
IoU is area-based with no "+1" (COCO's convention, not VOC's pixel-inclusive one).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

COCO_IOUS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))


@dataclass(frozen=True)
class ImageBoxes:
    """One image's boxes: ``boxes`` (n, 4) xyxy, ``classes`` (n,) int, ``scores`` (n,) (1 for ground truth)."""

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray

    @staticmethod
    def make(boxes: Sequence[Sequence[float]], classes: Sequence[int],
             scores: Sequence[float] | None = None) -> "ImageBoxes":
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        c = np.asarray(classes, dtype=np.int64).reshape(-1)
        s = np.ones(len(c)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        assert len(b) == len(c) == len(s)
        return ImageBoxes(b, c, s)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy → (n, m)."""
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_image(det: np.ndarray, gt: np.ndarray, thr: float) -> np.ndarray:
    """True-positive flags of ``det`` (already in decreasing score order) against ``gt`` boxes."""
    tp = np.zeros(len(det), dtype=bool)
    if len(det) == 0 or len(gt) == 0:
        return tp
    ious = iou_matrix(det, gt)
    taken = np.zeros(len(gt), dtype=bool)
    for i in range(len(det)):
        cand = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(cand))
        # COCOeval keeps the best IoU >= thr among unmatched boxes (it starts from thr - 1e-10)
        if cand[j] >= thr - 1e-10 and cand[j] >= 0:
            taken[j] = True
            tp[i] = True
    return tp


def precision_recall(dets: Sequence[ImageBoxes], gts: Sequence[ImageBoxes], cls: int,
                     thr: float) -> tuple[np.ndarray, np.ndarray, int]:
    """``(precision, recall, n_gt)`` along the ranked detections of class ``cls``."""
    scores, flags = [], []
    n_gt = 0
    for d, g in zip(dets, gts):
        gsel = g.boxes[g.classes == cls]
        n_gt += len(gsel)
        dm = d.classes == cls
        order = np.argsort(-d.scores[dm], kind="stable")
        dsel, dscore = d.boxes[dm][order], d.scores[dm][order]
        scores.append(dscore)
        flags.append(match_image(dsel, gsel, thr))
    if not scores:
        return np.zeros(0), np.zeros(0), n_gt
    s, tp = np.concatenate(scores), np.concatenate(flags)
    order = np.argsort(-s, kind="stable")
    tp = tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    recall = ctp / n_gt if n_gt else np.zeros_like(precision, dtype=np.float64)
    return precision, recall, n_gt


def _envelope(precision: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision


def all_point_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """``Σ_k (r_k − r_{k−1}) · p̂(r_k)`` over the ranked detections (``r_0 = 0``)."""
    if len(recall) == 0:
        return 0.0
    p = _envelope(precision)
    dr = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(dr * p))


def coco101_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Mean over ``r ∈ {0, 0.01, …, 1}`` of ``p̂`` at the first rank whose recall ≥ r (0 if none)."""
    if len(recall) == 0:
        return 0.0
    p = _envelope(precision)
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(p), p[np.minimum(idx, len(p) - 1)], 0.0)
    return float(sampled.mean())


@dataclass(frozen=True)
class MapResult:
    """mAP figures plus the per-class APs (``nan`` for a class with no ground truth)."""

    map50: float          # all-point AP at IoU 0.5, mean over classes
    map50_95: float       # COCO 101-point AP averaged over IoU 0.50:0.05:0.95, mean over classes
    map50_coco101: float  # COCO 101-point AP at IoU 0.5 (pycocotools' AP50)
    per_class_ap50: tuple[float, ...]
    n_gt: tuple[int, ...]


def mean_average_precision(dets: Sequence[ImageBoxes], gts: Sequence[ImageBoxes], classes: int) -> MapResult:
    """mAP@0.5 (all-point) and mAP@0.5:0.95 (COCO 101-point) over ``classes`` classes."""
    assert len(dets) == len(gts)
    ap50, ap50_101, ap_coco, n_gts = [], [], [], []
    for c in range(classes):
        p, r, n_gt = precision_recall(dets, gts, c, 0.5)
        n_gts.append(n_gt)
        if n_gt == 0:
            ap50.append(np.nan)
            ap50_101.append(np.nan)
            ap_coco.append(np.nan)
            continue
        ap50.append(all_point_ap(p, r))
        ap50_101.append(coco101_ap(p, r))
        per_thr = []
        for thr in COCO_IOUS:
            p_t, r_t, _ = precision_recall(dets, gts, c, float(thr))
            per_thr.append(coco101_ap(p_t, r_t))
        ap_coco.append(float(np.mean(per_thr)))

    def mean(v: list[float]) -> float:
        a = np.asarray(v, dtype=np.float64)
        return float(np.nanmean(a)) if np.any(~np.isnan(a)) else float("nan")

    return MapResult(mean(ap50), mean(ap_coco), mean(ap50_101), tuple(ap50), tuple(n_gts))
