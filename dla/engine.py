"""One engine, three modes: run a network layer by layer in FLOAT, HYBRID or INT.

* FLOAT — the golden engine (``golden.engine``: Darknet semantics, unfolded batch norm); the
  Engine delegates to it, so there is one float layer loop.
* HYBRID — conv/connected run the integer MAC path up to the accumulator (input quantized
  with its tensor's scale, int8 weights, exact int32 sums); the accumulator is dequantized
  (``acc·s_x·s_w``), the folded float bias added, and the activation and every other layer
  run in float32 (the Yolo2-Lite scheme).
* INT — every layer in integers on int8 tensors — int16 where the spec widened a tensor
  (``quant.precision``) — on the DLA (``dla.int_kernels``); host layers (yolo, region, softmax,
  and any layer the spec sent to the host with ``host: true``) run in float on their
  dequantized input, and the next DLA layer quantizes their output.

Every layer's output is kept (int8 plus its scale in INT mode) with per-layer event counts,
so runs can be compared layer by layer (``dla.compare``).  One layer in one mode is
:meth:`Engine.layer`; the inputs a run gives a layer are :meth:`Engine.layer_inputs`.
Whole runs (:meth:`Engine.run`), ``dla compare`` (CROSS, isolated errors) and the STEP
``Session`` all go through these two.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dla.config import HardwareConfig
from dla.int_kernels import INT_KERNELS, LayerPlan, LayerStats, build_plan, conv_accumulate, exact_int_gemm, gemm_plan
from dla.precision import check_precision
from golden import engine as golden_engine
from golden.activations import activate
from golden.errors import UserInputError
from golden.layers import ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant.numerics import quantize_tensor, signed_range  # quantize_tensor: re-exported
from quant.qnet import QuantizedNetwork, int_dtype


class Mode(str, enum.Enum):
    FLOAT = "float"
    HYBRID = "hybrid"
    INT = "int"


@dataclass
class LayerRecord:
    """One layer's output in one run: float32, or int8/int16 with ``scale`` (real = q × scale)."""

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
            check_precision(self.qnet, self.hw)
            self._plans = {s.index: build_plan(s, self.qnet, self.hw) for s in self.net.layers
                           if not self.qnet.on_host(s)}
        return self._plans

    def _require_qnet(self, mode: Mode) -> None:
        if self.qnet is None:
            raise UserInputError(f"{mode.value.upper()} mode needs a quantized network (calibrate first)")

    def set_weights(self, layer: int, weights: np.ndarray) -> None:
        """Replace layer ``layer``'s weights with a copy of ``weights`` (same shape).

        An integer array of the layer's weight dtype (int8, or int16 for 16-bit weights) replaces
        the quantized weights (``qnet.layers[layer].w_q``, what HYBRID and INT compute with; values
        beyond the width's narrow range are refused) and rebuilds that layer's INT plan if the
        plans were built; a float
        array replaces the float weights (``net.params[layer].weights``, what FLOAT computes
        with).  The other domain is left as it is: nothing is re-quantized or dequantized — the
        STEP debugger edits exactly the values its mode computes with.  Biases are unchanged.
        """
        spec = self._spec(layer)
        w = np.asarray(weights)
        integer = np.issubdtype(w.dtype, np.integer)
        if integer:
            self._require_qnet(Mode.INT)
            ql = self.qnet.layers.get(spec.index)
            if ql is None:
                raise UserInputError(f"layer {spec.index} ({spec.kind.value}) has no integer weights")
            target = ql.w_q
            if w.dtype != target.dtype:
                raise UserInputError(f"layer {spec.index}: its {ql.w_bits}-bit weights are {target.dtype}, "
                                     f"got {w.dtype}")
            hi = signed_range(ql.w_bits)[1]
            if w.size and int(np.abs(w.astype(np.int32)).max()) > hi:
                raise UserInputError(f"layer {spec.index}: {ql.w_bits}-bit weights lie in [-{hi}, {hi}]")
        elif np.issubdtype(w.dtype, np.floating):
            params = self.net.params.get(spec.index)
            if params is None:
                raise UserInputError(f"layer {spec.index} ({spec.kind.value}) has no weights loaded")
            target = params.weights
        else:
            raise UserInputError(f"layer {spec.index}: weights must be integer or float, got {w.dtype}")
        if w.shape != target.shape:
            raise UserInputError(f"layer {spec.index}: weights have shape {target.shape}, got {w.shape}")
        if integer:
            ql.w_q = w.copy()
            if self._plans is not None:
                self._plans[spec.index] = build_plan(spec, self.qnet, self.hw)
        else:
            params.weights = w.copy()

    # -------------------------------------------------------------- one layer
    def _spec(self, layer: int | LayerSpec) -> LayerSpec:
        if isinstance(layer, LayerSpec):
            return layer
        n = len(self.net.layers)
        if not isinstance(layer, (int, np.integer)) or not 0 <= layer < n:
            raise UserInputError(f"layer {layer} is out of range: {self.net.name} has layers 0..{n - 1}")
        return self.net.layers[int(layer)]

    def int_tensor(self, i: int, records: dict[int, LayerRecord], x: np.ndarray) -> np.ndarray:
        """Tensor ``i`` (``-1``: the network input) as the DLA reads it in an INT run: integers of
        the tensor's width ``qnet.tensor_bits(i)`` (int8, or int16) on its scale ``qnet.scales[i]``.
        An INT layer's record is its own output; a float producer — the network input ``x`` or a
        host layer's output — is quantized with that tensor's calibrated scale and width,
        ``quantize_tensor`` (divide, round half away from zero, saturate to the width's range)."""
        self._require_qnet(Mode.INT)
        rec = None if i == -1 else records[i]
        if rec is not None and rec.scale is not None:
            return rec.output
        return quantize_tensor(x if rec is None else rec.output, self.qnet.scales[i], self.qnet.tensor_bits(i))

    def layer_inputs(self, layer: int | LayerSpec, mode: Mode | str, records: dict[int, LayerRecord],
                     x: np.ndarray) -> list[np.ndarray]:
        """The inputs ``mode``'s run gives layer ``layer`` — what :meth:`layer` takes.

        ``records`` holds that run's earlier layers (``{index: LayerRecord}``), ``x`` is the float32
        network input (tensor ``-1``).  FLOAT and HYBRID, and INT host layers: the float32 real
        values (an INT record dequantized, ``LayerRecord.real``).  INT layers on the DLA: integers,
        see :meth:`int_tensor` (the network input and host outputs are quantized here).
        """
        spec = self._spec(layer)
        mode = Mode(mode)
        if mode is Mode.INT and not self.qnet.on_host(spec):
            return [self.int_tensor(i, records, x) for i in spec.inputs]
        return [x if i == -1 else records[i].real for i in spec.inputs]

    def layer(self, layer: int | LayerSpec, mode: Mode | str, inputs: Sequence[np.ndarray]) -> LayerRecord:
        """Run one layer (index or spec) in ``mode`` on ``inputs``: one tensor per ``spec.inputs``,
        in that order, in the mode's representation (:meth:`layer_inputs` gathers them from a run).

        * FLOAT: float32 inputs; ``golden.engine.layer`` (Darknet's kernel and fork; a conv or
          connected layer without weights raises "layer N (kind) has no weights loaded").
          Returns the float32 output, ``scale=None``.
        * HYBRID: float32 inputs.  Conv/connected on the DLA quantize their input with the input
          tensor's scale and width (``quantize_tensor``), multiply-accumulate exactly with the
          integer weights, dequantize (``acc·s_x·s_w``, float64), add the folded float bias and
          apply the activation in float32.  Every other layer (and a host conv) is FLOAT.
          ``scale=None``.
        * INT, DLA layers: integer inputs, input ``k`` of width ``qnet.tensor_bits(spec.inputs[k])``
          (int8 or int16) on scale ``qnet.scales[spec.inputs[k]]``; ``dla.int_kernels`` with the
          layer's plan.  Returns the output tensor's width with ``scale=qnet.scales[spec.index]``
          and the event counts in ``stats``.
        * INT, host layers (yolo, region, softmax..., ``host: true``): float32 inputs (the
          dequantized integers); FLOAT's kernel.  ``scale=None`` — the next DLA layer quantizes it
          (:meth:`int_tensor`).

        HYBRID and INT need the quantized network; INT builds all plans on first use (an
        unsupported layer or width raises ``UnsupportedError``).  The wrong number of inputs, or
        input of the wrong integer type to an INT DLA layer, raises ``UserInputError``.
        ``seconds`` is left 0.
        """
        spec = self._spec(layer)
        mode = Mode(mode)
        if len(inputs) != len(spec.inputs):
            raise UserInputError(f"layer {spec.index} ({spec.kind.value}) reads {len(spec.inputs)} "
                                 f"tensor(s), got {len(inputs)}")
        if mode is Mode.FLOAT:
            return LayerRecord(spec, golden_engine.layer(self.net, spec, inputs))
        self._require_qnet(mode)
        if mode is Mode.HYBRID:
            if isinstance(spec, (ConvSpec, ConnectedSpec)) and not self.qnet.on_host(spec):
                return LayerRecord(spec, self._hybrid_mac(spec, inputs[0]))
            return LayerRecord(spec, golden_engine.layer(self.net, spec, inputs))
        if self.qnet.on_host(spec):
            return LayerRecord(spec, golden_engine.layer(self.net, spec, inputs))
        for k, (a, t) in enumerate(zip(inputs, spec.inputs)):
            want = int_dtype(self.qnet.tensor_bits(t))
            if a.dtype != want:
                raise UserInputError(f"layer {spec.index} ({spec.kind.value}) in INT reads "
                                     f"{np.dtype(want).name}; input {k} is {a.dtype}")
        out, stats = INT_KERNELS[spec.kind](spec, list(inputs), self.plans()[spec.index], self.hw)
        return LayerRecord(spec, out, self.qnet.scales[spec.index], stats)

    def _hybrid_mac(self, spec: ConvSpec | ConnectedSpec, x: np.ndarray) -> np.ndarray:
        ql = self.qnet.layers[spec.index]
        t = spec.inputs[0]
        s_x, bits = self.qnet.scales[t], self.qnet.tensor_bits(t)
        dtype, chunk = gemm_plan(ql.w_bits, bits)
        xq = quantize_tensor(x, s_x, bits).astype(dtype)
        w = ql.w_q.reshape(ql.w_q.shape[0], -1).astype(dtype)
        if isinstance(spec, ConvSpec):
            acc = conv_accumulate(spec, xq, w, chunk)
        else:
            acc = exact_int_gemm(w, xq.reshape(-1, 1), chunk).reshape(spec.out_shape)
        shape = (-1,) + (1,) * (acc.ndim - 1)
        real = acc.astype(np.float64) * (s_x * ql.w_scale).reshape(shape) + ql.b_float.reshape(shape)
        return activate(real.astype(np.float32), spec.activation, inplace=True)

    # -------------------------------------------------------------- whole network
    def run(self, x: np.ndarray, mode: Mode | str = Mode.FLOAT,
            on_layer: Callable[[LayerRecord], None] | None = None) -> RunResult:
        """Every layer in order; FLOAT is ``golden.engine.forward``, the others :meth:`layer` on
        :meth:`layer_inputs`.  ``on_layer(record)`` is called after each layer; a record's
        ``seconds`` is that layer's own time (gathering its inputs included, the callback not)."""
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
        if mode is Mode.FLOAT:
            last = [time.perf_counter()]

            def keep(spec: LayerSpec, out: np.ndarray) -> None:
                rec = records[spec.index] = LayerRecord(spec, out, seconds=time.perf_counter() - last[0])
                if on_layer:
                    on_layer(rec)
                last[0] = time.perf_counter()

            golden_engine.forward(self.net, x, on_layer=keep)
            return RunResult(mode, x, records, time.perf_counter() - t0)
        for spec in self.net.layers:
            t = time.perf_counter()
            rec = self.layer(spec, mode, self.layer_inputs(spec, mode, records, x))
            rec.seconds = time.perf_counter() - t
            records[spec.index] = rec
            if on_layer:
                on_layer(rec)
        return RunResult(mode, x, records, time.perf_counter() - t0)


__all__ = ["Engine", "LayerRecord", "Mode", "RunResult", "quantize_tensor"]
