"""Quantize with post-training refinements: the one pipeline ``dla quantize`` and ``dla tune`` call.

:func:`quantize_refined` (and :func:`refine_with_report`, which also returns what each
refinement did) runs, for the names asked for (any subset of :data:`REFINEMENTS`):

1. ``cle`` — cross-layer equalization of the float network (``quant.refine.cle``); the
   statistics are then collected on the *equalized* network (``collect_statistics``, cached by
   the equalized parameters), since its activation ranges per channel differ;
2. quantization by ``spec`` (``quant.quantize``), exactly as without refinements;
3. one pass over the layers in network order, FLOAT and INT run side by side on the calibration
   images (every layer sees the inputs the INT run gives it, so earlier refinements count):
   for each conv/connected layer on the DLA, ``adaround`` re-rounds its weights
   (``quant.refine.adaround``), then ``bias_correction`` corrects its integer bias
   (``quant.refine.bias_correction``).  Each is **kept for a layer only where it lowers that
   layer's output error** — the sum over calibration images of the squared difference between
   the INT output (dequantized) and the FLOAT output — and the report says where it was kept.

The result records ``refinements`` (the names asked for, in :data:`REFINEMENTS` order), and its
arrays *are* the refined model (equalized float parameters, re-rounded ``w_q``, corrected
``b_q``), so a saved ``.qnet`` runs bit-identically without re-running anything.

Memory: step 3 keeps, per calibration image, the tensors still to be read in both runs; at most
:attr:`RefineOptions.max_images` images are used for it (the statistics use all).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from dla.calibration import collect_statistics, synthetic_inputs
from dla.config import HardwareConfig
from dla.engine import Engine, LayerRecord, Mode
from dla.int_kernels import conv_accumulate, exact_int_gemm, gemm_plan
from golden.kernels import im2col
from golden.layers import ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant import collect_ranges, image_inputs, quantize
from quant.calibrate import Ranges
from quant.qnet import QuantizedNetwork
from quant.refine import PIPELINE_ORDER, REFINEMENTS, UnknownRefinementError, check_refinements
from quant.refine.adaround import AdaRoundOptions, adaround_weights, require_torch
from quant.refine.bias_correction import ShiftAccumulator, corrected_bias, keeps
from quant.refine.cle import PairReport, equalize
from quant.spec import QuantSpec

EXACT_FLOAT_CHUNK = 1 << 62  # float64 reference GEMMs: one chunk


@dataclass(frozen=True)
class RefineOptions:
    """Settings of the refinements (defaults are what ``dla quantize`` and ``dla tune`` use)."""

    cle_iterations: int = 20
    adaround: AdaRoundOptions = AdaRoundOptions()
    adaround_columns: int = 4096  # input columns sampled per layer (over all images) for AdaRound
    max_images: int = 64  # calibration images used by the layer pass (step 3)


@dataclass
class LayerRefinement:
    """One layer's outcome for one refinement: output error (sum of squares) without and with it."""

    layer: int
    refinement: str
    error_before: float
    error_after: float
    kept: bool
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "refinement": self.refinement, "error_before": self.error_before,
                "error_after": self.error_after, "kept": self.kept, **self.detail}


@dataclass
class RefineReport:
    """What the pipeline did: CLE pairs, and per layer each layer-wise refinement's outcome."""

    refinements: tuple[str, ...] = ()
    statistics_cached: bool = False  # the calibration statistics came from the cache
    cle_pairs: list[PairReport] = field(default_factory=list)
    cle_iterations: int = 0
    layers: list[LayerRefinement] = field(default_factory=list)

    def kept(self, refinement: str) -> list[int]:
        return [r.layer for r in self.layers if r.refinement == refinement and r.kept]

    def to_dict(self) -> dict:
        return {"refinements": list(self.refinements), "cle_iterations": self.cle_iterations,
                "cle_pairs": [p.to_dict() for p in self.cle_pairs], "layers": [r.to_dict() for r in self.layers]}

    def lines(self) -> list[str]:
        """A short human summary (what ``dla quantize`` prints)."""
        out = []
        if "cle" in self.refinements:
            out.append(f"cle: {len(self.cle_pairs)} pair(s) equalized in {self.cle_iterations} pass(es)")
            for p in self.cle_pairs:
                via = f" via {p.pair.via}" if p.pair.via is not None else ""
                out.append(f"  {p.pair.first} -> {p.pair.second}{via}: precision "
                           f"{p.precision_before[0]:.2f}/{p.precision_before[1]:.2f} -> "
                           f"{p.precision_after[0]:.2f}/{p.precision_after[1]:.2f}")
        for name in ("adaround", "bias_correction"):
            if name in self.refinements:
                rows = [r for r in self.layers if r.refinement == name]
                out.append(f"{name}: kept on {sum(r.kept for r in rows)} of {len(rows)} layer(s) "
                           f"{self.kept(name) or ''}".rstrip())
        return out


