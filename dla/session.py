"""STEP and CROSS: stop at any layer, look inside, edit weights, re-run, cross to the other mode.

``Session`` wraps one ``Engine`` run of one input, layer by layer::

    s = Session("model.qnet", "dog.jpg", mode="int")
    s.run_to(8)                       # layers 0..8 have run; layer 8 is current
    s.stats(s.output)                 # min, max, mean, std, zeros %, saturated %, histogram
    s.edit_weights(index=(3, 0, 1, 1), value=-5)   # int8 weight [out 3, in 0, ky 1, kx 1]
    d = s.rerun()                     # layer 8 again: d.changed lists the outputs that moved
    s.undo(); s.rerun()               # back to bit-identical
    c = s.cross()                     # layer 8 in FLOAT on the dequantized INT input
    s.save("debug/"); s.export_qnet("edited.qnet")

Weights are edited in the session's own copy of the model (int8 in INT/HYBRID, float in
FLOAT), with an undo history; the engine's plan of that layer is rebuilt.  Every bad request
(layer out of range, wrong shape, value outside int8, cross on a host layer) raises a
``UserInputError`` and leaves the session unchanged.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dla.compare import cross_layer
from dla.config import HardwareConfig
from dla.engine import Engine, LayerRecord, Mode, quantize_tensor
from dla.fileio import atomic_dir, json_text
from dla.metrics import ErrorMetrics, error_metrics
from golden.errors import UserInputError
from golden.image import load_image, prepare_input
from golden.layers import HOST_LAYERS, ConnectedSpec, ConvSpec, LayerSpec
from golden.network import Network
from quant.qnet import QuantizedNetwork, quantize_weights


@dataclass
class Edit:
    """One weight edit: which layer, and the whole weight tensor before and after."""

    layer: int
    domain: str  # "int8" (the integer weights, int8 or int16 arrays; name kept for saved sessions) or "float"
    before: np.ndarray
    after: np.ndarray
    description: str

    @property
    def changed(self) -> np.ndarray:
        """Indices (rows of an (k, ndim) array) of the weights that differ."""
        return np.argwhere(self.before != self.after)


@dataclass
class Diff:
    """What ``rerun()`` changed in the current layer's output."""

    before: np.ndarray
    after: np.ndarray
    metrics: ErrorMetrics
    changed: np.ndarray  # (k, 3) indices (c, y, x) of outputs that differ

    @property
    def n_changed(self) -> int:
        return int(self.changed.shape[0])


@dataclass
class CrossResult:
    """The current layer run in ``mode`` and in ``other`` from the same input, compared in float."""

    layer: int
    mode: Mode
    other: Mode
    output: np.ndarray  # this run's output, float view
    other_output: np.ndarray  # the other mode's output, float view
    metrics: ErrorMetrics  # other vs this (reference = the FLOAT side)
    inherited: ErrorMetrics | None = None  # this run's input vs a FLOAT run's input (if known)


def tensor_stats(t: np.ndarray, bins: int = 64) -> dict[str, Any]:
    """min, max, mean, std, % zeros, % saturated (int8: at −128 or 127; int16: at −32768 or 32767)
    and a histogram."""
    a = np.asarray(t)
    f = a.astype(np.float64).reshape(-1)
    counts, edges = np.histogram(f, bins=bins) if f.size else (np.zeros(bins, int), np.zeros(bins + 1))
    sat = 0.0
    if a.dtype in (np.int8, np.int16) and a.size:
        lo, hi = np.iinfo(a.dtype).min, np.iinfo(a.dtype).max
        sat = float(np.mean((a == lo) | (a == hi)) * 100)
    return {"shape": list(a.shape), "dtype": str(a.dtype), "min": float(f.min()) if f.size else 0.0,
            "max": float(f.max()) if f.size else 0.0, "mean": float(f.mean()) if f.size else 0.0,
            "std": float(f.std()) if f.size else 0.0, "zeros_pct": float(np.mean(f == 0) * 100) if f.size else 0.0,
            "saturated_pct": sat, "histogram": {"counts": counts.tolist(), "edges": edges.tolist()}}




