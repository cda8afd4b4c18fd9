"""Golden FLOAT engine vs OpenCV DNN: yolov3-tiny and yolov3 at 416x416 (issue A targets).

Run: python bench/float_bench.py [--full]   (same as `dla bench float`)
Targets: yolov3-tiny golden <= 2x OpenCV with 2 threads, <= 1.6x single-threaded;
yolov3 <= 1.5x.  Ratios are measured back to back in one process.
"""
import sys

from dla.bench import bench_float
from dla.models import resolve_cfg

if __name__ == "__main__":
    bench_float(resolve_cfg("yolov3-tiny"))
    if "--full" in sys.argv:
        bench_float(resolve_cfg("yolov3"), threads=(2,), repeats=5)
