"""Jobs: runs and quantization in worker processes, progress events, cancel, crash, restart."""
from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

import pytest

from dla.web.db import Job
from tests.dla.web.helpers import DOG, TINY_CFG, YOLO_CFG, Client, tiny_weights_bytes


@pytest.fixture
def tiny(alice: Client) -> dict:
    return {"model": alice.upload_ok("tiny.cfg", TINY_CFG)["id"], "image": alice.upload_ok("dog.jpg", DOG)["id"],
            "weights": alice.upload_ok("tiny.weights", tiny_weights_bytes())["id"]}


@pytest.mark.postgres
def test_run_three_modes(alice: Client, tiny: dict, data_dir) -> None:
    r = alice.post("/api/jobs/run", {"model_id": tiny["model"], "weights_id": tiny["weights"], "image_id": tiny["image"],
                                     "min_sqnr_db": 5})
    assert r.status_code == 200, r.text
    job = alice.wait_job(r.json()["id"])
    assert job["status"] == "done", job
    res = job["result"]
    assert res["modes"] == ["float", "hybrid", "int"]
    assert len(res["layers"]) == 6 and "int_sqnr_db" in res["layers"][0] and "hybrid_cosine" in res["layers"][0]
    # each layer's operand widths, as the report's table names them
    assert [(r["type"], r["precision"]) for r in res["layers"]][:2] == [("convolutional", "w8a8"), ("maxpool", "a8")]
    assert {r["precision"] for r in res["layers"] if r["type"] == "yolo"} == {"host"}
    for name in ("detections-int.png", "layers.csv", "summary.json", res["report"], res["zip"]):
        got = alice.get(f"/api/jobs/{job['id']}/files/{name}")
        assert got.status_code == 200, name
    assert alice.get(f"/api/jobs/{job['id']}/files/layers.csv").text.startswith("variant,image,mode,index")
    # the page's table is summary.json's numbers, not a second computation
    summary = alice.get(f"/api/jobs/{job['id']}/files/summary.json").json()
    ints = {r["index"]: r for r in summary["layers"] if r["mode"] == "int"}
    assert all(row["int_sqnr_db"] == ints[row["index"]]["sqnr_db"] for row in res["layers"])
    assert summary["model"]["weights"] == "inputs/tiny.weights" and summary["images"][0]["name"] == "dog"
    # the self-contained report: checks and embedded plots, and no server path in it
    html = alice.get(f"/api/jobs/{job['id']}/files/{res['report']}")
    assert html.headers["content-disposition"].startswith("attachment")
    text = html.text
    assert text.startswith("<!DOCTYPE html>") and '<img class="plot"' in text and 'src="data:image/png;base64,' in text
    assert 'id="checks-table"' in text and "sqnr int layer final" in text and "sqnr hybrid layer final" in text
    assert str(data_dir) not in text and "/users/" not in text
    assert [c["passed"] for c in res["checks"]] == [c["passed"] for c in summary["checks"]] and len(res["checks"]) == 2
    kept = {f["name"]: f for f in alice.get("/api/files").json()["files"]}
    assert "run-tiny-report.html" in kept and "tiny-calibrated.qnet" not in kept  # kept only when asked
    mine = alice.get(f"/api/files/{kept['run-tiny-report.html']['id']}/download")
    assert mine.status_code == 200 and mine.text == text
    with zipfile.ZipFile(io.BytesIO(alice.get(f"/api/jobs/{job['id']}/files/{res['zip']}").content)) as zf:
        names = set(zf.namelist())
    assert {"run-tiny-report.html", "layers.csv", "summary.json", "detections-int.png",
            "tiny-calibrated.qnet/model.json"} <= names and any(n.startswith("plots/") for n in names)
    assert alice.get(f"/api/jobs/{job['id']}/files/..%2F..%2Fworkbench.sqlite").status_code == 404
    assert alice.get(f"/api/jobs/{job['id']}/files/nothing.csv").status_code == 404
    qz = alice.get(f"/api/jobs/{job['id']}/files/tiny-calibrated.qnet")  # the job's .qnet folder as a zip
    assert qz.status_code == 200 and qz.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(qz.content)) as zf:
        assert sorted(zf.namelist()) == ["tiny-calibrated.qnet/model.json", "tiny-calibrated.qnet/weights.npz"]


