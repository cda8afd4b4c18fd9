"""Wall time of the cycle model of a whole network (target: yolov3 under 1 s).

Run from the checkout: python3 bench/cycles_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_cycles, run_main
from dla.catalog import resolve_cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3", help="Shipped cfg name or .cfg path (default: %(default)s).")
    a = ap.parse_args()
    bench_cycles(resolve_cfg(a.model))


if __name__ == "__main__":
    run_main(main)
