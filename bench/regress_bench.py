"""`dla regress` over N small scenarios: -j 1 against -j J wall time, as a speed-up.

Run from the checkout: python3 bench/regress_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_regress
from dla.catalog import resolve_cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3-tiny", help="Shipped cfg name or .cfg path (default: %(default)s).")
    ap.add_argument("-n", "--scenarios", type=int, default=8)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    a = ap.parse_args()
    resolve_cfg(a.model)
    bench_regress(a.scenarios, a.jobs, a.model)


if __name__ == "__main__":
    main()
