"""Training a Darknet cfg with PyTorch and exporting Darknet ``.weights`` (``dla train``, tools/train.py).

The model is built from the cfg (``dla.eval.torch_net``: the golden engine's layer
semantics), trained on a labelled folder (``dla data shapes`` output: ``train/`` and ``val/``),
and written with ``golden.weights.write_weights``.  Detectors (cfgs with ``[yolo]`` heads)
use ``dla.eval.yolo_loss``; classifiers (ending in ``[softmax]``) cross-entropy against the
class of each image's largest box.

Recipe (all seeded by ``seed``): Adam, learning rate warmed up linearly over the first
epoch then cosine-decayed to 2 % of ``lr``; random horizontal flips (every shape class is
left-right symmetric, so labels stay true); mini-batches drawn by a seeded permutation.
CPU runs with a fixed thread count are bit-reproducible (``torch.use_deterministic_algorithms``);
another thread count changes float summation order, hence the last bits, hence (slightly)
the trained weights.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dla.datasets.labelled import LabelledSet, check_classes, load_labelled
from dla.eval.ap import ImageBoxes, mean_average_precision
from dla.eval.torch_net import DarknetTorch
from dla.eval.yolo_loss import yolo_head_loss
from golden.detect import detect
from golden.errors import UserInputError
from golden.image import letterbox_geometry, load_image, prepare_input
from golden.layers import Kind, YoloSpec
from golden.network import Network, parse_network
from golden.weights import write_weights


@dataclass(frozen=True)
class Recipe:
    epochs: int = 12
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    threads: int = 1
    limit: int | None = None  # use only the first N training images (smoke tests)


@dataclass
class Arrays:
    """A split loaded into memory: inputs ``(N, C, H, W)`` (uint8 when no resize was needed, else
    float32 exactly as ``prepare_input`` makes it), targets ``(N, T, 5)`` padded with cls −1,
    and the class of each image's largest box."""

    x: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    sizes: list[tuple[int, int]]
    data: LabelledSet


def _to_input_frame(boxes: np.ndarray, im_w: int, im_h: int, net: Network) -> np.ndarray:
    """Boxes normalised to the image → normalised to the network input (the letterbox's
    offset and scale, ``correct_yolo_boxes`` inverted); unchanged for a stretched input."""
    _, net_h, net_w = net.input_shape
    if not net.letter_box or len(boxes) == 0:
        return boxes
    new_w, new_h = letterbox_geometry(im_w, im_h, net_w, net_h)
    out = boxes.copy()
    out[:, 0] = (boxes[:, 0] * new_w + (net_w - new_w) / 2) / net_w
    out[:, 1] = (boxes[:, 1] * new_h + (net_h - new_h) / 2) / net_h
    out[:, 2] = boxes[:, 2] * new_w / net_w
    out[:, 3] = boxes[:, 3] * new_h / net_h
    return out


def load_arrays(net: Network, folder: Path, limit: int | None, on_image: Callable[[], None] | None = None) -> Arrays:
    """Every labelled image of ``folder`` prepared as for inference, with its targets."""
    data = load_labelled(folder, limit)
    classes = net.heads[0].classes if net.is_detector else net.layers[net.output_index].out_shape[0]
    check_classes(data, classes, net.name)
    if not data.samples:
        raise UserInputError(f"{folder}: no labelled images")
    xs, sizes = [], []
    for s in data.samples:
        im = load_image(s.image)
        sizes.append((im.shape[2], im.shape[1]))
        x = prepare_input(im, net.input_shape, net.letter_box)
        xs.append(x)
        if on_image:
            on_image()
    x = np.stack(xs)
    u8 = np.round(x * 255).astype(np.uint8)
    exact = np.array_equal((u8.astype(np.float32) / np.float32(255)).astype(np.float32), x)
    tmax = max(1, max(len(s.classes) for s in data.samples))
    t = np.full((len(data.samples), tmax, 5), -1.0, dtype=np.float32)
    for k, s in enumerate(data.samples):
        t[k, :len(s.classes), 0] = s.classes
        t[k, :len(s.classes), 1:] = _to_input_frame(s.boxes, *sizes[k], net)
    labels = np.array([s.main_class() for s in data.samples])
    return Arrays(torch.from_numpy(u8 if exact else x), torch.from_numpy(t), torch.from_numpy(labels), sizes, data)


