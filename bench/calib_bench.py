"""Calibration statistics benchmark (issue C): yolov3-tiny at 416x416 over 50 and 100 images.

Run: python bench/calib_bench.py   (same as `dla bench calib`)
Prints wall time and peak RSS after 50 and after 100 images: the RSS must stay flat.
"""
from dla.bench import bench_calibration
from dla.models import resolve_cfg

if __name__ == "__main__":
    bench_calibration(resolve_cfg("yolov3-tiny"))
