"""``dla bench NAME [ARGS]``: run one of the checkout's benchmarks (``bench/NAME_bench.py``).

The benchmarks themselves live only in ``bench/`` (they measure against peers — OpenCV DNN,
onnxruntime — that the product does not need); this command finds them next to the installed
package, which is the case for the editable install of a clone, and runs one in a fresh
interpreter with the remaining arguments.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from dla.cli.common import UserError

BENCHMARKS = ("float", "int", "calib", "step", "cycles", "regress", "tune")


def bench_dir() -> Path:
    import dla

    return Path(dla.__file__).resolve().parents[1] / "bench"


@click.command("bench", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", type=click.Choice(BENCHMARKS))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench_cmd(name: str, args: tuple[str, ...]) -> None:
    """Run benchmark NAME of the checkout's bench/ (figures and ratios to a peer measured back to
    back in one process); ARGS go to it: `dla bench int --help` lists its options.

    \b
    float    golden FLOAT engine vs OpenCV DNN
    int      INT engine vs golden FLOAT, OpenCV and onnxruntime's int8 convolutions
    calib    calibration statistics: time per image and peak RSS
    step     Session.step() latency per layer
    cycles   wall time of the whole cycle model
    regress  dla regress -j 1 vs -j N speed-up
    tune     dla tune -j 1 vs -j 2 on shapes-yolo (configurations, wall times, exhaustive count);
             INT engine vs golden FLOAT and vs onnxruntime u8s8
    """
    script = bench_dir() / f"{name}_bench.py"
    if not script.is_file():
        raise UserError(f"{script}: not found — the benchmarks live in the source checkout's bench/; "
                        "run them from a clone installed with pip install -e '.[bench]'")
    sys.exit(subprocess.run([sys.executable, str(script), *args]).returncode)


def register(group: click.Group) -> None:
    """Add ``bench`` to the main ``dla`` group."""
    group.add_command(bench_cmd)
