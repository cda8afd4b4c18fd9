"""The run-dump format (a public contract, documented in docs/file-formats.md).

``DIR/manifest.json``::

    {"format": "dla-dump", "version": 1, "model": "...", "cfg": "...", "weights": "...",
     "image": "...", "mode": "float", "input": {"shape": [3, 416, 416], "file": "input.npy"},
     "layers": [{"index": 0, "type": "convolutional", "shape": [16, 416, 416],
                 "dtype": "float32", "file": "000.npy", "scale": null}, ...]}

and ``DIR/NNN.npy`` per layer output (``NNN`` = zero-padded layer index).  In INT mode
``dtype`` is ``int8`` (``int16`` for a 16-bit tensor) and ``scale`` is the real value of one
LSB (real = q × scale); host layers are ``float32`` with ``scale`` null.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dla.fileio import atomic_dir, json_text
from golden.errors import UserInputError
from golden.network import Network

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def write_dump(path: str | Path, net: Network, outputs: dict[int, np.ndarray], mode: str,
               scales: dict[int, float] | None = None, meta: dict | None = None) -> Path:
    scales = scales or {}
    layers = []
    with atomic_dir(path, replace_if=MANIFEST) as tmp:
        np.save(tmp / "input.npy", outputs[-1])
        for spec in net.layers:
            arr = outputs[spec.index]
            fname = f"{spec.index:03d}.npy"
            np.save(tmp / fname, arr)
            layers.append({"index": spec.index, "type": spec.kind.value, "shape": list(arr.shape),
                           "dtype": str(arr.dtype), "file": fname, "scale": scales.get(spec.index)})
        manifest = {"format": "dla-dump", "version": FORMAT_VERSION, "model": net.name,
                    "cfg": str(net.cfg_path), "weights": str(net.weights_path) if net.weights_path else None,
                    "mode": mode, **(meta or {}),
                    "input": {"shape": list(outputs[-1].shape), "file": "input.npy",
                              "scale": scales.get(-1)},
                    "layers": layers}
        (tmp / MANIFEST).write_text(json_text(manifest))
    return Path(path)


def read_dump(path: str | Path) -> tuple[dict, dict[int, np.ndarray]]:
    """Load a dump back: ``(manifest, {index: array})`` (``-1`` = the input)."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise UserInputError(f"{path}: not a dump directory (no {MANIFEST})")
    manifest = json.loads(mf.read_text())
    arrays = {-1: np.load(path / manifest["input"]["file"])}
    for layer in manifest["layers"]:
        arrays[layer["index"]] = np.load(path / layer["file"])
    return manifest, arrays
