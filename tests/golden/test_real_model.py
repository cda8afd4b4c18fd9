"""The real trained YOLOv3-tiny (COCO) through the FLOAT engine, on the eight shared photos.

``../shared/images/reference-detections.json`` holds what the float network detects in each
photo at Darknet's ``detector test`` settings (letterbox 416, thresh 0.5, NMS 0.45).  The file
was made with OpenCV's Darknet importer and was checked there to equal real Darknet's classes.
We must find the same classes per image, with probs within 0.02 and boxes within 2% of the image
size.  The margins cover JPEG decoders (Darknet's stb_image differs from libjpeg by up to 3/255).

Also: every layer against OpenCV on ``dog.jpg`` with the original ``.weights`` file, so the two
readers of the real file and the two batch-norm formulas meet (see ``test_opencv_parity.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from golden.detect import detect
from golden.engine import forward
from golden.image import load_image, prepare_input
from golden.network import Network, load_network
from tests.paths import shared_path
from tests.golden.opencv_harness import BoxError, Det, assert_every_layer_matches, match_detections, run_both

pytestmark = pytest.mark.shared

IMAGES = ("camera.png", "chelsea.png", "coffee.png", "dog.jpg", "giraffe.jpg", "grace_hopper.jpg",
          "horses.jpg", "person.jpg")
CFG = ("darknet-cfg", "pjreddie", "yolov3-tiny.cfg")
THRESH, NMS = 0.5, 0.45           # pjreddie `detector test` defaults
PROB_TOL, BOX_TOL = 0.02, 0.02    # box: fraction of the image width (x) and height (y)


@pytest.fixture(scope="module")
def real_net() -> Network:
    """yolov3-tiny.cfg with the published COCO weights (the file's size is checked against the cfg)."""
    return load_network(shared_path(*CFG), shared_path("models", "yolov3-tiny.weights"))


@pytest.fixture(scope="module")
def coco_names() -> list[str]:
    return shared_path("darknet-cfg", "pjreddie", "coco.names").read_text().splitlines()


@pytest.fixture(scope="module")
def reference() -> dict[str, list[dict]]:
    return json.loads(shared_path("images", "reference-detections.json").read_text())


def test_reference_covers_every_photo(reference: dict[str, list[dict]]) -> None:
    """``IMAGES`` is every photo in ../shared/images, and each has a reference entry."""
    folder = shared_path("images")
    photos = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert photos == sorted(IMAGES)
    assert sorted(reference) == sorted(IMAGES)


def relative_to_image(width: int, height: int) -> BoxError:
    """Box error as the largest corner difference in fractions of the image width (x) and height (y)."""
    def err(ours: tuple[float, ...], ref: tuple[float, ...]) -> float:
        return max(abs(ours[0] - ref[0]) / width, abs(ours[2] - ref[2]) / width,
                   abs(ours[1] - ref[1]) / height, abs(ours[3] - ref[3]) / height)
    return err


@pytest.mark.parametrize("image", IMAGES)
def test_detections_match_reference(image: str, real_net: Network, coco_names: list[str],
                                    reference: dict[str, list[dict]]) -> None:
    """Same classes (as a multiset), probs within 0.02, boxes within 2% of the image size."""
    im = load_image(shared_path("images", image))
    _, height, width = im.shape
    x = prepare_input(im, real_net.input_shape, real_net.letter_box)
    outputs = forward(real_net, x, keep_all=False)
    ours = detect(real_net, outputs, width, height, coco_names, thresh=THRESH, nms=NMS)
    expected = [Det(coco_names.index(d["class"]), d["prob"], tuple(d["box"])) for d in reference[image]]
    problems = match_detections(ours, expected, PROB_TOL, relative_to_image(width, height), BOX_TOL)
    found = [(d.name, round(d.prob, 4)) for d in ours]
    assert not problems, f"{image}: ours {found}\n" + "\n".join(problems)


def test_every_layer_matches_opencv_on_dog(real_net: Network, tmp_path: Path) -> None:
    """dog.jpg at 416: every layer equals OpenCV's (1e-4 relative), with the original weights file."""
    im = load_image(shared_path("images", "dog.jpg"))
    x = prepare_input(im, real_net.input_shape, real_net.letter_box)
    assert x.shape == (3, 416, 416) and np.isclose(x[:, 0, 0], 0.5).all()  # letterboxed: grey band on top
    run = run_both("yolov3-tiny-coco", real_net, shared_path(*CFG).read_text(),
                   shared_path("models", "yolov3-tiny.weights"), x, tmp_path)
    assert_every_layer_matches(run)
