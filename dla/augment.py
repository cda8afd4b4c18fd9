"""One image into five: original, rotated, blurred, flipped (upside down), flopped (mirrored).

Calibration sets are often a handful of photos; these variants widen the activation ranges
seen during calibration at no cost.  ``flip`` and ``flop`` follow ImageMagick's names
(vertical and horizontal mirror).  The same function serves ``dla augment`` and the web
workbench's file manager.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageFilter, UnidentifiedImageError

from dla.fileio import write_bytes_atomic
from golden.errors import FileMissingError, ImageError, UserInputError

VARIANTS = ("original", "rotate", "blur", "flip", "flop")
ROTATE_DEGREES = 15.0
BLUR_RADIUS = 2.0


def open_rgb(path: str | Path) -> Image.Image:
    """The image as RGB, or a clear ``ImageError`` (a missing file is ``FileMissingError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileMissingError(path, "image")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(path, f"not a readable image ({exc})") from None


def augment(image: Image.Image, degrees: float = ROTATE_DEGREES, radius: float = BLUR_RADIUS) -> dict[str, Image.Image]:
    """The five variants of ``image``, keyed by ``VARIANTS`` (same size as the original)."""
    rgb = image.convert("RGB")
    return {
        "original": rgb.copy(),
        "rotate": rgb.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False),
        "blur": rgb.filter(ImageFilter.GaussianBlur(radius)),
        "flip": rgb.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        "flop": rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    }


def augment_files(images: Iterable[str | Path], out_dir: str | Path, stem: str | None = None) -> list[Path]:
    """Write ``<stem>-<variant>.png`` for every image into ``out_dir`` (created); the paths written.

    Every input is opened before anything is written, so a bad image leaves no partial set."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: exists and is not a directory")
    opened = [(Path(p), open_rgb(p)) for p in images]
    if not opened:
        raise UserInputError("no images to augment")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for path, im in opened:
            base = stem or path.stem
            for name, variant in augment(im).items():
                target = out / f"{base}-{name}.png"
                import io

                buf = io.BytesIO()
                variant.save(buf, format="PNG")
                write_bytes_atomic(target, buf.getvalue())
                written.append(target)
    except BaseException:  # a failed write (read-only folder, full disk) leaves no partial set
        for p in written:
            p.unlink(missing_ok=True)
        if created:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    return written


__all__ = ["VARIANTS", "augment", "augment_files", "open_rgb"]
