"""Fuzzing the hardware-YAML and .qnet loaders through the CLI: one clear error or a clean
run; non-finite and out-of-range values are never accepted; JSON output is always strict."""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from dla.config import RANGES, HardwareConfig
from tests.fuzz_helpers import FUZZ, TINY_CFG, clean, dla, refused, strict_json
from tests.paths import ROOT

FIELDS = [f for f in HardwareConfig.__dataclass_fields__]
NUMBERS = st.one_of(st.integers(-1000, 1000), st.integers(10 ** 18, 10 ** 400),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 1e-320, 1e308, -0.0, 0.001, 65536, 65537]))
ODD = st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("q")
    out = {"weights": d / "tiny.weights", "image": d / "in.png", "qnet": d / "tiny.qnet"}
    assert dla("gen-weights", TINY_CFG, "--seed", 3, "-o", out["weights"], "-q").exit_code == 0
    Image.new("RGB", (40, 30), (120, 60, 200)).save(out["image"])
    res = dla("quantize", TINY_CFG, out["weights"], "--calib-synthetic", 2, "--activations", "mse",
              "--granularity", "per-channel", "-o", out["qnet"], "-q")
    assert res.exit_code == 0, res.output
    return out


def _valid_number(name: str, value: Any) -> bool:
    lo, hi = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (isinstance(value, int) or math.isfinite(value)) and lo <= value <= hi


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(RANGES)), NUMBERS, min_size=1, max_size=3))
def test_fuzz_hardware_numbers(values: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        hw, j = Path(d) / "hw.yaml", Path(d) / "c.json"
        hw.write_text(yaml.safe_dump(values))
        res = clean(dla("cycles", TINY_CFG, "--hw", hw, "--json", j, "-q"), (j,))
        ints_ok = all(not (isinstance(v, float) and n not in ("clock_mhz", "dram_bytes_per_cycle"))
                      for n, v in values.items())
        if not all(_valid_number(n, v) for n, v in values.items()):
            assert res.exit_code == 2, (values, res.output)  # never silently accepted
        elif ints_ok and res.exit_code == 0:  # (a valid value can still not fit the network: buffers)
            data = strict_json(j)
            assert all(math.isfinite(v) for v in (data["latency_ms"], data["fps"]))
        elif ints_ok:
            assert "is outside" not in res.output and "finite" not in res.output, res.output


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), st.one_of(NUMBERS, ODD), min_size=1, max_size=3))
def test_fuzz_hardware_any_value(values: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        hw, j = Path(d) / "hw.yaml", Path(d) / "c.json"
        hw.write_text(yaml.safe_dump(values))
        clean(dla("cycles", TINY_CFG, "--hw", hw, "--json", j, "-q"), (j,))


DEFAULT_HW = (ROOT / "scenarios" / "hw" / "default.yaml").read_text()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(DEFAULT_HW)), st.sampled_from(list("&*:-[]{}\n #e9.!|>'\"") +
                                                                             ["&a ", "*a", "<<: *a"])),
                min_size=1, max_size=5))
def test_fuzz_hardware_yaml_text(edits: list[tuple[int, str]]) -> None:
    text = DEFAULT_HW
    for pos, s in edits:
        text = text[:pos] + s + text[pos:]
    with tempfile.TemporaryDirectory() as d:
        hw = Path(d) / "hw.yaml"
        hw.write_text(text)
        clean(dla("cycles", TINY_CFG, "--hw", hw, "-q"))


@pytest.mark.parametrize("text, needle", [
    ("rows: 1" + "0" * 400 + "\n", "hw.yaml:1: rows=10000000000000000000... (401 digits) is outside 1..65536"),
    ("clock_mhz: 1.0e+308\n", "hw.yaml:1: clock_mhz=1e+308 is outside 0.001..1e+06"),
    ("clock_mhz: 1.0e-320\n", "hw.yaml:1: clock_mhz=1e-320 is outside 0.001..1e+06"),
    ("dram_bytes_per_cycle: 1.0e-320\n", "hw.yaml:1: dram_bytes_per_cycle=1e-320 is outside 0.001..1e+09"),
    ("clock_mhz: " + "9" * 400 + "\n", "hw.yaml:1: 'clock_mhz' = 99999999999999999999... is too large a number"),
    ("rows: 4\nclock_mhz: .nan\n", "hw.yaml:2: clock_mhz=nan must be a finite number"),
], ids=["rows-1-followed-by-400-zeros", "clock_mhz-1e308", "clock_mhz-1e-320", "dram_bytes_per_cycle-1e-320",
        "clock_mhz-400-digits", "cols-nan"])
def test_hardware_reproducers(tmp_path: Path, text: str, needle: str) -> None:
    """Reproducers: OverflowError, ZeroDivisionError, Infinity in --json from these values."""
    hw, j = tmp_path / "hw.yaml", tmp_path / "c.json"
    hw.write_text(text)
    refused(dla("cycles", TINY_CFG, "--hw", hw, "--json", j, "-q"), needle, (j,))


