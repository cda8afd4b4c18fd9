"""From a float network and calibration images to a ``QuantizedNetwork`` (the engine around it:
``dla.resolve.make_engine``).

Calibration images: a folder, a list file, or ``synthetic:N`` (the project's own generated
images).  Statistics (per-tensor max and |x| histograms) are cached on disk, keyed by the
model (cfg text + float parameters) and the images (path, size, mtime), so quantizing the
same model again with another algorithm does not re-run the float network.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from dla.config import HardwareConfig
from dla.fileio import write_bytes_atomic
from golden.errors import UserInputError
from golden.forks import DarknetFork
from golden.genweights import synthetic_image
from golden.network import Network
from quant import calibration_images, collect_ranges, image_inputs, quantize
from quant.calibrate import Ranges
from quant.observers import AbsHistogram
from quant.qnet import Granularity, QuantizedNetwork
from quant.spec import QuantSpec

SYNTHETIC_SEED = 1234


def cache_dir() -> Path:
    return Path(os.environ.get("DLA_CACHE", Path.home() / ".cache" / "dla")) / "calibration"


def model_digest(net: Network) -> str:
    h = hashlib.sha256((net.cfg_text or net.name).encode())
    for idx in sorted(net.params):
        for name, arr in sorted(net.params[idx].arrays().items()):
            h.update(f"{idx}.{name}".encode())
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def images_digest(images: list[Path] | int) -> str:
    if isinstance(images, int):
        return f"synthetic-{images}-{SYNTHETIC_SEED}"
    h = hashlib.sha256()
    for p in images:
        st = p.stat() if p.exists() else None
        h.update(f"{p.resolve()}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()


def _ranges_to_json(r: Ranges) -> dict:
    return {"images": r.images,
            "absmax": {str(k): v for k, v in r.absmax.items()}, "pre_act": {str(k): v for k, v in r.pre_act.items()},
            "hists": {str(k): h.to_dict() for k, h in r.hists.items()},
            "pre_hists": {str(k): h.to_dict() for k, h in r.pre_hists.items()}}


def _ranges_from_json(d: dict) -> Ranges:
    return Ranges({int(k): v for k, v in d["absmax"].items()}, {int(k): v for k, v in d["pre_act"].items()},
                  {int(k): AbsHistogram.from_dict(v) for k, v in d["hists"].items()},
                  {int(k): AbsHistogram.from_dict(v) for k, v in d["pre_hists"].items()}, d["images"])


def synthetic_inputs(net: Network, n: int) -> Iterable[np.ndarray]:
    rng = np.random.default_rng(SYNTHETIC_SEED)
    for _ in range(n):
        yield synthetic_image(net.input_shape, rng)


def collect_statistics(net: Network, images: list[Path] | int, use_cache: bool = True,
                       on_image: Callable[[int], None] | None = None) -> tuple[Ranges, bool]:
    """``(statistics, came_from_cache)``; ``images`` is a list of files or a synthetic count."""
    # The fork changes the statistics (batch norm, letterbox vs stretch).  pjreddie keeps the key
    # it had before the fork switch existed, so existing caches stay valid.
    fork = "" if net.darknet is DarknetFork.PJREDDIE else f"|{net.darknet.value}|letterbox={int(net.letter_box)}"
    key = hashlib.sha256(f"{model_digest(net)}{fork}|{images_digest(images)}|v1".encode()).hexdigest()[:32]
    path = cache_dir() / f"{key}.json"
    if use_cache and path.is_file():
        try:
            return _ranges_from_json(json.loads(path.read_text())), True
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is recomputed
    inputs = synthetic_inputs(net, images) if isinstance(images, int) else image_inputs(net, images)
    ranges = collect_ranges(net, inputs, on_image=on_image)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, json.dumps(_ranges_to_json(ranges)).encode())
        except OSError:
            pass  # a read-only home must not stop calibration
    return ranges, False


def resolve_images(calib: str | Path | list[Path] | None, synthetic: int | None,
                   default: Path | None = None) -> list[Path] | int:
    if synthetic:
        return synthetic
    if isinstance(calib, list):
        return calib
    if calib:
        return calibration_images(calib)
    if default is not None:
        return [default]
    raise UserInputError("no calibration data: give --calib DIR|LIST or --calib-synthetic N")


def calibrate(net: Network, images: list[Path] | int, granularity: Granularity = "per_tensor",
              hw: HardwareConfig | None = None, on_image: Callable[[int], None] | None = None,
              spec: QuantSpec | None = None, use_cache: bool = False) -> QuantizedNetwork:
    """Statistics over ``images`` (letterboxed as for inference), then quantization by ``spec``."""
    hw = hw or HardwareConfig()
    ranges, _ = collect_statistics(net, images, use_cache, on_image)
    return quantize(net, ranges, granularity, route_shared_scale=hw.route_shared_scale, spec=spec)