def test_run_float_only_and_a_qnet(alice: Client, tiny: dict) -> None:
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": tiny["model"], "image_id": tiny["image"],
                                                      "modes": ["float"]}).json()["id"])
    assert job["status"] == "done", job
    assert job["result"]["layers"] == [] and job["result"]["qnet"] is None
    assert "float" in job["result"]["detections"]
    # a .qnet runs as it is (no calibration), its report kept too
    q = alice.wait_job(alice.post("/api/jobs/quantize", {"model_id": tiny["model"], "output": "t.qnet"}).json()["id"])
    qid = q["result"]["kept"]["t.qnet"]["id"]
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": qid, "image_id": tiny["image"],
                                                      "modes": ["int"]}).json()["id"])
    assert job["status"] == "done", job
    assert job["result"]["qnet"] is None and "int_sqnr_db" in job["result"]["layers"][0]
    assert "run-t-report.html" in {f["name"] for f in alice.get("/api/files").json()["files"]}


@pytest.mark.postgres
def test_progress_events(alice: Client, tiny: dict) -> None:
    job = alice.post("/api/jobs/run", {"model_id": tiny["model"], "image_id": tiny["image"], "modes": ["int"]}).json()
    events = []
    with alice.tc.stream("GET", f"/api/jobs/{job['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "done"
    assert len({e["progress"] for e in events}) >= 2  # progress was pushed, not only the end


@pytest.mark.postgres
def test_quantize_with_overrides(alice: Client, tiny: dict) -> None:
    body = {"model_id": tiny["model"], "weights_id": tiny["weights"], "output": "tiny-kl.qnet",
            "quant": {"activations": "kl", "weights": "mse", "granularity": "per_channel",
                      "overrides": [{"layers": [4], "activations": "max"}, {"types": ["yolo"], "activations": "percentile"}]}}
    job = alice.wait_job(alice.post("/api/jobs/quantize", body).json()["id"])
    assert job["status"] == "done", job
    rows = job["result"]["layers"]
    assert rows[4]["algorithm"] == "max" and rows[2]["algorithm"] == "kl"
    assert rows[0]["precision"] == "w8a8" and rows[-1]["precision"] == "host"  # conv 0; the yolo head
    assert all(isinstance(r["int_sqnr_db"], (float, str)) for r in rows)
    qnet = job["result"]["kept"]["tiny-kl.qnet"]
    assert alice.get(f"/api/models/{qnet['id']}").json()["kind"] == "qnet"


@pytest.mark.postgres
def test_bad_job_requests(alice: Client, tiny: dict, bob: Client) -> None:
    bad = [{"model_id": tiny["model"], "image_id": tiny["image"], "modes": ["fast"]},
           {"model_id": tiny["model"], "image_id": tiny["image"], "quant": {"activations": "magic"}},
           {"model_id": tiny["model"], "image_id": tiny["image"], "quant": {"overrides": [{"activations": "max"}]}},
           {"model_id": tiny["image"], "image_id": tiny["image"]}]
    bad.append({"model_id": tiny["model"], "image_id": tiny["image"], "quant": {"percentile": 120}})
    codes = [alice.post("/api/jobs/run", b).status_code for b in bad]
    assert codes == [422, 422, 422, 404, 422]
    # another user's model / image / weights: not found
    assert bob.post("/api/jobs/run", {"model_id": tiny["model"], "image_id": tiny["image"]}).status_code == 404
    own = bob.upload_ok("tiny.cfg", TINY_CFG)["id"]
    img = bob.upload_ok("dog.jpg", DOG)["id"]
    assert bob.post("/api/jobs/run", {"model_id": own, "image_id": img, "weights_id": tiny["weights"]}).status_code == 404
    assert bob.post("/api/jobs/quantize", {"model_id": own, "output": "../x.qnet"}).status_code == 422


@pytest.mark.postgres
def test_a_failing_job_is_failed_with_its_message_and_leaves_no_files(alice: Client, tiny: dict, app) -> None:
    wrong = alice.upload_ok("other.weights", b"\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 8 + b"\x00" * 40)
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": tiny["model"], "weights_id": wrong["id"],
                                                      "image_id": tiny["image"]}).json()["id"])
    assert job["status"] == "failed" and "weights" in job["message"] and "/users/" not in job["message"]
    assert not app.state.ctx.jobs.job_dir(job["id"]).exists()


