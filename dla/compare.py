"""FLOAT vs HYBRID vs INT on one input: per-layer metrics and final detections side by side.

Each layer's HYBRID and INT outputs (dequantized) are compared with the FLOAT output of the
same layer in the same run order, so errors are *cumulative* (inherited from earlier layers
plus the layer's own).  Detection agreement with FLOAT: a detection matches a FLOAT one of
the same class with IoU ≥ 0.5 (greedy, best probability first); recall = matched / FLOAT
detections, precision = matched / mode detections, and the mean |Δprob| over matches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dla.engine import Engine, LayerRecord, Mode, RunResult
from dla.metrics import ErrorMetrics, error_metrics
from golden.detect import Detection, detect, iou_xyxy, top_k
from golden.errors import UserInputError
from golden.layers import HOST_LAYERS, LayerSpec
from quant.precision import LayerPrecision


@dataclass
class LayerRow:
    spec: LayerSpec
    metrics: dict[Mode, ErrorMetrics]
    saturated_pct: float  # INT: % of outputs clipped to int8
    overflow: int  # INT: accumulator overflow events
    scale: float | None  # INT output scale
    precision: LayerPrecision | None = None  # the quantized network's widths of the layer (None: no qnet)

    def to_dict(self) -> dict:
        d: dict = {"index": self.spec.index, "type": self.spec.kind.value, "shape": list(self.spec.out_shape),
                   "precision": self.precision.to_dict() if self.precision is not None else None}
        for mode, m in self.metrics.items():
            for k, v in m.to_dict().items():
                d[f"{mode.value}_{k}"] = v if math.isfinite(v) else str(v)
        d.update(int_saturated_pct=self.saturated_pct, int_overflow=self.overflow, int_scale=self.scale)
        return d


@dataclass
class Agreement:
    """Detection agreement of a mode with FLOAT.  A ratio with an empty denominator is **not
    evaluable** and is ``None``, never a perfect 1: ``recall`` needs FLOAT detections,
    ``precision`` the mode's own, ``mean_abs_dprob`` at least one match.  (Two empty sets agree
    trivially, but a check passing on them would say nothing about the arithmetic.)"""

    recall: float | None
    precision: float | None
    mean_abs_dprob: float | None
    matched: int
    n_ref: int = 0  # FLOAT detections
    n_test: int = 0  # the mode's detections

    @property
    def evaluable(self) -> bool:
        return self.recall is not None and self.precision is not None

    def to_dict(self) -> dict:
        return vars(self).copy()

    def text(self) -> str:
        """``recall 0.50 (1/2)  precision ...`` with ``n/a`` (and why) where not evaluable."""
        def ratio(v: float | None, den: int, why: str) -> str:
            return f"{v:.2f} ({self.matched}/{den})" if v is not None else f"n/a ({why})"

        d = f"{self.mean_abs_dprob:.4f}" if self.mean_abs_dprob is not None else "n/a (no match)"
        return (f"recall {ratio(self.recall, self.n_ref, '0 FLOAT detections')}  "
                f"precision {ratio(self.precision, self.n_test, '0 detections')}  mean |dprob| {d}")


@dataclass
class Comparison:
    runs: dict[Mode, RunResult]
    rows: list[LayerRow]
    detections: dict[Mode, list[Detection]] = field(default_factory=dict)
    top: dict[Mode, list[tuple[str, float]]] = field(default_factory=dict)
    agreement: dict[Mode, Agreement] = field(default_factory=dict)


def layer_precision(engine: Engine, spec: LayerSpec) -> LayerPrecision | None:
    """Layer ``spec``'s operand widths in ``engine``'s quantized network (``None`` for a float-only engine)."""
    return engine.qnet.precision(spec) if engine.qnet is not None else None


def match_detections(ref: list[Detection], test: list[Detection], iou: float = 0.5) -> Agreement:
    """Greedy matching (best probability first) of ``test`` to ``ref``: same class, IoU ≥ ``iou``.
    recall = matched / len(ref), precision = matched / len(test); ``None`` where the set is empty."""
    used: set[int] = set()
    dprob = []
    for d in sorted(test, key=lambda d: -d.prob):
        best, best_iou = None, iou
        for j, r in enumerate(ref):
            if j in used or r.cls != d.cls:
                continue
            v = iou_xyxy(d.box, r.box)
            if v >= best_iou:
                best, best_iou = j, v
        if best is not None:
            used.add(best)
            dprob.append(abs(d.prob - ref[best].prob))
    n = len(used)
    return Agreement(n / len(ref) if ref else None, n / len(test) if test else None,
                     float(np.mean(dprob)) if dprob else None, n, len(ref), len(test))


def compare_modes(engine: Engine, x: np.ndarray, image_size: tuple[int, int], names: list[str] | None = None,
                  thresh: float = 0.5, nms: float = 0.45,
                  modes: tuple[Mode, ...] = (Mode.FLOAT, Mode.HYBRID, Mode.INT)) -> Comparison:
    runs = {m: engine.run(x, m) for m in modes}
    ref = runs[Mode.FLOAT]
    rows = []
    for spec in engine.net.layers:
        r = ref.records[spec.index].real
        metrics = {m: error_metrics(r, runs[m].records[spec.index].real) for m in modes if m is not Mode.FLOAT}
        rec = runs[Mode.INT].records[spec.index] if Mode.INT in runs else None
        st = rec.stats if rec else None
        rows.append(LayerRow(spec, metrics, 100.0 * st.saturated / st.elements if st and st.elements else 0.0,
                             st.overflow if st else 0, rec.scale if rec else None, layer_precision(engine, spec)))
    cmp = Comparison(runs, rows)
    net = engine.net
    for m, run in runs.items():
        outs = run.outputs()
        if net.is_detector:
            cmp.detections[m] = detect(net, outs, image_size[0], image_size[1], names, thresh, nms)
        else:
            cmp.top[m] = top_k(outs[net.output_index], 5, names)
    if net.is_detector:
        for m in modes:
            if m is not Mode.FLOAT:
                cmp.agreement[m] = match_detections(cmp.detections[Mode.FLOAT], cmp.detections[m])
    return cmp


OTHER = {Mode.INT: Mode.FLOAT, Mode.HYBRID: Mode.FLOAT, Mode.FLOAT: Mode.INT}
"""The mode CROSS runs a layer in, given the mode of the run: the quantized modes cross to FLOAT."""


@dataclass
class Crossed:
    """One layer run in the other arithmetic from the run's own input (see ``cross_layer``)."""

    other: Mode
    other_real: np.ndarray  # the other arithmetic's output, real values
    metrics: ErrorMetrics  # reference = the FLOAT side, test = the quantized side


