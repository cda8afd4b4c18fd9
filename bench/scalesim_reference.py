"""Generate SCALE-Sim reference compute cycles for every conv layer of yolov3-tiny.

Run with the python of a *separate* SCALE-Sim venv (not the project's)::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 'numpy<2.4'
    /tmp/scalesim-venv/bin/python bench/scalesim_reference.py            # all 4 CSVs
    /tmp/scalesim-venv/bin/python bench/scalesim_reference.py --arrays 16x16 --dataflows os
    /tmp/scalesim-venv/bin/python bench/scalesim_reference.py --verify   # closed form vs CSVs

It writes one CSV per (array, dataflow)::

    tests/data/scalesim/yolov3-tiny_{rows}x{cols}_{dataflow}.csv
    layer,ifmap_h,ifmap_w,filter_h,filter_w,channels,filters,stride,
    compute_cycles,stall_cycles,mapping_efficiency,compute_util

``compute_cycles`` is SCALE-Sim's ``Total Cycles`` column of COMPUTE_REPORT.csv (what its
verbose log calls "Compute cycles"; it includes stalls, which are 0 with this config),
``stall_cycles`` its ``Stall Cycles``, ``mapping_efficiency`` its ``Mapping Efficiency %``
and ``compute_util`` its ``Compute Util %`` -- all copied verbatim as SCALE-Sim printed them.

SCALE-Sim config used (one run per layer, in a temp dir that is deleted afterwards):

    scalesim 3.0.0, Python API ``scalesim(save_disk_space=True, verbose=False, ...)``
      (``save_disk_space=True`` = no SRAM/DRAM trace files; the CLI writes GBs of them)
    ArrayHeight x ArrayWidth: 16x16 or 8x8          Dataflow: os | ws
    IfmapSramSzkB = FilterSramSzkB = OfmapSramSzkB = 8192 (every operand of every layer fits)
    IfmapOffset 0, FilterOffset 10000000, OfmapOffset 20000000
    InterfaceBandwidth: CALC (SCALE-Sim estimates the DRAM bandwidth: reads never stall)
    UseRamulatorTrace False, no custom layout (empty layout file), sparsity off,
    ReadRequestBuffer = WriteRequestBuffer = 512, batch 1 (SCALE-Sim has no batch).

Topology rows: SCALE-Sim has no padding, so ifmap_h/ifmap_w are the *padded* sizes
(H + 2*pad); its output size is ceil((H_pad - k + s) / s), which then equals Darknet's.
Each topology row ends with a comma (SCALE-Sim drops the last comma-separated field).
No pooling: SCALE-Sim only models the conv layers; layer indices are the cfg's.

The layer list is hard-coded below (from ``dla info yolov3-tiny``); when the project's
``golden`` package is importable (run from the repo root) it is cross-checked against
``golden.network.parse_network('dla/data/cfg/yolov3-tiny.cfg')``.  Nothing else of the
project is imported.

The closed forms SCALE-Sim 3.0.0 implements (R x C array; Npx = ofmap pixels
(Ho*Wo), K = filters, W = filter_h*filter_w*channels), derived from its demand matrices
and checked Delta = 0 against every row by ``--verify``:

    OS: folds = ceil(Npx/R) * ceil(K/C);  cycles = folds * (W + R + C - 2) - 1
    WS: folds = ceil(W/R)   * ceil(K/C);  cycles = folds * (Npx + 2R + C - 2) - 1

(the trailing -1: SCALE-Sim reports the index of the last demand cycle, counting from 0).
``--verify`` also recomputes ``mapping_efficiency`` and ``compute_util`` (see
``closed_form_utils``) and compares the printed strings.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "tests" / "data" / "scalesim"
NETWORK = "yolov3-tiny"

# (cfg layer index, in_h, in_w, channels, filters, size, stride, pad) -- yolov3-tiny @416.
YOLOV3_TINY_CONVS = [
    (0, 416, 416, 3, 16, 3, 1, 1),
    (2, 208, 208, 16, 32, 3, 1, 1),
    (4, 104, 104, 32, 64, 3, 1, 1),
    (6, 52, 52, 64, 128, 3, 1, 1),
    (8, 26, 26, 128, 256, 3, 1, 1),
    (10, 13, 13, 256, 512, 3, 1, 1),
    (12, 13, 13, 512, 1024, 3, 1, 1),
    (13, 13, 13, 1024, 256, 1, 1, 0),
    (14, 13, 13, 256, 512, 3, 1, 1),
    (15, 13, 13, 512, 255, 1, 1, 0),
    (18, 13, 13, 256, 128, 1, 1, 0),
    (21, 26, 26, 384, 256, 3, 1, 1),
    (22, 26, 26, 256, 255, 1, 1, 0),
]

COLUMNS = ["layer", "ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "filters",
           "stride", "compute_cycles", "stall_cycles", "mapping_efficiency", "compute_util"]

SRAM_KB = 8192

CONFIG_TEMPLATE = """\
[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kb}
FilterSramSzkB: {sram_kb}
OfmapSramSzkB: {sram_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

TOPOLOGY_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                   "Channels, Num Filter, Strides,\n")


