"""`dla tune` with -j 1 against -j J on shapes-yolo, and the INT engine's speed as ratios.

1. A small shapes data set is generated (seed 1, as the held-out set of docs/accuracy.md):
   N calibration images (train/) and N scored images (val/).  The same tune runs twice back to
   back, with 1 worker and with J, each into a fresh OUT (no cache hit between them); printed:
   configurations measured, wall time of each and their ratio, whether both chose the same
   point, and the count an exhaustive search would need (tune.json "exhaustive").
2. The engine tune runs hundreds of times: INT forward against the golden FLOAT forward, and
   the exact conv stack against onnxruntime's u8s8 QLinearConv (VNNI where the CPU has it), on
   yolov3-tiny with seeded weights, medians of interleaved repetitions at the same thread count.
   Targets (issue S): INT ≤ 1.0× FLOAT, conv stack ≤ 2× onnxruntime u8s8.

Run from the checkout: python3 bench/tune_bench.py [--help]   (or: dla bench tune [ARGS])
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from harness import _ort_qlinearconv_session, interleaved_medians, peak_rss_mib, run_main
from dla.catalog import resolve_cfg
from golden.engine import forward
from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network


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


def bench_engine(cfg: str | Path, threads: int, repeats: int, seed: int = 0, log=print) -> dict[str, float]:
    """INT forward vs golden FLOAT; the exact conv stack vs onnxruntime u8s8 (per conv, on the
    int8 inputs of a real INT run), as ``bench/harness.py``'s ``bench_int`` measures them."""
    from dla.engine import Engine, quantize_tensor
    from dla.int_kernels import conv_int
    from golden.layers import ConvSpec
    from quant import collect_ranges, quantize

    net = random_weights(parse_network(cfg), seed)
    x = synthetic_image(net.input_shape, np.random.default_rng(seed + 1))
    qnet = quantize(net, collect_ranges(net, [x]), "per_channel")
    engine = Engine(net, qnet)
    plans = engine.plans()
    figures: dict[str, float] = {}
    with threadpool_limits(limits=threads):
        t_int, t_float = interleaved_medians([lambda: engine.run(x, "int"), lambda: forward(net, x, keep_all=False)],
                                             repeats)
        figures.update(int_ms=t_int, float_ms=t_float, int_over_float=t_int / t_float)
        log(f"{net.name} threads={threads}: INT {t_int:.1f} ms, golden FLOAT {t_float:.1f} ms: "
            f"INT / FLOAT = {t_int / t_float:.2f}x (target <= 1.0x)")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            log("onnxruntime not installed (the [bench] extra): conv-stack ratio skipped")
            return figures
        run = engine.run(x, "int")
        ours = u8 = 0.0
        convs = [s for s in net.layers if isinstance(s, ConvSpec)]
        for spec in convs:
            src = spec.inputs[0]
            xq = run.records[src].output if src >= 0 else quantize_tensor(x, qnet.scales[-1])
            xu = (xq.astype(np.int16) + 128).astype(np.uint8)
            sess = _ort_qlinearconv_session(spec, qnet.layers[spec.index].w_q, "uint8", threads)
            plan = plans[spec.index]
            a, b = interleaved_medians([lambda: conv_int(spec, [xq], plan, engine.hw),
                                        lambda: sess.run(None, {"x": xu[None]})], repeats)
            ours, u8 = ours + a, u8 + b
        figures.update(conv_stack_ms=ours, ort_u8s8_ms=u8, conv_over_u8s8=ours / u8)
        log(f"conv stack ({len(convs)} convs): ours {ours:.1f} ms, onnxruntime u8s8 {u8:.1f} ms: "
            f"ours / u8s8 = {ours / u8:.2f}x (target <= 2.0x)")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--images", type=at_least(1), default=20,
                    help="scored images (and as many calibration images) of the generated set (default: %(default)s)")
    ap.add_argument("-j", "--jobs", type=at_least(2), default=2, help="workers of the second run (default: %(default)s)")
    ap.add_argument("--metric", default="map50_95", choices=["map50", "map50_95", "sqnr"])
    ap.add_argument("--max-drop", type=float, default=0.01)
    ap.add_argument("--model", default="yolov3-tiny",
                    help="shipped cfg name or .cfg path of the engine ratios, with seeded weights (default: %(default)s; "
                         "the tune itself is on shapes-yolo)")
    ap.add_argument("--space", help="a search-space YAML for the tune (default: tune's defaults)")
    ap.add_argument("--threads", type=at_least(1), default=2)
    ap.add_argument("--repeats", type=at_least(1), default=5)
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
