"""Which machine code computes the exact integer sums of conv/connected layers in INT mode.

Two backends compute the *same* exact integer ``Σ w·x`` (the accumulator semantics around it —
bias, ``acc_bits``, wrap/saturate, the requantizer — are ``dla.int_kernels``' and do not depend
on the backend):

* ``float`` — im2col + float32/float64 BLAS GEMMs on integer-valued floats in chunks short
  enough that every partial sum is exact (``dla.int_kernels.gemm_plan``).  Runs everywhere, any
  operand width.
* ``onnxruntime`` — onnxruntime's ``MatMulInteger`` on a uint8 × int8 pair (MLAS's u8s8
  QGEMM; on AVX-512 VNNI / AVX-VNNI ``vpdpbusd``: 4 u8·s8 products summed straight into an int32
  lane, no intermediate rounding or saturation).  The uint8 side is the weights, ``u = w + 128``
  with zero point 128, a constant of the layer's session; the int8 side is the im2col of the
  int8 activations as they are (``(K, P)``, padding 0).  onnxruntime returns
  ``Σ (u − 128)·x = Σ w·x`` as ``(N, P)`` int32 — the layout the requantizer reads.  (The other
  orientation, activations as uint8 and prepacked weights, has a faster GEMM but returns
  ``(P, N)``, whose transposition cost more than it saved.)  8-bit activations with weights of at
  most 8 bits (4-bit weights are int8 values in ±7) run as one such GEMM; a 16-bit operand is
  split into two int8 digits (:func:`split16`, :class:`WideGemm`: two GEMMs for a16 or w16, four
  for w16a16, recombined exactly).  Used only where no int32 partial sum of any of those GEMMs
  can overflow (:func:`int32_safe`), and for a 16-bit operand only where the split pays
  (:func:`worthwhile`: a large enough ``N·K``; a 16-bit network input stays on float BLAS).  Sessions are cached by weight content
  (:func:`int8_gemm`).

Why a guard is needed: without VNNI, x86 u8s8 GEMMs use ``vpmaddubsw``, which adds *pairs* of
u8·s8 products in a *saturating* int16 (255·127·2 = 64770 > 32767), so such a kernel can return
a wrong sum.  :func:`status` therefore chooses ``onnxruntime`` only when (1) onnxruntime imports,
(2) the CPU advertises ``avx512_vnni`` or ``avx_vnni`` (``/proc/cpuinfo``; elsewhere, including
non-x86, the float path is kept), and (3) a self-test on adversarial operands — weights +127
(u = 255) against all +127, all −128 and alternating activations, −127 weights, plus random
operands, at a size that runs the main (packed, multi-column) kernel and at one column (the
GEMV path of connected layers) — equals an int64 numpy reference exactly.  Otherwise it falls back to ``float``, with
the reason in :attr:`BackendStatus.reason` (``dla doctor`` prints it).

Selection: the environment variable ``DLA_INT_BACKEND`` = ``auto`` (default: the rule above),
``float`` (always the float path), or ``onnxruntime`` (skip the CPU-flag check but keep the
self-test; an error if onnxruntime cannot be used); :func:`force` does the same from Python
(tests).  The choice is read when an INT plan is built (``dla.int_kernels.build_plan``).
"""
from __future__ import annotations

import hashlib
import os
import platform
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.errors import UserInputError
from quant.numerics import INT32_MAX

ENV_VAR = "DLA_INT_BACKEND"
FLOAT = "float"
ORT = "onnxruntime"
CHOICES = ("auto", FLOAT, ORT)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni")
U8_MAX, S8_MAX, S8_MIN_ABS = 255, 127, 128
SELF_TEST_SHAPE = (64, 2304, 96)  # (filters N, depth K, columns P): packed kernel, K of a 3x3x256 conv


@dataclass(frozen=True)
class BackendStatus:
    """The backend in use and why (one line for ``dla doctor`` and the benchmarks)."""

    name: str  # FLOAT or ORT
    reason: str

    def line(self) -> str:
        return f"{self.name} ({self.reason})"