def _wait_running(alice: Client, job_id: int, app) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if alice.get(f"/api/jobs/{job_id}").json()["status"] == "running" and job_id in app.state.ctx.jobs._procs:
            return
        time.sleep(0.05)
    raise AssertionError("job never started")


@pytest.mark.postgres
def test_cancel_and_kill(alice: Client, app) -> None:
    model = alice.upload_ok("yolov3-tiny.cfg", YOLO_CFG)["id"]
    image = alice.upload_ok("dog.jpg", DOG)["id"]
    body = {"model_id": model, "image_id": image, "quant": {"calib_n": 30}}  # long enough to interrupt
    job = alice.post("/api/jobs/run", body).json()
    _wait_running(alice, job["id"], app)
    assert alice.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = alice.wait_job(job["id"])
    assert done["status"] == "cancelled"
    assert not app.state.ctx.jobs.job_dir(job["id"]).exists()
    assert alice.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    # a worker killed from outside (OOM killer, admin): failed, with the exit code, no partial files
    job = alice.post("/api/jobs/run", body).json()
    _wait_running(alice, job["id"], app)
    os.kill(app.state.ctx.jobs._procs[job["id"]].pid, signal.SIGKILL)
    done = alice.wait_job(job["id"])
    assert done["status"] == "failed" and "exit code -9" in done["message"]
    assert not app.state.ctx.jobs.job_dir(job["id"]).exists()
    names = {f["name"] for f in alice.get("/api/files").json()["files"]}
    assert names == {"yolov3-tiny.cfg", "dog.jpg"}


@pytest.mark.postgres
def test_jobs_left_running_are_interrupted_at_start(app_factory, data_dir) -> None:
    app = app_factory()
    from dla.web.db import User

    with app.state.ctx.db.session() as db:
        u = User(username="henry", password_hash="x")
        db.add(u)
        db.flush()
        db.add(Job(user_id=u.id, kind="run", status="running"))
        db.add(Job(user_id=u.id, kind="run", status="done"))
    (data_dir / "jobs" / "1").mkdir(parents=True, exist_ok=True)
    (data_dir / "jobs" / "1" / "partial.csv").write_text("half")
    app2 = app_factory()  # the server restarts on the same data
    with app2.state.ctx.db.session() as db:
        statuses = [j.status for j in db.query(Job).order_by(Job.id)]
    assert statuses == ["interrupted", "done"]
    assert not (data_dir / "jobs" / "1").exists()


@pytest.mark.postgres
def test_other_users_jobs_are_invisible(alice: Client, tiny: dict, bob: Client) -> None:
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": tiny["model"], "image_id": tiny["image"],
                                                      "modes": ["float"]}).json()["id"])
    assert job["status"] == "done"
    assert bob.get("/api/jobs").json()["jobs"] == []
    for url in (f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/events", f"/api/jobs/{job['id']}/files/layers.csv"):
        assert bob.get(url).status_code == 404
    assert bob.post(f"/api/jobs/{job['id']}/cancel").status_code == 404


def test_delete_a_finished_job_gives_its_space_back(alice: Client, bob: Client, tiny: dict, app) -> None:
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": tiny["model"], "image_id": tiny["image"],
                                                      "modes": ["float"]}).json()["id"])
    folder = app.state.ctx.jobs.job_dir(job["id"])
    assert job["status"] == "done" and folder.is_dir() and any(folder.iterdir())
    assert bob.delete(f"/api/jobs/{job['id']}").status_code == 404  # not his
    assert folder.is_dir()
    assert alice.delete(f"/api/jobs/{job['id']}").status_code == 200
    assert not folder.exists() and alice.get(f"/api/jobs/{job['id']}").status_code == 404
    assert alice.delete(f"/api/jobs/{job['id']}").status_code == 404


