"""Image input exactly as Darknet prepares it (``image.c``).

* decode with Pillow to 8-bit RGB (grey replicated, alpha dropped, EXIF orientation
  *not* applied — stb_image does not), value = ``u8 / 255`` as float32, planar CHW;
* ``resize_image``: Darknet's own corner-aligned two-pass bilinear resize, in float32
  and in Darknet's order of operations (including its black-bottom-row quirk);
* ``letterbox_image``: aspect-preserving resize pasted centred on a 0.5-grey canvas.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from golden.envlimit import env_limit
from golden.errors import FileMissingError, ImageError, UserInputError

_F = np.float32

#: Default bound on an input image's pixels (width x height), checked from the header before
#: decoding — one limit for the commands and the web workbench (``dla serve --max-image-pixels``):
#: a few-hundred-byte PNG can declare 30000x30000 pixels (2.7 GB as RGB float32).  50 MP is above any camera image and below Pillow's own decompression-bomb limits.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
#: Environment variable that changes the bound (an integer number of pixels).
MAX_PIXELS_ENV = "DLA_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The pixel bound in force: ``$DLA_MAX_IMAGE_PIXELS`` if set (a positive integer), else the default."""
    return env_limit(MAX_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS, "pixels")


def _pixel_error(path: Path, w: int, h: int, limit: int) -> ImageError:
    return ImageError(path, f"image is {w}x{h} = {w * h:,} pixels, above the limit of {limit:,} "
                            f"(set {MAX_PIXELS_ENV} to allow larger images)")


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """``(3, H, W)`` float32 in [0, 1], RGB planar.

    An image above ``max_pixels`` (default :func:`max_image_pixels`) is refused from its
    header, before any decoding (Pillow's own bomb errors become the same message)."""
    path = Path(path)
    limit = max_image_pixels() if max_pixels is None else max_pixels
    try:
        is_file = path.is_file()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise ImageError(_short(path), f"cannot open ({exc.strerror or exc})") from None
    if not is_file:
        raise FileMissingError(_short(path), "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > limit:
                    raise _pixel_error(path, w, h, limit)
                im.load()
                rgb = im.convert("RGB")
    except Image.DecompressionBombError as exc:  # Pillow's own bound fired first (in Image.open)
        m = re.search(r"\((\d+) pixels\)", str(exc))
        n = int(m.group(1)) if m else 0
        bound = limit if n > limit else _pillow_limit()
        raise ImageError(path, f"image has {n:,} pixels, above the limit of {bound:,} "
                               f"(set {MAX_PIXELS_ENV} to allow larger images; Pillow refuses more than "
                               f"{_pillow_limit():,})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(path, f"not a readable image ({exc})") from None
    u8 = np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)
    return (u8.transpose(2, 0, 1).astype(np.float32) / _F(255)).astype(np.float32)


def _pillow_limit() -> int:
    return 2 * int(Image.MAX_IMAGE_PIXELS or 0)


def _short(path: Path) -> str:
    s = str(path)
    return s if len(s) <= 120 else f"{s[:60]}...({len(s)} characters)"


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet ``resize_image``: ``(C, H, W)`` → ``(C, h, w)``.

    ``w_scale = float(W−1)/(w−1)``; column ``x`` reads ``ix = int(x·w_scale)``,
    ``dx = x·w_scale − ix`` and gives ``(1−dx)·in[ix] + dx·in[ix+1]``, the last column copying
    ``in[W−1]``.  The vertical pass starts from ``(1−dy)·part[iy]`` and adds ``dy·part[iy+1]``
    except on the last row — so that row can come out near 0 when float rounding puts
    ``iy`` one row short (Darknet's quirk, reproduced on purpose).
    """
    c, ih, iw = im.shape
    if (iw, ih) == (w, h):
        return im.copy()
    w_scale = _F(iw - 1) / _F(w - 1) if w > 1 else _F(0)
    h_scale = _F(ih - 1) / _F(h - 1) if h > 1 else _F(0)

    part = np.empty((c, ih, w), dtype=np.float32)
    sx = np.arange(w, dtype=np.float32) * w_scale
    ix = sx.astype(np.int64)
    dx = (sx - ix.astype(np.float32)).astype(np.float32)
    last = np.zeros(w, dtype=bool)
    last[w - 1] = True
    if iw == 1:
        last[:] = True
    ix = np.where(last, iw - 1, ix)
    ix1 = np.minimum(ix + 1, iw - 1)
    interp = (_F(1) - dx) * im[:, :, ix] + dx * im[:, :, ix1]
    part[...] = np.where(last, im[:, :, [iw - 1] * w], interp)

    sy = np.arange(h, dtype=np.float32) * h_scale
    iy = np.minimum(sy.astype(np.int64), ih - 1)
    dy = (sy - iy.astype(np.float32)).astype(np.float32)
    out = (_F(1) - dy)[None, :, None] * part[:, iy, :]
    second = np.ones(h, dtype=bool)
    second[h - 1] = False
    if ih == 1:
        second[:] = False
    rows = np.nonzero(second)[0]
    out[:, rows, :] += dy[rows][None, :, None] * part[:, np.minimum(iy[rows] + 1, ih - 1), :]
    return out.astype(np.float32, copy=False)


def letterbox_geometry(im_w: int, im_h: int, net_w: int, net_h: int) -> tuple[int, int]:
    """``(new_w, new_h)`` of the resized image inside the canvas (integer math as Darknet)."""
    # max(1, ...): a very thin image (e.g. 4000x1 into 416x416) would otherwise get a 0-pixel
    # side, which Darknet's make_image cannot represent either; one row/column is the nearest.
    if _F(net_w) / _F(im_w) < _F(net_h) / _F(im_h):
        return net_w, max(1, (im_h * net_w) // im_w)
    return max(1, (im_w * net_h) // im_h), net_h


def letterbox_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Aspect-preserving ``resize_image`` pasted at ``((w−new_w)/2, (h−new_h)/2)`` on 0.5 grey."""
    c, ih, iw = im.shape
    new_w, new_h = letterbox_geometry(iw, ih, w, h)
    resized = resize_image(im, new_w, new_h)
    out = np.full((c, h, w), 0.5, dtype=np.float32)
    y0, x0 = (h - new_h) // 2, (w - new_w) // 2
    out[:, y0:y0 + new_h, x0:x0 + new_w] = resized
    return out


def prepare_input(im: np.ndarray, input_shape: tuple[int, int, int], letterbox: bool = True) -> np.ndarray:
    """The network input for an image: letterboxed (pjreddie) or stretched (AlexeyAB default)."""
    c, h, w = input_shape
    if im.shape[0] != c:
        if c == 1:
            im = im.mean(axis=0, keepdims=True, dtype=np.float32)
        else:
            raise ImageError("<input>", f"network expects {c} channels, image has {im.shape[0]}")
    return letterbox_image(im, w, h) if letterbox else resize_image(im, w, h)
