"""Memory and time limits: every engine computation started from the web runs in a capped
worker, models whose activations cannot fit are refused up front, and the server's own
memory stays where it was (measured from /proc: the app runs in this test process)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from golden.network import estimate_activation_bytes, parse_network
from tests.dla.web.helpers import DOG, TINY_CFG, YOLO_CFG, Client, tiny_weights_bytes
from tests.dla.web.rss import peak, reset_peak, rss
from tests.paths import ROOT

GIB = 1 << 30


def sized_cfg(src: Path, side: int) -> bytes:
    text = re.sub(r"(?m)^width=\d+", f"width={side}", src.read_text())
    return re.sub(r"(?m)^height=\d+", f"height={side}", text).encode()


def _user(app, name: str = "ursula") -> Client:
    tc = TestClient(app)
    tc.__enter__()
    c = Client(tc)
    c.signup(name)
    return c


def test_estimate_counts_outputs_input_and_the_largest_im2col() -> None:
    """By hand for tiny.cfg (64x64x3): conv 8 3x3 -> maxpool -> conv 16 3x3 -> maxpool -> conv 21 1x1 -> yolo."""
    net = parse_network(TINY_CFG)
    outs = [tuple(s.out_shape) for s in net.layers]
    assert outs == [(8, 64, 64), (8, 32, 32), (16, 32, 32), (16, 16, 16), (21, 16, 16), (21, 16, 16)]
    kept = 4 * (3 * 64 * 64 + sum(c * h * w for c, h, w in outs))
    im2col = {0: 3 * 9 * 64 * 64 * 4 + 8 * 64 * 64 * 8, 2: 8 * 9 * 32 * 32 * 4 + 16 * 32 * 32 * 8,
              4: 16 * 16 * 16 * 4 + 21 * 16 * 16 * 8}
    assert estimate_activation_bytes(net) == kept + max(im2col.values())


def test_estimate_bounds_what_a_whole_step_run_really_takes(tmp_path: Path) -> None:
    """yolov3-tiny at 416, every layer run in a fresh process (weights read from a file: seeded
    weights would run the network once to make them); its peak RSS growth stays under the estimate."""
    from golden.genweights import random_weights
    from golden.weights import weights_bytes

    weights = tmp_path / "yt.weights"
    weights.write_bytes(weights_bytes(random_weights(parse_network(YOLO_CFG), 0)))
    code = f"""
from dla.session import Session
from golden.network import load_network
from tests.dla.web.rss import peak, reset_peak, rss
net = load_network({str(YOLO_CFG)!r}, {str(weights)!r})
s = Session(net, {str(DOG)!r}, mode="float")
reset_peak()
before = rss()
s.run()
print(peak() - before)
"""
    grew = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              timeout=300, cwd=ROOT).stdout.split()[-1])
    est = estimate_activation_bytes(parse_network(YOLO_CFG))
    assert 0 < grew <= est, (grew, est)


def test_huge_model_refused_up_front_and_server_memory_unchanged(alice: Client, app, data_dir: Path,
                                                                monkeypatch) -> None:
    """8000x8000 yolov3-tiny: STEP took the server to 13.9 GB; now refused twice over.  The cfg
    bound every command applies (``DLA_MAX_ACTIVATION_BYTES``, 8 GiB) refuses the upload; with
    that bound raised, the server's per-job limit answers 413 with the estimate, before any work."""
    r = alice.upload("huge.cfg", sized_cfg(YOLO_CFG, 8000))
    assert r.status_code == 422 and "above the limit of 8.0 GiB" in r.json()["detail"], r.text
    monkeypatch.setenv("DLA_MAX_ACTIVATION_BYTES", str(1 << 40))
    m = alice.upload_ok("huge.cfg", sized_cfg(YOLO_CFG, 8000))["id"]
    im = alice.upload_ok("dog.jpg", DOG)["id"]
    reset_peak()
    before = rss()
    r = alice.post("/api/step", {"model_id": m, "image_id": im, "mode": "float"})
    assert r.status_code == 413, r.text
    msg = r.json()["detail"]
    assert msg.startswith("huge.cfg (8000x8000x3 input, 24 layers) needs about 26.1 GiB for its activations; "
                          "this server allows 4.0 GiB per job (dla serve --max-job-memory)"), msg
    for url, body in (("/api/jobs/run", {"model_id": m, "image_id": im, "modes": ["float"]}),
                      ("/api/jobs/quantize", {"model_id": m})):
        r = alice.post(url, body)
        assert r.status_code == 413 and "needs about 26.1 GiB" in r.json()["detail"], r.text
    assert peak() - before < 64 * 1024 * 1024
    assert alice.get("/api/step").json()["sessions"] == [] and alice.get("/api/jobs").json()["jobs"] == []
    assert list((data_dir / "tmp").iterdir()) == []


