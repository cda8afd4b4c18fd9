"""Darknet ``.weights`` reading and writing (``parser.c: load_weights_upto / save_weights_upto``).

Layout: little-endian ``int32 major, minor, revision``, then ``seen`` as uint64 when
``major*10 + minor >= 2`` (and both < 1000), else uint32; then, for each layer with
parameters in cfg order, float32 arrays:

* convolutional: ``biases[n]``, if batch_normalize ``scales[n], rolling_mean[n],
  rolling_variance[n]``, then ``weights[n][c/g][k][k]``;
* connected: ``biases[out]``, ``weights[out][in]`` (``[in][out]`` when major or minor
  > 1000: transposed on load), then the three BN arrays if batch_normalize.

Darknet silently accepts short or long files; here the exact expected size is checked
and a mismatch is an error naming the layer (short) or the surplus (long).
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from golden.errors import FileMissingError, WeightsError
from golden.layers import ConnectedSpec, ConvSpec, Kind, LayerParams

if TYPE_CHECKING:  # the loader in golden.network calls this module: type names only
    from golden.network import Network

DEFAULT_HEADER = (0, 2, 0, 0)


def header_size(major: int, minor: int) -> int:
    return 20 if (major * 10 + minor >= 2 and major < 1000 and minor < 1000) else 16


def _layer_arrays(spec: ConvSpec | ConnectedSpec) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each array in file order."""
    n = spec.filters if isinstance(spec, ConvSpec) else spec.output
    bn = [("scales", (n,)), ("rolling_mean", (n,)), ("rolling_variance", (n,))] if spec.batch_normalize else []
    if isinstance(spec, ConvSpec):
        return [("biases", (n,)), *bn, ("weights", spec.weight_shape)]
    return [("biases", (n,)), ("weights", spec.weight_shape), *bn]


def expected_size(net: Network, major: int = 0, minor: int = 2) -> int:
    return header_size(major, minor) + 4 * sum(s.n_params for s in net.param_layers())


def read_weights(net: Network, path: str | Path) -> Network:
    """Fill ``net.params`` from a ``.weights`` file; the file size must match the cfg exactly."""
    path = Path(path)
    if not path.is_file():
        raise FileMissingError(path, "weights file")
    data = path.read_bytes()
    if len(data) < 16:
        raise WeightsError(path, f"file is {len(data)} bytes, shorter than the 16-byte header")
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    hsize = header_size(major, minor)
    seen = struct.unpack_from("<Q" if hsize == 20 else "<I", data, 12)[0] if len(data) >= hsize else 0
    transpose = major > 1000 or minor > 1000
    need = expected_size(net, major, minor)
    if len(data) > need:
        raise WeightsError(path, f"{len(data) - need} bytes left over after the last layer: the file holds "
                           f"{len(data)} bytes, {net.cfg_path.name} needs {need} "
                           f"(header {hsize} + 4 x {(need - hsize) // 4} floats); wrong cfg for these weights?")
    offset = hsize
    params: dict[int, LayerParams] = {}
    for spec in net.param_layers():
        arrays: dict[str, np.ndarray] = {}
        for name, shape in _layer_arrays(spec):
            count = int(np.prod(shape))
            if offset + 4 * count > len(data):
                missing = need - len(data)
                raise WeightsError(path, f"file ends inside '{name}' of layer {spec.index} "
                                   f"({spec.kind.value}): {missing} bytes missing (file {len(data)} bytes, "
                                   f"{net.cfg_path.name} needs {need}); truncated or wrong cfg?", spec.index)
            arr = np.frombuffer(data, "<f4", count, offset).astype(np.float32)
            offset += 4 * count
            if name == "weights" and transpose and spec.kind is Kind.CONNECTED:
                arr = arr.reshape(shape[1], shape[0]).T.copy()
            arrays[name] = arr.reshape(shape)
        params[spec.index] = LayerParams(**arrays)
    for spec in net.param_layers():  # values only once the layout fits (a size mismatch says more)
        for name, arr in params[spec.index].arrays().items():
            check_finite(path, spec.index, spec.kind.value, name, arr)
    net.params = params
    net.weights_header = (major, minor, revision, seen)
    net.weights_path = path
    return net


def check_finite(path: str | Path, layer: int, kind: str, name: str, arr: np.ndarray) -> None:
    """Refuse a NaN or infinite parameter (and a negative BN variance, whose square root is NaN),
    naming the file, the layer, the array and the position of the first bad value.

    Darknet would run such a file and print nothing (NaN scores pass no threshold); here it is
    one clear error at load, so no NaN can reach a detection, a JSON report or the INT engine."""
    bad = ~np.isfinite(arr)
    what = "not a finite number"
    if not bad.any() and name == "rolling_variance":
        bad = arr < 0
        what = "a negative batch-norm variance"
    if bad.any():
        pos = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
        value = arr[pos]
        count = int(bad.sum())
        more = f" ({count:,} such values in this array)" if count > 1 else ""
        raise WeightsError(path, f"({kind}) '{name}'{list(pos)} = {value}: {what}{more}", layer)


def weights_bytes(net: Network) -> bytes:
    """Serialise ``net.params`` in Darknet's layout, keeping the header it was read with."""
    major, minor, revision, seen = net.weights_header or DEFAULT_HEADER
    hsize = header_size(major, minor)
    chunks = [struct.pack("<3i", major, minor, revision),
              struct.pack("<Q" if hsize == 20 else "<I", seen)]
    transpose = major > 1000 or minor > 1000
    for spec in net.param_layers():
        p = net.params.get(spec.index)
        if p is None:
            raise WeightsError("<memory>", "layer has no parameters to write", spec.index)
        for name, shape in _layer_arrays(spec):
            arr = getattr(p, name)
            if arr is None or tuple(arr.shape) != shape:
                got = None if arr is None else tuple(arr.shape)
                raise WeightsError("<memory>", f"'{name}' has shape {got}, cfg needs {shape}", spec.index)
            if name == "weights" and transpose and spec.kind is Kind.CONNECTED:
                arr = arr.T
            chunks.append(np.ascontiguousarray(arr, dtype="<f4").tobytes())
    return b"".join(chunks)


def write_weights(net: Network, path: str | Path) -> None:
    """Write atomically: a failed write leaves no partial file behind."""
    path = Path(path)
    payload = weights_bytes(net)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(payload)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
