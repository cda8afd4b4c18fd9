"""Tables, CSV/JSON and plots of a ``NetworkCycles``."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from dla.cycles.model import NetworkCycles
from dla.fileio import write_bytes_atomic
from golden.draw import place_labels


def cycle_lines(nc: NetworkCycles) -> list[str]:
    hw = nc.hw
    out = [f"{nc.name} on a {hw.rows}x{hw.cols} array at {hw.clock_mhz:g} MHz, {hw.dataflow}, buffers in/w/out "
           f"{hw.input_buffer_kib}/{hw.weight_buffer_kib}/{hw.output_buffer_kib} KiB, DRAM "
           f"{hw.dram_bytes_per_cycle:g} B/cycle",
           f"{'idx':>4} {'type':<14} {'precision':<10} {'cycles':>11} {'compute':>11} {'fill/drain':>10} {'stall':>10} "
           f"{'util%':>6} {'map%':>6} {'DRAM rd':>10} {'DRAM wr':>10} {'tiles':>6} bound"]
    for l in nc.layers:
        out.append(f"{l.index:>4} {l.kind:<14} {l.precision.label:<10} {l.total_cycles:>11,} {l.compute_cycles:>11,} "
                   f"{l.fill_drain_cycles:>10,} {l.stall_cycles:>10,} {l.util_pct:>6.1f} {l.mapping_util_pct:>6.1f} "
                   f"{l.dram_read_bytes:>10,} {l.dram_write_bytes:>10,} {l.tiles:>6} {l.bound}")
    out.append(f"total: {nc.total_cycles:,} cycles = {nc.latency_ms:.3f} ms ({nc.fps:.1f} fps), {nc.macs:,} MACs, "
               f"utilization {nc.util_pct:.1f} %, DRAM {nc.dram_bytes / 2**20:.1f} MiB, "
               f"weights {nc.weight_bytes / 2**20:.2f} MiB")
    out.append("bottlenecks: " + ", ".join(f"{l.index} ({l.kind}) {100 * l.total_cycles / nc.total_cycles:.1f} %"
                                          for l in nc.bottlenecks()))
    return out


def cycles_csv(nc: NetworkCycles) -> str:
    """One row per layer: ``LayerCycles.to_dict()``, the input widths joined by ``+`` ("8+16")."""
    rows = [{**d, "input_bits": "+".join(map(str, d["input_bits"]))} for d in (l.to_dict() for l in nc.layers)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def cycles_json(nc: NetworkCycles) -> dict:
    return {"model": nc.name, "hardware": nc.hw.to_dict(), "total_cycles": nc.total_cycles,
            "latency_ms": nc.latency_ms, "fps": nc.fps, "macs": nc.macs, "util_pct": nc.util_pct,
            "dram_bytes": nc.dram_bytes, "weight_bytes": nc.weight_bytes, "bottlenecks": [l.index for l in nc.bottlenecks()],
            "layers": [l.to_dict() for l in nc.layers]}


def cycle_plots(nc: NetworkCycles, out_dir: str | Path) -> list[Path]:
    """cycles.png (stacked compute / fill-drain / stall per layer), utilization.png, roofline.png."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _cycle_plots(nc, out_dir, FigureCanvasAgg, Figure, write_bytes_atomic)
    except BaseException:
        if created:  # a failed write leaves no empty folder behind
            import shutil

            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _cycle_plots(nc: NetworkCycles, out_dir: Path, FigureCanvasAgg, Figure, write_bytes_atomic) -> list[Path]:  # noqa: N803
    idx = [l.index for l in nc.layers]
    written = []

    def save(fig: Figure, name: str) -> None:
        fig.tight_layout()
        buf = io.BytesIO()
        FigureCanvasAgg(fig).print_png(buf)
        write_bytes_atomic(out_dir / name, buf.getvalue())
        written.append(out_dir / name)

    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    comp = [l.compute_cycles for l in nc.layers]
    fill = [l.fill_drain_cycles for l in nc.layers]
    stall = [l.stall_cycles for l in nc.layers]
    ax.bar(idx, comp, label="compute")
    ax.bar(idx, fill, bottom=comp, label="fill/drain")
    ax.bar(idx, stall, bottom=[a + b for a, b in zip(comp, fill)], label="memory stall")
    ax.set(xlabel="layer", ylabel="cycles", title=f"{nc.name}: cycles per layer ({nc.hw.rows}x{nc.hw.cols})")
    ax.legend()
    save(fig, "cycles.png")

    fig = Figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    ax.bar(idx, [l.util_pct for l in nc.layers], label="utilization (total)")
    ax.plot(idx, [l.mapping_util_pct for l in nc.layers], "k.", label="PE occupancy while streaming")
    ax.set(xlabel="layer", ylabel="%", ylim=(0, 105), title="MAC utilization per layer")
    ax.legend()
    save(fig, "utilization.png")

    fig = roofline_figure(nc)
    save(fig, "roofline.png")
    return written