def layer_rows() -> list[dict]:
    """The SCALE-Sim topology rows (padded ifmap sizes) for every conv layer."""
    rows = []
    for idx, h, w, c, k, size, stride, pad in YOLOV3_TINY_CONVS:
        rows.append({"layer": idx, "ifmap_h": h + 2 * pad, "ifmap_w": w + 2 * pad,
                     "filter_h": size, "filter_w": size, "channels": c, "filters": k,
                     "stride": stride})
    return rows


def cross_check_with_cfg() -> None:
    """Compare the hard-coded list with the project's cfg parser when it is importable."""
    sys.path.insert(0, str(REPO))
    try:
        from golden.network import parse_network  # noqa: WPS433 (optional, layer list only)
    except Exception as exc:  # pragma: no cover - depends on the venv
        print(f"note: golden.network not importable here ({exc!r}); using the hard-coded list")
        return
    finally:
        sys.path.pop(0)
    net = parse_network(REPO / "dla" / "data" / "cfg" / f"{NETWORK}.cfg")
    parsed = []
    for spec in net.layers:
        if spec.kind.value != "convolutional":
            continue
        c, h, w = spec.in_shape
        assert spec.stride_x == spec.stride_y and spec.groups == 1
        parsed.append((spec.index, h, w, c, spec.filters, spec.size, spec.stride_x, spec.padding))
    if parsed != YOLOV3_TINY_CONVS:
        raise SystemExit(f"hard-coded layer list differs from the cfg:\n{parsed}")
    print(f"layer list checked against the cfg: {len(parsed)} conv layers")


def ofmap_pixels(row: dict) -> int:
    s = row["stride"]
    ho = math.ceil((row["ifmap_h"] - row["filter_h"] + s) / s)
    wo = math.ceil((row["ifmap_w"] - row["filter_w"] + s) / s)
    return ho * wo


