"""What ships inside the package (``dla/data``): Darknet cfgs, class-name lists, sample images,
and the trained models, found by name.

Two kinds of shipped name:

* a **shipped cfg** (``yolov3-tiny``, ``yolov3-tiny.cfg``; ``dla/data/cfg``) — a network
  without weights;
* a **shipped trained model** (``shapes-yolo``, ``shapes-cls``; ``dla/data/models``) — a cfg
  with its ``.weights`` and class names, trained by ``tools/train.py`` on the project's
  synthetic shapes (docs/training.md), so ``dla eval shapes-yolo --data DIR`` works without
  any download.

``resolve_cfg`` turns a path or either kind of name into a cfg path, with a clear error
listing the shipped cfgs.  Which *weights* a name stands for is ``dla.resolve``'s rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from golden.errors import FileMissingError, UserInputError

DATA = Path(str(resources.files("dla") / "data"))
CFG_DIR = DATA / "cfg"
IMAGE_DIR = DATA / "images"
DEFAULT_IMAGE = IMAGE_DIR / "dog.jpg"
DEFAULT_MODEL = "yolov3-tiny"
MODEL_DIR = DATA / "models"
SAMPLE_DIR = IMAGE_DIR / "shapes"
SHIPPED = ("shapes-yolo", "shapes-cls")  # the trained models


@dataclass(frozen=True)
class ShippedModel:
    """A shipped trained model: its cfg, weights and class names."""

    name: str
    cfg: Path
    weights: Path
    names: list[str]


def shipped_cfgs() -> list[str]:
    return sorted(p.stem for p in CFG_DIR.glob("*.cfg"))


def is_trained_name(name: str | Path) -> bool:
    """Whether ``name`` is exactly the name of a shipped trained model (``shapes-yolo``)."""
    return isinstance(name, str) and name in SHIPPED


def resolve_cfg(name: str | Path) -> Path:
    """A cfg path, the name of a shipped cfg (with or without ``.cfg``), or the name of a
    shipped trained model (its cfg; the name wins over a same-named file, as ``dla eval`` and
    ``dla train`` always read it)."""
    if is_trained_name(name):
        return MODEL_DIR / f"{name}.cfg"
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name[:-4] if path.name.endswith(".cfg") else path.name
    shipped = CFG_DIR / f"{stem}.cfg"
    if str(path) == path.name and shipped.is_file():
        return shipped
    if path.suffix == ".cfg" or "/" in str(name):
        raise FileMissingError(path, "cfg file")
    raise UserInputError(f"{name}: no such cfg file, and not a shipped model "
                         f"(shipped: {', '.join(shipped_cfgs())})")


def shipped_model(name: str) -> ShippedModel:
    """``(cfg, weights, class names)`` of a shipped trained model; an unknown name lists the valid ones."""
    if name not in SHIPPED:
        raise UserInputError(f"{name}: not a shipped trained model (shipped: {', '.join(SHIPPED)})")
    names = [s.strip() for s in (MODEL_DIR / "shapes.names").read_text().splitlines() if s.strip()]
    return ShippedModel(name, MODEL_DIR / f"{name}.cfg", MODEL_DIR / f"{name}.weights", names)


def sample_images() -> list[Path]:
    """The shipped sample images of the trained models (each with its YOLO ``.txt`` label next to it)."""
    return sorted(SAMPLE_DIR.glob("*.png"))


def default_names(classes: int) -> list[str] | None:
    """COCO names for 80 classes, VOC for 20; ``None`` otherwise (indices are printed)."""
    fname = {80: "coco.names", 20: "voc.names"}.get(classes)
    return read_names(CFG_DIR / fname) if fname else None


def read_names(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileMissingError(path, "names file")
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip()]
