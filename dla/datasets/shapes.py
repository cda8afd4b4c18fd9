"""The synthetic "shapes" detection data set: coloured shapes on varied backgrounds.

Every image is drawn from its own random generator ``default_rng([seed, index])``, so image
``i`` of seed ``s`` is the same whatever ``n`` is and however the work is split.  Images are
square PNGs; each carries 1–``max_shapes`` filled shapes (``kind="detect"``) or exactly one
(``kind="classify"``), axis-aligned, from max(10 px, 10 %) to 60 % of the image side (at least
25 % for ``classify``), overlapping another shape's box by at most 10 % of the smaller box (so
every shape stays visible and labelled).

Labels are written two ways:

* Darknet/YOLO text: ``NNNNN.txt`` next to ``NNNNN.png``, one line per shape,
  ``cls cx cy w h`` normalised to ``[0, 1]`` (the box is the drawn shape's pixel extent);
* COCO: ``instances.json`` per split (``bbox = [x, y, w, h]`` in pixels, ``category_id =
  cls``, ``image_id = index``).

Layout of the output directory::

    names               class names, one per line (line k = class k)
    train/00000.png, train/00000.txt, ..., train/instances.json
    val/...             the held-out split (the last ``round(n * val_fraction)`` indices)
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dla.fileio import atomic_dir

CLASSES = ("circle", "square", "triangle", "cross", "star")
KINDS = ("detect", "classify")


@dataclass(frozen=True)
class Box:
    """One labelled shape: class index and pixel box ``[x0, y0, x1, y1)`` (x1, y1 exclusive)."""

    cls: int
    x0: int
    y0: int
    x1: int
    y1: int

    def yolo_line(self, size: int) -> str:
        cx, cy = (self.x0 + self.x1) / 2 / size, (self.y0 + self.y1) / 2 / size
        w, h = (self.x1 - self.x0) / size, (self.y1 - self.y0) / size
        return f"{self.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: a flat colour, a linear gradient, or smooth noise."""
    style = rng.integers(3)
    base = rng.integers(0, 256, 3).astype(np.float64)
    if style == 0:
        img = np.broadcast_to(base, (size, size, 3)).copy()
    elif style == 1:
        other = rng.integers(0, 256, 3).astype(np.float64)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
        img = base * (1 - t[..., None]) + other * t[..., None]
    else:
        coarse = rng.normal(0, 40, (size // 16 + 2, size // 16 + 2, 3))
        up = np.kron(coarse, np.ones((16, 16, 1)))[:size, :size]
        img = base + up + rng.normal(0, 8, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _contrasting_colour(rng: np.random.Generator, bg: np.ndarray) -> tuple[int, int, int]:
    """A random colour at least 120 apart (L1 over RGB) from the mean background under the shape."""
    mean = bg.reshape(-1, 3).mean(axis=0)
    for _ in range(50):
        c = rng.integers(0, 256, 3)
        if np.abs(c - mean).sum() >= 120:
            break
    return int(c[0]), int(c[1]), int(c[2])


def _star(x0: float, y0: float, s: float) -> list[tuple[float, float]]:
    cx, cy, r_out, r_in = x0 + s / 2, y0 + s / 2, s / 2, s / 5
    pts = []
    for k in range(10):
        r = r_out if k % 2 == 0 else r_in
        a = -np.pi / 2 + k * np.pi / 5
        pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
    return pts


def _draw(draw: ImageDraw.ImageDraw, cls: int, x0: int, y0: int, s: int, colour: tuple[int, int, int]) -> None:
    """Draw class ``cls`` filling (as far as its shape goes) the ``s × s`` square at ``(x0, y0)``."""
    x1, y1 = x0 + s - 1, y0 + s - 1
    name = CLASSES[cls]
    if name == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    elif name == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    elif name == "triangle":
        draw.polygon([(x0 + (s - 1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)
    elif name == "cross":
        t = max(2, s // 3)
        a = x0 + (s - t) // 2
        b = y0 + (s - t) // 2
        draw.rectangle([a, y0, a + t - 1, y1], fill=colour)
        draw.rectangle([x0, b, x1, b + t - 1], fill=colour)
    else:
        draw.polygon(_star(x0, y0, s - 1), fill=colour)


def _overlap_ok(b: Box, placed: list[Box], max_frac: float = 0.1) -> bool:
    for p in placed:
        iw = min(b.x1, p.x1) - max(b.x0, p.x0)
        ih = min(b.y1, p.y1) - max(b.y0, p.y0)
        if iw > 0 and ih > 0:
            smaller = min((b.x1 - b.x0) * (b.y1 - b.y0), (p.x1 - p.x0) * (p.y1 - p.y0))
            if iw * ih > max_frac * smaller:
                return False
    return True


def make_image(seed: int, index: int, size: int = 64, kind: str = "detect",
               max_shapes: int = 4) -> tuple[Image.Image, list[Box]]:
    """Image ``index`` of data set ``seed``: a PIL RGB image and its labelled boxes.

    The box of a shape is the exact pixel extent of what was drawn (measured on a mask),
    so labels never include background margin.
    """
    rng = np.random.default_rng([seed, index])
    bg = _background(rng, size)
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    n = 1 if kind == "classify" else int(rng.integers(1, max_shapes + 1))
    lo, hi = max(10, round(0.10 * size)), round(0.60 * size)
    if kind == "classify":
        lo = max(lo, round(0.25 * size))
    placed: list[Box] = []
    for _ in range(n):
        for _attempt in range(30):
            cls = int(rng.integers(len(CLASSES)))
            s = int(rng.integers(lo, hi + 1))
            x0, y0 = (int(v) for v in rng.integers(0, size - s + 1, 2))
            mask = Image.new("L", (size, size), 0)
            _draw(ImageDraw.Draw(mask), cls, x0, y0, s, 255)
            ys, xs = np.nonzero(np.asarray(mask))
            box = Box(cls, int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            if _overlap_ok(box, placed):
                colour = _contrasting_colour(rng, bg[box.y0:box.y1, box.x0:box.x1])
                _draw(draw, cls, x0, y0, s, colour)
                placed.append(box)
                break
    return img, placed


def _coco(split_items: list[tuple[int, str, list[Box]]], size: int) -> dict:
    images, anns = [], []
    for idx, fname, boxes in split_items:
        images.append({"id": idx, "file_name": fname, "width": size, "height": size})
        for b in boxes:
            w, h = b.x1 - b.x0, b.y1 - b.y0
            anns.append({"id": len(anns) + 1, "image_id": idx, "category_id": b.cls,
                         "bbox": [b.x0, b.y0, w, h], "area": w * h, "iscrowd": 0})
    cats = [{"id": k, "name": name} for k, name in enumerate(CLASSES)]
    return {"images": images, "annotations": anns, "categories": cats}


def write_shapes(out: str | Path, n: int, seed: int = 0, size: int = 64, kind: str = "detect",
                 val_fraction: float = 0.1, max_shapes: int = 4,
                 on_image: Callable[[], None] | None = None) -> dict[str, int]:
    """Generate ``n`` images into ``out`` (atomically: all or nothing); ``{split: count}``.

    Indices ``0 .. n_train-1`` go to ``train/``, the last ``round(n·val_fraction)`` to
    ``val/`` (file names keep the global index, so ``--n`` only appends new images).
    """
    if kind not in KINDS:
        raise ValueError(kind)
    n_val = int(round(n * val_fraction))
    counts = {"train": n - n_val, "val": n_val}
    with atomic_dir(out, replace_if="names") as tmp:
        (tmp / "names").write_text("\n".join(CLASSES) + "\n")
        items: dict[str, list[tuple[int, str, list[Box]]]] = {"train": [], "val": []}
        for i in range(n):
            split = "train" if i < counts["train"] else "val"
            d = tmp / split
            d.mkdir(exist_ok=True)
            img, boxes = make_image(seed, i, size, kind, max_shapes)
            fname = f"{i:05d}.png"
            img.save(d / fname, optimize=False)
            (d / f"{i:05d}.txt").write_text("".join(b.yolo_line(size) + "\n" for b in boxes))
            items[split].append((i, fname, boxes))
            if on_image:
                on_image()
        for split, its in items.items():
            if its:
                (tmp / split / "instances.json").write_text(json.dumps(_coco(its, size)))
    return counts
