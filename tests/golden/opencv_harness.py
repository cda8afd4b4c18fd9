"""The harness of test_opencv_parity.py (FLOAT engine vs OpenCV's Darknet importer, layer by
layer, on six networks with random weights) and of test_real_model.py.  Plain code, imported.

OpenCV (``cv2.dnn.readNetFromDarknet``) reads the same cfg and ``.weights`` files with its own
parser and runs every layer with its own code.  Agreement to float precision therefore checks
our cfg semantics, the weights layout and every kernel at once.  The criterion for each
compared tensor is ``max|cv − ours| ≤ 1e-4 · max|ours|``.

How OpenCV 4.14 names the pieces of a Darknet layer (``darknet_io.cpp``; confirmed on the six
networks below).  :func:`darknet_index` and :func:`final_pieces` implement this:

* A counter ``i`` equal to the Darknet layer index names the layer's pieces: ``conv_i``,
  ``bn_i``, ``pool_i``, ``avgpool_i``, ``softmax_i``, ``reorg_i``, ``shortcut_i``,
  ``upsample_i``, ``yolo_i``.  A route is ``identity_i`` (one input), ``concat_i`` (several) or
  ``slice_i`` (``groups``).  ``permute_i`` is the NHWC transpose of the input of yolo/region ``i``.
* The counter is advanced *before* the activation is added, so layer ``i``'s activation is
  named ``leaky_{i+1}`` (or ``relu_``, ``swish_``, ``mish_``, ``logistic_``).
* The ``[region]`` layer is named ``detection_out``.
* The Darknet layer's output is the **last** piece with its index: the activation of a conv,
  else ``bn_i``, else ``conv_i``.  ``conv_i``/``bn_i`` before an activation are pre-activation
  intermediates.  Our engine keeps no such values, so they are skipped (and counted).

OpenCV's yolo/region output is decoded: one row per (cell, anchor), ``(y·W + x)·anchors + a``,
and columns ``x, y, w, h`` (relative to the network input), objectness, objectness·class.
:func:`to_opencv_layout` puts our head outputs in that layout.  OpenCV also zeroes class probs
≤ ``thresh`` and runs NMS, which Darknet's forward pass does not do.  The OpenCV copy of each
cfg therefore sets ``thresh=0`` and ``nms_threshold=0``.  OpenCV's ``[region]`` ignores
``nms_threshold`` and always runs greedy NMS (IoU 0.4), so for region the probs it drops are
checked to be ones NMS must drop (:func:`nms_problems`).

Batch norm: OpenCV divides by ``sqrt(var + 1e-6)``, while we follow pjreddie's CPU code with
``sqrt(var) + 1e-6``.  Per layer the two differ by ~2e-5 relative on these weights.  Through
the deep random networks the difference grows beyond the criterion: 3.4e-4 in yolov3, 1.8e-4 in
yolov2.  OpenCV is therefore given
``var' = (sqrt(var) + 1e-6)² − 1e-6``, which makes its formula compute exactly ours
(:func:`for_opencv_bn`).  The real-weights test in ``test_real_model.py`` feeds OpenCV the
original file and shows the difference stays below 2e-5 there.

OpenCV's Winograd 3×3 convolution is switched off.  It is an approximation that Darknet does not
make.  What remains is float rounding and the GEMMs' summation order.  Fed OpenCV's own inputs,
each layer agrees within 2e-6 (test_opencv_parity.py's ``test_each_layer_on_opencv_inputs``).  Through a deep
random network the difference grows: 6e-5 at yolov3's last convs, 3e-5 in yolov2, ≤ 8e-6 in
the others.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from golden.detect import Detection
from golden.engine import forward
from golden.forks import DarknetFork
from golden.layers import Kind, RegionSpec, YoloSpec
from golden.network import Network

REL_TOL = 1e-4
#: Criterion for one layer fed OpenCV's own inputs (no propagated difference).
ISOLATED_TOL = 1e-5
#: name: (cfg under ../shared/darknet-cfg, input size; None keeps the cfg's own size).
#: The 608×608 networks run at 256 to keep CI fast (a multiple of 32 keeps every shape valid).
CASES: dict[str, tuple[str, int | None]] = {
    "yolov2": ("pjreddie/yolov2.cfg", 256),
    "yolov2-tiny": ("pjreddie/yolov2-tiny.cfg", None),    # 416
    "yolov3": ("pjreddie/yolov3.cfg", 256),
    "yolov3-tiny": ("pjreddie/yolov3-tiny.cfg", None),    # 416
    "yolov4-tiny": ("AlexeyAB/yolov4-tiny.cfg", None),    # 416, route groups, scale_x_y, greedynms
    "darknet": ("pjreddie/darknet.cfg", None),            # 256, the reference classifier
}
DETECTORS = [name for name in CASES if name != "darknet"]
WEIGHTS_SEED = 7
#: Activation pieces are named with the *next* layer's index.
ACTIVATION_PREFIXES = frozenset({"leaky", "relu", "swish", "mish", "logistic", "sigmoid"})
#: OpenCV's region layer always runs NMS with this IoU threshold (RegionLayer default).
OPENCV_REGION_NMS = 0.4


# --------------------------------------------------------------------------- running both engines


@dataclass
class Run:
    """One network run by both engines on the same input."""

    name: str
    net: Network                   # with its parameters
    x: np.ndarray                  # (C, H, W) float32 input
    ours: dict[int, np.ndarray]    # layer index → our output
    cv: dict[str, np.ndarray]      # OpenCV layer name → output, in getLayerNames() order


def resized_cfg(text: str, size: int | None) -> str:
    """The cfg with ``[net] width``/``height`` set to ``size`` (no other section has them)."""
    if size is None:
        return text
    out, n = re.subn(r"(?m)^[ \t]*(width|height)[ \t]*=.*$", lambda m: f"{m.group(1)}={size}", text)
    assert n == 2, f"expected one width= and one height= line, found {n}"
    return out


def opencv_cfg(text: str) -> str:
    """OpenCV's copy of a cfg: no class-prob threshold and no NMS in the yolo/region layers.

    These two keys are read only by OpenCV.  Darknet's ``thresh`` in ``[region]`` is a training
    option, so it is removed.  Other sections keep every line.
    """
    text = re.sub(r"(?m)^[ \t]*thresh[ \t]*=.*$", "", text)
    return re.sub(r"(?m)^\[(yolo|region)\][ \t]*$", r"[\1]\nthresh=0\nnms_threshold=0", text)


def opencv_forward(cfg: Path, weights: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer output OpenCV exposes, on ``x`` given as-is (no ``blobFromImage``)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # deterministic, and the test process does not oversubscribe the CPUs
    try:
        cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        cvnet.enableFusion(False)    # keep conv, bn and activation as separate outputs
        cvnet.enableWinograd(False)  # an approximation Darknet does not make
        cvnet.setInput(x[None])
        names = list(cvnet.getLayerNames())
        return dict(zip(names, cvnet.forward(names)))
    finally:
        cv2.setNumThreads(threads)


def for_opencv_bn(net: Network) -> Network:
    """A copy of ``net`` whose batch norm, computed OpenCV's way, equals ours.

    OpenCV: ``(x − mean)/sqrt(var' + 1e-6)``.  Ours (pjreddie CPU): ``(x − mean)/(sqrt(var) + 1e-6)``.
    They are equal for ``var' = (sqrt(var) + 1e-6)² − 1e-6``.  For a network run as AlexeyAB's
    (``net.darknet``; yolov4-tiny under ``auto``), ours is ``(x − mean)/sqrt(var + 1e-5)``
    (folded into the weights), equal for ``var' = var + 1e-5 − 1e-6``.
    """
    alexeyab = net.darknet is DarknetFork.ALEXEYAB
    params = {}
    for i, p in net.params.items():
        if p.rolling_variance is not None:
            var = p.rolling_variance.astype(np.float64)
            adjusted = var + (1e-5 - 1e-6) if alexeyab else (np.sqrt(var) + 1e-6) ** 2 - 1e-6
            assert (adjusted > 0).all(), f"layer {i}: a variance too small to adjust"
            p = replace(p, rolling_variance=adjusted.astype(np.float32))
        params[i] = p
    return replace(net, params=params)


def run_both(name: str, net: Network, cfg_text: str, weights: Path, x: np.ndarray, workdir: Path) -> Run:
    """Our forward pass and OpenCV's on the same cfg text, weights file and input."""
    cv_cfg = workdir / f"{name}-opencv.cfg"
    cv_cfg.write_text(opencv_cfg(cfg_text))
    return Run(name, net, x, forward(net, x), opencv_forward(cv_cfg, weights, x))


# --------------------------------------------------------------------------- OpenCV names ↔ layers


def darknet_index(name: str, net: Network) -> int:
    """The Darknet layer an OpenCV layer name belongs to (see the module docstring)."""
    if name == "detection_out":
        (region,) = [s.index for s in net.layers if s.kind is Kind.REGION]
        return region
    prefix, _, number = name.rpartition("_")
    return int(number) - 1 if prefix in ACTIVATION_PREFIXES else int(number)


def final_pieces(names: Iterable[str], net: Network) -> dict[int, str]:
    """Darknet layer index → the OpenCV layer whose output is that layer's output (its last piece)."""
    final: dict[int, str] = {}
    for name in names:
        if not name.startswith("permute_"):
            final[darknet_index(name, net)] = name
    return final


# --------------------------------------------------------------------------- yolo/region heads


def head_geometry(spec: YoloSpec | RegionSpec, net: Network) -> tuple[int, int, np.ndarray, tuple[int, int]]:
    """``(anchors per cell, values per anchor, anchors (n, 2), (norm_w, norm_h))`` of a head.

    Yolo anchors are in input pixels (normalised by the network size), region anchors in grid
    cells (normalised by the grid size).
    """
    _, gh, gw = spec.out_shape
    if isinstance(spec, YoloSpec):
        assert not spec.new_coords, "new_coords heads are decoded differently"
        anchors = np.array([spec.anchors[2 * m:2 * m + 2] for m in spec.mask], dtype=np.float64)
        return len(spec.mask), 5 + spec.classes, anchors, (net.input_shape[2], net.input_shape[1])
    assert spec.coords == 4 and not spec.background, "OpenCV's region layer needs coords=4, no background"
    anchors = np.array(spec.anchors, dtype=np.float64).reshape(spec.num, 2)
    return spec.num, spec.coords + 1 + spec.classes, anchors, (gw, gh)


def to_opencv_layout(spec: YoloSpec | RegionSpec, out: np.ndarray, net: Network) -> np.ndarray:
    """Our yolo/region output ``(n·per, H, W)`` (planar, anchor-major) in OpenCV's decoded layout.

    Row ``(y·W + x)·n + a``, columns ``(x + t_x)/W, (y + t_y)/H, exp(t_w)·anchor_w/norm_w,
    exp(t_h)·anchor_h/norm_h, objectness, objectness·class_k``, in float64.  ``t_x``, ``t_y``,
    objectness and the class values are already activated (and scale_x_y'd) in our output.
    """
    n, per, anchors, (norm_w, norm_h) = head_geometry(spec, net)
    _, gh, gw = out.shape
    t = out.reshape(n, per, gh, gw).transpose(2, 3, 0, 1).astype(np.float64)  # (H, W, n, per)
    dec = np.empty_like(t)
    dec[..., 0] = (np.arange(gw)[None, :, None] + t[..., 0]) / gw
    dec[..., 1] = (np.arange(gh)[:, None, None] + t[..., 1]) / gh
    dec[..., 2] = np.exp(t[..., 2]) * anchors[:, 0] / norm_w
    dec[..., 3] = np.exp(t[..., 3]) * anchors[:, 1] / norm_h
    dec[..., 4] = t[..., 4]
    dec[..., 5:] = t[..., 4:5] * t[..., 5:]
    return dec.reshape(gh * gw * n, per)


def pairwise_iou(boxes: np.ndarray) -> np.ndarray:
    """IoU of every pair of centre/size boxes ``(n, 4)`` → ``(n, n)``."""
    x1, y1 = boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2
    x2, y2 = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = iw * ih
    area = boxes[:, 2] * boxes[:, 3]
    union = area[:, None] + area[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms_problems(boxes: np.ndarray, probs: np.ndarray, kept: np.ndarray, iou_thresh: float,
                 tol: float) -> list[str]:
    """Check that OpenCV's per-class greedy NMS result is one greedy NMS can give.

    ``boxes`` are OpenCV's (centre/size), ``probs`` ours, ``kept`` where OpenCV left a prob.
    Greedy NMS keeps class-k boxes that overlap each other by at most ``iou_thresh``.  It drops
    a box only when a kept box with a prob at least as high overlaps it by more than that.
    """
    iou = pairwise_iou(boxes)
    np.fill_diagonal(iou, 0.0)
    eps = 1e-6  # OpenCV computes the IoU in its own arithmetic
    problems = []
    for k in range(probs.shape[1]):
        keep = np.nonzero(kept[:, k])[0]
        drop = np.nonzero(~kept[:, k] & (probs[:, k] > tol))[0]
        if (iou[np.ix_(keep, keep)] > iou_thresh + eps).any():
            problems.append(f"class {k}: two boxes kept by OpenCV's NMS overlap by > {iou_thresh}")
        if drop.size:
            overlaps = iou[np.ix_(drop, keep)] > iou_thresh - eps                   # (dropped, kept)
            higher = probs[keep, k][None, :] >= probs[drop, k][:, None] - tol      # (dropped, kept)
            unexplained = drop[~(overlaps & higher).any(axis=1)]
            if unexplained.size:
                first = unexplained[:5]
                problems.append(f"class {k}: {unexplained.size} probs zeroed by OpenCV that NMS does not "
                                f"explain (rows {first.tolist()}, ours {probs[first, k]})")
    return problems


def head_problems(spec: YoloSpec | RegionSpec, cv_out: np.ndarray, ours: np.ndarray, head_in: np.ndarray,
                  net: Network, rel_tol: float = REL_TOL) -> list[str]:
    """Compare OpenCV's decoded head with ours (``head_in``: our input of the head).

    A decoded value is a function of the head's input ``z``, whose allowed error is
    ``rel_tol · max|z|``.  The decode can magnify that error by at most ``L``:
    ``scale_x_y/(4·W)`` for ``x = (col + σ)/W``, ¼ for objectness, ½ for objectness·σ(class),
    ¾ for objectness·softmax(class), and 1 for ``log w = t_w + const``.  ``exp`` turns an
    absolute error into a relative one, so w and h are compared as logs.  Each column group
    must satisfy ``max|Δ| ≤ rel_tol · L · max|z|``.
    """
    ref = to_opencv_layout(spec, ours, net)
    if cv_out.shape != ref.shape:
        return [f"decoded shape {cv_out.shape}, ours {ref.shape}"]
    cv64 = cv_out.astype(np.float64)
    _, gh, gw = spec.out_shape
    z_max = float(np.abs(head_in).max())
    sxy = spec.scale_x_y if isinstance(spec, YoloSpec) else 1.0
    problems = []

    def check(what: str, a: np.ndarray, b: np.ndarray, lipschitz: float) -> None:
        err = float(np.abs(a - b).max()) if a.size else 0.0
        tol = rel_tol * lipschitz * z_max
        if not err <= tol:
            problems.append(f"{what}: max|Δ| = {err:.3g} > {rel_tol:g} × {lipschitz:.3g} × max|z| "
                            f"= {tol:.3g}")

    check("x", cv64[:, 0], ref[:, 0], sxy / (4 * gw))
    check("y", cv64[:, 1], ref[:, 1], sxy / (4 * gh))
    with np.errstate(divide="ignore"):
        check("log w, log h", np.log(cv64[:, 2:4]), np.log(ref[:, 2:4]), 1.0)
    check("objectness", cv64[:, 4], ref[:, 4], 0.25)
    lipschitz = 0.75 if isinstance(spec, RegionSpec) else 0.5
    probs, kept = ref[:, 5:], cv64[:, 5:] > 0
    check("class probs", cv64[:, 5:][kept], probs[kept], lipschitz)
    tol = rel_tol * lipschitz * z_max
    if isinstance(spec, RegionSpec):
        problems += nms_problems(cv64[:, :4], probs, kept, OPENCV_REGION_NMS, tol)
    else:
        zeroed = ~kept & (probs > tol)
        if zeroed.any():
            problems.append(f"{int(zeroed.sum())} class probs zeroed by OpenCV (its NMS should be off)")
    return problems


# --------------------------------------------------------------------------- the layer comparison


@dataclass
class Comparison:
    compared: dict[int, str]   # Darknet layer index → the OpenCV layer compared with it
    extra: list[str]           # compared pieces that are not a Darknet layer output (permute_)
    skipped: list[str]         # pre-activation pieces with no counterpart in our outputs
    problems: list[str]


def compare_run(r: Run) -> Comparison:
    """Compare every OpenCV layer output with its counterpart among ours (see module docstring)."""
    final = final_pieces(list(r.cv), r.net)
    cmp = Comparison({}, [], [], [])
    for name, cv_out in r.cv.items():
        idx = darknet_index(name, r.net)
        spec = r.net.layers[idx]
        if name.startswith("permute_"):
            ours = r.ours[idx - 1].transpose(1, 2, 0)[None]  # the head's input in NHWC
            cmp.extra.append(name)
        elif final[idx] != name:
            if not (name.startswith(("conv_", "bn_")) and spec.kind in (Kind.CONV, Kind.CONNECTED)):
                cmp.problems.append(f"{name}: unexpected intermediate piece of layer {idx} "
                                    f"({spec.kind.value})")
            cmp.skipped.append(name)
            continue
        elif isinstance(spec, (YoloSpec, RegionSpec)):
            cmp.compared[idx] = name
            cmp.problems += [f"{name} (layer {idx}, {spec.kind.value}) {p}"
                             for p in head_problems(spec, cv_out, r.ours[idx], r.ours[idx - 1], r.net)]
            continue
        else:
            ours = r.ours[idx]
            cmp.compared[idx] = name
        if cv_out.size != ours.size:
            cmp.problems.append(f"{name} (layer {idx}): OpenCV shape {cv_out.shape}, ours {ours.shape}")
            continue
        a, b = cv_out.reshape(ours.shape).astype(np.float64), ours.astype(np.float64)
        err, scale = float(np.abs(a - b).max()), float(np.abs(b).max())
        if not err <= REL_TOL * scale:
            cmp.problems.append(f"{name} (layer {idx}, {spec.kind.value}): max|Δ| = {err:.3g} "
                                f"> 1e-4 × max|ours| = {REL_TOL * scale:.3g}")
    return cmp


def assert_every_layer_matches(r: Run) -> Comparison:
    """Every Darknet layer was compared with an OpenCV output, and every comparison passed."""
    cmp = compare_run(r)
    missing = sorted(set(range(len(r.net.layers))) - set(cmp.compared))
    assert not missing, f"{r.name}: layers with no OpenCV counterpart: " + ", ".join(
        f"{i} ({r.net.layers[i].kind.value})" for i in missing)
    assert not cmp.problems, f"{r.name}: " + "\n".join(cmp.problems)
    return cmp


# --------------------------------------------------------------------------- detections

#: Original image size the boxes are mapped back to (exercises the letterbox correction).
IMAGE_W, IMAGE_H = 640, 480
NMS = 0.45


@dataclass(frozen=True)
class Det:
    """A detection decoded on the reference side (same fields as ``golden.detect.Detection``)."""

    cls: int
    prob: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels


def pick_thresh(r: Run, want: int = 30) -> float:
    """A detection threshold that leaves about ``want`` of our class probs above it.

    Random heads score low, and how low depends on the network and the seed.  The threshold is
    the middle of the widest gap between neighbouring probs around rank ``want``, so no prob lies
    within float noise of it (OpenCV's value must fall on the same side).  An objectness near
    the threshold does not matter: that row's probs (objectness·class) are all below it.
    """
    values = np.concatenate([to_opencv_layout(s, r.ours[s.index], r.net)[:, 5:].ravel() for s in r.net.heads])
    ranked = np.unique(values)[::-1][want // 2:want * 2]  # descending
    i = int(np.argmax(ranked[:-1] - ranked[1:]))
    return float(ranked[i] + ranked[i + 1]) / 2


def undo_letterbox(boxes: np.ndarray, net: Network, im_w: int, im_h: int) -> np.ndarray:
    """Centre/size boxes relative to the network input → relative to the original image."""
    _, net_h, net_w = net.input_shape
    if not net.letter_box:
        return boxes
    if np.float32(net_w) / np.float32(im_w) < np.float32(net_h) / np.float32(im_h):
        new_w, new_h = net_w, im_h * net_w // im_w
    else:
        new_w, new_h = im_w * net_h // im_h, net_h
    out = boxes.copy()
    out[:, 0] = (boxes[:, 0] - (net_w - new_w) / 2.0 / net_w) / (new_w / net_w)
    out[:, 1] = (boxes[:, 1] - (net_h - new_h) / 2.0 / net_h) / (new_h / net_h)
    out[:, 2] = boxes[:, 2] * net_w / new_w
    out[:, 3] = boxes[:, 3] * net_h / new_h
    return out


def greedy_nms(boxes: np.ndarray, probs: np.ndarray, thresh: float, diou: bool) -> np.ndarray:
    """Darknet's per-class NMS: by decreasing prob, a live box zeroes that class in every later
    box overlapping it by > ``thresh``.  ``diou``: AlexeyAB greedynms, ``IoU − (d²/c²)^0.6``."""
    probs = probs.copy()
    iou = pairwise_iou(boxes)
    if diou:
        x1, x2 = boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 0] + boxes[:, 2] / 2
        y1, y2 = boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 1] + boxes[:, 3] / 2
        c2 = ((np.maximum(x2[:, None], x2[None]) - np.minimum(x1[:, None], x1[None])) ** 2
              + (np.maximum(y2[:, None], y2[None]) - np.minimum(y1[:, None], y1[None])) ** 2)
        d2 = (boxes[:, None, 0] - boxes[None, :, 0]) ** 2 + (boxes[:, None, 1] - boxes[None, :, 1]) ** 2
        iou = np.where(c2 > 0, iou - np.divide(d2, c2, out=np.zeros_like(d2), where=c2 > 0) ** 0.6, iou)
    for k in range(probs.shape[1]):
        order = np.argsort(-probs[:, k], kind="stable")
        for pos, i in enumerate(order):
            if probs[i, k] == 0:  # below threshold, or suppressed by an earlier box
                continue
            later = order[pos + 1:]
            probs[later[iou[i, later] > thresh], k] = 0
    return probs


def opencv_detections(r: Run, thresh: float, nms: float, im_w: int, im_h: int) -> list[Det]:
    """Darknet's detection decode (``get_yolo_detections`` + ``do_nms_sort``), from OpenCV's outputs.

    Boxes and objectness come from OpenCV's decoded heads.  The class probs come from its yolo
    output, or, for a region head, from its raw input (``permute_i``).  OpenCV has already run
    NMS on the decoded region output.
    """
    final = final_pieces(list(r.cv), r.net)
    boxes, probs = [], []
    for spec in r.net.heads:
        dec = r.cv[final[spec.index]].astype(np.float64)  # (rows, per)
        obj = dec[:, 4]
        if isinstance(spec, RegionSpec):
            logits = r.cv[f"permute_{spec.index}"].reshape(dec.shape)[:, 5:].astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            p = obj[:, None] * e / e.sum(axis=1, keepdims=True)
        else:
            p = dec[:, 5:]
        live = obj > thresh
        boxes.append(dec[live, :4])
        probs.append(np.where(p[live] > thresh, p[live], 0.0))
    b, p = undo_letterbox(np.concatenate(boxes), r.net, im_w, im_h), np.concatenate(probs)
    diou = any(isinstance(s, YoloSpec) and s.nms_kind == "greedynms" for s in r.net.heads)
    p = greedy_nms(b, p, nms, diou)
    dets = []
    for i, k in zip(*np.nonzero(p > thresh)):
        x, y, w, h = b[i]
        box = ((x - w / 2) * im_w, (y - h / 2) * im_h, (x + w / 2) * im_w, (y + h / 2) * im_h)
        dets.append(Det(int(k), float(p[i, k]), (float(box[0]), float(box[1]), float(box[2]), float(box[3]))))
    return dets


BoxError = Callable[[tuple[float, ...], tuple[float, ...]], float]


def match_detections(ours: list[Detection], reference: list[Det], prob_tol: float, box_err: BoxError,
                     box_tol: float) -> list[str]:
    """What disagrees between two detection lists.  Empty means the classes are the same multiset,
    and each reference detection pairs with one of ours of its class (closest box).  Each pair
    has ``|Δprob| ≤ prob_tol`` and ``box_err(ours, ref) ≤ box_tol``."""
    problems = []
    ours_count, ref_count = Counter(d.cls for d in ours), Counter(d.cls for d in reference)
    if ours_count != ref_count:
        problems.append(f"classes differ: ours {sorted(ours_count.items())}, "
                        f"reference {sorted(ref_count.items())}")
    unused = list(ours)
    for ref in sorted(reference, key=lambda d: -d.prob):
        same = [d for d in unused if d.cls == ref.cls]
        if not same:
            continue
        best = min(same, key=lambda d: box_err(d.box, ref.box))
        unused.remove(best)
        if abs(best.prob - ref.prob) > prob_tol or box_err(best.box, ref.box) > box_tol:
            problems.append(f"class {ref.cls}: reference prob {ref.prob:.6f} "
                            f"box {np.round(ref.box, 3).tolist()}, "
                            f"ours prob {best.prob:.6f} box {np.round(best.box, 3).tolist()}")
    return problems


def relative_box_error(ours: tuple[float, ...], ref: tuple[float, ...]) -> float:
    """Largest corner difference relative to the larger of the image and the reference box.

    exp(t_w) turns a small absolute error of t_w into the same relative error of the box size,
    and random heads can predict boxes much larger than the image.
    """
    scale = max(IMAGE_W, IMAGE_H, ref[2] - ref[0], ref[3] - ref[1])
    return max(abs(a - b) for a, b in zip(ours, ref)) / scale
