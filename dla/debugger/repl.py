"""``dla step``: an interactive debugger over one ``dla.session.Session``.

Commands are read line by line (from the terminal with a prompt such as
``dla[12 convolutional]> ``, or from a script); ``help`` lists them::

    next [N] | n [N]          run the next N layers (default 1)
    goto N | goto last        run up to layer N (going back keeps layers 0..N)
    info                      the layer's row of the layer table, its scales and edits
    stats [input|output|weights]   min, max, mean, std, zeros %, saturated %
    show [input|output|weights|cross]   PNG pictures (feature-map grid, histogram, scatter)
    edit w[IDX]=V | edit scale C F | edit load FILE.npy
    undo | rerun | diff | cross [continue] | save DIR | export FILE.qnet | help | quit

A bad command or argument prints one ``error: ...`` line and leaves the session as it
was; ``run_repl`` returns how many commands failed (``dla step --strict`` exits 1 then).
"""
from __future__ import annotations

import difflib
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from dla.engine import LayerRecord, Mode
from dla.info import layer_table
from dla.metrics import ErrorMetrics
from dla.session import CrossResult, Diff, Session, tensor_stats
from golden.errors import DlaError
from golden.layers import HOST_LAYERS, ConvSpec, LayerSpec
from quant.numerics import QMAX

HELP = """\
commands (one per line; '#' starts a comment):
  next [N], n [N]         run the next N layers (default 1); the last one becomes current
  goto N, goto last       run up to layer N (going back keeps layers 0..N, later ones run again)
  info                    the current layer: table row (index, type, shapes, params, MACs), scales, edits
  stats [T]               min, max, mean, std, zeros %, saturated % of T = input | output (default) | weights
  show [T]                PNG pictures of T = input | output (default) | weights: feature-map grid and
                          histogram; show cross: float-vs-int scatter of the output
  edit w[IDX]=V           set weights, e.g. edit w[3,0,1,1]=-5 (int8 in int/hybrid; slices like w[3]=0 work)
  edit scale C F          multiply output channel C's weights by F (rounded and clipped in int8)
  edit load FILE.npy      replace the layer's weights by an array of the same shape
  undo                    take back the last edit
  rerun                   run the current layer again; prints what changed and by how much
  diff                    the last rerun's difference again
  cross [continue]        the current layer in the other mode (int/hybrid <-> float) from the same input:
                          SQNR, max/mean abs error, cosine; 'continue' carries on from the crossed output
  save DIR                every tensor so far, the edits and crosses (DIR/session.json + NNN.npy)
  export FILE.qnet        the edited model as a .qnet
  help                    this list
  quit, exit (or end of input)"""

TENSORS = ("input", "output", "weights")
ALIASES = {"n": "next", "exit": "quit", "q": "quit", "h": "help", "?": "help"}
#: Commands that change nothing a cached CROSS depends on.
READ_ONLY = frozenset({"info", "stats", "show", "diff", "help", "save", "export", "cross"})
EDIT_RE = re.compile(r"^w\s*\[(?P<index>[^\]]*)\]\s*=\s*(?P<value>\S+)$")


class StepError(Exception):
    """A bad command or argument: printed as one ``error:`` line; the session is unchanged."""


@dataclass
class View:
    """One tensor as ``stats`` and ``show`` present it."""

    label: str  # "output", "input 0 (layer 5)", "weights"
    tag: str  # file-name part: output, input, input1, weights
    stored: np.ndarray  # the values the mode computes with (int8 in INT)
    real: np.ndarray  # the real values (stored × scale for int8)
    scale: float | None  # the one scale of an int8 tensor (None: float, or per-channel scales)
    scale_text: str  # "scale 0.0123", "scales 0.001..0.004 (per channel)", ""
    clip: float | None  # the quantization range ±clip of the real values, when known


