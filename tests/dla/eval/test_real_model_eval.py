"""A user's real model and their own COCO-labelled photos: the published yolov3-tiny weights on
the eight shared photos, labelled (COCO instances JSON) with the reference detections of the
float network.  FLOAT must then find its own detections (mAP@0.5 near 1); INT shows the cost."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dla.catalog import CFG_DIR, read_names
from tests.cli_helpers import ok
from tests.paths import shared_path


@pytest.mark.shared
def test_yolov3_tiny_on_coco_labelled_photos(tmp_path: Path) -> None:
    weights = shared_path("models", "yolov3-tiny.weights")
    ref = json.loads(shared_path("images", "reference-detections.json").read_text())
    names = read_names(CFG_DIR / "coco.names")
    data = tmp_path / "photos"
    data.mkdir()
    images, anns = [], []
    from PIL import Image

    for i, (fname, dets) in enumerate(sorted(ref.items())):
        src = shared_path("images", fname)
        (data / fname).write_bytes(src.read_bytes())
        with Image.open(src) as im:
            w, h = im.size
        images.append({"id": i, "file_name": fname, "width": w, "height": h})
        for d in dets:
            x1, y1, x2, y2 = d["box"]
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": names.index(d["class"]) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(names)]
    (data / "instances.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    res = ok("eval", "yolov3-tiny", weights, "--data", data, "--modes", "float,int", "--activations", "max",
             "--granularity", "per-channel", "-q", "--json", tmp_path / "r.json")
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert "coco labels" in res.output and "wall time per image, INT" in res.output
    fl, it = rows
    assert fl["map50"] >= 0.95, rows
    assert 0.3 < it["map50"] <= 1.0, rows
