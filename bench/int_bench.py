"""INT engine benchmark (issue B): yolov3-tiny 416x416, same threads, back to back.

Run: python bench/int_bench.py   (same as `dla bench int`; needs onnxruntime + onnx for the conv stack)
Targets: INT <= 1.5x the golden FLOAT time; conv stack no slower than onnxruntime's s8s8 path.
"""
from dla.bench import bench_int
from dla.models import resolve_cfg

if __name__ == "__main__":
    bench_int(resolve_cfg("yolov3-tiny"))
