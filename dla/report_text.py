"""Text renderings of a ``Comparison``: the terminal table, CSV and JSON.

Every per-layer table names the layer's operand widths (``quant.precision.LayerPrecision``):
its ``label`` ("w8a8", "w8a8>a16", "host"...) in the terminal and CSV, its ``to_dict()`` under
``precision`` in JSON; ``-`` (CSV: empty, JSON: ``null``) without a quantized network."""
from __future__ import annotations

import csv
import io
import math

from dla.compare import Comparison
from dla.engine import Mode
from quant.precision import LayerPrecision


def _db(v: float) -> str:
    return "inf" if math.isinf(v) and v > 0 else ("-inf" if math.isinf(v) else f"{v:6.1f}")


NO_PRECISION = "-"
"""What a text table shows as the precision of a layer without a quantized network."""


def precision_label(p: LayerPrecision | None) -> str:
    """A layer's widths in a text table: ``p.label``, or ``-`` without a quantized network."""
    return p.label if p is not None else NO_PRECISION


def _precision_width(rows) -> int:
    return max([len("precision"), *(len(precision_label(r.precision)) for r in rows)])


def comparison_lines(cmp: Comparison) -> list[str]:
    pw = _precision_width(cmp.rows)
    lines = [f"{'idx':>4} {'type':<14} {'shape':<13} {'precision':<{pw}} {'HYB SQNR':>9} {'INT SQNR':>9} "
             f"{'INT maxerr':>10} {'INT cos':>8} {'sat%':>6} {'ovf':>5}"]
    for row in cmp.rows:
        h, i = row.metrics.get(Mode.HYBRID), row.metrics.get(Mode.INT)
        shape = "x".join(map(str, row.spec.out_shape))
        lines.append(f"{row.spec.index:>4} {row.spec.kind.value:<14} {shape:<13} {precision_label(row.precision):<{pw}} "
                     f"{_db(h.sqnr_db) if h else '-':>9} {_db(i.sqnr_db) if i else '-':>9} "
                     f"{i.max_abs if i else 0:10.4f} {i.cosine if i else 0:8.5f} {row.saturated_pct:6.2f} {row.overflow:>5}")
    for mode, run in cmp.runs.items():
        lines.append(f"{mode.value:>6}: {run.seconds * 1e3:.0f} ms")
    if cmp.detections:
        for mode, dets in cmp.detections.items():
            lines.append(f"-- {mode.value} detections ({len(dets)})")
            lines += [f"   {d.name:<16} {d.prob:6.1%}  [{d.box[0]:.0f}, {d.box[1]:.0f}, {d.box[2]:.0f}, {d.box[3]:.0f}]"
                      for d in dets[:20]]
        for mode, a in cmp.agreement.items():
            lines.append(f"{mode.value} vs float: {a.text()}  (IoU>=0.5, same class)")
    for mode, top in cmp.top.items():
        lines.append(f"-- {mode.value} top-5: " + ", ".join(f"{n} {p:.3f}" for n, p in top))
    return lines


def comparison_csv(cmp: Comparison) -> str:
    rows = [r.to_dict() for r in cmp.rows]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        r["precision"] = r["precision"]["label"] if r["precision"] else ""
        w.writerow({k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


def comparison_json(cmp: Comparison) -> dict:
    return {
        "layers": [r.to_dict() for r in cmp.rows],
        "seconds": {m.value: r.seconds for m, r in cmp.runs.items()},
        "detections": {m.value: [d.to_json() for d in ds] for m, ds in cmp.detections.items()},
        "top5": {m.value: [{"class": n, "prob": p} for n, p in t] for m, t in cmp.top.items()},
        "agreement": {m.value: a.to_dict() for m, a in cmp.agreement.items()},
    }


def isolated_lines(rows, threshold_db: float) -> list[str]:
    """The "which layer broke it?" table, then the layers ranked by isolated SQNR."""
    pw = _precision_width(rows)
    out = [f"{'idx':>4} {'type':<14} {'precision':<{pw}} {'cumulative SQNR':>16} {'isolated SQNR':>14}  flag"]
    for r in rows:
        iso = _db(r.isolated.sqnr_db) if r.isolated else "host"
        out.append(f"{r.spec.index:>4} {r.spec.kind.value:<14} {precision_label(r.precision):<{pw}} "
                   f"{_db(r.cumulative.sqnr_db):>16} {iso:>14}  "
                   f"{'<-- below ' + str(threshold_db) + ' dB' if r.flagged else ''}")
    ranked = sorted((r for r in rows if r.isolated), key=lambda r: r.isolated.sqnr_db)
    out.append("worst layers by isolated SQNR: " + ", ".join(
        f"{r.spec.index} ({r.spec.kind.value}) {_db(r.isolated.sqnr_db).strip()} dB" for r in ranked[:5]))
    return out