def closed_form_cycles(row: dict, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim 3.0.0's compute cycles (no stalls) in closed form."""
    npx = ofmap_pixels(row)
    window = row["filter_h"] * row["filter_w"] * row["channels"]
    k = row["filters"]
    if dataflow == "os":
        folds = math.ceil(npx / rows) * math.ceil(k / cols)
        return folds * (window + rows + cols - 2) - 1
    if dataflow == "ws":
        folds = math.ceil(window / rows) * math.ceil(k / cols)
        return folds * (npx + 2 * rows + cols - 2) - 1
    raise ValueError(dataflow)


def closed_form_utils(row: dict, rows: int, cols: int, dataflow: str) -> tuple[str, str]:
    """SCALE-Sim's ``Mapping Efficiency %`` and ``Compute Util %`` as it prints them.

    Both are plain means over the folds (filter folds outer, row folds inner) of
    used/(R*C) and used*T/(R*C*fold_cycles), where used = rows_used * cols_used of the fold,
    T is the temporal extent (OS: W, WS: Npx) and fold_cycles is W + R + C - 2 (OS) or
    Npx + 2R + 2C - 3 (WS: one more C - 1 than the fold's demand lines).  Evaluated in the
    same order so that the floats come out bit-identical.
    """
    npx = ofmap_pixels(row)
    window = row["filter_h"] * row["filter_w"] * row["channels"]
    k = row["filters"]
    if dataflow == "os":
        spatial, temporal, fold_cycles = npx, window, window + rows + cols - 2
    else:
        spatial, temporal, fold_cycles = window, npx, npx + 2 * rows + 2 * cols - 3
    maps, utils = [], []
    for fc in range(math.ceil(k / cols)):
        for fr in range(math.ceil(spatial / rows)):
            used = min(rows, spatial - fr * rows) * min(cols, k - fc * cols)
            maps.append(used / (rows * cols))
            utils.append(used * temporal / (rows * cols * fold_cycles))
    return str(sum(maps) / len(maps) * 100), str(sum(utils) / len(utils) * 100)


def run_one_layer(row: dict, rows: int, cols: int, dataflow: str, work: Path) -> dict:
    """Run SCALE-Sim on one layer in ``work`` and return its COMPUTE_REPORT row (verbatim)."""
    from scalesim.scale_sim import scalesim  # the SCALE-Sim venv only

    run_name = f"L{row['layer']}_{rows}x{cols}_{dataflow}"
    cfg = work / "scale.cfg"
    cfg.write_text(CONFIG_TEMPLATE.format(run_name=run_name, rows=rows, cols=cols,
                                          sram_kb=SRAM_KB, dataflow=dataflow))
    topo = work / "topology.csv"
    fields = [f"layer{row['layer']}"] + [str(row[c]) for c in COLUMNS[1:8]]
    topo.write_text(TOPOLOGY_HEADER + ", ".join(fields) + ",\n")
    layout = work / "layout.csv"      # header only: no custom layout
    layout.write_text("Layer name,\n")

    sim = scalesim(save_disk_space=True, verbose=False, config=str(cfg), topology=str(topo),
                   layout=str(layout), input_type_gemm=False)
    sim.run_scale(top_path=str(work / "out"))

    report = work / "out" / run_name / "COMPUTE_REPORT.csv"
    with report.open() as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    header = [h.strip() for h in lines[0].split(",")]
    values = [v.strip() for v in lines[1].split(",")]
    rep = dict(zip(header, values))
    return {**row,
            "compute_cycles": rep["Total Cycles"],
            "stall_cycles": rep["Stall Cycles"],
            "mapping_efficiency": rep["Mapping Efficiency %"],
            "compute_util": rep["Compute Util %"]}


def csv_path(rows: int, cols: int, dataflow: str, out_dir: Path) -> Path:
    return out_dir / f"{NETWORK}_{rows}x{cols}_{dataflow}.csv"


def read_csv(path: Path) -> dict[int, dict]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {int(r["layer"]): r for r in csv.DictReader(f)}


def write_csv(path: Path, results: dict[int, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for layer in sorted(results):
            w.writerow({c: results[layer][c] for c in COLUMNS})
    tmp.replace(path)


def generate(arrays: list[tuple[int, int]], dataflows: list[str], layers: set[int] | None,
             out_dir: Path, force: bool) -> None:
    try:
        import scalesim  # noqa: F401
    except ImportError:
        raise SystemExit("scalesim is not importable: run this with the SCALE-Sim venv's python")
    for rows, cols in arrays:
        for dataflow in dataflows:
            path = csv_path(rows, cols, dataflow, out_dir)
            results = {} if force else read_csv(path)
            for row in layer_rows():
                if layers is not None and row["layer"] not in layers:
                    continue
                if row["layer"] in results:
                    print(f"{path.name}: layer {row['layer']} already done, skipped", flush=True)
                    continue
                t0 = time.perf_counter()
                work = Path(tempfile.mkdtemp(prefix="scalesim-"))
                try:
                    res = run_one_layer(row, rows, cols, dataflow, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                dt = time.perf_counter() - t0
                results[row["layer"]] = res
                write_csv(path, results)     # after every layer: a long run can be resumed
                expect = closed_form_cycles(row, rows, cols, dataflow)
                print(f"{rows}x{cols} {dataflow} layer {row['layer']:>2}: "
                      f"cycles {res['compute_cycles']} (closed form {expect}) "
                      f"stalls {res['stall_cycles']} map-eff {res['mapping_efficiency']} "
                      f"util {res['compute_util']}  [{dt:.1f} s]", flush=True)


def verify(out_dir: Path) -> int:
    """Closed form vs every row of every CSV present; returns the number of mismatches."""
    bad = 0
    for path in sorted(out_dir.glob(f"{NETWORK}_*x*_*.csv")):
        dims, dataflow = path.stem.split("_")[1:3]
        rows, cols = (int(x) for x in dims.split("x"))
        print(f"{path.name}")
        print(f"  {'layer':>5} {'scalesim':>12} {'formula':>12} {'delta':>6} {'stalls':>6}"
              f"  mapping-eff / compute-util (scalesim == formula?)")
        for r in read_csv(path).values():
            row = {c: int(r[c]) for c in COLUMNS[:8]}
            got = int(r["compute_cycles"])
            want = closed_form_cycles(row, rows, cols, dataflow)
            m, u = closed_form_utils(row, rows, cols, dataflow)
            same = (m == r["mapping_efficiency"], u == r["compute_util"])
            bad += (got != want) + (not all(same))
            print(f"  {row['layer']:>5} {got:>12} {want:>12} {got - want:>6} "
                  f"{r['stall_cycles']:>6}  {r['mapping_efficiency']} {same[0]} / "
                  f"{r['compute_util']} {same[1]}")
    print("all rows match" if bad == 0 else f"{bad} rows differ")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arrays", default="16x16,8x8", help="comma list of RxC (default 16x16,8x8)")
    ap.add_argument("--dataflows", default="os,ws", help="comma list of os,ws")
    ap.add_argument("--layers", default="", help="comma list of cfg layer indices (default all)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--force", action="store_true", help="rerun layers already in the CSV")
    ap.add_argument("--verify", action="store_true",
                    help="only compare the closed form with the CSVs (no SCALE-Sim needed)")
    args = ap.parse_args(argv)
    # a kill (SIGTERM) unwinds like Ctrl-C, so the per-layer temp dir is still removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.verify:
        return 1 if verify(args.out) else 0
    cross_check_with_cfg()
    arrays = [tuple(int(x) for x in a.split("x")) for a in args.arrays.split(",") if a]
    dataflows = [d for d in args.dataflows.split(",") if d]
    layers = {int(x) for x in args.layers.split(",") if x} or None
    print(f"scalesim config: CALC bandwidth, SRAM {SRAM_KB} kB each, save_disk_space=True; "
          f"tmp under {tempfile.gettempdir()}", flush=True)
    t0 = time.perf_counter()
    generate(arrays, dataflows, layers, args.out, args.force)
    print(f"total {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