def test_hardware_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    hw = tmp_path / "hw.yaml"
    hw.write_text("a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    refused(dla("cycles", TINY_CFG, "--hw", hw, "-q"), "values through its aliases: refused")


# ------------------------------------------------------------------------------- .qnet
def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(obj, list) and obj:
        return [p for i, v in enumerate(obj[:3]) for p in _leaves(v, (*path, i))]
    return [path]


def _set(obj: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


REPLACEMENTS = [float("nan"), float("inf"), float("-inf"), -1, 0, 1e308, -1e-9, "x", None, [], {}, True, 2 ** 70,
                "per_banana", [1, 2, 3]]


@FUZZ
@given(st.integers(0, 10_000), st.sampled_from(REPLACEMENTS))
def test_fuzz_qnet_model_json(files: dict[str, Path], which: int, value: Any) -> None:
    meta = json.loads((files["qnet"] / "model.json").read_text())
    leaves = [p for p in _leaves(meta) if p and p != ("cfg",)]
    path = leaves[which % len(leaves)]
    before = meta
    for k in path:
        before = before[k]
    _set(meta, path, value)
    with tempfile.TemporaryDirectory() as d:
        q, j = Path(d) / "m.qnet", Path(d) / "out.json"
        shutil.copytree(files["qnet"], q)
        (q / "model.json").write_text(json.dumps(meta))  # NaN/Infinity tokens written on purpose
        res = clean(dla("infer", q, files["image"], "--mode", "int", "--json", j, "-q"), (j,))
        if isinstance(value, float) and not math.isfinite(value) and isinstance(before, (int, float)):
            assert res.exit_code == 2, (path, res.output)  # a non-finite number is never accepted


@FUZZ
@given(st.integers(0, 10_000), st.integers(0, 10 ** 6), st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_fuzz_qnet_non_finite_arrays(files: dict[str, Path], which: int, pos: int, value: float) -> None:
    with np.load(files["qnet"] / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    floats = sorted(k for k, a in arrays.items() if a.dtype.kind == "f")
    name = floats[which % len(floats)]
    arr = arrays[name].copy()
    arr.flat[pos % arr.size] = value
    arrays[name] = arr
    with tempfile.TemporaryDirectory() as d:
        q = Path(d) / "m.qnet"
        shutil.copytree(files["qnet"], q)
        np.savez(q / "weights.npz", **arrays)
        refused(dla("infer", q, files["image"], "--mode", "int", "-q"), "not a finite number")


def _edited(files: dict[str, Path], tmp_path: Path, edit) -> Path:
    q = tmp_path / "e.qnet"
    shutil.copytree(files["qnet"], q)
    meta = json.loads((q / "model.json").read_text())
    edit(meta)
    (q / "model.json").write_text(json.dumps(meta))
    return q


@pytest.mark.parametrize("edit, needle", [
    (lambda m: m["layers"][0].__setitem__("granularity", "per_banana"),
     "layer 0 field 'granularity': unknown 'per_banana' (valid: per_tensor, per_channel)"),
    (lambda m: m["tensors"][3].__setitem__("algorithm", "magic"), "field 'algorithm': unknown algorithm 'magic'"),
    (lambda m: m["layers"][1].__setitem__("weight_algorithm", "magic"), "field 'weight_algorithm': unknown 'magic'"),
    (lambda m: m.__setitem__("weights_header", ["garbage", 1]), "field 'weights_header': must be [major, minor"),
    (lambda m: m.__setitem__("weights_header", [0, 2, 0, -5]), "field 'weights_header': must be [major, minor"),
    (lambda m: m.__setitem__("calibration", {"images": -3}), "field 'calibration.images': must be a non-negative"),
    (lambda m: m["tensors"][2].__setitem__("threshold", 0.0), "field 'threshold': must be a positive number"),
    (lambda m: m["tensors"][2].__setitem__("threshold", -4.0), "field 'threshold': must be a positive number"),
    (lambda m: m["tensors"][2].__setitem__("scale", float("nan")), "field 'scale': scale must be a positive number"),
], ids=["granularity", "algorithm", "weight-algorithm", "weights-header-garbage", "weights-header-negative",
        "negative-calibration-count", "threshold-zero", "threshold-negative", "scale-nan"])
def test_qnet_reproducers(files: dict[str, Path], tmp_path: Path, edit, needle: str) -> None:
    """Reproducers: these .qnet edits loaded without a word."""
    q = _edited(files, tmp_path, edit)
    refused(dla("infer", q, files["image"], "--mode", "int", "-q"), needle)


def test_qnet_with_nan_float_weights_is_refused_naming_layer_and_position(files: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    q = tmp_path / "n.qnet"
    shutil.copytree(files["qnet"], q)
    with np.load(q / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["L002.float.weights"][1, 0, 2, 2] = np.nan
    np.savez(q / "weights.npz", **arrays)
    refused(dla("infer", q, files["image"], "-q"),
            "layer 2 field 'float.weights': (convolutional) 'float.weights'[1, 0, 2, 2] = nan: not a finite number")


def test_qnet_absurd_npy_shape_is_one_error(files: dict[str, Path], tmp_path: Path) -> None:
    """A .npy header declaring 10^18 elements (MemoryError before): one error, nothing allocated."""
    q = tmp_path / "big.qnet"
    shutil.copytree(files["qnet"], q)
    src = zipfile.ZipFile(files["qnet"] / "weights.npz")
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"
    header = header + " " * (118 - len(header)) + "\n"
    with zipfile.ZipFile(q / "weights.npz", "w") as zf:
        for info in src.infolist():
            if info.filename == "L000.float.weights.npy":
                zf.writestr(info.filename, b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
            else:
                zf.writestr(info, src.read(info))
    refused(dla("infer", q, files["image"], "-q"), "L000.float.weights")