def _batch_input(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x


def _flip(x: torch.Tensor, t: torch.Tensor, flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror the images where ``flip`` (B,) is set: ``cx → 1 − cx`` for their valid boxes."""
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    t = t.clone()
    sel = flip.view(-1, 1) & (t[..., 0] >= 0)
    t[..., 1] = torch.where(sel, 1 - t[..., 1], t[..., 1])
    return x, t


def loss_of(model: DarknetTorch, outputs: dict[int, torch.Tensor], targets: torch.Tensor,
            labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    net = model.net
    if net.is_detector:
        total, parts = 0, {}
        _, h, w = net.input_shape
        for spec in net.heads:
            assert isinstance(spec, YoloSpec)
            l, p = yolo_head_loss(outputs[spec.index], spec, targets, w, h)
            total = total + l
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v
        return total, parts
    logits = outputs[net.output_index].reshape(len(labels), -1)
    loss = F.cross_entropy(logits, labels, ignore_index=-1)  # -1: an image without any box
    return loss, {"ce": float(loss.detach())}


def evaluate_torch(model: DarknetTorch, arrays: Arrays, batch: int = 64) -> dict[str, float]:
    """Accuracy of the model in eval mode, decoding with the golden detector (thresh 0.005, NMS 0.45)."""
    model.eval()
    net = model.net
    dets, gts, correct = [], [], 0
    with torch.no_grad():
        for i in range(0, len(arrays.x), batch):
            out = model(_batch_input(arrays.x[i:i + batch]))
            for k in range(out[model.head_indices[0]].shape[0]):
                n = i + k
                w, h = arrays.sizes[n]
                sample = arrays.data.samples[n]
                if net.is_detector:
                    o = {idx: t[k].numpy() for idx, t in out.items()}
                    d = detect(net, o, w, h, None, thresh=0.005, nms=0.45)
                    dets.append(ImageBoxes.make([x.box for x in d], [x.cls for x in d], [x.prob for x in d]))
                    gts.append(ImageBoxes.make(sample.xyxy(w, h), sample.classes))
                else:
                    correct += int(out[net.output_index][k].reshape(-1).argmax()) == sample.main_class()
    model.train()
    if net.is_detector:
        m = mean_average_precision(dets, gts, net.heads[0].classes)
        return {"map50": m.map50, "map50_95": m.map50_95}
    return {"top1": correct / len(arrays.x)}


def _objectness_prior(model: DarknetTorch, prior: float = 0.01) -> None:
    """Start each head's objectness bias at ``logit(prior)`` so the first steps are not spent
    pushing hundreds of empty cells down from σ(0) = 0.5 (RetinaNet's prior initialisation)."""
    for spec in model.net.heads:
        key = str(spec.index - 1)
        if key not in model.blocks or model.blocks[key].conv.bias is None:
            continue
        block = model.blocks[key]
        with torch.no_grad():
            per = 5 + spec.classes
            for a in range(len(spec.mask)):
                block.conv.bias[a * per + 4] = math.log(prior / (1 - prior))


def train(cfg: str | Path, data: str | Path, out: str | Path, recipe: Recipe = Recipe(),
          log: Callable[[str], None] = print, progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Train ``cfg`` on ``data/train``, report on ``data/val``, write ``out`` (.weights). Returns the val figures."""
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    net = parse_network(cfg)
    for spec in net.layers:
        if spec.kind is Kind.REGION:
            raise UserInputError(f"{cfg}: layer {spec.index}: [region] heads cannot be trained here (use [yolo])")
    try:
        model = DarknetTorch(net)
    except ValueError as exc:
        raise UserInputError(f"{cfg}: {exc}") from None
    _objectness_prior(model)
    data = Path(data)
    for split in ("train", "val"):
        if not (data / split).is_dir():
            raise UserInputError(f"{data}: no '{split}/' folder (make one with 'dla data shapes -o {data}')")
    t0 = time.perf_counter()
    tr = load_arrays(net, data / "train", recipe.limit)
    va = load_arrays(net, data / "val", None if recipe.limit is None else max(8, recipe.limit // 4))
    log(f"data: {len(tr.x)} train, {len(va.x)} val images ({time.perf_counter() - t0:.1f} s)")
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    gen = torch.Generator().manual_seed(recipe.seed)
    steps_per_epoch = math.ceil(len(tr.x) / recipe.batch)
    total = steps_per_epoch * recipe.epochs

    def lr_at(step: int) -> float:
        if step < steps_per_epoch:
            return recipe.lr * (step + 1) / steps_per_epoch
        frac = (step - steps_per_epoch) / max(1, total - steps_per_epoch)
        return recipe.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))

    model.train()
    step = 0
    for epoch in range(recipe.epochs):
        te = time.perf_counter()
        perm = torch.randperm(len(tr.x), generator=gen)
        sums: dict[str, float] = {}
        for b in range(steps_per_epoch):
            idx = perm[b * recipe.batch:(b + 1) * recipe.batch]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x, t = _flip(_batch_input(tr.x[idx]), tr.targets[idx], flip)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss, parts = loss_of(model, model(x), t, tr.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if progress:
                progress(step, total)
        line = " ".join(f"{k} {v / steps_per_epoch:.3f}" for k, v in sums.items())
        log(f"epoch {epoch + 1}/{recipe.epochs}: loss {line}  lr {lr_at(step - 1):.5f}  "
            f"({time.perf_counter() - te:.0f} s)")
    figures = evaluate_torch(model, va)
    log("val (PyTorch, eval mode): " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
    net.params = model.to_params()
    net.weights_header = (0, 2, 0, step * recipe.batch)
    write_weights(net, out)
    log(f"wrote {out} after {time.perf_counter() - t0:.0f} s")
    return figures
