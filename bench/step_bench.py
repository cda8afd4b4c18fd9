"""Session.step() through every layer in INT mode: per-layer latency (median and max).

Run from the checkout: python3 bench/step_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_step, run_main
from dla.catalog import resolve_cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3-tiny", help="Shipped cfg name or .cfg path (default: %(default)s).")
    a = ap.parse_args()
    bench_step(resolve_cfg(a.model))


if __name__ == "__main__":
    run_main(main)
