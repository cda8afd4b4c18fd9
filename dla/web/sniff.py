"""What an uploaded file really is: each claimed type is checked by parsing its content.

The claim comes from the name's extension; the content must then parse with the library
that will later read it (golden's cfg parser, the weights header rules, Pillow, the .qnet
loader, YAML, numpy without pickles).  A mismatch is a ``ContentError`` with the parser's
own message, so the user learns why the file was refused.
"""
from __future__ import annotations

import io
import json
import math
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from golden.errors import UserInputError

EXTENSIONS = {".cfg": "cfg", ".weights": "weights", ".jpg": "image", ".jpeg": "image", ".png": "image",
              ".bmp": "image", ".qnet": "qnet", ".yaml": "scenario", ".yml": "scenario", ".npy": "npy",
              ".csv": "result", ".json": "result", ".zip": "result", ".html": "result"}
UPLOADABLE = ("cfg", "weights", "image", "qnet", "scenario", "npy")
QNET_MEMBERS = ("model.json", "weights.npz")


class ContentError(UserInputError):
    """Raised when a file's content is not what its name claims."""


class BadName(UserInputError):
    """Raised for a file name that could escape a directory or is otherwise unusable."""


def safe_name(name: str) -> str:
    """A plain file name: no directories, no ``..``, no control characters, 1-128 characters."""
    n = (name or "").strip()
    if not n or len(n) > 128:
        raise BadName("a file name needs 1 to 128 characters")
    if "/" in n or "\\" in n or n in (".", "..") or n.startswith(".") or ".." in n:
        raise BadName(f"'{name}': a file name cannot contain '/', '\\' or '..' or start with '.'")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in n):
        raise BadName("a file name cannot contain control characters")
    return n


def kind_of(name: str) -> str:
    ext = Path(name).suffix.lower()
    if ext not in EXTENSIONS or EXTENSIONS[ext] not in UPLOADABLE:
        raise ContentError(f"'{name}': unsupported file type (upload {', '.join(sorted(k for k, v in EXTENSIONS.items() if v in UPLOADABLE))})")
    return EXTENSIONS[ext]


def _cfg(path: Path, name: str) -> dict[str, Any]:
    from golden.network import parse_network

    with tempfile.TemporaryDirectory() as tmp:
        named = Path(tmp) / name  # the parser names the model (and its errors) after the file
        shutil.copyfile(path, named)
        try:
            net = parse_network(named)
        except UserInputError as exc:  # "/tmp/tmpabc/x.cfg:2: ...": the user's file, not the copy
            raise ContentError(str(exc).replace(str(named), name)) from None
    return {"layers": len(net.layers), "input": list(net.input_shape), "params": net.n_params, "macs": net.macs,
            "detector": net.is_detector}


def weights_header(path: Path) -> tuple[int, int, int, int, int]:
    """``(major, minor, revision, seen, header bytes)`` of a Darknet .weights file."""
    from golden.weights import header_size

    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 16:
        raise ContentError("not a Darknet .weights file: shorter than its header")
    major, minor, revision = struct.unpack("<3i", head[:12])
    if not (0 <= major < 2000 and 0 <= minor < 2000 and 0 <= revision < 100_000):
        raise ContentError(f"not a Darknet .weights file: implausible header version {major}.{minor}.{revision}")
    size = header_size(major, minor)
    if len(head) < size:
        raise ContentError("not a Darknet .weights file: shorter than its header")
    seen = struct.unpack("<Q" if size == 20 else "<I", head[12:size])[0]
    return major, minor, revision, seen, size


