"""The generated shapes data set: deterministic, labels true to the pixels, both label formats agree."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dla.datasets.labelled import load_labelled
from dla.datasets.shapes import CLASSES, make_image, write_shapes


def test_image_depends_only_on_seed_and_index() -> None:
    a, boxes_a = make_image(7, 3)
    b, boxes_b = make_image(7, 3)
    c, _ = make_image(8, 3)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and boxes_a == boxes_b
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_boxes_are_the_drawn_pixels() -> None:
    """The shape's colour (the most common one in its box) reaches all four box edges and
    never appears just outside them: the label is the tight pixel extent of the shape."""
    for i in range(12):
        img, boxes = make_image(0, i, size=64, kind="classify")
        assert len(boxes) == 1
        b = boxes[0]
        assert 0 <= b.cls < len(CLASSES)
        arr = np.asarray(img)
        inside = arr[b.y0:b.y1, b.x0:b.x1].reshape(-1, 3)
        colours, counts = np.unique(inside, axis=0, return_counts=True)
        c = colours[np.argmax(counts)]
        hit = np.all(arr == c, axis=2)  # (H, W)
        assert hit[b.y0, b.x0:b.x1].any() and hit[b.y1 - 1, b.x0:b.x1].any()
        assert hit[b.y0:b.y1, b.x0].any() and hit[b.y0:b.y1, b.x1 - 1].any()
        assert hit.sum() == hit[b.y0:b.y1, b.x0:b.x1].sum()  # nothing of that colour outside the box
        assert min(b.x1 - b.x0, b.y1 - b.y0) >= 14  # classify: a quarter of the side (star: 0.9 of that)


def test_write_shapes_splits_and_formats(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    counts = write_shapes(out, 20, seed=2, size=48, val_fraction=0.25)
    assert counts == {"train": 15, "val": 5}
    assert (out / "names").read_text().split() == list(CLASSES)
    assert len(list((out / "val").glob("*.png"))) == 5
    coco = json.loads((out / "val" / "instances.json").read_text())
    yolo = load_labelled(out)  # a folder with val/ evaluates val/
    assert yolo.root == out / "val" and yolo.names == list(CLASSES)
    assert len(coco["images"]) == 5
    n = sum(len(s.classes) for s in yolo.samples)
    assert n == len(coco["annotations"]) > 0
    # the COCO reading of the same split gives the same boxes
    (out / "val" / "coco").mkdir()
    for p in (out / "val").glob("*.png"):
        (out / "val" / "coco" / p.name).write_bytes(p.read_bytes())
    (out / "val" / "coco" / "instances.json").write_text(json.dumps(coco))
    from_coco = load_labelled(out / "val" / "coco")
    assert from_coco.fmt == "coco"
    for s1, s2 in zip(yolo.samples, from_coco.samples):
        assert s1.image.name == s2.image.name
        assert np.array_equal(s1.classes, s2.classes)
        assert np.allclose(s1.xyxy(48, 48), s2.xyxy(48, 48), atol=1e-4)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    write_shapes(tmp_path / "a", 6, seed=4, size=40)
    write_shapes(tmp_path / "b", 9, seed=4, size=40, val_fraction=0.0)
    for name in ("00000.png", "00000.txt", "00004.png", "00004.txt"):
        assert (tmp_path / "a" / "train" / name).read_bytes() == (tmp_path / "b" / "train" / name).read_bytes()