def roofline_figure(nc: NetworkCycles):
    """The roofline: each layer's achieved MAC/cycle against its arithmetic intensity, with the
    compute and bandwidth roofs.  Layers at the same point share one label ("3,5"); labels are
    placed in display space by ``golden.draw.place_labels`` so none covers another or a point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    peak = nc.hw.macs_per_cycle
    bw = nc.hw.dram_bytes_per_cycle
    pts = [(l.macs / max(1, l.dram_read_bytes + l.dram_write_bytes), l.macs / max(1, l.total_cycles), l.index)
           for l in nc.layers if l.macs]
    if pts:
        xs = [p[0] for p in pts]
        lo, hi = min(xs) / 2, max(xs) * 2
        grid = [lo * (hi / lo) ** (i / 100) for i in range(101)]
        ax.plot(grid, [min(peak, bw * g) for g in grid], "k-", label=f"roof: {peak} MAC/cycle, {bw:g} B/cycle")
        ax.scatter(xs, [p[1] for p in pts])
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set(xlabel="arithmetic intensity (MAC / DRAM byte)", ylabel="achieved MAC / cycle", title="roofline")
    legend = ax.legend(loc="lower right")
    fig.tight_layout()
    if pts:
        ax.set_xlim(ax.get_xlim())  # freeze the limits: label positions are computed in display space
        ax.set_ylim(ax.get_ylim())
        renderer = canvas.get_renderer()
        groups: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
        for x, y, i in pts:  # points closer than 4 px share a label
            px, py = ax.transData.transform((x, y))
            groups.setdefault((round(px / 4), round(py / 4)), []).append((x, y, i))
        anchors, labels, sizes = [], [], []
        for members in groups.values():
            x, y, _ = members[0]
            label = ",".join(str(i) for _, _, i in members)
            probe = ax.text(0, 0, label, fontsize=7)
            bb = probe.get_window_extent(renderer)
            probe.remove()
            anchors.append((x, y, *ax.transData.transform((x, y))))
            labels.append(label)
            sizes.append((bb.width + 2, bb.height + 2))
        dots = [(px - 3, py - 3, px + 3, py + 3) for _, _, px, py in anchors]
        lb = legend.get_window_extent(renderer)
        cands = [[(px + 3, py + 3), (px + 3, py - 3 - h), (px - 3 - w, py + 3), (px - 3 - w, py - 3 - h),
                  (px - w / 2, py + 4), (px - w / 2, py - 4 - h)] for (_, _, px, py), (w, h) in zip(anchors, sizes)]
        a = ax.bbox
        rects = place_labels(cands, sizes, (a.x0, a.y0, a.x1, a.y1), [*dots, (lb.x0, lb.y0, lb.x1, lb.y1)])
        k = 72 / fig.dpi
        for (x, y, px, py), label, r in zip(anchors, labels, rects):
            ann = ax.annotate(label, (x, y), xytext=((r[0] + 1 - px) * k, (r[1] + 1 - py) * k),
                              textcoords="offset points", fontsize=7, ha="left", va="bottom", gid="roofline-label")
            ann.set_in_layout(False)
    return fig