CalibSource = list[Path] | int | Sequence[np.ndarray]
"""Calibration images: files, a synthetic count, or the network inputs as float32 arrays."""


def _is_arrays(images: CalibSource) -> bool:
    return not isinstance(images, int) and len(images) > 0 and isinstance(images[0], np.ndarray)


def calibration_arrays(net: Network, images: CalibSource, limit: int) -> list[np.ndarray]:
    """The first ``limit`` calibration inputs as the network reads them (letterboxed float32)."""
    if _is_arrays(images):
        src: Iterable[np.ndarray] = images  # type: ignore[assignment]
    else:
        src = synthetic_inputs(net, images) if isinstance(images, int) else image_inputs(net, images)  # type: ignore[arg-type]
    return [np.ascontiguousarray(x, dtype=np.float32) for x in islice(src, limit)]


def _statistics(net: Network, images: CalibSource, use_cache: bool,
                on_image: Callable[[int], None] | None) -> tuple[Ranges, bool]:
    """``collect_statistics`` (cached) for files or a count; arrays are run directly (no cache key)."""
    if _is_arrays(images):
        return collect_ranges(net, iter(images), on_image=on_image), False  # type: ignore[arg-type]
    return collect_statistics(net, images, use_cache, on_image)  # type: ignore[arg-type]


def quantize_refined(net: Network, calib_images: CalibSource, spec: QuantSpec | None = None,
                     refinements: Sequence[str] = (), hw: HardwareConfig | None = None,
                     on_image: Callable[[int], None] | None = None, use_cache: bool = True,
                     options: RefineOptions | None = None, ranges: Ranges | None = None,
                     on_layer: Callable[[int, int], None] | None = None) -> QuantizedNetwork:
    """Statistics over ``calib_images``, quantization by ``spec`` and the ``refinements``
    (module docstring).

    ``calib_images``: image files, a synthetic count (``dla.calibration``), or the inputs
    themselves as float32 arrays of the network's input shape (letterboxed as for inference).
    ``ranges``: statistics of ``net`` already collected over those images (``dla tune`` collects
    them once); used unless ``cle`` changes the network, whose statistics are then collected
    anew.  With no refinements the result is exactly ``quantize(net, ranges, ...)``.
    Unknown names raise ``UnknownRefinementError``; ``adaround`` without PyTorch raises
    ``TorchMissingError`` — both before any work.  ``on_layer(done, total)`` is called after each
    layer of the layer pass (step 3), for a progress bar."""
    return refine_with_report(net, calib_images, spec, refinements, hw, on_image, use_cache, options, ranges,
                              on_layer)[0]