def _shape(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(map(str, shape))


def _sqnr(m: ErrorMetrics) -> str:
    if math.isinf(m.sqnr_db):
        return "inf" if m.sqnr_db > 0 else "-inf"
    return f"{m.sqnr_db:.2f}"


def _metrics(m: ErrorMetrics) -> str:
    return (f"SQNR {_sqnr(m)} dB, max abs error {m.max_abs:.4g}, mean abs error {m.mean_abs:.4g}, "
            f"cosine {m.cosine:.6f}")


def _metrics_data(m: ErrorMetrics) -> dict[str, Any]:
    """``m`` as JSON-able data: a value that is not finite (SQNR of bit-identical outputs is
    +inf) as its string ("inf", "-inf", "nan"), since JSON has no such numbers."""
    return {k: float(v) if math.isfinite(v) else str(float(v)) for k, v in m.to_dict().items()}


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StepError(f"{what} must be an integer, got {text!r}") from None


def _number(text: str, what: str) -> int | float:
    """An int if ``text`` is one, else a finite float."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        raise StepError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise StepError(f"{what} must be a finite number, got {text!r}")
    return v


def _parse_index(text: str) -> tuple[int | slice, ...]:
    """``"3,0,1,1"`` -> ``(3, 0, 1, 1)``; parts may be slices (``1:3``, ``:``)."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise StepError(f"bad weight index [{text}]: give integers separated by commas, e.g. w[3,0,1,1]")
    index: list[int | slice] = []
    for p in parts:
        if ":" in p:
            bits = p.split(":")
            if len(bits) > 3:
                raise StepError(f"bad slice {p!r} in [{text}]")
            vals = [None if b.strip() == "" else _int(b.strip(), f"slice bound in [{text}]") for b in bits]
            index.append(slice(*vals))
        else:
            index.append(_int(p, f"weight index in [{text}]"))
    return tuple(index)


def _load_npy(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise StepError(f"{path}: file not found")
    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StepError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(data, np.ndarray):
        data.close()
        raise StepError(f"{path}: an .npz archive; give one array saved with numpy.save (.npy)")
    return data


class Stepper:
    """Executes ``dla step`` commands on ``session``; prints to ``output``; counts errors."""

    def __init__(self, session: Session, output: TextIO, pictures: str | Path = "dla-step",
                 interactive: bool = False) -> None:
        self.s = session
        self.out = output
        self.pictures = Path(pictures)
        self.interactive = interactive
        self.errors = 0
        self._last_diff: list[str] | None = None
        self._last_cross: CrossResult | None = None
        #: The last rerun's and the last ``cross``'s numbers as data (the web page shows them next
        #: to its pictures): the same values the printed lines are made of; ±inf SQNR as "inf"/"-inf".
        self.last_rerun: dict[str, Any] | None = None
        self.last_cross: dict[str, Any] | None = None
        self._clean: set[int] = set()  # layers whose record was computed without any edit in effect
        self._baseline: dict[int, np.ndarray] = {}  # unedited outputs of layers that were edited
        self.commands: dict[str, Callable[[str], None]] = {
            "next": self.cmd_next, "goto": self.cmd_goto, "info": self.cmd_info, "stats": self.cmd_stats,
            "show": self.cmd_show, "edit": self.cmd_edit, "undo": self.cmd_undo, "rerun": self.cmd_rerun,
            "diff": self.cmd_diff, "cross": self.cmd_cross, "save": self.cmd_save, "export": self.cmd_export,
            "help": self.cmd_help}

    # ------------------------------------------------------------------ plumbing
    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def error(self, message: str) -> None:
        self.errors += 1
        self.say(f"error: {message}")

    def prompt(self) -> str:
        if self.s.index < 0:
            return "dla[input]> "
        return f"dla[{self.s.index} {self.s.net.layers[self.s.index].kind.value}]> "

    def banner(self) -> str:
        net = self.s.net
        w, h = self.s.image_size
        return (f"dla step: {net.name}, {len(net.layers)} layers (0..{len(net.layers) - 1}), mode {self.s.mode.value}, "
                f"input {w}x{h}; 'help' lists the commands")

    def execute(self, line: str) -> bool:
        """Run one command line; ``False`` when the session should end (quit/exit)."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        parts = text.split(None, 1)
        name = ALIASES.get(parts[0].lower(), parts[0].lower())
        rest = parts[1].strip() if len(parts) > 1 else ""
        if name == "quit":
            return False
        handler = self.commands.get(name)
        if handler is None:
            close = difflib.get_close_matches(name, [*self.commands, "quit"], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.error(f"unknown command {parts[0]!r}{hint}; 'help' lists the commands")
            return True
        if name not in READ_ONLY:
            self._last_cross = self.last_cross = None
        try:
            handler(rest)
        except (StepError, DlaError) as exc:
            self.error(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            self.error(f"{where}{exc.strerror or exc}")
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.error("interrupted")
        except Exception as exc:  # a bug, but the debugging session (and its state) is worth keeping
            self.error(f"unexpected {type(exc).__name__}: {exc}")
        return True

    def _spec(self) -> LayerSpec:
        if self.s.index < 0:
            raise StepError("no layer has run yet: 'next' runs layer 0, 'goto N' runs up to layer N")
        return self.s.net.layers[self.s.index]

    def _qnet(self):  # noqa: ANN202 - QuantizedNetwork | None
        return self.s.engine.qnet

    def _no_args(self, name: str, rest: str) -> None:
        if rest:
            raise StepError(f"{name} takes no arguments, got {rest!r}")

    # ------------------------------------------------------------------ moving
    def _mark(self, i: int) -> None:
        """Remember whether layer ``i``'s current record is an unedited one."""
        spec = self.s.net.layers[i]
        if not self.s.edits and all(k == -1 or k in self._clean for k in spec.inputs):
            self._clean.add(i)
        else:
            self._clean.discard(i)

    def _summary(self, rec: LayerRecord) -> str:
        spec = rec.spec
        real = rec.real
        text = (f"layer {spec.index} {spec.kind.value} {_shape(spec.in_shape)} -> {_shape(spec.out_shape)}: "
                f"{rec.output.dtype}")
        if rec.scale is not None:
            text += f", scale {rec.scale:.6g}"
        if real.size:
            text += f", range [{float(real.min()):.4g}, {float(real.max()):.4g}]"
        if rec.stats.saturated or rec.stats.overflow:
            text += f", {rec.stats.saturated:,} saturated, {rec.stats.overflow:,} overflowed"
        if spec.kind in HOST_LAYERS and self.s.mode is not Mode.FLOAT:
            text += " (host layer, float)"
        return text

    def _advance(self, target: int) -> None:
        before = self.s.index
        t0 = time.perf_counter()
        try:
            rec = self.s.run_to(target)
        finally:
            for j in range(before + 1, self.s.index + 1):
                self._mark(j)
            for j in [k for k in self._clean if k > self.s.index]:
                self._clean.discard(j)
        ran = self.s.index - before
        self.say(self._summary(rec))
        if ran > 0:
            self.say(f"  ran {ran} layer(s) in {(time.perf_counter() - t0) * 1e3:.0f} ms")
        elif target < before:
            self.say(f"  back at layer {target}: layers {target + 1}..{before} will run again")

    def cmd_next(self, rest: str) -> None:
        count = _int(rest, "next's count") if rest else 1
        if count < 1:
            raise StepError(f"next's count must be at least 1, got {count}")
        last = len(self.s.net.layers) - 1
        if self.s.index >= last:
            raise StepError(f"already at the last layer ({last}); 'goto N' goes back")
        if self.s.index + count > last:
            raise StepError(f"only {last - self.s.index} layer(s) left after layer {self.s.index} (the last is {last})")
        self._advance(self.s.index + count)

    def cmd_goto(self, rest: str) -> None:
        if not rest:
            raise StepError("goto needs a layer index (or 'last')")
        n = len(self.s.net.layers)
        target = n - 1 if rest.lower() in ("last", "end") else _int(rest, "goto's layer")
        if not 0 <= target < n:
            raise StepError(f"layer {target} is out of range: {self.s.net.name} has layers 0..{n - 1}")
        self._advance(target)

    # ------------------------------------------------------------------ looking
    def cmd_info(self, rest: str) -> None:
        self._no_args("info", rest)
        spec = self._spec()
        rows = layer_table(self.s.net)
        self.say(rows[1])
        self.say(rows[2 + spec.index])
        info = self.s.layer
        sources = ", ".join("the network input" if i == -1 else f"layer {i}" for i in spec.inputs)
        where = "runs on the host in float" if info["host"] else f"runs in {self.s.mode.value}"
        self.say(f"  inputs: {sources}; {where}")
        if "out_scale" in info:
            ins = ", ".join(f"{s:.6g}" for s in info["in_scales"])
            self.say(f"  scales: input {ins}; output {info['out_scale']:.6g}")
        else:
            self.say("  scales: none (a float model)")
        if "weight_scale" in info:
            ws = np.asarray(info["weight_scale"])
            self.say(f"  weight scale: {self._scale_text(ws)}")
        here = sum(1 for e in self.s.edits if e.layer == spec.index)
        self.say(f"  edits in effect: {len(self.s.edits)} ({here} at this layer); layers run: 0..{self.s.index}")

    @staticmethod
    def _scale_text(ws: np.ndarray) -> str:
        if ws.size and np.all(ws == ws.flat[0]):
            return f"{float(ws.flat[0]):.6g} (per tensor)"
        return f"{float(ws.min()):.6g}..{float(ws.max()):.6g} (per channel, {ws.size})"

    def _views(self, what: str) -> list[View]:
        if what not in TENSORS:
            raise StepError(f"expected one of {', '.join(TENSORS)}, got {what!r}")
        spec = self._spec()
        qnet = self._qnet()
        if what == "output":
            rec = self.s.records[spec.index]
            clip = QMAX * qnet.scales[spec.index] if qnet is not None and spec.kind not in HOST_LAYERS else None
            return [View("output", "output", rec.output, rec.real, rec.scale,
                         f"scale {rec.scale:.6g}" if rec.scale is not None else "", clip)]
        if what == "input":
            views = []
            for k, (src, arr) in enumerate(zip(spec.inputs, self.s.inputs)):
                label = "input (the network input)" if src == -1 else f"input from layer {src}"
                if len(spec.inputs) > 1:
                    label = f"input {k}: " + label.split(" ", 1)[1]
                scale = qnet.scales[src] if arr.dtype == np.int8 else None
                real = arr.astype(np.float32) * np.float32(scale) if scale is not None else arr
                clip = QMAX * qnet.scales[src] if qnet is not None else None
                views.append(View(label, "input" if len(spec.inputs) == 1 else f"input{k}", arr, real, scale,
                                  f"scale {scale:.6g}" if scale is not None else "", clip))
            return views
        stored = self.s.weights  # raises "has no weights" for layers without
        real = self.s.weights_float
        scale, text, clip = None, "", None
        if qnet is not None and spec.index in qnet.layers:
            ws = qnet.layers[spec.index].w_scale
            if self.s.mode is not Mode.FLOAT:
                text = "scale " + self._scale_text(ws)
                scale = float(ws.flat[0]) if np.all(ws == ws.flat[0]) else None
            # the int8 range ±127·scale applies to the folded weights: not to raw float ones beside batch norm
            if self.s.mode is not Mode.FLOAT or not (isinstance(spec, ConvSpec) and spec.batch_normalize):
                clip = QMAX * float(ws.max())
        return [View("weights", "weights", stored, real, scale, text, clip)]

    def cmd_stats(self, rest: str) -> None:
        spec = self._spec()
        for v in self._views(rest or "output"):
            extra = f", {v.scale_text}" if v.scale_text else ""
            self.say(f"layer {spec.index} {spec.kind.value} {v.label}: {_shape(v.stored.shape)} {v.stored.dtype}{extra}")
            self.say(f"  {'':<6} {'min':>11} {'max':>11} {'mean':>11} {'std':>11} {'zeros %':>9} {'sat %':>7}")
            rows = [("int8", v.stored), ("real", v.real)] if v.stored.dtype == np.int8 else [("float", v.stored)]
            for name, arr in rows:
                st = tensor_stats(arr, bins=1)
                sat = f"{st['saturated_pct']:7.2f}" if arr.dtype == np.int8 else f"{'-':>7}"
                self.say(f"  {name:<6} {st['min']:>11.5g} {st['max']:>11.5g} {st['mean']:>11.5g} {st['std']:>11.5g} "
                         f"{st['zeros_pct']:>9.2f} {sat}")

    def cmd_show(self, rest: str) -> None:
        from dla.pictures import feature_map_grid, histogram, scatter

        what = rest or "output"
        spec = self._spec()
        if what == "cross":
            res = self._cross(False)
            if res.other is Mode.FLOAT:
                f_vals, q_vals, q_mode = res.other_output, res.output, res.mode
            else:
                f_vals, q_vals, q_mode = res.output, res.other_output, res.other
            self.pictures.mkdir(parents=True, exist_ok=True)
            path = scatter(f_vals, q_vals, self.pictures / f"{spec.index:03d}_cross_scatter.png",
                           f"layer {spec.index} {spec.kind.value}: float vs {q_mode.value} "
                           f"(SQNR {_sqnr(res.metrics)} dB)")
            self.say(f"scatter: {path}")
            self.say(f"  {res.mode.value} vs {res.other.value}: {_metrics(res.metrics)}")
            return
        views = self._views(what)
        self.pictures.mkdir(parents=True, exist_ok=True)
        for v in views:
            title = f"layer {spec.index} {spec.kind.value} {v.label} [{self.s.mode.value}]"
            grid = feature_map_grid(v.stored, self.pictures / f"{spec.index:03d}_{v.tag}_grid.png", title,
                                    scale=v.scale)
            hist = histogram(v.real, self.pictures / f"{spec.index:03d}_{v.tag}_hist.png",
                             title + (" (real values)" if v.stored.dtype == np.int8 else ""), clip=v.clip)
            self.say(f"grid: {grid}")
            self.say(f"histogram: {hist}")

    # ------------------------------------------------------------------ editing
    def cmd_edit(self, rest: str) -> None:
        spec = self._spec()
        if not rest:
            raise StepError("edit needs w[IDX]=V, scale C F or load FILE.npy")
        _ = self.s.weights  # "layer N (type) has no weights" before any parsing
        sub, _, args = rest.partition(" ")
        args = args.strip()
        was = ""
        if sub.lower() == "scale":
            bits = args.split()
            if len(bits) != 2:
                raise StepError("edit scale needs an output channel and a factor, e.g. edit scale 3 0.5")
            c, factor = _int(bits[0], "the channel"), _number(bits[1], "the factor")
            self._keep_baseline(spec.index)
            edit = self.s.edit_weights(scale_channel=(c, factor))
            desc = f"output channel {c} x {factor:g}"
        elif sub.lower() == "load":
            if not args:
                raise StepError("edit load needs a .npy file")
            arr = _load_npy(args)
            self._keep_baseline(spec.index)
            edit = self.s.edit_weights(array=arr)
            desc = f"weights from {args}"
        else:
            m = EDIT_RE.match(rest)
            if m is None:
                raise StepError(f"cannot read {rest!r}: use w[IDX]=V (e.g. w[3,0,1,1]=-5), scale C F or load FILE.npy")
            index = _parse_index(m["index"])
            value = _number(m["value"], "the value")
            self._keep_baseline(spec.index)
            edit = self.s.edit_weights(index=index, value=value)
            desc = f"w[{m['index'].replace(' ', '')}] = {value}"
            if all(isinstance(i, int) for i in index) and len(index) == edit.before.ndim:
                was = f" (was {edit.before[index]})"
        n = int(edit.changed.shape[0])
        self.say(f"edited layer {spec.index}: {desc}: {n} weight(s) changed{was}; 'rerun' shows the effect")

    def _keep_baseline(self, i: int) -> None:
        """Before the first edit of a layer: keep its unedited output to compare reruns with."""
        if i in self._clean and i not in self._baseline:
            self._baseline[i] = self.s.records[i].output.copy()

    def cmd_undo(self, rest: str) -> None:
        self._no_args("undo", rest)
        edit = self.s.undo()
        n = int(edit.changed.shape[0])
        if edit.layer == self.s.index:
            then = "'rerun' shows the effect"
        else:
            then = f"layer {edit.layer} is not the current one: 'goto {edit.layer}' and 'rerun' to recompute it"
        self.say(f"undone: layer {edit.layer}: {edit.description} ({n} weight(s) restored); {then}")

    def _diff_lines(self, spec: LayerSpec, d: Diff, total: int, vs_unedited: int | None) -> list[str]:
        head = f"rerun layer {spec.index} ({spec.kind.value}): {d.n_changed:,} of {total:,} outputs changed"
        if d.n_changed:
            ch = np.unique(d.changed[:, 0]).tolist() if d.changed.ndim == 2 and d.changed.shape[1] else []
            shown = ", ".join(map(str, ch[:16])) + (f", ... ({len(ch)} in all)" if len(ch) > 16 else "")
            head += f", in channel(s) {shown}"
        lines = [head, f"  new vs previous output: {_metrics(d.metrics)}"]
        if vs_unedited is not None:
            lines.append("  vs the unedited run: bit-identical" if vs_unedited == 0 else
                         f"  vs the unedited run: {vs_unedited:,} outputs differ")
        return lines

    def cmd_rerun(self, rest: str) -> None:
        self._no_args("rerun", rest)
        spec = self._spec()
        d = self.s.rerun()
        self._mark(spec.index)
        out = self.s.records[spec.index].output
        base = self._baseline.get(spec.index)
        vs = int(np.count_nonzero(base != out)) if base is not None and base.shape == out.shape else None
        self._last_diff = self._diff_lines(spec, d, int(out.size), vs)
        channels = np.unique(d.changed[:, 0]).tolist() if d.changed.ndim == 2 and d.changed.shape[1] else []
        self.last_rerun = {"layer": spec.index, "changed": d.n_changed, "total": int(out.size),
                           "channels": [int(c) for c in channels], **_metrics_data(d.metrics),
                           "vs_unedited": vs}
        for line in self._last_diff:
            self.say(line)

    def cmd_diff(self, rest: str) -> None:
        self._no_args("diff", rest)
        if self._last_diff is None:
            raise StepError("no rerun yet: 'rerun' first")
        for line in self._last_diff:
            self.say(line)

    # ------------------------------------------------------------------ crossing
    def _cross(self, carry_on: bool) -> CrossResult:
        spec = self._spec()
        if self.s.mode is Mode.FLOAT and self._qnet() is None:
            raise StepError("cross needs a quantized model: start 'dla step' with a MODEL.qnet, or give --calib")
        cached = self._last_cross
        if not carry_on and cached is not None and cached.layer == spec.index:
            return cached
        res = self.s.cross(continue_from_cross=carry_on)
        if carry_on:
            self._clean.discard(spec.index)
            self._last_cross = None
        else:
            self._last_cross = res
        return res

    def cmd_cross(self, rest: str) -> None:
        if rest not in ("", "continue"):
            raise StepError(f"cross takes nothing or 'continue', got {rest!r}")
        spec = self._spec()
        self._last_cross = None  # an explicit cross is always computed afresh
        res = self._cross(rest == "continue")
        self.last_cross = {"layer": spec.index, "mode": res.mode.value, "other": res.other.value,
                           **_metrics_data(res.metrics)}
        self.say(f"cross layer {spec.index} ({spec.kind.value}): {res.mode.value} vs {res.other.value} from the same "
                 "input (float is the reference): the layer's isolated error, as `dla compare --isolated`")
        self.say(f"  {_metrics(res.metrics)}")
        if rest == "continue":
            self.say(f"  layer {spec.index} now holds the {res.other.value} output; the next layers run from it")

    # ------------------------------------------------------------------ keeping
    def cmd_save(self, rest: str) -> None:
        if not rest:
            raise StepError("save needs a directory")
        path = self.s.save(rest)
        self.say(f"saved {path}/: {len(self.s.records)} layer output(s), {len(self.s.edits)} edit(s), "
                 f"{len(self.s.crosses)} cross(es) (session.json)")

    def cmd_export(self, rest: str) -> None:
        if not rest:
            raise StepError("export needs a FILE.qnet")
        if not rest.endswith(".qnet"):
            raise StepError(f"{rest}: the export must be named *.qnet")
        if self.s.mode is Mode.FLOAT and self.s.edits:
            raise StepError("float-mode edits are not in the int8 weights of a .qnet: edit in an int or hybrid session")
        path = self.s.export_qnet(rest)
        self.say(f"exported {path} ({len(self.s.edits)} edit(s) in its weights)")

    def cmd_help(self, rest: str) -> None:
        self.say(HELP)


def _lines(stream: TextIO, output: TextIO, prompt: Callable[[], str], interactive: bool) -> Iterator[str]:
    """Command lines from ``stream``; with a prompt when interactive (``input()`` with line editing
    when reading the terminal)."""
    use_input = interactive and stream is sys.stdin
    if use_input:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
    while True:
        try:
            if use_input:
                try:
                    line = input(prompt())
                except EOFError:
                    output.write("\n")
                    return
            else:
                if interactive:
                    output.write(prompt())
                    output.flush()
                line = stream.readline()
                if not line:
                    if interactive:
                        output.write("\n")
                    return
        except KeyboardInterrupt:
            if not interactive:
                raise
            output.write("\n")
            continue
        yield line


def run_repl(session: Session, input_stream: TextIO, output: TextIO, *, interactive: bool = False,
             echo: bool | None = None, pictures: str | Path = "dla-step") -> int:
    """Read commands from ``input_stream`` until quit/EOF and run them on ``session``.

    ``interactive``: print a prompt before each line.  ``echo`` (default: when not
    interactive): print each command after the prompt, so a script's output reads like a
    terminal session.  ``pictures``: where ``show`` writes PNGs.  Returns the number of
    commands that failed.
    """
    stepper = Stepper(session, output, pictures, interactive)
    echo = (not interactive) if echo is None else echo
    stepper.say(stepper.banner())
    for line in _lines(input_stream, output, stepper.prompt, interactive):
        if echo:
            stepper.say(stepper.prompt() + line.strip())
        if not stepper.execute(line):
            break
    return stepper.errors


__all__ = ["HELP", "StepError", "Stepper", "run_repl"]
