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
#: ``dla.qnet_file.MEMBERS``, named here so that this module imports no engine code.
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


def _image(path: Path, max_pixels: int) -> dict[str, Any]:
    """Open (header only) and check the size before any decoding, then decode once to be sure."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:  # reads the header, decodes nothing
            if im.width * im.height > max_pixels:  # decoding it would take GBs
                raise ContentError(f"the image is too large ({im.width}x{im.height} = {im.width * im.height:,} "
                                   f"pixels; at most {max_pixels:,})")
            im.verify()
        with Image.open(path, formats=IMAGE_FORMATS) as im:  # verify() leaves the image unusable: reopen
            im.load()
            return {"width": im.width, "height": im.height, "format": im.format}
    except Image.DecompressionBombError as exc:
        raise ContentError(f"the image is too large ({exc})") from None
    except UnidentifiedImageError:
        raise ContentError("not a readable image: PNG, JPEG or BMP") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ContentError(f"not a readable image ({exc})") from None


#: ``model.json`` is a cfg's text plus a few numbers per layer: megabytes at most.
MAX_MODEL_JSON = 32 * 1024 * 1024
#: Room for a ``.npy`` member's header in front of its data (numpy writes 128 bytes).
NPY_HEADER_SLACK = 4096


def expected_npz(net: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every array a ``.qnet``'s ``weights.npz`` may hold for ``net`` (``dla.qnet_file.weight_arrays``):
    name → (shape, dtype).  The batch-norm arrays are allowed on any parametrised layer."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for spec in net.param_layers():
        key, shape = f"L{spec.index:03d}", tuple(int(v) for v in spec.weight_shape)
        n = (shape[0],)
        out[f"{key}.w_q"] = (shape, np.dtype(np.int8))
        out[f"{key}.b_q"] = (n, np.dtype(np.int32))
        out[f"{key}.b_float"] = (n, np.dtype(np.float64))
        out[f"{key}.float.weights"] = (shape, np.dtype(np.float32))
        for name in ("biases", "scales", "rolling_mean", "rolling_variance"):
            out[f"{key}.float.{name}"] = (n, np.dtype(np.float32))
    return out


def check_npz_members(npz: Path, net: Any) -> None:
    """Refuse a ``weights.npz`` that is not exactly arrays of ``net``'s shapes, before numpy loads
    anything: each member must be an expected array name, its declared (uncompressed) size must
    fit that array, and its ``.npy`` header must declare the expected shape and dtype.  Only the
    headers are read; a zip member declaring gigabytes is refused without inflating it (and
    ``zipfile`` never inflates beyond a member's declared size)."""
    from numpy.lib import format as npf

    expected = expected_npz(net)
    try:
        with zipfile.ZipFile(npz) as zf:
            seen: set[str] = set()
            for info in zf.infolist():
                key = info.filename.removesuffix(".npy")
                if key not in expected or not info.filename.endswith(".npy") or key in seen:
                    raise ContentError(f"weights.npz: unexpected member '{info.filename[:80]}' (the cfg's layers "
                                       "have L<index>.w_q, .b_q, .b_float and .float.<name> arrays, each once)")
                seen.add(key)
                shape, dtype = expected[key]
                need = math.prod(shape) * dtype.itemsize
                if info.file_size > need + NPY_HEADER_SLACK:
                    raise ContentError(f"weights.npz: member '{info.filename}' declares {info.file_size:,} bytes, "
                                       f"the cfg's {shape} {dtype} needs {need:,}")
                with zf.open(info) as f:
                    version = npf.read_magic(f)
                    read = {(1, 0): npf.read_array_header_1_0, (2, 0): npf.read_array_header_2_0}.get(version)
                    if read is None:
                        raise ContentError(f"weights.npz: member '{info.filename}' is not a .npy array")
                    got_shape, _fortran, got_dtype = read(f)
                if tuple(got_shape) != shape or got_dtype != dtype:
                    raise ContentError(f"weights.npz: array '{key}' is {tuple(got_shape)} {got_dtype}, the cfg "
                                       f"needs {shape} {dtype}")
    except zipfile.BadZipFile:
        raise ContentError("weights.npz is not an .npz (zip) file") from None
    except (RuntimeError, NotImplementedError, EOFError, zlib.error, ValueError, OSError) as exc:
        raise ContentError(f"weights.npz cannot be read ({exc})") from None


def load_qnet_checked(qdir: Path, name: str) -> tuple[Any, Any]:
    """``dla.qnet_file.load_qnet`` on an uploaded ``.qnet`` folder, after the checks that keep a
    crafted file from costing the server memory: ``model.json``'s size, then the network its cfg
    text describes, then ``check_npz_members``.  Errors name the user's file ``name``."""
    from dla.qnet_file import load_qnet, qnet_network

    try:
        mf = qdir / "model.json"
        if mf.is_file() and mf.stat().st_size > MAX_MODEL_JSON:
            raise ContentError(f"model.json is {mf.stat().st_size:,} bytes (at most {MAX_MODEL_JSON:,})")
        try:
            net = qnet_network(qdir)
        except UserInputError:
            net = None  # load_qnet refuses it before reading weights.npz, with its message
        if net is not None and (qdir / "weights.npz").is_file():
            check_npz_members(qdir / "weights.npz", net)
        qnet, hw, _ = load_qnet(qdir)
    except ContentError as exc:
        raise ContentError(f"{name}: {exc}") from None
    except UserInputError as exc:  # the loader names the temp folder: name the user's file
        raise ContentError(str(exc).replace(str(qdir), name)) from None
    return qnet, hw


def unpack_qnet(path: Path, dest: Path, max_bytes: int, name: str = "the .qnet") -> dict[str, Any]:
    """A .qnet upload (a zip of model.json + weights.npz, at the top or in one folder) into
    the directory ``dest``, then loaded and checked like any .qnet.  The declared sizes are
    checked before anything is inflated, and ``zipfile`` inflates no member beyond its
    declared size, so ``max_bytes`` bounds what is written."""
    try:
        with zipfile.ZipFile(path) as zf:
            from dla.qnet_file import qnet_zip_members

            try:
                members = qnet_zip_members(zf)
            except UserInputError as exc:
                raise ContentError(str(exc)) from None
            total = sum(i.file_size for i in members.values())
            if total > max_bytes:
                raise ContentError(f"the .qnet unpacks to {total:,} bytes, beyond the limit of {max_bytes:,}")
            if members["model.json"].file_size > MAX_MODEL_JSON:
                raise ContentError(f"model.json is {members['model.json'].file_size:,} bytes "
                                   f"(at most {MAX_MODEL_JSON:,})")
            dest.mkdir(parents=True)
            for base, info in members.items():  # written under fixed names: no path from the zip is used
                with zf.open(info) as src, open(dest / base, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile:
        raise ContentError("not a .qnet: upload the model directory as a zip (model.json + weights.npz)") from None
    except (RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:  # encrypted, unknown method, cut
        raise ContentError(f"not a .qnet: the zip cannot be read ({exc})") from None
    qnet, _hw = load_qnet_checked(dest, name)
    return {"layers": len(qnet.net.layers), "input": list(qnet.net.input_shape), "model": qnet.net.name}


def _scenario(path: Path) -> dict[str, Any]:
    """A YAML mapping, read with the commands' alias and size bounds (``dla.yamlsafe``): a
    few-hundred-byte alias bomb must not expand inside the server."""
    import yaml

    from dla.yamlsafe import safe_load_text

    try:
        data = safe_load_text(path.read_text(encoding="utf-8"))
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


def check(kind: str, path: Path, name: str, cfgs: dict[int, Path], qnet_dest: Path, max_bytes: int,
          max_pixels: int | None = None) -> dict[str, Any]:
    """Validate ``path`` as ``kind``; the metadata to keep with the file.  ``max_pixels``: the
    image limit (default ``golden.image.max_image_pixels()``)."""
    if kind == "cfg":
        return _cfg(path, name)
    if kind == "weights":
        return _weights(path, cfgs)
    if kind == "image":
        from golden.image import max_image_pixels

        return _image(path, max_pixels or max_image_pixels())
    if kind == "qnet":
        return unpack_qnet(path, qnet_dest, max_bytes, name)
    if kind == "scenario":
        return _scenario(path)
    if kind == "npy":
        return _npy(path)
    raise ContentError(f"files of type {kind} cannot be uploaded")


def dumps(meta: dict[str, Any]) -> str:
    return json.dumps(meta, default=str)
