"""PNG pictures of tensors for ``dla step``: feature-map grids, histograms, float-vs-int scatters.

Drawn with matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``): no pyplot,
no global backend switch, no display needed.  Each function writes one PNG atomically
(``dla.fileio.write_bytes_atomic``: the parent directory must exist) and returns its path.

* ``feature_map_grid(tensor, path, title, scale=None)``: the channels of a ``(C, H, W)``
  tensor tiled in one mosaic with one shared colour scale (symmetric around 0 for signed
  data); int8 data names its scale in the title.  4-D weights ``(O, I, kh, kw)`` show one
  tile per output channel (rows = input channels, columns = kernel taps); vectors are
  folded into a square.
* ``histogram(values, path, title, clip=None)``: the value distribution (log counts), with
  vertical lines at ``±clip`` (e.g. the quantization range ``±127·scale``) and how many
  values fall outside it.
* ``scatter(float_values, int_values, path, title)``: one point per element, the FLOAT
  value against the (dequantized) INT value, with the identity line.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dla.fileio import write_bytes_atomic
from quant.numerics import QMAX, QMIN

#: At most this many tiles in a feature-map grid (the title says how many were left out).
MAX_TILES = 64
#: At most this many points in a scatter (an evenly strided subset beyond).
MAX_POINTS = 40_000


def _save(fig: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)


def _as_tiles(tensor: np.ndarray) -> tuple[np.ndarray, str]:
    """``(N, H, W)`` tiles of any tensor, and what one tile is."""
    a = np.asarray(tensor)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim == 4:  # conv weights: one tile per output channel, input channels x kernel taps
        return a.reshape(a.shape[0], a.shape[1], a.shape[2] * a.shape[3]), "output channel (rows: inputs, cols: taps)"
    if a.ndim == 3 and a.shape[1] * a.shape[2] > 1:
        return a, "channel"
    if a.ndim == 2:  # a matrix (connected weights): one tile
        return a.reshape(1, *a.shape), "matrix"
    if a.ndim > 4:
        return a.reshape(-1, a.shape[-2], a.shape[-1]), "slice"
    flat = a.reshape(-1)  # a vector, or (C, 1, 1) channels of one value each
    side = max(1, math.ceil(math.sqrt(flat.size)))
    padded = np.full(side * side, np.nan)
    padded[: flat.size] = flat
    return padded.reshape(1, side, side), f"vector of {flat.size} folded {side}x{side}"


def _mosaic(tiles: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` tiles in a near-square grid, NaN gaps of one pixel between them."""
    _, h, w = tiles.shape
    cols = max(1, math.ceil(math.sqrt(n * h / max(w, 1))))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = tiles[k]
    return out


def feature_map_grid(tensor: np.ndarray, path: str | Path, title: str, scale: float | None = None,
                     max_tiles: int = MAX_TILES) -> Path:
    """Tile the channels of ``tensor`` in one picture with one colour scale; write ``path`` (PNG).

    ``scale``: the int8 tensor's scale (real = q × scale), named in the title; the colours
    show the stored values (int8 codes for int8 data).
    """
    raw = np.asarray(tensor)
    tiles, unit = _as_tiles(raw)
    tiles = tiles.astype(np.float64)
    n_all = tiles.shape[0]
    n = min(n_all, max_tiles)
    mosaic = _mosaic(tiles, n)
    finite = mosaic[np.isfinite(mosaic)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if raw.dtype == np.int8:
        vmin, vmax, cmap = float(QMIN), float(QMAX), "RdBu_r"
    elif lo < 0:
        m = max(abs(lo), abs(hi)) or 1.0
        vmin, vmax, cmap = -m, m, "RdBu_r"
    else:
        vmin, vmax, cmap = 0.0, (hi or 1.0), "viridis"
    head = f"{title}\n{'x'.join(map(str, raw.shape))} {raw.dtype}"
    if scale is not None:
        head += f", scale {scale:.6g} (real = q × scale)"
    head += f"; {n} of {n_all} tiles" if n < n_all else f"; one tile per {unit}" if n_all > 1 else f"; {unit}"
    aspect = mosaic.shape[0] / max(mosaic.shape[1], 1)
    width = 8.0
    height = float(np.clip(width * aspect, 2.5, 12.0)) + 1.0
    fig = Figure(figsize=(width + 1.2, height))
    ax = fig.add_subplot()
    cm = matplotlib.colormaps[cmap].with_extremes(bad="#d0d0d0")  # the gaps between tiles
    im = ax.imshow(np.ma.masked_invalid(mosaic), cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest",
                   aspect="auto" if aspect > 8 or aspect < 1 / 8 else "equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(head, fontsize=9)
    fig.colorbar(im, ax=ax, label="int8 code" if raw.dtype == np.int8 else "value")
    fig.tight_layout()
    return _save(fig, path)


def histogram(values: np.ndarray, path: str | Path, title: str, clip: float | None = None, bins: int = 128) -> Path:
    """The distribution of ``values`` (log counts); dashed lines at ``±clip`` when given; write ``path``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    head = title
    if finite.size:
        uniq, counts = np.unique(finite, return_counts=True)
        if uniq.size <= 256:  # discrete (e.g. int8 codes times a scale): one bar per value, no aliasing
            width = float(np.min(np.diff(uniq))) * 0.9 if uniq.size > 1 else 1.0
            ax.bar(uniq, counts, width=width, color="#3b75af")
        else:
            ax.hist(finite, bins=bins, color="#3b75af")
        ax.set_yscale("log")
        head += (f"\nn={v.size:,}  min {finite.min():.4g}  max {finite.max():.4g}  "
                 f"mean {finite.mean():.4g}  std {finite.std():.4g}")
    else:
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
    if finite.size < v.size:
        head += f"  ({v.size - finite.size:,} non-finite left out)"
    if clip is not None and math.isfinite(clip) and clip > 0:
        outside = int(np.count_nonzero(np.abs(finite) > clip))
        for x in (-clip, clip):
            ax.axvline(x, color="#c0392b", linestyle="--", linewidth=1)
        ax.plot([], [], color="#c0392b", linestyle="--", label=f"±{clip:.4g} ({outside:,} outside)")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("value")
    ax.set_ylabel("count (log)")
    ax.set_title(head, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def scatter(float_values: np.ndarray, int_values: np.ndarray, path: str | Path, title: str,
            max_points: int = MAX_POINTS) -> Path:
    """FLOAT value (x) against the dequantized INT value (y) of every element; write ``path``."""
    f = np.asarray(float_values, dtype=np.float64).reshape(-1)
    q = np.asarray(int_values, dtype=np.float64).reshape(-1)
    if f.shape != q.shape:
        raise ValueError(f"scatter needs as many float as int values, got {f.size} and {q.size}")
    step = max(1, math.ceil(f.size / max_points))
    fs, qs = f[::step], q[::step]
    fig = Figure(figsize=(6.5, 6))
    ax = fig.add_subplot()
    ax.scatter(fs, qs, s=3, alpha=0.4, color="#3b75af", linewidths=0, rasterized=True)
    both = np.concatenate([fs, qs])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = float(both.min()), float(both.max())
        ax.plot([lo, hi], [lo, hi], color="#c0392b", linewidth=1, label="int = float")
        ax.legend(loc="upper left", fontsize=8)
    sub = f" (1 in {step} of {f.size:,} shown)" if step > 1 else f" ({f.size:,} values)"
    ax.set_title(title + sub, fontsize=9)
    ax.set_xlabel("float")
    ax.set_ylabel("int (dequantized)")
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["feature_map_grid", "histogram", "scatter"]