def _is_cfg(model: Any) -> bool:
    """A path or name that is not a ``.qnet``: a Darknet cfg (file or shipped name)."""
    if not isinstance(model, (str, Path)):
        return False
    from dla.qnet_file import is_qnet

    return not is_qnet(model)


class Session:
    """A layer-by-layer run of one input that can be stopped, inspected, edited and crossed."""

    def __init__(self, model: str | Path | QuantizedNetwork | Engine | Network, *args: Any,
                 mode: str | Mode | None = None, hw: HardwareConfig | None = None, image: Any = None,
                 weights: str | Path | None = None, calib: list[str | Path] | str | Path | int | None = None,
                 granularity: str = "per_channel", activations: str = "mse", seed: int = 0) -> None:
        """Two forms:

        * ``Session(model, image, mode="int", hw=None)`` — ``model`` a ``.qnet`` path, a
          ``QuantizedNetwork``, an ``Engine`` or a (FLOAT-only) ``Network``;
        * ``Session(cfg, weights, image=None, mode="int", calib=...)`` — ``cfg`` a ``.cfg`` path or a
          shipped name, ``weights`` a Darknet ``.weights`` file (``None``: seeded random weights,
          ``seed``; a shipped trained model's own weights for its name — ``dla.resolve``).
          INT/HYBRID calibrate exactly as ``dla infer`` does (``dla.calibration.calibrate``):
          ``calib`` is a list of images, a folder or list file, or a count of synthetic inputs;
          absent, the input image itself.  ``activations`` and ``granularity`` are the
          quantization spec (``quant.QuantSpec``).  ``image`` defaults to the first calibration
          image.  A FLOAT session is calibrated only when ``calib`` is given (to cross to INT).

        ``image`` is a path or an already prepared ``(C, H, W)`` float array.
        """
        if _is_cfg(model):
            if len(args) > 2:
                raise UserInputError("Session(cfg, weights, image) takes at most 3 positional arguments; "
                                     "give mode= and hw= by keyword")
            if args and weights is not None:
                raise UserInputError("weights given twice (positionally and as weights=)")
            weights = args[0] if args else weights
            image = args[1] if len(args) > 1 else image
            self.mode = Mode(mode or "int")
            model, image = self._from_cfg(model, weights, image, calib, granularity, activations, seed, hw)
        else:
            if len(args) > 3:
                raise UserInputError("Session(model, image, mode, hw) takes at most 4 positional arguments")
            if calib is not None or weights is not None:
                raise UserInputError("calib= and weights= apply to the Session(cfg, weights, ...) form; "
                                     f"{type(model).__name__ if not isinstance(model, (str, Path)) else model} "
                                     "is already a complete model")
            image = args[0] if args else image
            mode = args[1] if len(args) > 1 else mode
            hw = args[2] if len(args) > 2 else hw
            self.mode = Mode(mode or "int")
        if image is None:
            raise UserInputError("Session needs an input image (a path or a (C, H, W) array)")
        self.engine = self._engine(model, hw)
        self.net: Network = self.engine.net
        if isinstance(image, np.ndarray):
            x = image
            self.image_size = (x.shape[2], x.shape[1])
        else:
            im = load_image(image)
            self.image_size = (im.shape[2], im.shape[1])
            x = prepare_input(im, self.net.input_shape, letterbox=self.net.letter_box)
        if x.shape != self.net.input_shape:
            raise UserInputError(f"input has shape {x.shape}, {self.net.name} expects {self.net.input_shape}")
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.records: dict[int, LayerRecord] = {}
        self.index = -1  # the layer most recently run
        self.edits: list[Edit] = []
        self.crosses: list[CrossResult] = []

    def _from_cfg(self, cfg: str | Path, weights: str | Path | None, image: Any, calib: Any, granularity: str,
                  activations: str, seed: int, hw: HardwareConfig | None) -> tuple[Engine, Any]:
        """The ``(cfg, weights)`` form: load (or seed) the network and calibrate it like ``dla infer``
        (``dla.resolve``: the same resolver and calibration as every command)."""
        from dla.calibration import resolve_images
        from dla.resolve import make_engine, resolve_model
        from quant.spec import QuantSpec

        model = resolve_model(cfg, weights, seed=seed if weights is None else None, hw=hw)
        calib_list = [Path(c) for c in calib] if isinstance(calib, (list, tuple)) else calib
        if image is None:
            if isinstance(calib_list, list) and calib_list:
                image = calib_list[0]
            elif isinstance(calib_list, (str, Path)):
                images = resolve_images(calib_list, None)
                image = images[0] if images else None
        if self.mode is Mode.FLOAT and calib is None:
            return make_engine(model, calibrate_now=False), image
        default = Path(image) if isinstance(image, (str, Path)) else None
        if calib is None and default is None:
            raise UserInputError("calibrating needs images: give calib=[...] (or an image path)")
        engine = make_engine(model, calib=calib_list if not isinstance(calib_list, int) else None,
                             synthetic=calib_list if isinstance(calib_list, int) else None, default_image=default,
                             granularity=granularity, spec=QuantSpec(activations, granularity=granularity),
                             check=False)
        return engine, image

    # ------------------------------------------------------------------ construction
    def _engine(self, model: Any, hw: HardwareConfig | None) -> Engine:
        if isinstance(model, Engine):
            engine = model
        elif isinstance(model, QuantizedNetwork):
            engine = Engine(model.net, model, hw or HardwareConfig())
        elif isinstance(model, Network):
            engine = Engine(model, None, hw or HardwareConfig())
        else:  # a .qnet path (dla.resolve: its own hardware unless hw is given)
            from dla.resolve import make_engine, resolve_model

            engine = make_engine(resolve_model(model, hw=hw), calibrate_now=False)
        # the session edits weights: work on private copies so the caller's model is untouched
        net = copy.copy(engine.net)
        net.params = {i: copy.deepcopy(p) for i, p in engine.net.params.items()}
        qnet = None
        if engine.qnet is not None:
            qnet = copy.copy(engine.qnet)
            qnet.net = net
            qnet.layers = {i: copy.copy(ql) for i, ql in engine.qnet.layers.items()}
            for ql in qnet.layers.values():
                ql.w_q = ql.w_q.copy()
        if self.mode is not Mode.FLOAT and qnet is None:
            raise UserInputError(f"{self.mode.value.upper()} mode needs a quantized model (.qnet or a "
                                 "QuantizedNetwork)")
        engine = Engine(net, qnet, engine.hw)
        if self.mode is Mode.INT:
            engine.plans()
        return engine

    # ------------------------------------------------------------------ moving
    def _check_index(self, i: int) -> int:
        n = len(self.net.layers)
        if not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise UserInputError(f"layer {i} is out of range: {self.net.name} has layers 0..{n - 1}")
        return int(i)

    def step(self) -> LayerRecord:
        """Run the next layer; it becomes the current one."""
        if self.index + 1 >= len(self.net.layers):
            raise UserInputError(f"already at the last layer ({self.index}); nothing left to step")
        i = self.index + 1
        self.records[i] = self.engine.layer(i, self.mode, self.engine.layer_inputs(i, self.mode, self.records, self.x))
        self.index = i
        return self.records[i]

    def run_to(self, i: int) -> LayerRecord:
        """Run up to layer ``i`` (inclusive); going back re-runs from there on the next steps."""
        i = self._check_index(i)
        if i <= self.index:
            for j in [k for k in self.records if k > i]:
                del self.records[j]
            self.index = i
            return self.records[i]
        while self.index < i:
            self.step()
        return self.records[i]

    def run(self) -> LayerRecord:
        return self.run_to(len(self.net.layers) - 1)

    # ------------------------------------------------------------------ looking
    def _current(self) -> LayerSpec:
        if self.index < 0:
            raise UserInputError("no layer has run yet: call step() or run_to(N) first")
        return self.net.layers[self.index]

    @property
    def layer(self) -> dict[str, Any]:
        spec = self._current()
        info: dict[str, Any] = {"index": spec.index, "type": spec.kind.value, "inputs": list(spec.inputs),
                                "in_shape": list(spec.in_shape), "out_shape": list(spec.out_shape),
                                "macs": spec.macs, "params": spec.n_params, "mode": self.mode.value,
                                "host": spec.kind in HOST_LAYERS}
        if self.engine.qnet is not None:
            # a 'host: true' override sends a conv to the host too; precision: quant.precision's label
            info["host"] = self.engine.qnet.on_host(spec)
            info["precision"] = self.engine.qnet.precision(spec).label
            info["out_scale"] = self.engine.qnet.scales[spec.index]
            info["in_scales"] = [self.engine.qnet.scales[i] for i in spec.inputs]
            if spec.index in self.engine.qnet.layers:
                info["weight_scale"] = self.engine.qnet.layers[spec.index].w_scale.tolist()
        return info

    def _input_record(self, i: int) -> tuple[np.ndarray, float | None]:
        if i == -1:
            if self.mode is Mode.INT:
                return self.engine.int_tensor(-1, self.records, self.x), self.engine.qnet.scales[-1]
            return self.x, None
        r = self.records[i]
        return r.output, r.scale

    @property
    def inputs(self) -> list[np.ndarray]:
        """The current layer's inputs as the mode computes with them (int8, or int16, in INT)."""
        return [self._input_record(i)[0] for i in self._current().inputs]

    @property
    def input(self) -> np.ndarray:
        return self.inputs[0]

    @property
    def input_real(self) -> np.ndarray:
        arr, s = self._input_record(self._current().inputs[0])
        return arr if s is None else arr.astype(np.float32) * np.float32(s)

    @property
    def output(self) -> np.ndarray:
        return self.records[self._current().index].output

    @property
    def output_real(self) -> np.ndarray:
        return self.records[self._current().index].real

    def _param_layer(self) -> ConvSpec | ConnectedSpec:
        spec = self._current()
        if not isinstance(spec, (ConvSpec, ConnectedSpec)):
            raise UserInputError(f"layer {spec.index} ({spec.kind.value}) has no weights")
        return spec

    @property
    def weights(self) -> np.ndarray:
        """Integer weights in INT/HYBRID (int8; int16 for 16-bit weights), float32 in FLOAT (the
        values the mode computes with)."""
        spec = self._param_layer()
        if self.mode is Mode.FLOAT:
            return self.net.params[spec.index].weights
        return self.engine.qnet.layers[spec.index].w_q

    @property
    def weights_float(self) -> np.ndarray:
        spec = self._param_layer()
        if self.mode is Mode.FLOAT:
            return self.net.params[spec.index].weights
        ql = self.engine.qnet.layers[spec.index]
        return ql.w_q.astype(np.float64) * ql.w_scale.reshape((-1,) + (1,) * (ql.w_q.ndim - 1))

    @property
    def bias(self) -> np.ndarray:
        spec = self._param_layer()
        if self.mode is Mode.FLOAT:
            return self.net.params[spec.index].biases
        return self.engine.qnet.layers[spec.index].b_q

    @property
    def bias_float(self) -> np.ndarray:
        spec = self._param_layer()
        if self.mode is Mode.FLOAT:
            return self.net.params[spec.index].biases
        return self.engine.qnet.layers[spec.index].b_float

    @staticmethod
    def stats(tensor: np.ndarray, bins: int = 64) -> dict[str, Any]:
        return tensor_stats(tensor, bins)

    # ------------------------------------------------------------------ editing
    def edit_weights(self, index: Any = None, value: float | int | None = None,
                     scale_channel: tuple[int, float] | None = None, array: np.ndarray | None = None) -> Edit:
        """Change the current layer's weights: ``index`` + ``value`` (an index, slice or tuple),
        ``scale_channel=(c, factor)`` (output channel ``c`` times ``factor``; in integers rounded half
        away from zero and clipped to the layer's narrow range — ±127 for int8, ±7 for int4 — by
        ``quant.qnet.quantize_weights``, the quantizer's own rule: 5 × 0.5 → 3), or ``array`` (the
        whole tensor).  Checked before anything changes."""
        spec = self._param_layer()
        if scale_channel is not None and (not isinstance(scale_channel[0], (int, np.integer))
                                          or not np.isfinite(scale_channel[1])):
            raise UserInputError(f"layer {spec.index}: scale_channel needs (integer channel, finite factor), "
                                 f"got {scale_channel!r}")
        current = self.weights
        is_int = self.mode is not Mode.FLOAT
        w_bits = self.engine.qnet.layers[spec.index].w_bits if is_int else 8
        kind = f"int{w_bits}"
        w_max = (1 << (w_bits - 1)) - 1
        new = current.astype(np.int64) if is_int else current.copy()  # wide, so range checks see the value
        if array is not None:
            arr = np.asarray(array)
            if arr.shape != current.shape:
                raise UserInputError(f"layer {spec.index}: array has shape {arr.shape}, the weights are {current.shape}")
            if is_int and not np.issubdtype(arr.dtype, np.integer):
                raise UserInputError(f"layer {spec.index}: {self.mode.value} weights are {kind}; give an integer array")
            new = arr
            desc = "replaced from an array"
        elif scale_channel is not None:
            c, factor = scale_channel
            if not 0 <= c < current.shape[0]:
                raise UserInputError(f"layer {spec.index}: channel {c} out of range 0..{current.shape[0] - 1}")
            scaled = current[c].astype(np.float64) * factor
            # int8: the quantizer's own rounding (half away from zero, clip to ±127), so that scaling
            # by f here equals quantizing the float weights times f (np.round would tie to even)
            new[c] = quantize_weights(scaled[None], np.ones(1), w_bits)[0] if is_int else scaled
            desc = f"channel {c} scaled by {factor}"
        elif index is not None and value is not None:
            try:
                new[index] = value
            except (IndexError, ValueError, TypeError) as exc:
                raise UserInputError(f"layer {spec.index}: bad index {index!r} for weights {current.shape} "
                                     f"({exc})") from None
            if is_int and (np.asarray(value) != np.round(np.asarray(value))).any():
                raise UserInputError(f"layer {spec.index}: {kind} weights take integers, got {value!r}")
            desc = f"weights[{index}] = {value}"
        else:
            raise UserInputError("edit_weights needs index+value, scale_channel=(c, factor) or array=")
        if not np.all(np.isfinite(np.asarray(new, dtype=np.float64))):
            raise UserInputError(f"layer {spec.index}: weights must be finite")
        if is_int:
            if np.any(np.asarray(new) < -w_max) or np.any(np.asarray(new) > w_max):
                raise UserInputError(f"layer {spec.index}: {kind} weights must be in [{-w_max}, {w_max}]")
            new = np.asarray(new).astype(current.dtype)
        else:
            new = np.asarray(new, dtype=np.float32)
        edit = Edit(spec.index, "int8" if is_int else "float", current.copy(), new.copy(), desc)
        self.engine.set_weights(spec.index, new)
        self.edits.append(edit)
        return edit

    def undo(self) -> Edit:
        if not self.edits:
            raise UserInputError("nothing to undo")
        edit = self.edits.pop()
        self.engine.set_weights(edit.layer, edit.before)
        return edit

    def rerun(self) -> Diff:
        """Run the current layer again (with the edited weights) on the same inputs."""
        spec = self._current()
        before = self.records[spec.index]
        after = self.engine.layer(spec, self.mode, self.engine.layer_inputs(spec, self.mode, self.records, self.x))
        self.records[spec.index] = after
        changed = np.argwhere(before.output != after.output)
        return Diff(before.real, after.real, error_metrics(before.real, after.real), changed)

    # ------------------------------------------------------------------ crossing
    def cross(self, continue_from_cross: bool = False) -> CrossResult:
        """The current layer in the other mode (INT <-> FLOAT; HYBRID -> FLOAT) from the same input:
        the layer's isolated error, computed by ``dla.compare.cross_layer`` (the one definition
        ``dla compare --isolated`` also uses)."""
        spec = self._current()
        crossed = cross_layer(self.engine, spec, self.mode, self.records, self.x)
        mine = self.records[spec.index]
        result = CrossResult(spec.index, self.mode, crossed.other, mine.real, crossed.other_real, crossed.metrics)
        self.crosses.append(result)
        if continue_from_cross:
            if self.mode is Mode.INT:
                qnet = self.engine.qnet
                q = quantize_tensor(crossed.other_real, qnet.scales[spec.index], qnet.tensor_bits(spec.index))
                self.records[spec.index] = LayerRecord(spec, q, self.engine.qnet.scales[spec.index])
            else:
                self.records[spec.index] = LayerRecord(spec, np.asarray(crossed.other_real, dtype=np.float32))
        return result

    # ------------------------------------------------------------------ keeping
    def save(self, path: str | Path) -> Path:
        """Every tensor seen so far, every edit and cross, as files (reload with ``load_saved``)."""
        layers = []
        with atomic_dir(path, replace_if="session.json") as tmp:
            np.save(tmp / "input.npy", self.x)
            for i, rec in sorted(self.records.items()):
                np.save(tmp / f"{i:03d}.npy", rec.output)
                layers.append({"index": i, "type": rec.spec.kind.value, "shape": list(rec.output.shape),
                               "dtype": str(rec.output.dtype), "file": f"{i:03d}.npy", "scale": rec.scale,
                               "overflow": rec.stats.overflow, "saturated": rec.stats.saturated})
            edits = []
            for k, e in enumerate(self.edits):
                np.save(tmp / f"edit{k:03d}_before.npy", e.before)
                np.save(tmp / f"edit{k:03d}_after.npy", e.after)
                edits.append({"layer": e.layer, "domain": e.domain, "description": e.description,
                              "before": f"edit{k:03d}_before.npy", "after": f"edit{k:03d}_after.npy",
                              "changed": int(e.changed.shape[0])})
            crosses = [{"layer": c.layer, "mode": c.mode.value, "other": c.other.value,
                        "metrics": {k: (v if np.isfinite(v) else str(v)) for k, v in c.metrics.to_dict().items()}}
                       for c in self.crosses]
            (tmp / "session.json").write_text(json_text(
                {"format": "dla-session", "version": 1, "model": self.net.name, "mode": self.mode.value,
                 "current": self.index, "input": {"file": "input.npy", "shape": list(self.x.shape)},
                 "layers": layers, "edits": edits, "crosses": crosses}))
        return Path(path)

    @staticmethod
    def load_saved(path: str | Path) -> tuple[dict, dict[int, np.ndarray]]:
        """``(session.json, {index: array, -1: input})`` of a saved session."""
        p = Path(path)
        meta = json.loads((p / "session.json").read_text())
        arrays = {-1: np.load(p / meta["input"]["file"])}
        for layer in meta["layers"]:
            arrays[layer["index"]] = np.load(p / layer["file"])
        return meta, arrays

    def export_qnet(self, path: str | Path) -> Path:
        """The edited model as a .qnet (INT/HYBRID sessions)."""
        if self.engine.qnet is None:
            raise UserInputError("only a quantized session can be exported as .qnet")
        if self.mode is Mode.FLOAT and self.edits:
            raise UserInputError("float-mode edits are not in the int8 weights; export from an int/hybrid session")
        from dla.qnet_file import save_qnet

        return save_qnet(self.engine.qnet, self.engine.hw, path)


__all__ = ["CrossResult", "Diff", "Edit", "Session", "tensor_stats"]
