"""The terminal rendering of a scenario's summary: what `dla run` and `dla demo` print."""
from __future__ import annotations

from typing import Any


MODE_ABBREV = {"hybrid": "HYB", "int": "INT"}  # column headers; the legend line spells them out


def precision_columns(s: dict[str, Any]) -> list[tuple[str, dict[int, str]]]:
    """The precision columns of a per-layer table: ``[(header, {layer: label})]``.

    One column ``precision`` when every variant runs every layer at the same widths (an
    algorithm sweep, or one variant); else one column per set of a ``quant.precision`` sweep
    (``precision int16-heads``: the variants of one set have its widths whatever their
    algorithm), or per variant (``precision <variant>``) for variants without a set name.  No
    column without a quantized variant (FLOAT only)."""
    set_of = {v["name"]: v.get("precision") for v in s.get("variants", [])}
    groups: dict[str, dict[int, str]] = {}
    for r in s["layers"]:
        groups.setdefault(set_of.get(r["variant"]) or r["variant"], {})[r["index"]] = r["precision"]["label"]
    if not groups:
        return []
    columns = list(groups.values())
    if all(c == columns[0] for c in columns):
        return [("precision", columns[0])]
    return [(f"precision {g}", c) for g, c in groups.items()]


def _db(v: float | str) -> str:
    return f"{v:6.1f}" if not isinstance(v, str) else v


def _agreement(a: dict[str, Any]) -> str:
    """recall/precision, or ``n/a`` with the reason when a set is empty (not evaluable)."""
    def ratio(key: str, why: str) -> str:
        return f"{a[key]:.2f}" if a.get(key) is not None else f"n/a ({why})"

    return f"recall {ratio('recall', '0 FLOAT detections')} precision {ratio('precision', '0 detections')}"


def summary_lines(s: dict[str, Any], max_detections: int = 10) -> list[str]:
    lines = [f"{s['scenario']}: {s['model']['name']} ({s['model'].get('weights') or s['model'].get('qnet')}), "
             f"hardware {s['hw_source']} ({s['hw']['rows']}x{s['hw']['cols']})"]
    series = list(dict.fromkeys((r["variant"], r["mode"]) for r in s["layers"]))
    if series:
        first = s["images"][0]["name"]
        by = {(r["variant"], r["mode"], r["index"]): r for r in s["layers"] if r["image"] == first}
        # one column per mode x variant, as wide as its full name (never cut: "HYB mse/per_channel")
        labels = [f"{MODE_ABBREV.get(m, m.upper())} {v}" for v, m in series]
        widths = [max(len(lb), 6) for lb in labels]
        head = " ".join(f"{lb:>{w}}" for lb, w in zip(labels, widths))
        precs = precision_columns(s)
        pwidths = [max(len(h), *(len(x) for x in col.values())) for h, col in precs]
        phead = "".join(f"{h:<{w}} " for (h, _), w in zip(precs, pwidths))
        legend = [f"{a} = {m.upper()}" for m, a in MODE_ABBREV.items()
                  if a != m.upper() and m in {mode for _, mode in series}]
        lines.append(f"-- per-layer SQNR vs FLOAT on {first} (dB); " + "".join(f"{x}; " for x in legend)
                     + "sat% and ovf of the last column")
        lines.append(f"{'idx':>4} {'type':<14} {'shape':<12} {phead}{head} {'sat%':>6} {'ovf':>6}")
        for i in sorted({r["index"] for r in s["layers"]}):
            rows = [by[(v, m, i)] for v, m in series]
            last = rows[-1]
            lines.append(f"{i:>4} {last['type']:<14} {last['shape']:<12} "
                         + "".join(f"{col[i]:<{w}} " for (_, col), w in zip(precs, pwidths))
                         + " ".join(f"{_db(r['sqnr_db']):>{w}}" for r, w in zip(rows, widths))
                         + f" {last['saturated_pct']:6.2f} {last['overflow']:>6}")
    for o in s["outputs"]:
        if o["image"] != s["images"][0]["name"]:
            continue
        who = f"{o['mode'].upper()}" + (f" {o['variant']}" if o["variant"] else "")
        if o["detections"] is not None:
            dets = o["detections"]
            agree = o.get("agreement")
            extra = f"  {_agreement(agree)} vs FLOAT" if agree else ""
            lines.append(f"-- {who}: {len(dets)} detections{extra}")
            lines += [f"   {d['class']:<16} {d['prob']:6.1%}  [{', '.join(f'{v:.0f}' for v in d['box'])}]"
                      for d in dets[:max_detections]]
        else:
            lines.append(f"-- {who} top-5: " + ", ".join(f"{t['class']} {t['prob']:.3f}" for t in o["top5"]))
    cy = s.get("cycles")
    if cy:
        lines.append(f"-- cycle model: {cy['total_cycles']:,} cycles, {cy['latency_ms']:.3f} ms, {cy['fps']:.1f} fps "
                     f"at {s['hw']['clock_mhz']:g} MHz, utilization {cy['util_pct']:.1f}%, DRAM {cy['dram_bytes']:,} B")
        for name, v in (s.get("cycles_by_variant") or {}).items():
            lines.append(f"   {name}: {v['total_cycles']:,} cycles ({v['total_cycles'] / cy['total_cycles']:.2f}x), "
                         f"{v['fps']:.1f} fps, DRAM {v['dram_bytes']:,} B, weights {v['weight_bytes']:,} B")
    for c in s["checks"]:
        lines.append(f"{'ERROR' if c.get('error') else 'PASS' if c['passed'] else 'FAIL'}  {c['name']}: "
                     f"{c['message']}")
    return lines
