"""Drawing detections onto the original image (Pillow), like Darknet's ``draw_detections``,
with labels placed so that they never cover each other (``place_labels``)."""
from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from golden.detect import Detection

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 (x1 > x0, y1 > y0)


def class_colour(cls: int, classes: int = 80) -> tuple[int, int, int]:
    h = (cls * 0.61803398875) % 1.0  # golden-ratio hues: neighbours get distinct colours
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def rects_overlap(a: Rect, b: Rect) -> bool:
    """True when the two rectangles share interior area (touching edges do not overlap)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(candidates: Sequence[Sequence[tuple[float, float]]], sizes: Sequence[tuple[float, float]],
                 bounds: Rect, avoid: Sequence[Rect] = ()) -> list[Rect]:
    """Greedy label placement: label ``k`` (``sizes[k]`` = width, height) takes the first of its
    ``candidates[k]`` (top-left corners, in order of preference) that, clamped into ``bounds``,
    overlaps no label placed before it nor a rectangle of ``avoid``.  When every candidate is
    taken, positions on a grid of the label's own size spreading out from the first candidate
    are tried, nearest first; only when the whole of ``bounds`` is full does a label overlap.
    Returns one rectangle per label, in input order."""
    bx0, by0, bx1, by1 = bounds
    placed: list[Rect] = []
    taken = list(avoid)

    def clamp(x: float, y: float, w: float, h: float) -> Rect:
        x = min(max(x, bx0), max(bx0, bx1 - w))
        y = min(max(y, by0), max(by0, by1 - h))
        return (x, y, x + w, y + h)

    for cands, (w, h) in zip(candidates, sizes):
        free = next((r for r in (clamp(x, y, w, h) for x, y in cands) if not any(rects_overlap(r, t) for t in taken)),
                    None)
        if free is None:
            x0, y0 = cands[0]
            nx, ny = int((bx1 - bx0) // max(w, 1)) + 1, int((by1 - by0) // max(h, 1)) + 1
            grid = sorted(((i, j) for i in range(-nx, nx + 1) for j in range(-ny, ny + 1)),
                          key=lambda ij: (ij[0] * w) ** 2 + (ij[1] * h) ** 2)
            free = next((r for r in (clamp(x0 + i * w, y0 + j * h, w, h) for i, j in grid)
                         if not any(rects_overlap(r, t) for t in taken)), clamp(x0, y0, w, h))
        placed.append(free)
        taken.append(free)
    return placed


def detection_label_rects(dets: Sequence[Detection], size: tuple[int, int],
                          text_size: Sequence[tuple[float, float]]) -> list[Rect]:
    """Where each detection's label goes on an image of ``size`` (w, h): above the box's top-left
    corner, else inside it, else below the box, else at its right end — the first that covers
    no other label; highest probability first, so the most confident labels get the natural spot."""
    w, h = size
    order = sorted(range(len(dets)), key=lambda i: -dets[i].prob)
    cands, sizes = [], []
    for i in order:
        x1, y1, x2, y2 = (max(0.0, min(v, lim - 1)) for v, lim in zip(dets[i].box, (w, h, w, h)))
        lw, lh = text_size[i]
        cands.append([(x1, y1 - lh), (x1, y1), (x1, y2), (x1, y2 - lh), (x2 - lw, y1 - lh), (x2 - lw, y1)])
        sizes.append((lw, lh))
    rects = place_labels(cands, sizes, (0, 0, w, h))
    out: list[Rect] = [(0, 0, 0, 0)] * len(dets)
    for k, i in enumerate(order):
        out[i] = rects[k]
    return out


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 = black, 1 = white)."""
    def lin(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio (1..21); 4.5 is the minimum for normal text (level AA)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def label_text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``fill``.  One of the two always reaches
    4.58:1 or more (the worst fill, luminance 0.18, is equally far from both)."""
    black, white = (0, 0, 0), (255, 255, 255)
    return black if contrast_ratio(fill, black) >= contrast_ratio(fill, white) else white


def draw_detections(image_path: str | Path, dets: list[Detection], min_side: int = 0) -> Image.Image:
    """The original image with one box and a ``name prob`` label per detection (clipped to the
    image; labels placed by ``detection_label_rects`` so that none covers another).

    An image whose shorter side is below ``min_side`` is first enlarged by an integer factor
    (nearest neighbour, boxes scaled with it) so that the labels stay readable."""
    with Image.open(image_path) as im:
        canvas = im.convert("RGB")
    k = max(1, -(-min_side // min(canvas.size))) if min_side else 1
    if k > 1:
        canvas = canvas.resize((canvas.width * k, canvas.height * k), Image.Resampling.NEAREST)
        dets = [replace(d, box=tuple(v * k for v in d.box)) for d in dets]
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    w, h = canvas.size
    width = max(2, round(min(w, h) / 200))
    labels = [f"{d.name} {d.prob:.2f}" for d in dets]
    boxes = [draw.textbbox((0, 0), t, font=font) for t in labels]
    sizes = [(b[2] - b[0] + 4, b[3] - b[1] + 4) for b in boxes]
    rects = detection_label_rects(dets, (w, h), sizes)
    for d in dets:
        x1, y1, x2, y2 = (max(0.0, min(v, lim - 1)) for v, lim in zip(d.box, (w, h, w, h)))
        draw.rectangle([x1, y1, x2, y2], outline=class_colour(d.cls), width=width)
    for d, label, r, b in zip(dets, labels, rects, boxes):
        colour = class_colour(d.cls)
        draw.rectangle([r[0], r[1], r[2] - 1, r[3] - 1], fill=colour)
        draw.text((r[0] + 2 - b[0], r[1] + 2 - b[1]), label, fill=label_text_colour(colour), font=font)
    return canvas
