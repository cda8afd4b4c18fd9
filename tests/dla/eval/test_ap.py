"""mAP against a case worked out by hand, and against pycocotools (an independent implementation)."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from dla.eval.ap import (ImageBoxes, all_point_ap, coco101_ap, iou_matrix, match_image,
                         mean_average_precision, precision_recall)


def _hand_case() -> tuple[list[ImageBoxes], list[ImageBoxes]]:
    """Two images.  Class 0: G1, G2 in A, G3 in B.  Class 1: one box in B, never detected.
    Class 2: no ground truth, one detection (must not count in the mean)."""
    gts = [ImageBoxes.make([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]),
           ImageBoxes.make([[0, 0, 10, 10], [30, 30, 40, 40]], [0, 1])]
    dets = [ImageBoxes.make([[0, 0, 10, 10],       # d1 0.9: G1, IoU 1
                             [1, 1, 11, 11],       # d3 0.7: G1 again (IoU 0.68, taken) -> FP
                             [20, 20, 30, 30],     # d4 0.6: G2, IoU 1
                             [0, 0, 5, 5]],        # class 2, no ground truth anywhere
                            [0, 0, 0, 2], [0.9, 0.7, 0.6, 0.95]),
            ImageBoxes.make([[0, 0, 10, 6.2],      # d2 0.8: G3 with IoU 0.62
                             [50, 50, 60, 60]],    # d5 0.5: nothing -> FP
                            [0, 0], [0.8, 0.5])]
    return dets, gts


def test_hand_made_case_at_iou_05() -> None:
    """Ranked: d1 TP, d2 TP, d3 FP, d4 TP, d5 FP with 3 ground truths.
    precision 1, 1, 2/3, 3/4, 3/5; recall 1/3, 2/3, 2/3, 1, 1; envelope 1, 1, 3/4, 3/4, 3/5.
    all-point AP = 1/3·1 + 1/3·1 + 1/3·3/4 = 11/12.
    COCO 101-point: r = 0.00..0.33 (34 points) → 1, 0.34..0.66 (33) → 1, 0.67..1.00 (34) → 3/4:
    (67 + 25.5) / 101."""
    dets, gts = _hand_case()
    p, r, n = precision_recall(dets, gts, 0, 0.5)
    assert n == 3
    assert np.allclose(p, [1, 1, 2 / 3, 3 / 4, 3 / 5]) and np.allclose(r, [1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert all_point_ap(p, r) == pytest.approx(11 / 12, abs=1e-12)
    assert coco101_ap(p, r) == pytest.approx(92.5 / 101, abs=1e-12)


def test_hand_made_case_map() -> None:
    """IoU 0.65..0.95 (7 thresholds): d2 becomes FP: TP FP FP TP FP, precision 1, 1/2, 1/3, 1/2, 2/5,
    recall 1/3, 1/3, 1/3, 2/3, 2/3 → envelope 1, .5, .5, .5, .4 → COCO AP (34·1 + 33·0.5 + 34·0)/101 = 0.5.
    Class 0 AP@[.5:.95] = (3·92.5/101 + 7·50.5/101)/10 = 631/1010; class 1 (never detected) 0;
    class 2 (no ground truth) left out of the mean."""
    dets, gts = _hand_case()
    m = mean_average_precision(dets, gts, 3)
    assert m.n_gt == (3, 1, 0)
    assert m.per_class_ap50[0] == pytest.approx(11 / 12) and m.per_class_ap50[1] == 0
    assert np.isnan(m.per_class_ap50[2])
    assert m.map50 == pytest.approx(11 / 24, abs=1e-12)
    assert m.map50_95 == pytest.approx(631 / 1010 / 2, abs=1e-12)
    assert m.map50_coco101 == pytest.approx(92.5 / 101 / 2, abs=1e-12)


def test_matching_takes_best_unmatched_box() -> None:
    gt = np.array([[0, 0, 10, 10], [2, 0, 12, 10]], float)
    det = np.array([[2, 0, 12, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert match_image(det, gt, 0.5).tolist() == [True, True, False]
    assert iou_matrix(det[:1], gt)[0].tolist() == pytest.approx([80 / 120, 1.0])


def _random_case(seed: int, n_images: int = 12, classes: int = 3):
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(n_images):
        k = int(rng.integers(0, 6))
        xy = rng.uniform(0, 80, (k, 2))
        wh = rng.uniform(5, 40, (k, 2))
        g = np.concatenate([xy, xy + wh], 1)
        gc = rng.integers(0, classes, k)
        # detections: jittered copies of some ground truths, some with the wrong class, plus clutter
        keep = rng.random(k) < 0.8
        d = g[keep] + rng.normal(0, 3, (int(keep.sum()), 4))
        dc = np.where(rng.random(int(keep.sum())) < 0.85, gc[keep], rng.integers(0, classes, int(keep.sum())))
        m = int(rng.integers(0, 4))
        cxy = rng.uniform(0, 80, (m, 2))
        clutter = np.concatenate([cxy, cxy + rng.uniform(5, 40, (m, 2))], 1)
        d = np.concatenate([d, clutter])
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1)
        dc = np.concatenate([dc, rng.integers(0, classes, m)])
        gts.append(ImageBoxes.make(g, gc))
        dets.append(ImageBoxes.make(d, dc, rng.random(len(dc))))  # distinct scores (no ties)
    return dets, gts


def _pycocotools(dets, gts, classes: int) -> tuple[float, float]:
    from pycocotools.coco import COCO  # in the test extra: a missing install fails, never skips
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i, "width": 200, "height": 200} for i in range(len(gts))]
    anns, results = [], []
    for i, g in enumerate(gts):
        for b, c in zip(g.boxes, g.classes):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c), "iscrowd": 0,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
    for i, d in enumerate(dets):
        for b, c, s in zip(d.boxes, d.classes, d.scores):
            results.append({"image_id": i, "category_id": int(c), "score": float(s),
                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": anns,
                        "categories": [{"id": k, "name": str(k)} for k in range(classes)]}
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pycocotools(seed: int) -> None:
    """COCO 101-point AP@[.5:.95] and AP@0.5 equal COCOeval's stats[0] and stats[1]."""
    dets, gts = _random_case(seed)
    ref_5095, ref_50 = _pycocotools(dets, gts, 3)
    m = mean_average_precision(dets, gts, 3)
    assert m.map50_95 == pytest.approx(ref_5095, abs=1e-9)
    assert m.map50_coco101 == pytest.approx(ref_50, abs=1e-9)
    assert 0 < m.map50_95 < m.map50_coco101 < 1  # a non-trivial case


def test_hand_case_against_pycocotools() -> None:
    dets, gts = _hand_case()
    ref_5095, ref_50 = _pycocotools(dets, gts, 3)
    assert ref_50 == pytest.approx(92.5 / 101 / 2, abs=1e-9)
    assert ref_5095 == pytest.approx(631 / 1010 / 2, abs=1e-9)
