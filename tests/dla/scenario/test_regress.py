"""`dla regress`: many scenarios on Dask give the same results as one by one; failures stay local."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from dla.scenario import run_to_dir
from dla.scenario.load import load_scenario
from dla.scenario.regress import Job, collect, run_campaign, run_job
from tests.cli_helpers import fails, run
from tests.dla.scenario.helpers import BASE, QUANT, TINY_CFG, write_scenario


def _dies_or_runs(job: Job, out_dir: str) -> dict:
    """The campaign's task, except that the job named 'dies' ends its worker process at once."""
    if job.id == "dies":
        os._exit(3)
    return run_job(job, out_dir)


def test_parallel_equals_serial_and_failures_stay_local(tmp_path: Path) -> None:
    src = tmp_path / "scn"
    src.mkdir()
    write_scenario(src, "sweep", matrix={"quant.activations": ["max", "mse", "kl", "percentile"],
                                         "model.seed": [1, 2]},
                   checks=[{"sqnr": {"min_db": 0}}])
    (src / "trunc.weights").write_bytes(b"\x00" * 100)  # exists (so the campaign starts) but is truncated
    write_scenario(src, "broken", model={"cfg": str(TINY_CFG), "weights": "trunc.weights"})
    write_scenario(src, "strict", checks=[{"sqnr": {"min_db": 500}}])
    jobs = collect([str(src)])
    assert [j.id for j in jobs] == ["broken", "strict", *(f"sweep-{a}-{s}" for a in ("max", "mse", "kl", "percentile")
                                                          for s in (1, 2))]
    jobs.insert(1, Job("dies", jobs[1].scenario))
    out = tmp_path / "out"
    rows = {r["id"]: r for r in run_campaign(jobs, out, workers=2, task=_dies_or_runs)}
    assert rows["broken"]["status"] == "error" and "trunc.weights" in rows["broken"]["message"]
    assert rows["dies"]["status"] == "error" and "worker" in rows["dies"]["message"]
    assert rows["strict"]["status"] == "fail"
    sweep = [j for j in jobs if j.id.startswith("sweep-")]
    assert len(sweep) == 8 and all(rows[j.id]["status"] == "pass" for j in sweep)
    # the same 8 scenarios one by one, in this process
    (tmp_path / "serial").mkdir()
    for j in sweep:
        alone = run_to_dir(j.scenario, tmp_path / "serial" / j.id).summary
        parallel = json.loads((out / j.id / "summary.json").read_text())
        assert parallel == json.loads(json.dumps(alone)), j.id  # summary.json holds no wall time
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    cases = [c for suite in xml for c in suite]
    errors = [c for c in cases if any(isinstance(r, Error) for r in c.result)]
    failures = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert len(errors) == 2 and len(failures) == 1 and len(cases) == 8 + 1 + 2
    index = (out / "index.html").read_text()
    assert "8 passed, 1 failed, 2 errors" in index and 'href="sweep-kl-1/report.html"' not in index  # html: false
    assert json.loads((out / "regress.json").read_text())["scenarios"][0]["id"] == "broken"


def test_cli_exit_code_and_index(tmp_path: Path) -> None:
    a = write_scenario(tmp_path, "a", report={"html": True})
    b = write_scenario(tmp_path, "b", checks=[{"sqnr": {"min_db": 500}}])
    res = run("regress", a, b, "-j", "1", "-o", tmp_path / "out", "-q")
    assert res.exit_code == 1, res.output
    assert "1/2 scenarios passed" in res.output and "FAIL" in res.output
    assert 'href="a/report.html"' in (tmp_path / "out" / "index.html").read_text()


def test_unreachable_scheduler_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    a = write_scenario(tmp_path, "a")
    fails("regress", a, "--scheduler", "tcp://127.0.0.1:9", "-o", tmp_path / "out", "-q",
          needle="cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 10 s")
    assert not (tmp_path / "out").exists()


def test_a_bad_scenario_stops_the_campaign_before_it_starts(tmp_path: Path) -> None:
    write_scenario(tmp_path, "good")
    (tmp_path / "bad.yaml").write_text("model: {cfg: yolov3-tiny}\nmodes: [float, integer]\n")
    fails("regress", tmp_path, "-o", tmp_path / "out", "-q", needle="bad.yaml:2: modes.1: unknown value 'integer'")
    fails("regress", str(tmp_path / "*.yml"), "-q", needle="the pattern matches no file")
    assert not (tmp_path / "out").exists()


def test_matrix_names_are_unique_and_loadable(tmp_path: Path) -> None:
    p = write_scenario(tmp_path, "m", matrix={"hw": ["default", "small8"]})
    assert [j.id for j in collect([str(p), str(p)])] == ["m-default", "m-small8", "m-default-2", "m-small8-2"]
    assert load_scenario(p, allow_matrix=True).scenario.matrix == {"hw": ["default", "small8"]}


def test_an_existing_scheduler_runs_the_campaign(tmp_path: Path) -> None:
    """--scheduler: the scenarios run on a cluster someone else started (here: one in this test)."""
    from dask.distributed import LocalCluster

    a = write_scenario(tmp_path, "a")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = run("regress", a, "--scheduler", cluster.scheduler_address, "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0, res.output
    assert cluster.scheduler_address in (tmp_path / "out" / "index.html").read_text()
    assert json.loads((tmp_path / "out" / "a" / "summary.json").read_text())["passed"]


@pytest.mark.parametrize("hw, needle", [("hw:\n  rows: 0\n", "s.yaml:6: rows=0 must be positive"),
                                        ("hw: bad-hw.yaml\n", "bad-hw.yaml:1: unknown key 'colls'")])
def test_hardware_is_validated_before_a_campaign_starts(tmp_path: Path, hw: str, needle: str) -> None:
    """docs: every scenario is validated before the campaign starts; a bad inline or YAML hw
    was only found by the worker (an 'error' row after the others had run)."""
    from dla.scenario.regress import collect
    from golden.errors import UserInputError

    (tmp_path / "bad-hw.yaml").write_text("colls: 8\n")
    p = tmp_path / "s.yaml"
    p.write_text(BASE + QUANT + hw)
    with pytest.raises(UserInputError, match=needle):
        collect([str(p)])


def test_regress_job_folders_are_unique_and_inside_the_output(tmp_path: Path) -> None:
    """'a', 'a' and 'a-2' gave two jobs 'a-2' (one report overwrote the other, one row was lost);
    a scenario named 'junit.xml' crashed the campaign when it wrote OUT/junit.xml."""
    from dla.scenario.regress import collect

    for f, name in (("a", "a"), ("b", "a"), ("c", "a-2"), ("d", "junit.xml"), ("e", "index.html")):
        (tmp_path / f"{f}.yaml").write_text(BASE + QUANT + f"name: {name}\n")
    ids = [j.id for j in collect([str(tmp_path)])]
    assert len(set(ids)) == 5 and not {"junit.xml", "index.html", "regress.json"} & set(ids), ids
