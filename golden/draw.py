"""Drawing detections onto the original image (Pillow), like Darknet's ``draw_detections``."""
from __future__ import annotations

import colorsys
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from golden.detect import Detection


def class_colour(cls: int, classes: int = 80) -> tuple[int, int, int]:
    h = (cls * 0.61803398875) % 1.0  # golden-ratio hues: neighbours get distinct colours
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image_path: str | Path, dets: list[Detection], min_side: int = 0) -> Image.Image:
    """The original image with one box and a ``name prob`` label per detection (clipped to the image).

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
    for d in dets:
        x1, y1, x2, y2 = (max(0.0, min(v, lim - 1)) for v, lim in zip(d.box, (w, h, w, h)))
        colour = class_colour(d.cls)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        label = f"{d.name} {d.prob:.2f}"
        tb = draw.textbbox((x1, y1), label, font=font)
        ty = y1 - (tb[3] - tb[1]) - 4 if y1 > (tb[3] - tb[1]) + 4 else y1
        draw.rectangle([x1, ty, x1 + (tb[2] - tb[0]) + 4, ty + (tb[3] - tb[1]) + 4], fill=colour)
        draw.text((x1 + 2, ty + 1), label, fill=(0, 0, 0), font=font)
    return canvas
