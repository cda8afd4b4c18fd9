"""``Stepper``: runs ``dla step`` commands (``dla.debugger.commands``) on one
``dla.session.Session`` and returns what each did as data (``dla.debugger.results``).

It prints nothing: the terminal (``dla.debugger.repl``) and the web page (``dla.web.stepping``)
render the results.  What it adds to the Session is the debugger's memory: the unedited
output of an edited layer (so a rerun can say whether the layer is back to it), the last
rerun (``diff``), and the last CROSS (``show cross`` draws it without running it again,
until a command that may change its inputs).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dla.debugger import views
from dla.debugger.commands import (READ_ONLY, Command, Cross, Diff, Edit, Export, Goto, Help, HELP, Info,
                                   LoadWeights, Next, Replace, Rerun, Save, ScaleChannel, SetWeights, Show, Stats,
                                   StepError, Undo, load_npy, parse_edit)
from dla.debugger.results import (Crossed, Edited, Exported, Failed, HelpText, LayerInfo, Moved, Picture,
                                  Pictures, RerunDiff, Result, Saved, Statistics, StatsRow, TensorStats, Undone,
                                  sqnr_text)
from dla.engine import Mode
from dla.info import layer_table
from dla.session import CrossResult, Session, tensor_stats
from golden.errors import DlaError
from golden.layers import HOST_LAYERS, LayerSpec


class Stepper:
    """Executes commands on ``session``; ``show`` draws its PNGs into ``pictures``.

    ``fatal``: exceptions that end the caller instead of failing the command (the web's worker
    passes ``MemoryError``: its state may be half-changed, the worker must go).
    """

    def __init__(self, session: Session, pictures: str | Path = "dla-step",
                 fatal: tuple[type[BaseException], ...] = ()) -> None:
        self.s = session
        self.pictures = Path(pictures)
        self.fatal = fatal
        #: The last ``rerun`` (what ``diff`` shows again) and the last ``cross`` command's
        #: result; the latter is forgotten by any command that is not read-only.
        self.last_rerun: RerunDiff | None = None
        self.last_cross: Crossed | None = None
        self._cross_cache: CrossResult | None = None  # the CROSS that 'show cross' may reuse
        self._clean: set[int] = set()  # layers whose record was computed without any edit in effect
        self._baseline: dict[int, np.ndarray] = {}  # unedited outputs of layers that were edited
        self._handlers: dict[type[Command], Callable[[Any], Result]] = {
            Next: self._next, Goto: self._goto, Info: self._info, Stats: self._stats, Show: self._show,
            Edit: self._edit, Replace: self._replace, Undo: self._undo, Rerun: self._rerun, Diff: self._diff,
            Cross: self._cross_command, Save: self._save, Export: self._export, Help: lambda c: HelpText(HELP)}

    # ------------------------------------------------------------------ running
    def execute(self, command: Command) -> Result:
        """Run ``command``; a failure is a ``Failed`` result and leaves the session as it was
        (a bug too: the debugging session, and its state, is worth keeping).  ``KeyboardInterrupt``
        and the ``fatal`` exceptions pass through."""
        if not command.read_only:
            self._forget_cross()
        try:
            return self._handlers[type(command)](command)
        except self.fatal:
            raise
        except (StepError, DlaError) as exc:
            return Failed(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            return Failed(f"{where}{exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - reported as one line, the session goes on
            return Failed(f"unexpected {type(exc).__name__}: {exc}")

    def refuse(self, error: StepError) -> Failed:
        """A command line that did not parse: as if its command had run and failed (a known
        command that is not read-only forgets the cached CROSS, as when it runs)."""
        if error.command is not None and error.command not in READ_ONLY:
            self._forget_cross()
        return Failed(str(error))

    def _forget_cross(self) -> None:
        self._cross_cache = self.last_cross = None

    def _spec(self) -> LayerSpec:
        return views.current_layer(self.s)

    # ------------------------------------------------------------------ moving
    def _mark(self, i: int) -> None:
        """Remember whether layer ``i``'s current record is an unedited one."""
        spec = self.s.net.layers[i]
        if not self.s.edits and all(k == -1 or k in self._clean for k in spec.inputs):
            self._clean.add(i)
        else:
            self._clean.discard(i)

    def _advance(self, target: int) -> Moved:
        before = self.s.index
        t0 = time.perf_counter()
        try:
            rec = self.s.run_to(target)
        finally:
            for j in range(before + 1, self.s.index + 1):
                self._mark(j)
            for j in [k for k in self._clean if k > self.s.index]:
                self._clean.discard(j)
        ms = (time.perf_counter() - t0) * 1e3
        spec, real = rec.spec, rec.real
        return Moved(spec.index, spec.kind.value, tuple(spec.in_shape), tuple(spec.out_shape), str(rec.output.dtype),
                     None if rec.scale is None else float(rec.scale),
                     (float(real.min()), float(real.max())) if real.size else None,
                     int(rec.stats.saturated), int(rec.stats.overflow),
                     spec.kind in HOST_LAYERS and self.s.mode is not Mode.FLOAT,
                     self.s.index - before, ms, before if target < before else None)

    def _next(self, c: Next) -> Moved:
        last = len(self.s.net.layers) - 1
        if self.s.index >= last:
            raise StepError(f"already at the last layer ({last}); 'goto N' goes back")
        if self.s.index + c.count > last:
            raise StepError(f"only {last - self.s.index} layer(s) left after layer {self.s.index} (the last is {last})")
        return self._advance(self.s.index + c.count)

    def _goto(self, c: Goto) -> Moved:
        n = len(self.s.net.layers)
        target = n - 1 if c.target is None else c.target
        if not 0 <= target < n:
            raise StepError(f"layer {target} is out of range: {self.s.net.name} has layers 0..{n - 1}")
        return self._advance(target)

    # ------------------------------------------------------------------ looking
    def _info(self, c: Info) -> LayerInfo:
        spec = self._spec()
        rows = layer_table(self.s.net, self.s.engine.qnet)
        info = self.s.layer
        ws = info.get("weight_scale")
        return LayerInfo(
            spec.index, rows[1], rows[2 + spec.index], tuple(spec.inputs), bool(info["host"]), self.s.mode.value,
            info.get("precision"),
            tuple(info["in_scales"]) if "out_scale" in info else None, info.get("out_scale"),
            None if ws is None else tuple(np.asarray(ws, dtype=np.float64).reshape(-1).tolist()),
            len(self.s.edits), sum(1 for e in self.s.edits if e.layer == spec.index))

    def _stats(self, c: Stats) -> Statistics:
        spec = self._spec()
        tensors = []
        for v in views.tensor_views(self.s, c.tensor):
            integer = np.issubdtype(v.stored.dtype, np.integer)
            named = [(str(v.stored.dtype), v.stored), ("real", v.real)] if integer else [("float", v.stored)]
            rows = []
            for name, arr in named:
                st = tensor_stats(arr, bins=1)
                rows.append(StatsRow(name, st["min"], st["max"], st["mean"], st["std"], st["zeros_pct"],
                                     st["saturated_pct"] if np.issubdtype(arr.dtype, np.integer) else None))
            tensors.append(TensorStats(v.label, tuple(v.stored.shape), str(v.stored.dtype), v.scale_text, tuple(rows)))
        return Statistics(spec.index, spec.kind.value, tuple(tensors))

    def _show(self, c: Show) -> Pictures:
        spec = self._spec()
        if c.tensor == "cross":
            res = self._cross(False)
            if res.other is Mode.FLOAT:
                f_vals, q_vals, q_mode = res.other_output, res.output, res.mode
            else:
                f_vals, q_vals, q_mode = res.output, res.other_output, res.other
            self.pictures.mkdir(parents=True, exist_ok=True)
            path = views.draw_scatter(f_vals, q_vals, self.pictures / f"{spec.index:03d}_cross_scatter.png",
                                      f"layer {spec.index} {spec.kind.value}: float vs {q_mode.value} "
                                      f"(SQNR {sqnr_text(res.metrics)} dB)")
            return Pictures(spec.index, spec.kind.value, (Picture("scatter", "cross_scatter", path),),
                            self._crossed(spec, res, False))
        found = views.tensor_views(self.s, c.tensor)
        self.pictures.mkdir(parents=True, exist_ok=True)
        drawn = []
        for v in found:
            title = views.title(self.s, v)
            grid = views.draw_grid(v, self.pictures / f"{spec.index:03d}_{v.tag}_grid.png", title)
            hist = views.draw_histogram(v, self.pictures / f"{spec.index:03d}_{v.tag}_hist.png", title)
            drawn += [Picture("grid", f"{v.tag}_grid", grid), Picture("histogram", f"{v.tag}_hist", hist)]
        return Pictures(spec.index, spec.kind.value, tuple(drawn))

    # ------------------------------------------------------------------ editing
    def _edit(self, c: Edit) -> Edited:
        spec = self._spec()
        if not c.text:
            raise StepError("edit needs w[IDX]=V, scale C F or load FILE.npy")
        _ = self.s.weights  # "layer N (type) has no weights" before any parsing
        change = parse_edit(c.text)
        if isinstance(change, ScaleChannel):
            self._keep_baseline(spec.index)
            edit = self.s.edit_weights(scale_channel=(change.channel, change.factor))
            return Edited(spec.index, f"output channel {change.channel} x {change.factor:g}",
                          int(edit.changed.shape[0]))
        if isinstance(change, LoadWeights):
            return self._replace_weights(spec, load_npy(change.path), change.path)
        assert isinstance(change, SetWeights)
        self._keep_baseline(spec.index)
        edit = self.s.edit_weights(index=change.index, value=change.value)
        one = all(isinstance(i, int) for i in change.index) and len(change.index) == edit.before.ndim
        return Edited(spec.index, f"w[{change.text}] = {change.value}", int(edit.changed.shape[0]),
                      edit.before[change.index] if one else None)

    def _replace(self, c: Replace) -> Edited:
        spec = self._spec()
        _ = self.s.weights
        return self._replace_weights(spec, c.array, c.source)

    def _replace_weights(self, spec: LayerSpec, array: np.ndarray, source: str) -> Edited:
        self._keep_baseline(spec.index)
        edit = self.s.edit_weights(array=array)
        return Edited(spec.index, f"weights from {source}", int(edit.changed.shape[0]))

    def _keep_baseline(self, i: int) -> None:
        """Before the first edit of a layer: keep its unedited output to compare reruns with."""
        if i in self._clean and i not in self._baseline:
            self._baseline[i] = self.s.records[i].output.copy()

    def _undo(self, c: Undo) -> Undone:
        edit = self.s.undo()
        return Undone(edit.layer, edit.description, int(edit.changed.shape[0]), edit.layer == self.s.index)

    def _rerun(self, c: Rerun) -> RerunDiff:
        spec = self._spec()
        d = self.s.rerun()
        self._mark(spec.index)
        out = self.s.records[spec.index].output
        base = self._baseline.get(spec.index)
        vs = int(np.count_nonzero(base != out)) if base is not None and base.shape == out.shape else None
        channels = np.unique(d.changed[:, 0]).tolist() if d.changed.ndim == 2 and d.changed.shape[1] else []
        self.last_rerun = RerunDiff(spec.index, spec.kind.value, int(d.n_changed), int(out.size),
                                    tuple(int(ch) for ch in channels), d.metrics, vs)
        return self.last_rerun

    def _diff(self, c: Diff) -> RerunDiff:
        if self.last_rerun is None:
            raise StepError("no rerun yet: 'rerun' first")
        return self.last_rerun

    # ------------------------------------------------------------------ crossing
    def _cross(self, carry_on: bool) -> CrossResult:
        spec = self._spec()
        if self.s.mode is Mode.FLOAT and self.s.engine.qnet is None:
            raise StepError("cross needs a quantized model: start 'dla step' with a MODEL.qnet, or give --calib")
        cached = self._cross_cache
        if not carry_on and cached is not None and cached.layer == spec.index:
            return cached
        res = self.s.cross(continue_from_cross=carry_on)
        if carry_on:
            self._clean.discard(spec.index)
            self._cross_cache = None
        else:
            self._cross_cache = res
        return res

    @staticmethod
    def _crossed(spec: LayerSpec, res: CrossResult, carry_on: bool) -> Crossed:
        return Crossed(spec.index, spec.kind.value, res.mode.value, res.other.value, res.metrics, carry_on)

    def _cross_command(self, c: Cross) -> Crossed:
        spec = self._spec()
        self._cross_cache = None  # an explicit cross is always computed afresh
        self.last_cross = self._crossed(spec, self._cross(c.carry_on), c.carry_on)
        return self.last_cross

    # ------------------------------------------------------------------ keeping
    def _save(self, c: Save) -> Saved:
        path = self.s.save(c.folder)
        return Saved(path, len(self.s.records), len(self.s.edits), len(self.s.crosses))

    def _export(self, c: Export) -> Exported:
        if self.s.mode is Mode.FLOAT and self.s.edits:
            raise StepError("float-mode edits are not in the int8 weights of a .qnet: edit in an int or hybrid session")
        path = self.s.export_qnet(c.target)
        return Exported(path, len(self.s.edits))


__all__ = ["Stepper"]
