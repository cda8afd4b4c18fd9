"""`dla bench NAME`: runs the checkout's bench/NAME_bench.py with the remaining arguments."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dla.cli.bench
from dla.catalog import shipped_cfgs
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


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from dla.cli import main; main()", "bench", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", dla.cli.bench.BENCHMARKS)
def test_an_unknown_model_is_one_error_line_not_a_traceback(name: str) -> None:
    # as when the benchmarks were `dla bench` subcommands inside the CLI's error boundary
    res = _bench(name, "--model", "no-such-model")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert [line for line in res.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: no-such-model: no such cfg file, and not a shipped model (shipped: "
        + ", ".join(shipped_cfgs()) + ")"], res.stderr


@pytest.mark.parametrize("option", ["-j", "-n"])
def test_regress_needs_two_workers_and_two_scenarios(option: str) -> None:
    res = _bench("regress", option, "1")
    assert res.returncode == 2 and "1 is not in the range x>=2" in res.stderr, res.stderr


def test_the_files_the_benchmarks_read_from_the_checkout_exist() -> None:
    # a test-data move (tests/web → tests/data/web) once left bench/web_bench.py reading a deleted path
    import re

    bench = dla.cli.bench.bench_dir()
    for script in sorted(bench.glob("*.py")):
        text = script.read_text()
        for parts in re.findall(r'here((?:\s*/\s*"[^"]+")+)', text):
            path = bench.parent.joinpath(*re.findall(r'"([^"]+)"', parts))
            assert path.exists(), f"{script.name} reads {path}, which does not exist"
        for named in re.findall(r"\btests/[\w./-]+\.\w+", text):
            assert (bench.parent / named).exists(), f"{script.name} names {named}, which does not exist"


@pytest.mark.parametrize("name", ["float", "int"])
def test_without_opencv_it_says_how_to_install_it(name: str, tmp_path: Path) -> None:
    (tmp_path / "cv2.py").write_text("raise ImportError('no OpenCV here')\n")  # hides the real one
    res = subprocess.run([sys.executable, "-c", "from dla.cli import main; main()", "bench", name],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])})
    assert res.returncode == 2, res.stderr  # as when it was a `dla bench` subcommand
    assert "benchmark needs OpenCV: pip install 'opencv-python-headless<5'" in res.stderr
    assert "Traceback" not in res.stderr


def test_tune_bench_needs_two_workers_for_its_second_run() -> None:
    res = _bench("tune", "-j", "1")
    assert res.returncode == 2 and "1 is not in the range x>=2" in res.stderr, res.stderr


@pytest.mark.slow
def test_tune_bench_prints_both_runs_and_the_exhaustive_count(tmp_path: Path) -> None:
    import re

    space = tmp_path / "space.yaml"
    space.write_text("defaults: {weight_bits: [8], activation_bits: [8]}\nlayers: [{layers: [0], weight_bits: [8, 4]}]\n")
    res = _bench("tune", "-n", "2", "--space", str(space), "--skip-engine")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "-j 1: 2 configurations measured (0 from a cache)" in out and "-j 2: 2 configurations measured (0 from" in out
    assert "-j 1 / -j 2 wall time = " in out and "same chosen point: True, same points measured: True" in out
    assert re.search(r"an exhaustive search would need (2 = )?2 configurations \(this search measured 2\)", out), out