def refine_with_report(net: Network, calib_images: CalibSource, spec: QuantSpec | None = None,
                       refinements: Sequence[str] = (), hw: HardwareConfig | None = None,
                       on_image: Callable[[int], None] | None = None, use_cache: bool = True,
                       options: RefineOptions | None = None,
                       ranges: Ranges | None = None,
                       on_layer: Callable[[int, int], None] | None = None) -> tuple[QuantizedNetwork, RefineReport]:
    """:func:`quantize_refined` and the :class:`RefineReport` of what each refinement did."""
    if isinstance(calib_images, Ranges) or isinstance(refinements, HardwareConfig):
        raise TypeError("quantize_refined(net, calib_images, spec, refinements, hw, ..., ranges=...): "
                        "calibration images second, statistics as ranges=")
    names = check_refinements(refinements)
    if "adaround" in names:
        require_torch()
    hw = hw or HardwareConfig()
    options = options or RefineOptions()
    report = RefineReport(names)
    work = net
    if "cle" in names:
        res = equalize(net, options.cle_iterations)
        work, report.cle_pairs, report.cle_iterations = res.net, res.pairs, res.iterations
    if ranges is None or work is not net:
        ranges, report.statistics_cached = _statistics(work, calib_images, use_cache, on_image)
    qnet = quantize(work, ranges, route_shared_scale=hw.route_shared_scale, spec=spec)
    layerwise = [n for n in PIPELINE_ORDER if n in names and n != "cle"]
    if layerwise:
        xs = calibration_arrays(work, calib_images, options.max_images)
        report.layers = LayerPass(qnet, hw, xs, options).run(layerwise, on_layer)
    qnet.refinements = names
    return qnet, report


