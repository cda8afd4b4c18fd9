"""`dla tune` with -j 1 against -j J on shapes-yolo, and the INT engine's speed as ratios.

1. A small shapes data set is generated (seed 1, as the held-out set of docs/accuracy.md):
   N calibration images (train/) and N scored images (val/).  The same tune runs twice back to
   back, with 1 worker and with J, each into a fresh OUT (no cache hit between them); printed:
   configurations measured, wall time of each and their ratio, whether both chose the same
   point, and the count an exhaustive search would need (tune.json "exhaustive").
2. The engine tune runs hundreds of times, by ``harness.int_engine_ratios`` (as ``dla bench int``):
   INT forward against the golden FLOAT forward, and the exact conv stack against onnxruntime's
   u8s8 QLinearConv (VNNI where the CPU has it), on yolov3-tiny with seeded weights, medians of
   interleaved repetitions at the same thread count, with the INT backend in use.
   Targets (issue S): INT ≤ 1.0× FLOAT, conv stack ≤ 2× onnxruntime u8s8.

Run from the checkout: python3 bench/tune_bench.py [--help]   (or: dla bench tune [ARGS])
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import int_engine_ratios, peak_rss_mib, run_main
from dla.catalog import resolve_cfg


def at_least(low: int):
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"{n} is not in the range x>={low}")
        return n
    return parse


def tune_once(data: Path, out: Path, workers: int, metric: str, max_drop: float,
              space: str | None = None) -> tuple[dict[str, Any], float]:
    """One ``dla tune shapes-yolo`` into the fresh folder ``out``: (tune.json, wall seconds)."""
    from dla.tune import TuneRequest, tune

    t0 = time.perf_counter()
    result = tune(TuneRequest(model="shapes-yolo", data=data / "val", calib=data / "train", metric=metric,
                              max_drop=max_drop, cost="cycles", space=space, workers=workers, out_dir=out))
    seconds = time.perf_counter() - t0
    result.write(out)
    return result.to_json(), seconds


def bench_tune(images: int, jobs: int, metric: str, max_drop: float, space: str | None = None,
               log=print) -> dict[str, float]:
    from dla.datasets.shapes import write_shapes

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as tmp:
        data = Path(tmp) / "shapes"
        write_shapes(data, 2 * images, seed=1, val_fraction=0.5)
        runs = {}
        for j in (1, jobs):
            doc, seconds = tune_once(data, Path(tmp) / f"out-j{j}", j, metric, max_drop, space)
            runs[j] = doc
            measured = doc["evaluations"] + doc["cached"]
            figures[f"j{j}_s"] = seconds
            rel = doc["relative_cost"]
            chosen = f"chosen {doc['chosen']} at {rel:.3f}x the cycles of all-int8" if rel is not None else "no point"
            log(f"-j {j}: {measured} configurations measured ({doc['cached']} from a cache), {seconds:.1f} s wall "
                f"({seconds / max(measured, 1):.2f} s per configuration) on {doc['workers']}; "
                f"budget {'met' if doc['met'] else 'NOT met'}, {chosen}")
        one, many = runs[1], runs[jobs]
        figures["speedup"] = figures["j1_s"] / figures[f"j{jobs}_s"]
        log(f"shapes-yolo, {images} scored + {images} calibration images, {metric} within {max_drop}: "
            f"-j 1 / -j {jobs} wall time = {figures['speedup']:.2f}x; same chosen point: "
            f"{one['chosen'] == many['chosen']}, same points measured: "
            f"{sorted(p['id'] for p in one['points']) == sorted(p['id'] for p in many['points'])}")
        log(f"an exhaustive search would need {one['exhaustive']} configurations "
            f"(this search measured {one['evaluations'] + one['cached']})")
    return figures


def bench_engine(cfg: str | Path, threads: int, repeats: int, log=print) -> dict[str, float | str]:
    """INT forward vs golden FLOAT, and the exact conv stack vs onnxruntime u8s8 (and s8s8), by
    ``bench/harness.py``'s ``int_engine_ratios`` (the figures ``dla bench int`` prints too), then
    the two ratios the issue sets targets for, on one line."""
    figures = int_engine_ratios(cfg, threads, repeats, log=log)
    line = f"ratios: INT / golden FLOAT = {figures['int_vs_float']:.2f}x (target <= 1.0x)"
    if "conv_vs_u8s8" in figures:
        line += f", conv stack / onnxruntime u8s8 = {figures['conv_vs_u8s8']:.2f}x (target <= 2.0x)"
    log(line)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--images", type=at_least(1), default=20,
                    help="scored images (and as many calibration images) of the generated set (default: %(default)s)")
    ap.add_argument("-j", "--jobs", type=at_least(2), default=2, help="workers of the second run (default: %(default)s)")
    ap.add_argument("--metric", default="map50_95", choices=["map50", "map50_95", "sqnr"],
                    help="the budget's metric, as METRIC in dla tune --max-drop METRIC=VALUE (default: %(default)s)")
    ap.add_argument("--max-drop", type=float, default=0.01,
                    help="the budget's VALUE: with --metric, dla tune's --max-drop METRIC=VALUE (default: %(default)s)")
    ap.add_argument("--model", default="yolov3-tiny",
                    help="shipped cfg name or .cfg path of the engine ratios, with seeded weights (default: %(default)s; "
                         "the tune itself is on shapes-yolo)")
    ap.add_argument("--space", help="a search-space YAML for the tune (default: tune's defaults)")
    ap.add_argument("--threads", type=at_least(1), default=2,
                    help="BLAS/onnxruntime threads of the engine measurement (default: %(default)s)")
    ap.add_argument("--repeats", type=at_least(1), default=5,
                    help="interleaved repetitions of the engine measurement; medians are printed (default: %(default)s)")
    ap.add_argument("--skip-tune", action="store_true", help="only the engine ratios")
    ap.add_argument("--skip-engine", action="store_true", help="only the -j comparison")
    a = ap.parse_args()
    cfg = resolve_cfg(a.model)
    if not a.skip_tune:
        bench_tune(a.images, a.jobs, a.metric, a.max_drop, a.space)
    if not a.skip_engine:
        bench_engine(cfg, a.threads, a.repeats)
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    run_main(main)
