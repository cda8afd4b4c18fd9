"""The quantized model file, ``NAME.qnet/`` (DESIGN §7): ``model.json`` + ``weights.npz``.

``model.json`` is human-readable and diffable: the cfg text (so the file is self-contained),
the quantization spec, the hardware config, every tensor's scale / algorithm / threshold,
and per layer the weight algorithm, granularity, weight scales and the encoded requantizer
(multiplier and shift per output channel, and the negative-side pair of a fused leaky).
``weights.npz`` holds the int8 weights, int32 biases and float64 folded biases, plus the
original float32 Darknet parameters (so FLOAT mode runs from the same file).

Operand widths (``quant.precision``) are stored where they differ from int8, so an all-int8
file is what it always was: a tensor entry's ``"bits": 16``, a layer entry's ``"weight_bits"``
(4 or 16; 16-bit weights are an int16 array), and ``"host_layers": [...]`` at the top level.
Post-training refinements (``dla.refine``) are listed in ``"refinements": [...]`` when any were
applied; their effect *is* the stored arrays (equalized float parameters, corrected ``b_q``,
re-rounded ``w_q``), so INT runs from the file alone reproduce the refined model bit for bit.
Loading checks them (values, the weights' dtype and range, pass-through layers sharing their
input's width) and checks the network against the stored hardware config (``dla.precision``).

Loading validates everything against the cfg and against the values the scales imply:
an inconsistent edit (shape, scale ≤ 0, a multiplier or shift that does not follow from the
scales, a multiplier beyond its bits) is an error naming the layer and the field.  Saving
is deterministic (fixed zip timestamps, fixed order), so load + save is byte-identical.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from dla.config import HardwareConfig, config_from_mapping
from dla.fileio import atomic_dir, json_text
from dla.int_kernels import build_plan
from dla.precision import check_precision
from golden.cfg import parse_cfg_text
from golden.errors import UnsupportedError, UserInputError
from golden.forks import DarknetFork
from golden.layers import ConnectedSpec, ConvSpec, build_layer
from golden.network import LayerParams, Network, read_net_section, check_size
from golden.weights import check_finite
from quant.algorithms.activations import ACTIVATION_ALGORITHMS
from quant.algorithms.weights import WEIGHT_ALGORITHMS
from quant.fold import fold_bn
from quant.numerics import QMAX
from quant.precision import ACTIVATION_WIDTHS, DEFAULT_BITS, WEIGHT_WIDTHS
from quant.qnet import QuantizedNetwork, QuantLayer, int_dtype, is_pass_through
from quant.refine import check_refinements
from quant.spec import QuantSpec

FORMAT, VERSION = "dla-qnet", 1
FLOAT_FIELDS = ("biases", "weights", "scales", "rolling_mean", "rolling_variance")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class QnetError(UserInputError):
    """Raised for a ``.qnet`` that is malformed or whose fields contradict each other."""

    def __init__(self, path: str | Path, msg: str, layer: int | None = None, field: str | None = None) -> None:
        where = f"{path}/model.json" + (f": layer {layer}" if layer is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}{what}: {msg}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: What a zipped ``.qnet`` is called (the workbench's download): read like the folder.
ZIP_SUFFIX = ".qnet.zip"
MEMBERS = ("model.json", "weights.npz")


def qnet_zip_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """``{base name: member}`` of the two ``.qnet`` members in a zip — at the top or in one
    folder, ``\\``-separated names too (Windows' Compress-Archive writes them) — for the commands
    and the workbench's upload alike.  Nothing is read; raises ``UserInputError`` (text without
    the file name, which the caller adds) when one is missing or present twice."""
    found: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        base = info.filename.replace("\\", "/").rstrip("/").split("/")[-1]
        if base in MEMBERS and not info.is_dir():
            if base in found:
                raise UserInputError(f"not a .qnet: the zip holds {base} more than once")
            found[base] = info
    missing = [m for m in MEMBERS if m not in found]
    if missing:
        raise UserInputError(f"not a .qnet (the zip needs model.json and weights.npz; "
                             f"{' and '.join(missing)} missing)")
    return found


def is_qnet(path: str | Path) -> bool:
    """Whether ``path`` names a ``.qnet``: the folder, or any ``.zip`` (a cfg is never a zip, and
    a browser saves a second download as ``NAME.qnet (1).zip``); loading then checks it."""
    p = Path(path)
    return p.suffix == ".qnet" or p.suffix.lower() == ".zip" or (p / "model.json").is_file()


def _requant_json(spec, qnet: QuantizedNetwork, hw: HardwareConfig) -> dict[str, Any] | None:
    plan = build_plan(spec, qnet, hw)
    if plan.rq is None:
        return None
    d: dict[str, Any] = {"scheme": hw.requant, "multiplier": plan.rq.mult.tolist(), "shift": plan.rq.shift.tolist()}
    if plan.rq_neg is not None:
        d["neg_multiplier"] = plan.rq_neg.mult.tolist()
        d["neg_shift"] = plan.rq_neg.shift.tolist()
    return d


def model_json(qnet: QuantizedNetwork, hw: HardwareConfig, cfg_text: str) -> dict[str, Any]:
    net = qnet.net
    tensors = []
    for t in range(-1, len(net.layers)):
        entry: dict[str, Any] = {"index": t, "scale": qnet.scales[t], "algorithm": qnet.algorithms.get(t, "max"),
                                 "threshold": qnet.thresholds.get(t, qnet.scales[t] * QMAX)}
        if t in qnet.auto_table:
            entry["auto_sqnr_db"] = {k: (v if math.isfinite(v) else str(v)) for k, v in qnet.auto_table[t].items()}
        if qnet.tensor_bits(t) != DEFAULT_BITS:
            entry["bits"] = qnet.tensor_bits(t)
        tensors.append(entry)
    layers = []
    for spec in net.layers:
        if not isinstance(spec, (ConvSpec, ConnectedSpec)):
            continue
        ql = qnet.layers[spec.index]
        entry = {"index": spec.index, "type": spec.kind.value, "weight_algorithm": ql.w_algorithm,
                 "granularity": ql.granularity, "weight_shape": list(ql.w_q.shape),
                 "weight_scale": ql.w_scale.tolist()}
        if ql.w_bits != DEFAULT_BITS:
            entry["weight_bits"] = ql.w_bits
        if spec.index in qnet.pre_act_scales:
            entry["pre_activation_scale"] = qnet.pre_act_scales[spec.index]
        rq = _requant_json(spec, qnet, hw)
        if rq is not None:
            entry["requant"] = rq
        layers.append(entry)
    out = {"format": FORMAT, "version": VERSION, "model": net.name, "cfg_name": net.cfg_path.name,
           "darknet": net.darknet.value,
           "input_shape": list(net.input_shape), "weights_header": list(net.weights_header or (0, 2, 0, 0)),
           "calibration": {"images": qnet.calibration_images}, "spec": qnet.spec.to_dict(),
           "hardware": hw.to_dict(), "tensors": tensors, "layers": layers, "cfg": cfg_text}
    if qnet.host:
        out["host_layers"] = sorted(qnet.host)
    if qnet.refinements:
        out["refinements"] = list(qnet.refinements)
    return out


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A deterministic ``.npz``: sorted names, fixed timestamps, no compression."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data.getvalue())
    return buf.getvalue()


def weight_arrays(qnet: QuantizedNetwork) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for idx, ql in qnet.layers.items():
        arrays[f"L{idx:03d}.w_q"] = ql.w_q.astype(int_dtype(ql.w_bits))
        arrays[f"L{idx:03d}.b_q"] = ql.b_q.astype(np.int32)
        arrays[f"L{idx:03d}.b_float"] = ql.b_float.astype(np.float64)
        for name, arr in qnet.net.params[idx].arrays().items():
            arrays[f"L{idx:03d}.float.{name}"] = arr.astype(np.float32)
    return arrays


def save_qnet(qnet: QuantizedNetwork, hw: HardwareConfig, path: str | Path, cfg_text: str | None = None) -> Path:
    """Write ``path`` (a directory) atomically."""
    text = cfg_text if cfg_text is not None else qnet.net.cfg_text
    if text is None:
        text = qnet.net.cfg_path.read_text()
    meta = json_text(model_json(qnet, hw, text))
    blob = _npz_bytes(weight_arrays(qnet))
    with atomic_dir(path, replace_if="model.json") as tmp:
        (tmp / "model.json").write_text(meta)
        (tmp / "weights.npz").write_bytes(blob)
    return Path(path)


def _darknet_field(path: Path, meta: dict[str, Any]) -> DarknetFork:
    """The fork the file was quantized for.  Files written before the field existed were all
    folded with pjreddie's batch norm, so a missing field means ``pjreddie``."""
    value = meta.get("darknet", DarknetFork.PJREDDIE.value)
    try:
        return DarknetFork(value)
    except ValueError:
        raise QnetError(path, f"unknown Darknet fork {value!r} (valid: "
                        f"{', '.join(f.value for f in DarknetFork)})", field="darknet") from None


