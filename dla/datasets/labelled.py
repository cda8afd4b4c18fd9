"""Reading a labelled image folder: Darknet/YOLO text labels or a COCO instances JSON.

Accepted layouts (checked in this order):

1. ``DIR/val/`` exists → the held-out split ``DIR/val`` is used (``dla data shapes`` output),
   with class names from ``DIR/names`` if present;
2. YOLO: images (``.png .jpg .jpeg .bmp``) with a same-stem ``.txt`` each, lines
   ``cls cx cy w h`` normalised to [0, 1] (Darknet's format; an image without a ``.txt``
   has no objects, as in Darknet, but a folder with no ``.txt`` at all is refused);
3. COCO: ``instances*.json`` in ``DIR`` or ``DIR/annotations``; image ``file_name``s are
   looked up in the JSON's folder, then ``DIR``, then ``DIR/images``.  COCO category ids are
   mapped to class indices in increasing id order (as Darknet's ``coco_ids`` do for the 80
   COCO classes).

Every mistake is a ``LabelError`` naming the file (and line) or a ``FileMissingError``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.errors import FileMissingError, UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class LabelError(UserInputError):
    """Raised when a label file or annotation cannot be used: names the file and line."""

    def __init__(self, path: str | Path, line: int | None, msg: str) -> None:
        self.path, self.line = Path(path), line
        super().__init__(f"{path}{f':{line}' if line else ''}: {msg}")


@dataclass(frozen=True)
class Sample:
    """One labelled image; ``boxes`` (n, 4) ``[cx, cy, w, h]`` normalised, ``classes`` (n,) int."""

    image: Path
    classes: np.ndarray
    boxes: np.ndarray

    def xyxy(self, width: int, height: int) -> np.ndarray:
        """The boxes as ``[x1, y1, x2, y2]`` pixels of a ``width × height`` image."""
        b = self.boxes
        return np.stack([(b[:, 0] - b[:, 2] / 2) * width, (b[:, 1] - b[:, 3] / 2) * height,
                         (b[:, 0] + b[:, 2] / 2) * width, (b[:, 1] + b[:, 3] / 2) * height], axis=1)

    def main_class(self) -> int:
        """The class of the largest box (the label of a classification image); -1 if none."""
        if len(self.classes) == 0:
            return -1
        return int(self.classes[int(np.argmax(self.boxes[:, 2] * self.boxes[:, 3]))])


@dataclass(frozen=True)
class LabelledSet:
    root: Path
    samples: list[Sample]
    names: list[str] | None
    fmt: str  # "yolo" | "coco"


def read_yolo_label(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One Darknet label file → ``(classes, boxes)``; each line ``cls cx cy w h``."""
    classes, boxes = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise LabelError(path, n, f"expected 5 values 'cls cx cy w h', got {len(parts)}: {line.strip()!r}")
        try:
            cls = int(parts[0])
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise LabelError(path, n, f"not numbers (integer class, then 4 floats): {line.strip()!r}") from None
        if cls < 0:
            raise LabelError(path, n, f"negative class index {cls}")
        if not all(np.isfinite(vals)) or any(v < 0 or v > 1 for v in vals) or vals[2] <= 0 or vals[3] <= 0:
            raise LabelError(path, n, f"box {vals} must be normalised to [0, 1] with positive w, h")
        classes.append(cls)
        boxes.append(vals)
    return np.asarray(classes, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def read_names_file(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip()]


def _yolo(root: Path, images: list[Path]) -> list[Sample]:
    samples = []
    labels = 0
    for im in images:
        txt = im.with_suffix(".txt")
        if txt.is_file():
            labels += 1
            cls, boxes = read_yolo_label(txt)
        else:
            cls, boxes = np.zeros(0, np.int64), np.zeros((0, 4))
        samples.append(Sample(im, cls, boxes))
    if labels == 0:
        raise LabelError(root, None, f"{len(images)} images but no YOLO label files (.txt next to each image) "
                         "and no COCO instances*.json")
    return samples


def _coco(root: Path, js: Path) -> tuple[list[Sample], list[str]]:
    try:
        data = json.loads(js.read_text(encoding="utf-8"))
        cats = sorted(data["categories"], key=lambda c: c["id"])
        images = data["images"]
        anns = data.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabelError(js, None, f"not a COCO instances file ({type(exc).__name__}: {exc})") from None
    index = {c["id"]: k for k, c in enumerate(cats)}
    by_image: dict[int, list[dict]] = {}
    for a in anns:
        by_image.setdefault(a.get("image_id"), []).append(a)
    samples = []
    for im in images:
        try:
            fname, w, h, iid = im["file_name"], float(im["width"]), float(im["height"]), im["id"]
        except (KeyError, TypeError, ValueError):
            raise LabelError(js, None, f"image entry {im!r} lacks file_name/width/height/id") from None
        path = next((d / fname for d in (js.parent, root, root / "images") if (d / fname).is_file()), None)
        if path is None:
            raise LabelError(js, None, f"image '{fname}' not found next to the JSON, in {root} or {root / 'images'}")
        cls, boxes = [], []
        for a in by_image.get(iid, []):
            if a.get("iscrowd", 0):
                continue
            if a.get("category_id") not in index:
                raise LabelError(js, None, f"annotation {a.get('id')} has category_id {a.get('category_id')}, "
                                 "not among the categories")
            x, y, bw, bh = (float(v) for v in a["bbox"])
            if bw <= 0 or bh <= 0:
                continue
            cls.append(index[a["category_id"]])
            boxes.append([(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h])
        samples.append(Sample(path, np.asarray(cls, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4)))
    return samples, [str(c.get("name", c["id"])) for c in cats]


def load_labelled(folder: str | Path, limit: int | None = None) -> LabelledSet:
    """The labelled images of ``folder`` (see the module docstring), sorted by file name."""
    root = Path(folder)
    if not root.is_dir():
        raise FileMissingError(root, "data folder")
    names_file = root / "names"
    names = read_names_file(names_file) if names_file.is_file() else None
    if (root / "val").is_dir():
        inner = load_labelled(root / "val", limit)
        return LabelledSet(inner.root, inner.samples, inner.names or names, inner.fmt)
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    jsons = sorted(root.glob("instances*.json")) + sorted((root / "annotations").glob("instances*.json"))
    if images and any(p.with_suffix(".txt").is_file() for p in images):
        samples, fmt = _yolo(root, images), "yolo"
    elif jsons:
        samples, coco_names = _coco(root, jsons[0])
        samples.sort(key=lambda s: s.image.name)
        names, fmt = names or coco_names, "coco"
    elif images:
        samples, fmt = _yolo(root, images), "yolo"  # raises: images but no labels
    else:
        raise LabelError(root, None, "no images (.png/.jpg/.jpeg/.bmp) and no COCO instances*.json")
    if limit is not None:
        samples = samples[:limit]
    return LabelledSet(root, samples, names, fmt)


def check_classes(data: LabelledSet, classes: int, model: str) -> None:
    """Refuse a data set whose classes do not fit the model's ``classes`` outputs."""
    if data.names is not None and len(data.names) != classes:
        raise UserInputError(f"{model} predicts {classes} classes but the data set at {data.root} names "
                             f"{len(data.names)} ({', '.join(data.names[:6])}{', ...' if len(data.names) > 6 else ''})")
    for s in data.samples:
        if len(s.classes) and int(s.classes.max()) >= classes:
            where = s.image.with_suffix(".txt") if data.fmt == "yolo" else s.image
            raise LabelError(where, None, f"class {int(s.classes.max())} is out of range: {model} predicts "
                             f"{classes} classes (0..{classes - 1})")
