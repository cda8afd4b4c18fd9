"""`dla regress` over N small scenarios: -j 1 against -j J wall time, as a speed-up.

Run from the checkout: python3 bench/regress_bench.py [--help]
"""
from __future__ import annotations

import argparse

from harness import bench_regress, run_main
from dla.catalog import resolve_cfg


def at_least_two(text: str) -> int:
    """An integer >= 2 (a speed-up needs two scenarios and two workers; ``dla bench regress``
    refused less before it ran this script)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 2:
        raise argparse.ArgumentTypeError(f"{n} is not in the range x>=2")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov3-tiny", help="Shipped cfg name or .cfg path (default: %(default)s).")
    ap.add_argument("-n", "--scenarios", type=at_least_two, default=8)
    ap.add_argument("-j", "--jobs", type=at_least_two, default=2)
    a = ap.parse_args()
    resolve_cfg(a.model)
    bench_regress(a.scenarios, a.jobs, a.model)


if __name__ == "__main__":
    run_main(main)
