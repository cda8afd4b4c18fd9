"""FLOAT engine vs OpenCV's Darknet importer, layer by layer, on six networks with random weights.

The harness (running both engines, how OpenCV names the pieces of a Darknet layer, the head
layout, the batch-norm adjustment, the tolerances and why) is tests/golden/opencv_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from golden.detect import detect
from golden.engine import run_layer
from golden.genweights import random_weights, synthetic_image
from golden.layers import ConvSpec, RegionSpec, YoloSpec
from golden.network import parse_network
from golden.weights import write_weights
from tests.golden.opencv_harness import (CASES, DETECTORS, IMAGE_H, IMAGE_W, ISOLATED_TOL, NMS, WEIGHTS_SEED, Run,
                                         assert_every_layer_matches, darknet_index, final_pieces, for_opencv_bn,
                                         head_problems, match_detections, opencv_detections, pick_thresh,
                                         relative_box_error, resized_cfg, run_both)
from tests.paths import shared_path


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A ``CASES`` network with seeded random weights, run by both engines on a synthetic image.

    The image is the one ``random_weights`` draws to set the batch-norm statistics (its first
    draw from the same seed).  On it the activations have their intended range.  On another
    random image the deep random yolov3 drifts out of range.  At 160×160 its heads reached ±35,
    objectness saturated and boxes reached 1e12 px.
    """
    name: str = request.param
    rel, size = CASES[name]
    workdir = tmp_path_factory.mktemp(name)
    cfg = workdir / f"{name}.cfg"
    cfg.write_text(resized_cfg(shared_path("darknet-cfg", rel).read_text(), size))
    net = random_weights(parse_network(cfg), WEIGHTS_SEED)
    weights = workdir / f"{name}-opencv.weights"
    write_weights(for_opencv_bn(net), weights)
    x = synthetic_image(net.input_shape, np.random.default_rng(WEIGHTS_SEED))
    return run_both(name, net, cfg.read_text(), weights, x, workdir)


@pytest.mark.parametrize("run", list(CASES), indirect=True)
def test_every_layer_matches_opencv(run: Run) -> None:
    """Each Darknet layer's output equals OpenCV's (decoded layout for yolo/region), 1e-4 relative."""
    cmp = assert_every_layer_matches(run)
    # conv_i is skipped when bn_i or an activation follows it, bn_i when an activation does:
    # one skipped piece per activation plus one per batch norm
    convs = [s for s in run.net.layers if isinstance(s, ConvSpec)]
    expect = sum((s.activation != "linear") + s.batch_normalize for s in convs)
    assert len(cmp.skipped) == expect, cmp.skipped
    assert len(cmp.extra) == len(run.net.heads)
    assert len(cmp.compared) + len(cmp.extra) + len(cmp.skipped) == len(run.cv)


@pytest.mark.parametrize("run", list(CASES), indirect=True)
def test_each_layer_on_opencv_inputs(run: Run) -> None:
    """Each layer, fed OpenCV's outputs of the layers it reads, gives OpenCV's output within 1e-5.

    This isolates each kernel from the difference propagated through the layers before it.
    """
    final = final_pieces(list(run.cv), run.net)
    heads = {s.index for s in run.net.heads}
    cv_ours_layout = {i: run.cv[name].reshape(run.ours[i].shape)
                      for i, name in final.items() if i not in heads}
    cv_ours_layout[-1] = run.x
    problems = []
    for spec in run.net.layers:
        assert not heads & set(spec.inputs), "no layer of these cfgs reads a yolo/region output"
        ours = run_layer(run.net, spec, cv_ours_layout)
        if isinstance(spec, (YoloSpec, RegionSpec)):
            problems += [f"{final[spec.index]} (layer {spec.index}) {p}" for p in head_problems(
                spec, run.cv[final[spec.index]], ours, cv_ours_layout[spec.index - 1], run.net, ISOLATED_TOL)]
            continue
        ref = cv_ours_layout[spec.index].astype(np.float64)
        err, scale = float(np.abs(ours - ref).max()), float(np.abs(ref).max())
        if not err <= ISOLATED_TOL * scale:
            problems.append(f"{final[spec.index]} (layer {spec.index}, {spec.kind.value}): "
                            f"max|Δ| = {err:.3g} > 1e-5 × max|cv| = {ISOLATED_TOL * scale:.3g}")
    assert not problems, f"{run.name}: " + "\n".join(problems)


def test_opencv_name_mapping() -> None:
    """The naming rules, on the names OpenCV gives yolov3-tiny (a conv with BN and leaky is 3 pieces)."""
    net = parse_network(shared_path("darknet-cfg", "pjreddie", "yolov3-tiny.cfg"))
    names = ["conv_0", "bn_0", "leaky_1", "pool_1", "conv_15", "permute_16", "yolo_16", "identity_17",
             "upsample_19", "concat_20"]
    assert [darknet_index(n, net) for n in names] == [0, 0, 0, 1, 15, 16, 16, 17, 19, 20]
    assert final_pieces(names, net) == {0: "leaky_1", 1: "pool_1", 15: "conv_15", 16: "yolo_16",
                                        17: "identity_17", 19: "upsample_19", 20: "concat_20"}


@pytest.mark.parametrize("run", DETECTORS, indirect=True)
def test_detections_match_opencv_decode(run: Run) -> None:
    """``golden.detect.detect`` on our outputs = Darknet's decode of OpenCV's outputs.

    Both sides use the same threshold and NMS 0.45, with boxes mapped back to a 640×480 image.
    They must have the same classes, probs within 1e-4 and boxes within 1e-3 relative.
    """
    thresh = pick_thresh(run)
    ours = detect(run.net, run.ours, IMAGE_W, IMAGE_H, thresh=thresh, nms=NMS)
    reference = opencv_detections(run, thresh, NMS, IMAGE_W, IMAGE_H)
    assert len(reference) >= 5, f"only {len(reference)} detections at thresh {thresh:.4f}: too few to check"
    problems = match_detections(ours, reference, 1e-4, relative_box_error, 1e-3)
    assert not problems, f"thresh {thresh:.4f}:\n" + "\n".join(problems)