def run_input_real(engine: Engine, mode: Mode, records: dict[int, LayerRecord], x: np.ndarray, i: int) -> np.ndarray:
    """The real value of tensor ``i`` (``-1``: the network input) as ``mode``'s run computed with it.
    INT: the dequantized int8 the DLA read (``Engine.int_tensor``: a float producer — the image,
    a host layer — is quantized with its tensor's scale first, as the INT engine does)."""
    if mode is Mode.INT:
        return engine.int_tensor(i, records, x).astype(np.float32) * np.float32(engine.qnet.scales[i])
    return x if i == -1 else records[i].real


def _on_host(engine: Engine, spec: LayerSpec) -> bool:
    """A host kind (yolo, region, softmax...), or a layer the quantization spec sent to the host."""
    return spec.kind in HOST_LAYERS or (engine.qnet is not None and engine.qnet.on_host(spec))


def cross_layer(engine: Engine, spec: LayerSpec, mode: Mode, records: dict[int, LayerRecord],
                x: np.ndarray) -> Crossed:
    """CROSS, the one definition of a layer's **isolated error**: layer ``spec`` of ``mode``'s run
    computed in the other arithmetic *from the same input the run gave it*, compared with the
    run's own output of that layer.

    * INT or HYBRID run → FLOAT: the golden kernel on the run's input (the dequantized int8 in
      INT), against the run's output.  Both sides see one input, so the difference is this layer's
      own arithmetic (weight quantization, accumulation, requantization, output rounding) and
      nothing it inherited.  ``dla compare --isolated``, ``Session.cross()``, ``dla step``'s
      ``cross`` and a scenario's ``cross:`` all report this number.
    * FLOAT run → INT: the INT kernel on the FLOAT run's input quantized with the layer's input
      scales, against the FLOAT output (the same definition from the FLOAT side).

    ``records`` holds the run's layers up to ``spec`` (``LayerRecord``s); metrics take the FLOAT
    side as the reference.  Host layers (yolo, region, softmax..., and ``host: true`` layers) run
    in float in every mode: a ``UserInputError``.
    """
    if _on_host(engine, spec):
        raise UserInputError(f"layer {spec.index} ({spec.kind.value}) runs on the host in float in every "
                             "mode: there is nothing to cross")
    other = OTHER[mode]
    mine = records[spec.index].real
    if other is Mode.FLOAT:
        ins = [run_input_real(engine, mode, records, x, i) for i in spec.inputs]
        other_real = engine.layer(spec, Mode.FLOAT, ins).output
        return Crossed(other, other_real, error_metrics(other_real, mine))
    if engine.qnet is None:
        raise UserInputError("crossing to INT needs a quantized model")
    # the FLOAT run's records are float: the DLA reads them quantized with their tensors' scales
    other_real = engine.layer(spec, Mode.INT, engine.layer_inputs(spec, Mode.INT, records, x)).real
    return Crossed(other, other_real, error_metrics(mine, other_real))


@dataclass
class IsolatedRow:
    """One layer's cumulative error (the INT run vs the FLOAT run at this layer: its own error plus
    everything inherited) and isolated error (``cross_layer`` on the INT run: this layer's own)."""

    spec: LayerSpec
    cumulative: ErrorMetrics
    isolated: ErrorMetrics | None  # None for layers on the host (float in every mode)
    flagged: bool
    precision: LayerPrecision | None = None  # the layer's widths in the INT run

    def to_dict(self) -> dict:
        def clean(m: ErrorMetrics | None) -> dict | None:
            return None if m is None else {k: (v if math.isfinite(v) else str(v)) for k, v in m.to_dict().items()}

        return {"index": self.spec.index, "type": self.spec.kind.value,
                "precision": self.precision.to_dict() if self.precision is not None else None,
                "cumulative": clean(self.cumulative),
                "isolated": clean(self.isolated), "flagged": self.flagged}


def isolated_errors(engine: Engine, x: np.ndarray, threshold_db: float = 20.0) -> list[IsolatedRow]:
    """CROSS at every layer of one INT run: which layer's own arithmetic loses accuracy ("which
    layer broke it?").  The isolated number of layer *i* is exactly what ``Session.cross()`` gives
    after ``run_to(i)`` in INT on the same engine and input."""
    ref = engine.run(x, Mode.FLOAT)
    run = engine.run(x, Mode.INT)
    rows = []
    for spec in engine.net.layers:
        cumulative = error_metrics(ref.records[spec.index].real, run.records[spec.index].real)
        isolated = None if _on_host(engine, spec) else cross_layer(engine, spec, Mode.INT, run.records, x).metrics
        flagged = isolated is not None and isolated.sqnr_db < threshold_db
        rows.append(IsolatedRow(spec, cumulative, isolated, flagged, layer_precision(engine, spec)))
    return rows
