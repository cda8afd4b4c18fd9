"""Finding models by name: the cfg files, class names and images shipped in the package.

A user may give a path or a shipped name (``yolov3-tiny``, ``yolov3-tiny.cfg``);
``resolve_cfg`` turns either into a path, with a clear error listing what is shipped.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from golden.errors import FileMissingError, UserInputError

DATA = Path(str(resources.files("dla") / "data"))
CFG_DIR = DATA / "cfg"
IMAGE_DIR = DATA / "images"
DEFAULT_IMAGE = IMAGE_DIR / "dog.jpg"
DEFAULT_MODEL = "yolov3-tiny"


def shipped_cfgs() -> list[str]:
    return sorted(p.stem for p in CFG_DIR.glob("*.cfg"))


def resolve_cfg(name: str | Path) -> Path:
    """A cfg path, or the name of a shipped cfg (with or without ``.cfg``)."""
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