def test_a_running_job_cannot_be_deleted(alice: Client, app) -> None:
    body = {"model_id": alice.upload_ok("y.cfg", YOLO_CFG)["id"], "image_id": alice.upload_ok("d.jpg", DOG)["id"],
            "quant": {"calib_n": 30}}  # long enough to find it running
    job = alice.post("/api/jobs/run", body).json()
    _wait_running(alice, job["id"], app)
    r = alice.delete(f"/api/jobs/{job['id']}")
    assert r.status_code == 409 and "cancel it first" in r.text
    alice.post(f"/api/jobs/{job['id']}/cancel")
    alice.wait_job(job["id"])
    assert alice.delete(f"/api/jobs/{job['id']}").status_code == 200


def test_job_answers_name_no_server_path(alice: Client, data_dir) -> None:
    """A job's params held the absolute paths of the model, weights and image on the server,
    and every job answer (submit, get, list, events) sent them to the browser."""
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    r = alice.post("/api/jobs/quantize", {"model_id": cfg["id"], "image_id": im["id"]})
    assert r.status_code == 200 and str(data_dir) not in r.text, r.text
    job = alice.wait_job(r.json()["id"])
    assert job["status"] == "done", job
    for url in (f"/api/jobs/{job['id']}", "/api/jobs", f"/api/jobs/{job['id']}/events"):
        got = alice.get(url)
        assert got.status_code == 200 and str(data_dir) not in got.text, (url, got.text)
    assert job["params"]["model"]["name"] == "tiny.cfg"


def test_job_outputs_over_quota_leave_no_temp_files(app_factory, client_factory, data_dir) -> None:
    """When a finished job's outputs do not fit the quota, the copy made to keep them
    stayed in the data directory's tmp/ for ever (nobody's quota, never deleted)."""
    app = app_factory(quota_bytes=TINY_CFG.stat().st_size + 200)
    from fastapi.testclient import TestClient

    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("carol")
        cfg = c.upload_ok("tiny.cfg", TINY_CFG)
        job = c.wait_job(c.post("/api/jobs/quantize", {"model_id": cfg["id"]}).json()["id"])
        assert job["status"] == "failed" and "quota" in job["message"], job
    assert list((data_dir / "tmp").iterdir()) == []


def test_outputs_of_a_job_that_fail_together_leave_no_orphan(app_factory, data_dir) -> None:
    """A run keeps the calibrated .qnet, then the report.  When the report was over the quota
    the database rolled back, but the .qnet already moved into users/<id>/ stayed there:
    an orphan outside any quota, at the path the next file with that id is moved to."""
    from fastapi.testclient import TestClient

    app = app_factory(quota_bytes=TINY_CFG.stat().st_size + DOG.stat().st_size + 60_000)
    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("carol")
        cfg = c.upload_ok("tiny.cfg", TINY_CFG)
        im = c.upload_ok("dog.jpg", DOG)
        job = c.wait_job(c.post("/api/jobs/run", {"model_id": cfg["id"], "image_id": im["id"],
                                                  "modes": ["float", "int"], "save_qnet": True}).json()["id"])
        assert job["status"] == "failed" and "quota" in job["message"], job
        ids = {str(f["id"]) for f in c.get("/api/files").json()["files"]}
    on_disk = {p.name.removesuffix(".qnet") for d in (data_dir / "users").iterdir() for p in d.iterdir()}
    assert on_disk == ids


def test_shutdown_starts_no_queued_job(app_factory) -> None:
    """At shutdown the running workers were terminated, which freed their slots, and the
    queued jobs' threads then started new workers in a server that was stopping."""
    import time

    from fastapi.testclient import TestClient

    app = app_factory(job_workers=1)
    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("erin")
        body = {"model_id": c.upload_ok("yolov3-tiny.cfg", YOLO_CFG)["id"],
                "image_id": c.upload_ok("dog.jpg", DOG)["id"], "quant": {"calib_n": 30}}
        first = c.post("/api/jobs/run", body).json()
        _wait_running(c, first["id"], app)
        second = c.post("/api/jobs/run", body).json()
        runner = app.state.ctx.jobs
        runner.shutdown()
        time.sleep(1)
        with runner._lock:
            alive = [j for j, p in runner._procs.items() if p.is_alive()]
        assert alive == [] and c.get(f"/api/jobs/{second['id']}").json()["status"] == "queued"
