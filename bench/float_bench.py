"""Golden FLOAT engine vs OpenCV DNN's Darknet importer, same input and weights, same threads.

Targets: yolov3-tiny golden <= 2x OpenCV with 2 threads, <= 1.6x single-threaded; yolov3 <= 1.5x.
Needs opencv-python-headless<5 (the [bench] extra).

Run from the checkout: python3 bench/float_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_float, run_main
from dla.catalog import resolve_cfg
from golden.errors import UserInputError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3-tiny", help="Shipped cfg name or .cfg path (default: %(default)s).")
    ap.add_argument("--weights", help="Real weights (default: seeded random).")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", default="2,1", help="Comma-separated thread counts (default: %(default)s).")
    ap.add_argument("--full", action="store_true", help="Also yolov3 (2 threads, 5 repeats).")
    a = ap.parse_args()
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise UserInputError("the float benchmark needs OpenCV: pip install 'opencv-python-headless<5' "
                             "(the [bench] extra)") from None
    bench_float(resolve_cfg(a.model), a.weights, tuple(int(t) for t in a.threads.split(",")), a.repeats)
    if a.full:
        bench_float(resolve_cfg("yolov3"), threads=(2,), repeats=5)


if __name__ == "__main__":
    run_main(main)
