"""``dla step``'s results as the terminal prints them: ``lines(result)``.

The wording and number formats are the terminal's interface (scripts and their users read
them), so they change only on purpose; a test compares whole transcripts.
"""
from __future__ import annotations

from functools import singledispatch

import numpy as np

from dla.debugger.results import (Crossed, Edited, Exported, Failed, HelpText, LayerInfo, Moved, Pictures,
                                  RerunDiff, Result, Saved, Statistics, Undone, sqnr_text)
from dla.debugger.views import scale_text
from dla.metrics import ErrorMetrics
from dla.session import Session


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(map(str, shape))


def metrics_text(m: ErrorMetrics) -> str:
    return (f"SQNR {sqnr_text(m)} dB, max abs error {m.max_abs:.4g}, mean abs error {m.mean_abs:.4g}, "
            f"cosine {m.cosine:.6f}")


def banner(session: Session) -> str:
    """The first line of a ``dla step`` session."""
    net = session.net
    w, h = session.image_size
    return (f"dla step: {net.name}, {len(net.layers)} layers (0..{len(net.layers) - 1}), mode {session.mode.value}, "
            f"input {w}x{h}; 'help' lists the commands")


def prompt(session: Session) -> str:
    """``dla[input]> `` before the first layer, then ``dla[12 convolutional]> ``."""
    if session.index < 0:
        return "dla[input]> "
    return f"dla[{session.index} {session.net.layers[session.index].kind.value}]> "


@singledispatch
def lines(result: Result) -> list[str]:
    """``result`` as the terminal's lines (without newlines)."""
    raise TypeError(f"no text for {type(result).__name__}")


@lines.register
def _failed(r: Failed) -> list[str]:
    return [f"error: {r.message}"]


@lines.register
def _moved(r: Moved) -> list[str]:
    text = f"layer {r.layer} {r.type} {shape_text(r.in_shape)} -> {shape_text(r.out_shape)}: {r.dtype}"
    if r.scale is not None:
        text += f", scale {r.scale:.6g}"
    if r.range is not None:
        text += f", range [{r.range[0]:.4g}, {r.range[1]:.4g}]"
    if r.saturated or r.overflow:
        text += f", {r.saturated:,} saturated, {r.overflow:,} overflowed"
    if r.host_float:
        text += " (host layer, float)"
    out = [text]
    if r.ran > 0:
        out.append(f"  ran {r.ran} layer(s) in {r.ms:.0f} ms")
    elif r.back_from is not None:
        out.append(f"  back at layer {r.layer}: layers {r.layer + 1}..{r.back_from} will run again")
    return out


@lines.register
def _info(r: LayerInfo) -> list[str]:
    sources = ", ".join("the network input" if i == -1 else f"layer {i}" for i in r.inputs)
    where = "runs on the host in float" if r.host else f"runs in {r.mode}"
    if r.precision is not None and not r.host:  # a host layer's label is "host": said already
        where += f"; precision {r.precision}"
    out = [r.table_header, r.table_row, f"  inputs: {sources}; {where}"]
    if r.out_scale is not None:
        ins = ", ".join(f"{s:.6g}" for s in r.in_scales or ())
        out.append(f"  scales: input {ins}; output {r.out_scale:.6g}")
    else:
        out.append("  scales: none (a float model)")
    if r.weight_scales is not None:
        out.append(f"  weight scale: {scale_text(np.asarray(r.weight_scales))}")
    out.append(f"  edits in effect: {r.edits} ({r.edits_here} at this layer); layers run: 0..{r.layer}")
    return out


@lines.register
def _stats(r: Statistics) -> list[str]:
    out = []
    for t in r.tensors:
        extra = f", {t.scale_text}" if t.scale_text else ""
        out.append(f"layer {r.layer} {r.type} {t.label}: {shape_text(t.shape)} {t.dtype}{extra}")
        out.append(f"  {'':<6} {'min':>11} {'max':>11} {'mean':>11} {'std':>11} {'zeros %':>9} {'sat %':>7}")
        for row in t.rows:
            sat = f"{row.saturated_pct:7.2f}" if row.saturated_pct is not None else f"{'-':>7}"
            out.append(f"  {row.name:<6} {row.min:>11.5g} {row.max:>11.5g} {row.mean:>11.5g} {row.std:>11.5g} "
                       f"{row.zeros_pct:>9.2f} {sat}")
    return out


@lines.register
def _pictures(r: Pictures) -> list[str]:
    out = [f"{p.kind}: {p.path}" for p in r.pictures]
    if r.cross is not None:
        out.append(f"  {r.cross.mode} vs {r.cross.other}: {metrics_text(r.cross.metrics)}")
    return out


@lines.register
def _edited(r: Edited) -> list[str]:
    was = f" (was {r.was})" if r.was is not None else ""
    return [f"edited layer {r.layer}: {r.change}: {r.changed} weight(s) changed{was}; 'rerun' shows the effect"]


@lines.register
def _undone(r: Undone) -> list[str]:
    if r.current:
        then = "'rerun' shows the effect"
    else:
        then = f"layer {r.layer} is not the current one: 'goto {r.layer}' and 'rerun' to recompute it"
    return [f"undone: layer {r.layer}: {r.change} ({r.restored} weight(s) restored); {then}"]


@lines.register
def _rerun(r: RerunDiff) -> list[str]:
    head = f"rerun layer {r.layer} ({r.type}): {r.changed:,} of {r.total:,} outputs changed"
    if r.changed:
        ch = list(r.channels)
        shown = ", ".join(map(str, ch[:16])) + (f", ... ({len(ch)} in all)" if len(ch) > 16 else "")
        head += f", in channel(s) {shown}"
    out = [head, f"  new vs previous output: {metrics_text(r.metrics)}"]
    if r.vs_unedited is not None:
        out.append("  vs the unedited run: bit-identical" if r.vs_unedited == 0 else
                   f"  vs the unedited run: {r.vs_unedited:,} outputs differ")
    return out


@lines.register
def _crossed(r: Crossed) -> list[str]:
    out = [f"cross layer {r.layer} ({r.type}): {r.mode} vs {r.other} from the same input (float is the reference): "
           "the layer's isolated error, as `dla compare --isolated`", f"  {metrics_text(r.metrics)}"]
    if r.continued:
        out.append(f"  layer {r.layer} now holds the {r.other} output; the next layers run from it")
    return out


@lines.register
def _saved(r: Saved) -> list[str]:
    return [f"saved {r.folder}/: {r.layers} layer output(s), {r.edits} edit(s), {r.crosses} cross(es) (session.json)"]


@lines.register
def _exported(r: Exported) -> list[str]:
    return [f"exported {r.path} ({r.edits} edit(s) in its weights)"]


@lines.register
def _help(r: HelpText) -> list[str]:
    return [r.text]


__all__ = ["banner", "lines", "metrics_text", "prompt", "shape_text"]
