"""The trained models shipped in the package (``dla/data/models``) and their sample images.

``shapes-yolo`` (detector) and ``shapes-cls`` (classifier) were trained by ``tools/train.py``
on the project's synthetic shapes data (docs/training.md); ``shipped_model(name)`` gives the
paths a command needs, so ``dla eval shapes-yolo --data DIR`` works without any download.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dla.models import DATA
from golden.errors import UserInputError

MODEL_DIR = DATA / "models"
SAMPLE_DIR = DATA / "images" / "shapes"
SHIPPED = ("shapes-yolo", "shapes-cls")


@dataclass(frozen=True)
class ShippedModel:
    name: str
    cfg: Path
    weights: Path
    names: list[str]


def shipped_model(name: str) -> ShippedModel:
    """``(cfg, weights, class names)`` of a shipped trained model; an unknown name lists the valid ones."""
    if name not in SHIPPED:
        raise UserInputError(f"{name}: not a shipped trained model (shipped: {', '.join(SHIPPED)})")
    names = [s.strip() for s in (MODEL_DIR / "shapes.names").read_text().splitlines() if s.strip()]
    return ShippedModel(name, MODEL_DIR / f"{name}.cfg", MODEL_DIR / f"{name}.weights", names)


def sample_images() -> list[Path]:
    """The shipped sample images (each with its YOLO ``.txt`` label next to it)."""
    return sorted(SAMPLE_DIR.glob("*.png"))