def int32_safe(k: int) -> bool:
    """True when no partial sum of a depth-``k`` u8·s8 dot product can leave int32: every
    partial sum of ``Σ u·x`` (``0 ≤ u ≤ 255``, ``|x| ≤ 128``, whatever order or blocking the
    kernel uses) is at most ``255·128·k`` in magnitude, and so is the zero-point-corrected sum
    (``|Σ w·x| ≤ 127·128·k``)."""
    return U8_MAX * S8_MIN_ABS * k <= INT32_MAX


def eligible(weight_bits: int, activation_bits: int, k: int) -> bool:
    """Whether a layer with these operand widths and GEMM depth ``k`` may use the int8 backend:
    8-bit activations with weights of at most 8 bits directly, 16-bit operands through the
    digit split of :class:`WideGemm`; every int8 GEMM of depth ``k`` int32-safe."""
    return weight_bits in (4, 8, 16) and activation_bits in (8, 16) and int32_safe(k)


def cpu_flags() -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (Linux x86), empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _threads() -> int:
    """Threads for onnxruntime: the BLAS limit in force (threadpoolctl), as the float path has."""
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(1, min(blas)) if blas else max(1, len(os.sched_getaffinity(0)))


def _session(w: np.ndarray, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """A one-node onnxruntime model ``y = MatMulInteger(w + 128, col, 128)``: weights ``w (N, K)``
    as a uint8 initializer with zero point 128, ``col (K, P)`` int8 input; returns
    ``col ↦ y (N, P)`` int32."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k = w.shape[1]
    u = (np.asarray(w, dtype=np.int16) + 128).astype(np.uint8)
    inits = [numpy_helper.from_array(u, "w"), numpy_helper.from_array(np.array(128, np.uint8), "w_zp")]
    node = helper.make_node("MatMulInteger", ["w", "col", "w_zp"], ["y"])
    graph = helper.make_graph([node], "int8_gemm", [helper.make_tensor_value_info("col", TensorProto.INT8, [k, "P"])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # idle onnxruntime threads must not spin on the cores numba's requantizer needs next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return lambda col: sess.run(None, {"col": col})[0]


make_session: Callable[[np.ndarray, int], Callable[[np.ndarray], np.ndarray]] = _session
"""Builds the u8s8 GEMM callable (replaceable: the tests substitute a saturating one)."""

_CACHE: OrderedDict[tuple, "Int8Gemm"] = OrderedDict()
CACHE_SIZE = 128  # sessions (each holds its layer's weights once more: yolov3-tiny ~9 MB for 13)


class Int8Gemm:
    """``col (K, P) int8 ↦ w @ col`` as ``(N, P)`` int32, exact, for integer weights ``w (N, K)``
    with ``|w| ≤ 127`` (onnxruntime session built by :data:`make_session`).  Pickles as its
    weights (a Dask worker rebuilds the session), so plans can travel."""

    def __init__(self, w8: np.ndarray, threads: int) -> None:
        self.w = w8
        self.threads = threads
        self._run = make_session(w8, threads)

    def __call__(self, col: np.ndarray) -> np.ndarray:
        return self._run(col)

    def __reduce__(self) -> tuple:
        return (int8_gemm, (self.w,))


def int8_gemm(w: np.ndarray) -> Int8Gemm:
    """The :class:`Int8Gemm` of integer weights ``w (N, K)``, at the BLAS thread limit in force.
    Cached by (weight bytes, threads), so ``dla tune``'s many configurations that share a layer
    share its session."""
    threads = _threads()
    w8 = np.ascontiguousarray(w, dtype=np.int8)
    key = (w8.shape, hashlib.blake2b(w8.tobytes(), digest_size=16).digest(), threads)
    fn = _CACHE.get(key)
    if fn is None:
        fn = _CACHE[key] = Int8Gemm(w8, threads)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return fn


def split16(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two int8 digits of 16-bit integers: ``v = 256·hi + lo + 128`` exactly, with
    ``hi = v >> 8`` (arithmetic shift, so ``hi ∈ [−128, 127]``) and ``lo = (v & 255) − 128 ∈
    [−128, 127]`` — both fit the int8 operands of the u8s8 GEMM (as weights: ``u ∈ [0, 255]``)."""
    v = np.asarray(v).astype(np.int32, copy=False)
    return (v >> 8).astype(np.int8), ((v & 255) - 128).astype(np.int8)


class WideGemm:
    """``col (K, P) ↦ w @ col`` exactly for 16-bit weights and/or 16-bit activations, from int8
    GEMMs (:func:`int8_gemm`) and the digit split of :func:`split16`:

    * 16-bit weights ``w = 256·wh + wl + 128``: ``w·x = 256·(wh·x) + wl·x + 128·Σ_k x``;
    * 16-bit activations ``x = 256·h + l + 128``: ``w·x = 256·(w·h) + w·l + 128·Σ_k w``.

    Each int8 GEMM is exact in int32 (:func:`int32_safe` on its depth); the terms are combined
    in float64, exact because every value is an integer below 2^53 in magnitude (|w·x| ≤
    2^15·2^15·K).  Returns ``(N, P)`` float64 holding integers — what the float path returns
    for these widths, so the requantizer is the same.  Pickles as (weights, width)."""

    def __init__(self, w: np.ndarray, weight_bits: int) -> None:
        self.w = np.ascontiguousarray(w)
        self.weight_bits = weight_bits
        if weight_bits == 16:
            hi, lo = split16(self.w)
            self._parts = [(256.0, int8_gemm(hi)), (1.0, int8_gemm(lo))]
        else:
            self._parts = [(1.0, int8_gemm(self.w))]
        self._row_sum = self.w.astype(np.int64).sum(axis=1).astype(np.float64)[:, None]

    def _gemm8(self, col8: np.ndarray) -> np.ndarray:
        """``w @ col8`` for int8 ``col8``, as float64."""
        acc = None
        for scale, gemm in self._parts:
            part = gemm(col8).astype(np.float64)
            if scale != 1.0:
                part *= scale
            acc = part if acc is None else acc + part
        if self.weight_bits == 16:
            acc += 128.0 * col8.sum(axis=0, dtype=np.int64).astype(np.float64)[None, :]
        return acc

    def __call__(self, col: np.ndarray) -> np.ndarray:
        if col.dtype == np.int8:
            return self._gemm8(col)
        hi, lo = split16(col)
        acc = self._gemm8(hi)
        acc *= 256.0
        acc += self._gemm8(lo)
        acc += 128.0 * self._row_sum
        return acc

    def __reduce__(self) -> tuple:
        return (WideGemm, (self.w, self.weight_bits))


WIDE_MIN_INTENSITY = 64
"""A 16-bit operand takes the digit split only when ``N·K/(N+K)`` (GEMM work per element of the
split and recombination passes) is at least this.  Measured (2 threads, median of 5, float path
→ split): w8a16 256×1152×676 64 → 2.6 ms, 512×2304×169 24.5 → 1.8 ms, w16a16 256×1152×676
54 → 16 ms; but the first layer of yolov3-tiny with a 16-bit input (N·K/(N+K) = 10: 16×27×173056)
48 → 101 ms, and w16a16 32×144×43264 (26) 60 → 150 ms: there the float GEMM stays."""


def worthwhile(weight_bits: int, activation_bits: int, n: int, k: int) -> bool:
    """Whether the int8 backend is faster than the float path for this layer: always for ≤8-bit
    weights × 8-bit activations; for a 16-bit operand only above :data:`WIDE_MIN_INTENSITY`."""
    return (weight_bits <= 8 and activation_bits == 8) or n * k >= WIDE_MIN_INTENSITY * (n + k)


def exact_gemm(w: np.ndarray, weight_bits: int, activation_bits: int) -> Callable[[np.ndarray], np.ndarray]:
    """The int8 backend's exact GEMM of integer weights ``w (N, K)`` for these widths: the
    direct u8s8 session (int32 result) for ≤8-bit weights × 8-bit activations, else
    :class:`WideGemm` (float64 result).  Callers check :func:`eligible` first."""
    if weight_bits <= 8 and activation_bits == 8:
        return int8_gemm(w)
    return WideGemm(w, weight_bits)


def self_test() -> str | None:
    """Run the u8s8 backend on adversarial operands; ``None`` if every result equals the int64
    reference exactly, else what differed."""
    n, k, p = SELF_TEST_SHAPE
    rng = np.random.default_rng(20261203)
    w = np.empty((n, k), np.int8)
    w[0:n // 2] = S8_MAX  # u = 255: every pair of u8·s8 products overflows int16
    w[n // 2:3 * n // 4] = -S8_MAX
    w[3 * n // 4:] = rng.integers(-S8_MAX, S8_MAX + 1, size=(n - 3 * n // 4, k))
    col = np.empty((k, p), np.int8)
    col[:, 0:p // 4] = S8_MAX
    col[:, p // 4:p // 2] = -S8_MIN_ABS
    col[:, p // 2:3 * p // 4] = np.where(np.arange(k) % 2 == 0, S8_MAX, -S8_MIN_ABS)[:, None]
    col[:, 3 * p // 4:] = rng.integers(-S8_MIN_ABS, S8_MAX + 1, size=(k, p - 3 * p // 4))
    fn = make_session(w, 1)
    for c in (col, col[:, :1]):
        want = w.astype(np.int64) @ c.astype(np.int64)
        got = np.asarray(fn(np.ascontiguousarray(c)))
        if got.shape != want.shape or not np.array_equal(got.astype(np.int64), want):
            bad = int(np.count_nonzero(got.astype(np.int64) != want)) if got.shape == want.shape else -1
            return f"{bad} of {want.size} sums differ on a {n}x{k}x{c.shape[1]} GEMM"
    return None


_forced: str | None = None
_status: dict[str, BackendStatus] = {}


def force(name: str | None) -> None:
    """Select ``auto``/``float``/``onnxruntime`` regardless of ``DLA_INT_BACKEND`` (``None``:
    back to the environment variable).  Forgets the detected status, so the next :func:`status`
    re-detects.  Plans already built keep the backend they were built with."""
    global _forced
    if name is not None and name not in CHOICES:
        raise UserInputError(f"INT backend '{name}' is not one of {', '.join(CHOICES)}")
    _forced = name
    _status.clear()


def requested() -> str:
    """``auto``, ``float`` or ``onnxruntime``: :func:`force`'s choice, else ``DLA_INT_BACKEND``."""
    if _forced is not None:
        return _forced
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise UserInputError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not one of {', '.join(CHOICES)}")
    return value


def _detect(want: str) -> BackendStatus:
    if want == FLOAT:
        return BackendStatus(FLOAT, f"{ENV_VAR}=float")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        if want == ORT:
            raise UserInputError(f"{ENV_VAR}=onnxruntime but onnxruntime cannot be imported ({exc}); "
                                 "pip install onnxruntime onnx") from None
        return BackendStatus(FLOAT, "onnxruntime not installed")
    if want == "auto":
        flags = cpu_flags()
        if not flags & set(VNNI_FLAGS):
            return BackendStatus(FLOAT, f"no VNNI on this CPU ({platform.machine()}): u8s8 int8 GEMMs may "
                                        "saturate pair sums at int16")
    failure = self_test()
    if failure is not None:
        if want == ORT:
            raise UserInputError(f"{ENV_VAR}=onnxruntime but its u8s8 GEMM is not exact on this machine "
                                 f"(self-test: {failure})")
        return BackendStatus(FLOAT, f"onnxruntime u8s8 self-test failed: {failure}")
    import onnxruntime

    how = "forced" if want == ORT else "VNNI"
    return BackendStatus(ORT, f"onnxruntime {onnxruntime.__version__} MatMulInteger u8s8, {how}, self-test exact; "
                              "16-bit operands as two int8 digits where that pays")


def status() -> BackendStatus:
    """The backend new INT plans use, detected once per requested choice (the self-test runs
    once per process)."""
    want = requested()
    if want not in _status:
        _status[want] = _detect(want)
    return _status[want]


def active() -> str:
    """``float`` or ``onnxruntime``: :func:`status`'s name."""
    return status().name
