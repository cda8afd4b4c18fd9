"""INT forward vs golden FLOAT and OpenCV; the conv stack vs onnxruntime's QLinearConv (u8s8, s8s8).

Targets (issue S): INT forward <= 1.0x the golden FLOAT time; the exact conv stack <= 2x
onnxruntime's u8s8 path.  Prints which backend computes the exact sums (dla.int_backend;
DLA_INT_BACKEND=float|onnxruntime forces one) and the INT time on the float-BLAS backend.
Needs the [bench] extra (OpenCV).

Run from the checkout: python3 bench/int_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_int, run_main
from dla.catalog import resolve_cfg
from golden.errors import UserInputError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3-tiny", help="Shipped cfg name or .cfg path (default: %(default)s).")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise UserInputError("the INT benchmark needs OpenCV: pip install 'opencv-python-headless<5' "
                             "(the [bench] extra)") from None
    bench_int(resolve_cfg(a.model), a.threads, a.repeats)


if __name__ == "__main__":
    run_main(main)