def _weights(path: Path, cfgs: dict[int, Path]) -> dict[str, Any]:
    """A valid header and a float32 payload; ``cfg_ids`` lists the user's cfgs whose size it fits."""
    from golden.network import parse_network
    from golden.weights import expected_size

    major, minor, _rev, seen, hsize = weights_header(path)
    size = path.stat().st_size
    if (size - hsize) % 4:
        raise ContentError(f"not a Darknet .weights file: {size - hsize} payload bytes is not a whole number of float32")
    fits = []
    for fid, cfg in cfgs.items():
        try:
            if expected_size(parse_network(cfg), major, minor) == size:
                fits.append(fid)
        except UserInputError:
            continue
    return {"version": f"{major}.{minor}", "seen": seen, "floats": (size - hsize) // 4, "cfg_ids": fits}


#: What the image extensions (.png, .jpg/.jpeg, .bmp) name (JPEG includes cameras' MPO files).
#: Nothing else is opened: Pillow reads dozens of formats, some through external programs (EPS).
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")


def _image(path: Path) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            im.verify()
            if im.width * im.height > Image.MAX_IMAGE_PIXELS:  # decoding it would take GBs
                raise ContentError(f"the image is too large ({im.width}x{im.height} pixels; at most "
                                   f"{Image.MAX_IMAGE_PIXELS:,} pixels)")
        with Image.open(path, formats=IMAGE_FORMATS) as im:  # verify() leaves the image unusable: reopen
            im.load()
            return {"width": im.width, "height": im.height, "format": im.format}
    except Image.DecompressionBombError as exc:
        raise ContentError(f"the image is too large ({exc})") from None
    except UnidentifiedImageError:
        raise ContentError("not a readable image: PNG, JPEG or BMP") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ContentError(f"not a readable image ({exc})") from None


def unpack_qnet(path: Path, dest: Path, max_bytes: int) -> dict[str, Any]:
    """A .qnet upload (a zip of model.json + weights.npz, at the top or in one folder) into
    the directory ``dest``, then loaded and checked like any .qnet."""
    from dla.qnet_file import load_qnet

    try:
        with zipfile.ZipFile(path) as zf:
            members = {}
            for info in zf.infolist():
                base = info.filename.rstrip("/").split("/")[-1]
                if base in QNET_MEMBERS and not info.is_dir():
                    members[base] = info
            if set(members) != set(QNET_MEMBERS):
                raise ContentError("not a .qnet: the zip needs model.json and weights.npz")
            if sum(i.file_size for i in members.values()) > max_bytes:
                raise ContentError("the .qnet unpacks beyond the upload size limit")
            dest.mkdir(parents=True)
            for base, info in members.items():  # written under fixed names: no path from the zip is used
                with zf.open(info) as src, open(dest / base, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile:
        raise ContentError("not a .qnet: upload the model directory as a zip (model.json + weights.npz)") from None
    except (RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:  # encrypted, unknown method, cut
        raise ContentError(f"not a .qnet: the zip cannot be read ({exc})") from None
    qnet, hw, _ = load_qnet(dest)
    return {"layers": len(qnet.net.layers), "input": list(qnet.net.input_shape), "model": qnet.net.name}


def _scenario(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContentError(f"not a YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ContentError("a scenario is a YAML mapping (key: value)")
    return {"keys": sorted(map(str, data))}


def _npy_header_fits(f: Any, size: int) -> None:
    """Refuse a .npy whose header declares more data than the file holds: numpy would
    allocate what the header says (a 100-byte file can ask for terabytes) before reading."""
    from numpy.lib import format as npf

    try:
        version = npf.read_magic(f)
        read = {(1, 0): npf.read_array_header_1_0, (2, 0): npf.read_array_header_2_0}.get(version)
        if read is None:
            raise ContentError(f"not a .npy array (format version {version[0]}.{version[1]} is not supported)")
        shape, _fortran, dtype = read(f)
    except (ValueError, OSError, EOFError) as exc:
        raise ContentError(f"not a .npy array ({exc})") from None
    if dtype.hasobject:  # np.load refuses it (no pickles) with its own message
        return
    need = math.prod(shape) * dtype.itemsize
    if need > size - f.tell():
        raise ContentError(f"not a .npy array: its header declares {need:,} bytes of data, "
                           f"the file holds {size - f.tell():,}")


def _npy(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        _npy_header_fits(f, path.stat().st_size)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ContentError(f"not a .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise ContentError("not a single .npy array")
    return {"shape": list(arr.shape), "dtype": str(arr.dtype)}


def load_npy_bytes(data: bytes) -> np.ndarray:
    _npy_header_fits(io.BytesIO(data), len(data))
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ContentError(f"not a .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise ContentError("not a single .npy array")
    return arr


def check(kind: str, path: Path, name: str, cfgs: dict[int, Path], qnet_dest: Path, max_bytes: int) -> dict[str, Any]:
    """Validate ``path`` as ``kind``; the metadata to keep with the file."""
    if kind == "cfg":
        return _cfg(path, name)
    if kind == "weights":
        return _weights(path, cfgs)
    if kind == "image":
        return _image(path)
    if kind == "qnet":
        return unpack_qnet(path, qnet_dest, max_bytes)
    if kind == "scenario":
        return _scenario(path)
    if kind == "npy":
        return _npy(path)
    raise ContentError(f"files of type {kind} cannot be uploaded")


def dumps(meta: dict[str, Any]) -> str:
    return json.dumps(meta, default=str)
