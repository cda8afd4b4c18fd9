"""One engine, three modes: run a network layer by layer in FLOAT, HYBRID or INT.

* FLOAT — the golden kernels (Darknet semantics, unfolded batch norm).
* HYBRID — conv/connected run the integer MAC path up to the accumulator (input quantized
  with its tensor's scale, int8 weights, exact int32 sums); the accumulator is dequantized
  (``acc·s_x·s_w``), the folded float bias added, and the activation and every other layer
  run in float32 (the Yolo2-Lite scheme).
* INT — every layer in integers on int8 tensors (``dla.int_kernels``); host layers (yolo,
  region, softmax) run in float on their dequantized input.

Every layer's output is kept (int8 plus its scale in INT mode) with per-layer event counts,
so runs can be compared layer by layer (``dla.compare``).
"""
from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dla.config import HardwareConfig
from dla.int_kernels import INT_KERNELS, LayerPlan, LayerStats, build_plan, exact_int_gemm, conv_accumulate
from golden.activations import activate
from golden.errors import UserInputError
from golden.kernels import KERNELS
from golden.layers import HOST_LAYERS, ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant.numerics import quantize_tensor  # defined with the other float↔int rules; re-exported
from quant.qnet import QuantizedNetwork


class Mode(str, enum.Enum):
    FLOAT = "float"
    HYBRID = "hybrid"
    INT = "int"


@dataclass
class LayerRecord:
    """One layer's output in one run: float32, or int8 with ``scale`` (real = q × scale)."""

    spec: LayerSpec
    output: np.ndarray
    scale: float | None = None
    stats: LayerStats = field(default_factory=LayerStats)
    seconds: float = 0.0

    @property
    def real(self) -> np.ndarray:
        if self.scale is None:
            return self.output
        return (self.output.astype(np.float32) * np.float32(self.scale)).astype(np.float32)


@dataclass
class RunResult:
    mode: Mode
    input: np.ndarray  # float32 network input
    records: dict[int, LayerRecord]
    seconds: float

    def outputs(self) -> dict[int, np.ndarray]:
        """``{index: float32 output}`` (dequantized in INT mode), ``-1`` = the input."""
        out = {i: r.real for i, r in self.records.items()}
        out[-1] = self.input
        return out


class Engine:
    """Runs ``net`` in any mode; INT/HYBRID need the ``QuantizedNetwork`` and a ``HardwareConfig``."""

    def __init__(self, net: Network, qnet: QuantizedNetwork | None = None,
                 hw: HardwareConfig | None = None) -> None:
        self.net = net
        self.qnet = qnet
        self.hw = hw or HardwareConfig()
        self._plans: dict[int, LayerPlan] | None = None

    # -------------------------------------------------------------- INT plans
    def plans(self) -> dict[int, LayerPlan]:
        """Built once; raises ``UnsupportedError`` naming the first layer INT mode cannot run."""
        if self._plans is None:
            self._require_qnet(Mode.INT)
            self._plans = {s.index: build_plan(s, self.qnet, self.hw) for s in self.net.layers
                           if s.kind not in HOST_LAYERS}
        return self._plans

    def _require_qnet(self, mode: Mode) -> None:
        if self.qnet is None:
            raise UserInputError(f"{mode.value.upper()} mode needs a quantized network (calibrate first)")

    # -------------------------------------------------------------- one layer
    def run_layer(self, spec: LayerSpec, mode: Mode, records: dict[int, LayerRecord],
                  x: np.ndarray) -> LayerRecord:
        if mode is Mode.FLOAT:
            out = KERNELS[spec.kind](spec, self._float_inputs(spec, records, x), self.net.params.get(spec.index),
                                   self.net.darknet)
            return LayerRecord(spec, out)
        if mode is Mode.HYBRID:
            return LayerRecord(spec, self._hybrid(spec, self._float_inputs(spec, records, x)))
        return self._int(spec, records, x)

    def _float_inputs(self, spec: LayerSpec, records: dict[int, LayerRecord], x: np.ndarray) -> list[np.ndarray]:
        return [x if i == -1 else records[i].real for i in spec.inputs]

    def _hybrid(self, spec: LayerSpec, inputs: list[np.ndarray]) -> np.ndarray:
        if not isinstance(spec, (ConvSpec, ConnectedSpec)):
            return KERNELS[spec.kind](spec, inputs, self.net.params.get(spec.index), self.net.darknet)
        ql = self.qnet.layers[spec.index]
        s_x = self.qnet.scales[spec.inputs[0]]
        xq = quantize_tensor(inputs[0], s_x).astype(np.float32)
        w = ql.w_q.reshape(ql.w_q.shape[0], -1).astype(np.float32)
        if isinstance(spec, ConvSpec):
            acc = conv_accumulate(spec, xq, w)
        else:
            acc = exact_int_gemm(w, xq.reshape(-1, 1)).reshape(spec.out_shape)
        shape = (-1,) + (1,) * (acc.ndim - 1)
        real = acc.astype(np.float64) * (s_x * ql.w_scale).reshape(shape) + ql.b_float.reshape(shape)
        return activate(real.astype(np.float32), spec.activation, inplace=True)

    def _int(self, spec: LayerSpec, records: dict[int, LayerRecord], x: np.ndarray) -> LayerRecord:
        scales = self.qnet.scales
        if spec.kind in HOST_LAYERS:
            out = KERNELS[spec.kind](spec, self._float_inputs(spec, records, x), None, self.net.darknet)
            return LayerRecord(spec, out)
        inputs = []
        for i in spec.inputs:
            if i == -1:
                inputs.append(quantize_tensor(x, scales[-1]))
            elif records[i].scale is None:  # a host layer's float output feeding the DLA
                inputs.append(quantize_tensor(records[i].output, scales[i]))
            else:
                inputs.append(records[i].output)
        out, stats = INT_KERNELS[spec.kind](spec, inputs, self.plans()[spec.index], self.hw)
        return LayerRecord(spec, out, scales[spec.index], stats)

    # -------------------------------------------------------------- whole network
    def run(self, x: np.ndarray, mode: Mode | str = Mode.FLOAT,
            on_layer: Callable[[LayerRecord], None] | None = None) -> RunResult:
        mode = Mode(mode)
        if x.shape != self.net.input_shape:
            raise UserInputError(f"input has shape {x.shape}, {self.net.name} expects {self.net.input_shape}")
        if mode is not Mode.FLOAT:
            self._require_qnet(mode)
        if mode is Mode.INT:
            self.plans()
        x = np.ascontiguousarray(x, dtype=np.float32)
        records: dict[int, LayerRecord] = {}
        t0 = time.perf_counter()
        for spec in self.net.layers:
            t = time.perf_counter()
            rec = self.run_layer(spec, mode, records, x)
            rec.seconds = time.perf_counter() - t
            records[spec.index] = rec
            if on_layer:
                on_layer(rec)
        return RunResult(mode, x, records, time.perf_counter() - t0)


__all__ = ["Engine", "LayerRecord", "Mode", "RunResult", "quantize_tensor"]
