"""INT forward vs golden FLOAT and OpenCV; the conv stack vs onnxruntime's QLinearConv (s8s8, u8s8).

Targets: INT <= 1.5x the golden FLOAT time; conv stack no slower than onnxruntime's s8s8 path.
Needs the [bench] extra (OpenCV, onnxruntime, onnx).

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
