"""`dla bench NAME`: runs the checkout's bench/NAME_bench.py with the remaining arguments."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dla.cli.bench
from tests.cli_helpers import fails


def test_runs_the_checkout_benchmark_with_its_arguments() -> None:
    res = subprocess.run([sys.executable, "-c", "from dla.cli import main; main()", "bench", "cycles",
                          "--model", "yolov3-tiny"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "yolov3-tiny: cycle model of 24 layers in" in res.stdout


def test_the_benchmark_help_is_the_scripts() -> None:
    res = subprocess.run([sys.executable, "-c", "from dla.cli import main; main()", "bench", "int", "--help"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "usage: int_bench.py" in res.stdout and "--repeats" in res.stdout


def test_every_benchmark_name_has_its_script() -> None:
    assert all((dla.cli.bench.bench_dir() / f"{n}_bench.py").is_file() for n in dla.cli.bench.BENCHMARKS)


def test_outside_a_checkout_it_says_where_benchmarks_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dla.cli.bench, "bench_dir", lambda: tmp_path)
    fails("bench", "cycles", needle="the benchmarks live in the source checkout's bench/")
