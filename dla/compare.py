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

from dla.engine import Engine, Mode, RunResult
from dla.metrics import ErrorMetrics, error_metrics
from golden.detect import Detection, detect, iou_xyxy, top_k
from golden.layers import LayerSpec


@dataclass
class LayerRow:
    spec: LayerSpec
    metrics: dict[Mode, ErrorMetrics]
    saturated_pct: float  # INT: % of outputs clipped to int8
    overflow: int  # INT: accumulator overflow events
    scale: float | None  # INT output scale

    def to_dict(self) -> dict:
        d: dict = {"index": self.spec.index, "type": self.spec.kind.value, "shape": list(self.spec.out_shape)}
        for mode, m in self.metrics.items():
            for k, v in m.to_dict().items():
                d[f"{mode.value}_{k}"] = v if math.isfinite(v) else str(v)
        d.update(int_saturated_pct=self.saturated_pct, int_overflow=self.overflow, int_scale=self.scale)
        return d


@dataclass
class Agreement:
    recall: float
    precision: float
    mean_abs_dprob: float
    matched: int

    def to_dict(self) -> dict:
        return vars(self).copy()


@dataclass
class Comparison:
    runs: dict[Mode, RunResult]
    rows: list[LayerRow]
    detections: dict[Mode, list[Detection]] = field(default_factory=dict)
    top: dict[Mode, list[tuple[str, float]]] = field(default_factory=dict)
    agreement: dict[Mode, Agreement] = field(default_factory=dict)


def match_detections(ref: list[Detection], test: list[Detection], iou: float = 0.5) -> Agreement:
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
    return Agreement(n / len(ref) if ref else 1.0, n / len(test) if test else 1.0,
                     float(np.mean(dprob)) if dprob else 0.0, n)


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
                             st.overflow if st else 0, rec.scale if rec else None))
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


@dataclass
class IsolatedRow:
    """One layer's cumulative error (INT run vs FLOAT run) and isolated error (this layer alone
    in INT from the FLOAT run's input, quantized with its input scales, vs FLOAT)."""

    spec: LayerSpec
    cumulative: ErrorMetrics
    isolated: ErrorMetrics | None  # None for host layers (float in every mode)
    flagged: bool

    def to_dict(self) -> dict:
        def clean(m: ErrorMetrics | None) -> dict | None:
            return None if m is None else {k: (v if math.isfinite(v) else str(v)) for k, v in m.to_dict().items()}

        return {"index": self.spec.index, "type": self.spec.kind.value, "cumulative": clean(self.cumulative),
                "isolated": clean(self.isolated), "flagged": self.flagged}


def isolated_errors(engine: Engine, x: np.ndarray, threshold_db: float = 20.0) -> list[IsolatedRow]:
    """CROSS at every layer: which layer's own arithmetic loses accuracy ("which layer broke it?")."""
    from dla.engine import quantize_tensor
    from dla.int_kernels import INT_KERNELS
    from golden.layers import HOST_LAYERS

    ref = engine.run(x, Mode.FLOAT)
    run = engine.run(x, Mode.INT)
    plans = engine.plans()
    scales = engine.qnet.scales
    rows = []
    for spec in engine.net.layers:
        cumulative = error_metrics(ref.records[spec.index].real, run.records[spec.index].real)
        isolated = None
        if spec.kind not in HOST_LAYERS:
            ins = [quantize_tensor(x if i == -1 else ref.records[i].real, scales[i]) for i in spec.inputs]
            out, _ = INT_KERNELS[spec.kind](spec, ins, plans[spec.index], engine.hw)
            real = out.astype(np.float32) * np.float32(scales[spec.index])
            isolated = error_metrics(ref.records[spec.index].real, real)
        flagged = isolated is not None and isolated.sqnr_db < threshold_db
        rows.append(IsolatedRow(spec, cumulative, isolated, flagged))
    return rows