def qnet_network(folder: str | Path) -> Network:
    """The network (shapes only, no weights) a ``.qnet`` folder's ``model.json`` describes, in
    the file's fork — what the workbench needs to check sizes before anything large is read.
    Raises ``UserInputError`` when ``model.json`` or its cfg is unusable (``load_qnet`` then says
    exactly what is wrong)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise QnetError(folder, f"cannot be read ({str(exc)[:200]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("cfg"), str) or not isinstance(meta.get("cfg_name"), str):
        raise QnetError(folder, "no cfg text", field="cfg")
    return _network_from_text(meta["cfg"], meta["cfg_name"], folder, _darknet_field(folder, meta))


def _network_from_text(text: str, name: str, path: Path, fork: DarknetFork) -> Network:
    sections = parse_cfg_text(text, path / name)
    shape, letter_box, warnings = read_net_section(sections[0], fork)
    layers, shapes, prev = [], [], shape
    for idx, sec in enumerate(sections[1:]):
        spec = build_layer(sec, idx, prev, shapes)
        layers.append(spec)
        shapes.append(spec.out_shape)
        prev = spec.out_shape
    net = Network(path / name, shape, layers, letter_box=letter_box, darknet=fork, warnings=warnings, cfg_text=text)
    check_size(net)
    return net


#: The largest ``model.json`` a zipped ``.qnet`` may declare: the cfg text, the scales and the
#: per-channel requantizers of a large network are a few MB; anything near this is a zip bomb.
MAX_MODEL_JSON = 256 << 20


def _check_declared_sizes(path: Path, found: dict[str, zipfile.ZipInfo], tmp: Path) -> None:
    """Refuse, before unpacking anything, a zip whose members declare more than a ``.qnet``
    can be: ``model.json`` beyond ``MAX_MODEL_JSON``, or both beyond the free space of the
    temporary folder they unpack into (zipfile stops at the declared size, so checking the
    declaration bounds what is written; ``weights.npz``'s arrays are then bounded by the cfg)."""
    import shutil

    size = found["model.json"].file_size
    if size > MAX_MODEL_JSON:
        raise UserInputError(f"{path}: model.json declares {size:,} bytes unpacked, more than a .qnet's "
                             f"model.json can be ({MAX_MODEL_JSON:,}): a damaged or malicious zip")
    total, free = sum(i.file_size for i in found.values()), shutil.disk_usage(tmp).free
    if total > free:
        raise UserInputError(f"{path}: unpacks to {total:,} bytes, the temporary folder {tmp.parent} has "
                             f"{free:,} bytes free (set TMPDIR to a larger disk)")


def _load_zipped(path: Path) -> tuple[QuantizedNetwork, HardwareConfig, str]:
    """A ``.qnet`` folder as a zip (the workbench downloads ``NAME.qnet.zip`` holding
    ``NAME.qnet/model.json`` + ``weights.npz``; the two members may also be at the top).  Only
    those two members are read (by base name, into a private temporary folder, so no name in
    the zip reaches a path); then it loads exactly like the folder, messages naming the zip."""
    import shutil
    import tempfile
    import zlib

    try:
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory(prefix="dla-qnet-") as tmp:
            try:
                found = qnet_zip_members(zf)
            except UserInputError as exc:
                raise UserInputError(f"{path}: {exc}") from None
            _check_declared_sizes(path, found, Path(tmp))
            folder = Path(tmp) / path.name[:-len(".zip")]
            folder.mkdir()
            for base, info in found.items():
                try:
                    with zf.open(info) as src, open(folder / base, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                except zipfile.BadZipFile as exc:  # a damaged member (bad CRC), not "not a zip"
                    raise UserInputError(f"{path}: the zip cannot be read ({exc})") from None
            try:
                qnet, hw, text = load_qnet(folder)
            except UserInputError as exc:
                raise UserInputError(str(exc).replace(str(folder), str(path))) from None
    except zipfile.BadZipFile:
        raise UserInputError(f"{path}: not a .qnet (neither a folder nor a zip of one)") from None
    except (RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:  # encrypted, unknown method, cut
        raise UserInputError(f"{path}: the zip cannot be read ({exc})") from None
    qnet.net.cfg_path = path / qnet.net.cfg_path.name  # named after the zip, as a folder's after the folder
    return qnet, hw, text


def _needed_arrays(net: Network) -> dict[str, tuple[int, ...]]:
    """The arrays ``load_qnet`` reads from ``weights.npz``, each with the shape the cfg gives it."""
    need: dict[str, tuple[int, ...]] = {}
    for spec in net.param_layers():
        key, shape = f"L{spec.index:03d}", tuple(spec.weight_shape)
        n = (shape[0],)
        need.update({f"{key}.w_q": shape, f"{key}.b_q": n, f"{key}.b_float": n, f"{key}.float.weights": shape})
        need.update({f"{key}.float.{f}": n for f in FLOAT_FIELDS if f != "weights"})
    return need


def _load_arrays(path: Path, wf: Path, net: Network) -> dict[str, np.ndarray]:
    """The arrays of ``weights.npz`` the cfg needs (any other member is not read).  Each .npy
    header is read first: numpy allocates what a header declares before reading the data, so
    a 100-byte member declaring 10^11 elements would be a MemoryError; an array declaring more
    than 8 bytes per element of the cfg's shape, or more data than its member holds, is refused,
    naming it, before any allocation (the shape/dtype checks after loading give the exact
    message for smaller mismatches)."""
    from numpy.lib import format as npf

    need = _needed_arrays(net)
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(wf, allow_pickle=False) as z:
            names = set(z.zip.namelist())
            for k in z.files:
                if k not in need:
                    continue
                member = z.zip.getinfo(f"{k}.npy" if f"{k}.npy" in names else k)
                with z.zip.open(member) as f:
                    version = npf.read_magic(f)
                    read = {(1, 0): npf.read_array_header_1_0, (2, 0): npf.read_array_header_2_0}.get(version)
                    if read is None:
                        raise ValueError(f"array '{k}': .npy format version {version[0]}.{version[1]} is not supported")
                    shape, _fortran, dtype = read(f)
                    held = member.file_size - f.tell()
                declared, allowed = math.prod(shape) * dtype.itemsize, math.prod(need[k]) * 8
                where = {"layer": int(k[1:4]), "field": k.split(".", 1)[1]}
                if declared > allowed:
                    raise QnetError(path, f"weights.npz array '{k}' declares {tuple(shape)} {dtype} "
                                    f"({declared:,} bytes); the cfg needs {need[k]}", **where)
                if declared > held:  # the cfg itself may be huge: the data must be there too
                    raise QnetError(path, f"weights.npz array '{k}' declares {tuple(shape)} {dtype} "
                                    f"({declared:,} bytes) but holds {max(held, 0):,} bytes", **where)
                arrays[k] = z[k]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        text = str(exc)
        raise UserInputError(f"{wf}: unreadable ({text[:200]}{'...' if len(text) > 200 else ''})") from None
    return arrays


def load_qnet(path: str | Path) -> tuple[QuantizedNetwork, HardwareConfig, str]:
    """``(qnet, hardware config, cfg text)`` from the folder ``path``, or from a zip of it
    (``NAME.qnet.zip``, see ``_load_zipped``); every inconsistency is a ``QnetError``."""
    path = Path(path)
    if path.is_file():
        return _load_zipped(path)
    mf, wf = path / "model.json", path / "weights.npz"
    if not mf.is_file() or not wf.is_file():
        raise UserInputError(f"{path}: not a .qnet (needs model.json and weights.npz)")
    try:
        meta = json.loads(mf.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise QnetError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:  # a ValueError, but not a JSONDecodeError: was a traceback
        raise QnetError(path, f"not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise QnetError(path, f"not a {FORMAT} version {VERSION} file", field="format")
    for key in ("cfg", "tensors", "layers", "hardware", "spec", "cfg_name"):
        if key not in meta:
            raise QnetError(path, "missing", field=key)
    for key in ("tensors", "layers"):
        if not isinstance(meta[key], list) or not all(isinstance(e, dict) for e in meta[key]):
            raise QnetError(path, "must be a list of objects", field=key)
    for key in ("hardware", "spec"):
        if not isinstance(meta[key], dict):
            raise QnetError(path, "must be an object", field=key)
    bad = next((e.get("index") for e in meta["layers"]
                if not isinstance(e.get("index"), int) or isinstance(e.get("index"), bool)), None)
    if any(not isinstance(e.get("index"), int) or isinstance(e.get("index"), bool) for e in meta["layers"]):
        raise QnetError(path, f"every entry needs an integer 'index', got {str(bad)[:40]}", field="layers")
    for key in ("cfg", "cfg_name"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise QnetError(path, f"must be a non-empty string, got {str(meta[key])[:40]!r}", field=key)
    if "/" in meta["cfg_name"] or "\\" in meta["cfg_name"] or meta["cfg_name"] in (".", ".."):
        raise QnetError(path, f"must be a file name, got {meta['cfg_name'][:40]!r}", field="cfg_name")
    net = _network_from_text(meta["cfg"], meta["cfg_name"], path, _darknet_field(path, meta))
    if "input_shape" in meta and meta["input_shape"] != list(net.input_shape):
        raise QnetError(path, f"{str(meta['input_shape'])[:40]} does not match the cfg's {list(net.input_shape)}",
                        field="input_shape")
    hw = config_from_mapping(meta["hardware"], f"{mf} (hardware)")
    spec = QuantSpec.from_dict(meta["spec"])
    arrays = _load_arrays(path, wf, net)
    calib = meta.get("calibration", {})
    n_calib = calib.get("images", 0) if isinstance(calib, dict) else None
    if not isinstance(n_calib, int) or isinstance(n_calib, bool) or n_calib < 0:
        raise QnetError(path, f"must be a non-negative integer, got {n_calib!r}", field="calibration.images")
    header = meta.get("weights_header", [0, 2, 0, 0])
    if (not isinstance(header, list) or len(header) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in header)
            or not all(0 <= v < (1 << 31) for v in header[:3]) or not 0 <= header[3] < (1 << 64)):
        raise QnetError(path, f"must be [major, minor, revision, seen], non-negative integers (major, minor, "
                        f"revision below 2^31, seen below 2^64), got {str(header)[:80]}", field="weights_header")
    scales: dict[int, float] = {}
    qnet = QuantizedNetwork(net, scales, granularity=spec.granularity,  # type: ignore[arg-type]
                            calibration_images=n_calib, spec=spec)
    seen = set()
    for t in meta["tensors"]:
        i, s = t.get("index"), t.get("scale")
        if not isinstance(i, int) or not -1 <= i < len(net.layers):
            raise QnetError(path, f"tensor index {i!r} outside -1..{len(net.layers) - 1}", field="tensors")
        if not _is_number(s) or not s > 0:
            raise QnetError(path, f"scale must be a positive number, got {s!r}", layer=i, field="scale")
        scales[i] = float(s)
        seen.add(i)
        algorithm = t.get("algorithm", "max")
        if not isinstance(algorithm, str) or algorithm not in ACTIVATION_ALGORITHMS:
            raise QnetError(path, f"unknown algorithm {str(algorithm)[:40]!r} (valid: {', '.join(ACTIVATION_ALGORITHMS)})",
                            layer=i, field="algorithm")
        qnet.algorithms[i] = algorithm
        bits = t.get("bits", DEFAULT_BITS)
        if type(bits) is not int or bits not in ACTIVATION_WIDTHS:
            raise QnetError(path, f"must be one of {', '.join(map(str, ACTIVATION_WIDTHS))}, got {repr(bits)[:20]}",
                            layer=i, field="bits")
        if bits != DEFAULT_BITS:
            qnet.bits[i] = bits
        th = t.get("threshold", s * QMAX)
        # 0 is what 'max' stores for a tensor that was zero on every calibration image
        if not _is_number(th) or th < 0 or (th == 0 and algorithm != "max"):
            raise QnetError(path, f"must be a positive number, got {th!r}", layer=i, field="threshold")
        qnet.thresholds[i] = float(th)
        if "auto_sqnr_db" in t:
            qnet.auto_table[i] = _sqnr_table(path, i, t["auto_sqnr_db"])
    missing = set(range(-1, len(net.layers))) - seen
    if missing:
        raise QnetError(path, f"no scale for tensors {sorted(missing)}", field="tensors")
    entries = {e.get("index"): e for e in meta["layers"]}
    params: dict[int, LayerParams] = {}
    for spec_l in net.param_layers():
        idx = spec_l.index
        e = entries.get(idx)
        if e is None:
            raise QnetError(path, "missing from 'layers'", layer=idx)
        key = f"L{idx:03d}"
        try:
            fl = {n: arrays[f"{key}.float.{n}"] for n in FLOAT_FIELDS if f"{key}.float.{n}" in arrays}
            w_q, b_q, b_float = arrays[f"{key}.w_q"], arrays[f"{key}.b_q"], arrays[f"{key}.b_float"]
        except KeyError as exc:
            raise QnetError(path, f"weights.npz has no array {exc}", layer=idx) from None
        w_bits = e.get("weight_bits", DEFAULT_BITS)
        if type(w_bits) is not int or w_bits not in WEIGHT_WIDTHS:
            raise QnetError(path, f"must be one of {', '.join(map(str, WEIGHT_WIDTHS))}, got {repr(w_bits)[:20]}",
                            layer=idx, field="weight_bits")
        w_dtype = np.dtype(int_dtype(w_bits))
        if tuple(w_q.shape) != tuple(spec_l.weight_shape) or w_q.dtype != w_dtype:
            raise QnetError(path, f"{w_bits}-bit weights have shape {tuple(w_q.shape)} {w_q.dtype}, the cfg needs "
                            f"{tuple(spec_l.weight_shape)} {w_dtype}", layer=idx, field="weights")
        shape_json = e.get("weight_shape")
        if not isinstance(shape_json, list) or tuple(shape_json) != tuple(spec_l.weight_shape):
            raise QnetError(path, f"{e.get('weight_shape')} does not match the cfg's {list(spec_l.weight_shape)}",
                            layer=idx, field="weight_shape")
        n = spec_l.weight_shape[0]
        raw_ws = e.get("weight_scale")
        if (not isinstance(raw_ws, list) or len(raw_ws) != n
                or not all(_is_number(v) and v > 0 for v in raw_ws)):
            raise QnetError(path, f"needs {n} positive numbers", layer=idx, field="weight_scale")
        ws = np.asarray(raw_ws, dtype=np.float64)
        for name, arr, dtype in (("b_q", b_q, np.int32), ("b_float", b_float, np.float64)):
            if arr.shape != (n,) or arr.dtype != dtype:
                raise QnetError(path, f"weights.npz array '{key}.{name}' is {arr.shape} {arr.dtype}, needs ({n},) "
                                f"{np.dtype(dtype)}", layer=idx, field=name)
        need = {"biases": (n,), "weights": tuple(spec_l.weight_shape)}
        if spec_l.batch_normalize:
            need.update({k: (n,) for k in ("scales", "rolling_mean", "rolling_variance")})
        for name, shape in need.items():
            arr = fl.get(name)
            if arr is None or arr.shape != shape or arr.dtype != np.float32:
                got = "missing" if arr is None else f"{arr.shape} {arr.dtype}"
                raise QnetError(path, f"weights.npz array '{key}.float.{name}' is {got}, needs {shape} float32",
                                layer=idx, field=f"float.{name}")
        w_max = (1 << (w_bits - 1)) - 1
        if np.abs(w_q.astype(np.int32)).max(initial=0) > w_max:
            raise QnetError(path, f"{w_bits}-bit weights outside [{-w_max}, {w_max}]", layer=idx, field="weights")
        try:
            params[idx] = LayerParams(**fl)
        except TypeError:
            raise QnetError(path, "float parameters missing", layer=idx) from None
        for name, arr in (*((f"float.{n}", a) for n, a in fl.items()), ("b_float", b_float)):
            try:
                check_finite(wf, idx, spec_l.kind.value, name, arr)
            except UserInputError as exc:
                raise QnetError(path, str(exc).split(": ", 2)[-1] + f" (in {wf.name})", layer=idx,
                                field=name) from None
        w_alg, gran = e.get("weight_algorithm", "max"), e.get("granularity", "per_tensor")
        if not isinstance(w_alg, str) or w_alg not in WEIGHT_ALGORITHMS:
            raise QnetError(path, f"unknown {str(w_alg)[:40]!r} (valid: {', '.join(WEIGHT_ALGORITHMS)})",
                            layer=idx, field="weight_algorithm")
        if not isinstance(gran, str) or gran not in GRANULARITIES:
            raise QnetError(path, f"unknown {str(gran)[:40]!r} (valid: {', '.join(GRANULARITIES)})",
                            layer=idx, field="granularity")
        if gran == "per_tensor" and len(set(raw_ws)) > 1:
            raise QnetError(path, "per_tensor granularity needs one weight scale repeated for every channel",
                            layer=idx, field="weight_scale")
        w_float, _ = fold_bn(spec_l, params[idx], net.darknet)
        qnet.layers[idx] = QuantLayer(idx, w_q, ws, b_q.astype(np.int64), b_float.astype(np.float64), w_float,
                                      w_alg, gran, w_bits)
        if "pre_activation_scale" in e:
            pa = e["pre_activation_scale"]
            if not _is_number(pa) or not pa > 0:
                raise QnetError(path, f"must be a positive number, got {pa!r}", layer=idx, field="pre_activation_scale")
            qnet.pre_act_scales[idx] = float(pa)
    net.params = params
    net.weights_header = tuple(header)  # type: ignore[assignment]
    _load_widths(path, qnet, hw, meta.get("host_layers", []))
    _check_requant(path, qnet, hw, entries)
    qnet.refinements = _load_refinements(path, meta.get("refinements", []))
    return qnet, hw, meta["cfg"]


def _load_refinements(path: Path, value: Any) -> tuple[str, ...]:
    """The ``refinements`` list (absent in files written before it existed: none).  Informative
    only — the refined integer weights and biases are the stored arrays — but an unknown name
    means the file was edited or written by a newer version, so it is refused."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QnetError(path, f"must be a list of names, got {str(value)[:40]}", field="refinements")
    try:
        return check_refinements(value)
    except UserInputError as exc:
        raise QnetError(path, str(exc), field="refinements") from None


def _load_widths(path: Path, qnet: QuantizedNetwork, hw: HardwareConfig, host: Any) -> None:
    """``host_layers``, the widths of pass-through layers, and the hardware's support of them all."""
    n = len(qnet.net.layers)
    if not isinstance(host, list) or not all(type(i) is int and 0 <= i < n for i in host):
        raise QnetError(path, f"must be a list of layer indices 0..{n - 1}, got {str(host)[:40]}", field="host_layers")
    qnet.host = frozenset(host)
    for spec in qnet.net.layers:
        if is_pass_through(spec) and qnet.tensor_bits(spec.index) != qnet.tensor_bits(spec.inputs[0]):
            raise QnetError(path, f"is {qnet.tensor_bits(spec.index)}-bit, but a {spec.kind.value} outputs its "
                            f"input's values and width ({qnet.tensor_bits(spec.inputs[0])}-bit)", layer=spec.index,
                            field="bits")
    try:
        check_precision(qnet, hw)
    except UnsupportedError as exc:
        raise QnetError(path, f"{exc} (hardware config stored in the file)") from None


GRANULARITIES = ("per_tensor", "per_channel")


def _sqnr_table(path: Path, index: int, table: Any) -> dict[str, float]:
    """An ``auto`` tensor's SQNR per algorithm: numbers, or ``"inf"``/``"-inf"`` (exact/empty)."""
    out: dict[str, float] = {}
    if not isinstance(table, dict):
        raise QnetError(path, "must map algorithm names to dB values", layer=index, field="auto_sqnr_db")
    for k, v in table.items():
        if not isinstance(k, str) or k not in ACTIVATION_ALGORITHMS:
            raise QnetError(path, f"unknown algorithm {str(k)[:40]!r}", layer=index, field="auto_sqnr_db")
        if _is_number(v) or v in ("inf", "-inf"):
            out[k] = float(v)
        else:
            raise QnetError(path, f"'{k}' must be a number or \"inf\"/\"-inf\", got {str(v)[:40]!r}",
                            layer=index, field="auto_sqnr_db")
    return out


def _check_requant(path: Path, qnet: QuantizedNetwork, hw: HardwareConfig, entries: dict) -> None:
    """The stored multipliers/shifts must be what the scales and the hardware config imply."""
    limit = 1 << (hw.multiplier_bits - 1)
    for spec in qnet.net.param_layers():
        stored = entries[spec.index].get("requant")
        expected = _requant_json(spec, qnet, hw)
        if expected is None:
            continue
        if not isinstance(stored, dict):
            raise QnetError(path, "missing: every requantizing layer lists its multipliers and shifts",
                            layer=spec.index, field="requant")
        for f in ("multiplier", "shift", "neg_multiplier", "neg_shift"):
            if f not in expected:
                continue
            got = stored.get(f)
            if (not isinstance(got, list) or len(got) != len(expected[f])
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in got)):
                raise QnetError(path, f"needs {len(expected[f])} integers", layer=spec.index, field=f"requant.{f}")
            if f.endswith("multiplier") and any(not 0 <= v < limit for v in got):
                raise QnetError(path, f"values must be in 0..{limit - 1} ({hw.multiplier_bits}-bit multipliers)",
                                layer=spec.index, field=f"requant.{f}")
            if f.endswith("shift") and any(not -31 <= v <= 62 for v in got):
                raise QnetError(path, "values must be in -31..62", layer=spec.index, field=f"requant.{f}")
            if got != expected[f]:
                k = next(i for i, (a, b) in enumerate(zip(got, expected[f])) if a != b)
                raise QnetError(path, f"channel {k}: {got[k]} does not follow from the scales "
                                f"(expected {expected[f][k]}); edit the scales, not the encoded values",
                                layer=spec.index, field=f"requant.{f}")