def test_step_over_the_memory_limit_is_stopped_in_its_worker(app_factory, monkeypatch, data_dir: Path) -> None:
    """The up-front check switched off: the worker's own limit stops it, the server does not grow."""
    monkeypatch.setattr("dla.web.stepping.check_fits", lambda *a, **k: None)
    app = app_factory(max_job_memory=2 * GIB)
    c = _user(app)
    m = c.upload_ok("big.cfg", sized_cfg(TINY_CFG, 5000))["id"]  # layer 0's im2col alone is 2.7 GB
    w = c.upload_ok("tiny.weights", tiny_weights_bytes())["id"]  # (seeded weights would run the net to open it)
    im = c.upload_ok("dog.jpg", DOG)["id"]
    r = c.post("/api/step", {"model_id": m, "weights_id": w, "image_id": im, "mode": "float"})
    assert r.status_code == 200, r.text
    sid = r.json()["id"]
    reset_peak()
    before = rss()
    r = c.post(f"/api/step/{sid}/command", {"command": "next"})
    assert r.status_code == 413, r.text
    assert r.json()["detail"] == ("this STEP session needs more memory than this server allows per job (2.0 GiB, "
                                  "dla serve --max-job-memory): the STEP session was closed")
    assert peak() - before < 100 * 1024 * 1024, f"the server grew by {peak() - before:,} bytes"
    assert c.get(f"/api/step/{sid}").status_code == 404
    assert c.get("/api/step").json()["sessions"] == []
    assert not any(p.name.startswith("step-") for p in (data_dir / "tmp").iterdir())


def test_step_command_over_the_time_limit(app_factory) -> None:
    app = app_factory(max_job_seconds=0.2)
    c = _user(app)
    m = c.upload_ok("mid.cfg", sized_cfg(TINY_CFG, 2000))["id"]
    im = c.upload_ok("dog.jpg", DOG)["id"]
    sid = c.post("/api/step", {"model_id": m, "image_id": im, "mode": "float"}).json()["id"]
    r = c.post(f"/api/step/{sid}/command", {"command": "goto 5"})
    assert r.status_code == 413 and r.json()["detail"] == (
        "the command took longer than 0.2 s (dla serve --max-job-seconds): the STEP session was closed"), r.text
    assert c.get(f"/api/step/{sid}").status_code == 404


def test_job_over_the_memory_limit_fails_with_the_limit(app_factory, monkeypatch) -> None:
    monkeypatch.setattr("dla.web.jobs.check_fits", lambda *a, **k: None)
    app = app_factory(max_job_memory=GIB)
    c = _user(app)
    m = c.upload_ok("big.cfg", sized_cfg(TINY_CFG, 4000))["id"]
    im = c.upload_ok("dog.jpg", DOG)["id"]
    job = c.post("/api/jobs/run", {"model_id": m, "image_id": im, "modes": ["float"]}).json()
    done = c.wait_job(job["id"], timeout=300)
    assert done["status"] == "failed" and done["message"] == (
        "this job needs more memory than this server allows per job (1.0 GiB, dla serve --max-job-memory)"), done


def test_job_over_the_time_limit_is_stopped(app_factory) -> None:
    app = app_factory(max_job_seconds=0.5)
    c = _user(app)
    m, im = c.upload_ok("tiny.cfg", TINY_CFG)["id"], c.upload_ok("dog.jpg", DOG)["id"]
    w = c.upload_ok("tiny.weights", tiny_weights_bytes())["id"]
    job = c.post("/api/jobs/run", {"model_id": m, "weights_id": w, "image_id": im}).json()
    done = c.wait_job(job["id"])
    assert done["status"] == "failed" and done["message"] == (
        "stopped after 0.5 s: the time limit per job (dla serve --max-job-seconds)"), done


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def test_workers_die_with_a_killed_server(tmp_path: Path) -> None:
    """A SIGKILLed server left its worker holding 10 GB; now its workers go with it."""
    import httpx

    from tests.dla.web.live import serve_process
    from tests.dla.web.live import free_port

    port = free_port()
    proc = serve_process(tmp_path / "data", port)
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        c.get("/login")
        c.post("/api/signup", json={"username": "vic", "password": "correct horse"},
               headers={"X-CSRF-Token": c.cookies["dla_csrf"]}).raise_for_status()
        h = {"X-CSRF-Token": c.cookies["dla_csrf"]}
        m = c.put("/api/files?name=tiny.cfg", content=TINY_CFG.read_bytes(), headers=h).json()["id"]
        im = c.put("/api/files?name=dog.jpg", content=DOG.read_bytes(), headers=h).json()["id"]
        assert c.post("/api/step", json={"model_id": m, "image_id": im, "mode": "float"}, headers=h).is_success
        workers = _descendants(proc.pid)
        assert workers  # the forkserver and the STEP worker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        end = time.monotonic() + 20
        while any(Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]
                  for p in workers if Path(f"/proc/{p}/stat").exists()):
            assert time.monotonic() < end, "workers outlived the server"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("value,ok", [("2GiB", True), ("512MiB", True), ("0", True), ("3x", False)])
def test_cli_limits_options(value: str, ok: bool) -> None:
    from dla.cli.web import parse_size
    from golden.errors import UserInputError

    if ok:
        assert parse_size(value, "--max-job-memory") == {"2GiB": 2 * GIB, "512MiB": 512 << 20, "0": 0}[value]
    else:
        with pytest.raises(UserInputError, match="not a size"):
            parse_size(value, "--max-job-memory")