class LayerPass:
    """Step 3 of the pipeline: FLOAT and INT side by side, layer by layer, over images ``xs``."""

    def __init__(self, qnet: QuantizedNetwork, hw: HardwareConfig, xs: list[np.ndarray],
                 options: RefineOptions) -> None:
        self.qnet, self.hw, self.xs, self.options = qnet, hw, xs, options
        self.engine = Engine(qnet.net, qnet, hw)
        self.fl: list[dict[int, LayerRecord]] = [{} for _ in xs]
        self.iq: list[dict[int, LayerRecord]] = [{} for _ in xs]

    def run(self, names: list[str], on_layer: Callable[[int, int], None] | None = None) -> list[LayerRefinement]:
        net, eng = self.qnet.net, self.engine
        eng.plans()
        consumers = net.consumers()
        last_use = {t: max(c) for t, c in consumers.items() if c}
        out: list[LayerRefinement] = []
        for spec in net.layers:
            f_in = [eng.layer_inputs(spec, Mode.FLOAT, self.fl[k], x) for k, x in enumerate(self.xs)]
            q_in = [eng.layer_inputs(spec, Mode.INT, self.iq[k], x) for k, x in enumerate(self.xs)]
            f_out = [eng.layer(spec, Mode.FLOAT, a) for a in f_in]
            if isinstance(spec, (ConvSpec, ConnectedSpec)) and not self.qnet.on_host(spec):
                for name in names:
                    r = self._adaround(spec, f_in, q_in, f_out) if name == "adaround" else \
                        self._bias(spec, f_in, q_in, f_out)
                    if r is not None:
                        out.append(r)
            for k in range(len(self.xs)):
                self.fl[k][spec.index] = f_out[k]
                self.iq[k][spec.index] = eng.layer(spec, Mode.INT, q_in[k])
                for t in (*spec.inputs, spec.index):
                    if t >= 0 and last_use.get(t, -1) <= spec.index:
                        self.fl[k].pop(t, None)
                        self.iq[k].pop(t, None)
            if on_layer:
                on_layer(spec.index + 1, len(net.layers))
        return out

    # ------------------------------------------------------------------ helpers
    def _error(self, spec: LayerSpec, q_in: list[list[np.ndarray]], f_out: list[LayerRecord]) -> float:
        """Σ over images of ‖INT output (dequantized) − FLOAT output‖² with the current plan."""
        total = 0.0
        for a, ref in zip(q_in, f_out):
            y = self.engine.layer(spec, Mode.INT, a).real.astype(np.float64)
            total += float(np.sum((y - ref.output.astype(np.float64)) ** 2))
        return total

    def _rebuild(self, spec: LayerSpec) -> None:
        """Rebuild the layer's INT plan from ``qnet`` (``set_weights`` with its own integer
        weights re-reads the layer's ``w_q`` and ``b_q``)."""
        self.engine.set_weights(spec.index, self.qnet.layers[spec.index].w_q)

    def _try(self, spec: LayerSpec, name: str, attr: str, new: np.ndarray, q_in: list, f_out: list,
             detail: dict) -> LayerRefinement:
        """Measure the layer's error with ``attr`` (``w_q`` or ``b_q``) replaced by ``new``; keep it
        only if the error drops."""
        ql = self.qnet.layers[spec.index]
        old = getattr(ql, attr)
        before = self._error(spec, q_in, f_out)
        setattr(ql, attr, new)
        self._rebuild(spec)
        after = self._error(spec, q_in, f_out)
        kept = keeps(before, after)
        if not kept:
            setattr(ql, attr, old)
            self._rebuild(spec)
        return LayerRefinement(spec.index, name, before, after, kept, detail)

    def _bias(self, spec: ConvSpec | ConnectedSpec, f_in: list, q_in: list, f_out: list) -> LayerRefinement:
        ql = self.qnet.layers[spec.index]
        t = spec.inputs[0]
        s_x = self.qnet.scales[t]
        dtype, chunk = gemm_plan(ql.w_bits, self.qnet.tensor_bits(t))
        n = ql.w_q.shape[0]
        w_int = ql.w_q.reshape(n, -1).astype(dtype)
        w_ref = ql.w_float.reshape(n, -1)
        unit = (s_x * ql.w_scale).reshape(n, 1)
        acc = ShiftAccumulator(n)
        for a_f, a_q in zip(f_in, q_in):
            acc_q = _accumulate(spec, a_q[0].astype(dtype), w_int, chunk) + ql.b_q.reshape(n, 1)
            ref = (_accumulate(spec, a_f[0].astype(np.float64), w_ref, EXACT_FLOAT_CHUNK)
                   + ql.b_float.reshape(n, 1)) / unit
            acc.add(acc_q, ref)
        shift = acc.mean()
        new = corrected_bias(ql.b_q, shift)
        detail = {"mean_abs_shift": float(np.mean(np.abs(shift))), "changed": int(np.sum(new != ql.b_q))}
        return self._try(spec, "bias_correction", "b_q", new, q_in, f_out, detail)

    def _adaround(self, spec: ConvSpec | ConnectedSpec, f_in: list, q_in: list,
                  f_out: list) -> LayerRefinement | None:
        if isinstance(spec, ConvSpec) and spec.groups != 1:
            return None  # grouped convs: not handled (documented in docs/quantization.md)
        ql = self.qnet.layers[spec.index]
        s_x = self.qnet.scales[spec.inputs[0]]
        rng = np.random.default_rng(self.options.adaround.seed + spec.index)
        per = max(1, self.options.adaround_columns // max(1, len(f_in)))
        cols_f, cols_q = [], []
        for a_f, a_q in zip(f_in, q_in):
            cf, cq = _columns(spec, a_f[0].astype(np.float32)), _columns(spec, a_q[0].astype(np.float32) * np.float32(s_x))
            pick = rng.choice(cf.shape[1], size=min(per, cf.shape[1]), replace=False)
            cols_f.append(cf[:, pick])
            cols_q.append(cq[:, pick])
        new = adaround_weights(ql.w_float, ql.w_scale, ql.w_bits, np.concatenate(cols_f, axis=1),
                               np.concatenate(cols_q, axis=1), self.options.adaround).astype(ql.w_q.dtype)
        detail = {"changed": int(np.sum(new != ql.w_q))}
        return self._try(spec, "adaround", "w_q", new, q_in, f_out, detail)


def _accumulate(spec: ConvSpec | ConnectedSpec, x: np.ndarray, w: np.ndarray, chunk: int) -> np.ndarray:
    """``(N, positions)`` float64 sums ``w · x`` of a conv (``conv_accumulate``) or connected layer."""
    if isinstance(spec, ConvSpec):
        return conv_accumulate(spec, x, w, chunk).reshape(w.shape[0], -1).astype(np.float64)
    return exact_int_gemm(w, x.reshape(-1, 1), chunk).astype(np.float64)


def _columns(spec: ConvSpec | ConnectedSpec, x: np.ndarray) -> np.ndarray:
    """The ``(K, positions)`` input columns the layer's GEMM reads (ungrouped conv or connected)."""
    if isinstance(spec, ConvSpec):
        return im2col(x, spec.size, spec.stride_y, spec.stride_x, spec.padding)
    return x.reshape(-1, 1)


__all__ = ["REFINEMENTS", "LayerRefinement", "RefineOptions", "RefineReport", "UnknownRefinementError",
           "calibration_arrays", "quantize_refined", "refine_with_report"]
