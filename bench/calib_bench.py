"""Calibration statistics over synthetic 416x416 images: time per image and peak RSS.

The RSS after 50 and after 100 images must stay flat (streaming histograms).

Run from the checkout: python3 bench/calib_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_calibration, run_main
from dla.catalog import resolve_cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3-tiny", help="Shipped cfg name or .cfg path (default: %(default)s).")
    ap.add_argument("--counts", default="50,100", help="Image counts at which to report (default: %(default)s).")
    a = ap.parse_args()
    bench_calibration(resolve_cfg(a.model), tuple(int(c) for c in a.counts.split(",")))


if __name__ == "__main__":
    run_main(main)
