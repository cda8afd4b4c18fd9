"""The same scenario gives byte-identical summary.json whatever the BLAS thread count and
whether it runs in `dla run` or in a `dla regress` worker."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import golden.kernels
from dla.engine import Engine, Mode
from dla.scenario import run_to_dir
from golden.genweights import random_weights, synthetic_image
from golden.network import parse_network
from tests.cli_helpers import ok
from tests.dla.scenario.helpers import DATA, write_scenario

K504 = DATA / "k504.cfg"


def _blas_threads() -> int:
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def test_float_gemms_of_a_scenario_run_on_one_blas_thread(tmp_path: Path, monkeypatch) -> None:
    """Every golden float convolution inside a scenario (calibration, FLOAT runs, CROSS) sees one
    BLAS thread, even when the process has more."""
    seen: list[int] = []
    conv = golden.kernels.KERNELS[golden.kernels.Kind.CONV]

    def spy(spec, inputs, params, *fork):  # engines pass the Darknet fork as a 4th argument
        seen.append(_blas_threads())
        return conv(spec, inputs, params, *fork)

    monkeypatch.setitem(golden.kernels.KERNELS, golden.kernels.Kind.CONV, spy)
    p = write_scenario(tmp_path, "spy", model={"cfg": str(K504), "seed": 1}, cross=[{"layer": 1}])
    with threadpool_limits(limits=2):
        assert _blas_threads() == 2
        run_to_dir(p, tmp_path / "out")
        assert _blas_threads() == 2  # restored afterwards
    assert seen and set(seen) == {1}


def test_summary_bytes_equal_with_one_and_two_blas_threads(tmp_path: Path) -> None:
    net = random_weights(parse_network(K504), seed=1)
    x = synthetic_image(net.input_shape, np.random.default_rng(0))
    with threadpool_limits(limits=1):
        one = Engine(net).run(x, Mode.FLOAT).records[1].real
    with threadpool_limits(limits=2):
        two = Engine(net).run(x, Mode.FLOAT).records[1].real
    # (on the development machine `one` and `two` differ in the last bits: the hazard being fixed)
    print("raw float GEMM equal with 1 and 2 BLAS threads:", np.array_equal(one, two))
    p = write_scenario(tmp_path, "k504", model={"cfg": str(K504), "seed": 1}, images={"synthetic": 3},
                       quant={"activations": ["mse", "kl"], "granularity": "per_channel", "calib": {"synthetic": 3}},
                       cross=[{"layer": 1}], step=[{"stop": 1}], report={"html": False, "csv": True})
    outs = []
    for n in (1, 2):
        with threadpool_limits(limits=n):
            run_to_dir(p, tmp_path / f"t{n}")
        outs.append(tmp_path / f"t{n}")
    for name in ("summary.json", "layers.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert "seconds" not in json.loads((outs[0] / "summary.json").read_text())
    assert json.loads((outs[0] / "timing.json").read_text())["total"] > 0


SHIPPED = ["demo", "granularity", "acc16-overflow", "tune"]


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_run_and_regress_summaries_are_byte_identical_on_shipped_scenarios(tmp_path: Path, threads: int) -> None:
    """`dla run X` (BLAS limited to `threads`) and `dla regress X -j 1` / `-j 2` (Dask workers)
    write the same summary.json bytes."""
    ok("regress", *SHIPPED, "-j", str(threads), "-o", tmp_path / "reg", "-q")
    for name in SHIPPED:
        with threadpool_limits(limits=threads):
            ok("run", name, "-o", tmp_path / name, "-q")
        a = (tmp_path / name / "summary.json").read_bytes()
        b = (tmp_path / "reg" / name / "summary.json").read_bytes()
        assert a == b, name
        shutil.rmtree(tmp_path / name)
