"""Defects found in a security review of the workbench: each test failed before its fix."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest

from tests.dla.web.conftest import DOG, TINY_CFG, Client
from tests.dla.web.test_step import cmd, opened, qnet_zip  # noqa: F401 - fixtures
from tests.paths import ROOT


def test_step_edit_load_is_refused_in_any_case(opened, tmp_path) -> None:  # noqa: F811
    """``edit LOAD path`` reached the Stepper (it reads sub-commands case-insensitively) and
    loaded any .npy on the server, another user's uploads included."""
    c, s = opened
    cmd(c, s["id"], "goto 0")
    secret = tmp_path / "secret.npy"
    np.save(secret, np.full((8, 3, 3, 3), 7, np.int8))
    for line in (f"edit LOAD {secret}", f"edit Load {secret}", f"EDIT load {secret}"):
        r = cmd(c, s["id"], line)
        assert r.status_code == 422, (line, r.text)
    assert c.get(f"/api/step/{s['id']}").json()["edits"] == []


def test_step_answers_name_no_server_path(opened, data_dir) -> None:  # noqa: F811
    """``show`` printed the pictures' absolute paths, an uploaded array's edit kept its
    temporary path in the session's edit list, and a refused one named it in the error."""
    c, s = opened
    cmd(c, s["id"], "goto 0")
    r = cmd(c, s["id"], "show output")
    assert r.status_code == 200 and [p["key"] for p in r.json()["result"]["pictures"]] == ["output_grid", "output_hist"]
    assert str(data_dir) not in r.text, r.text
    buf = io.BytesIO()
    np.save(buf, np.ones((8, 3, 3, 3), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 200 and str(data_dir) not in r.text, r.text
    assert r.json()["result"]["change"] == "weights from the uploaded array"
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 2), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 422 and str(data_dir) not in r.text, r.text
    assert str(data_dir) not in c.get(f"/api/step/{s['id']}").text


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


def test_qnet_download_with_any_name(alice: Client, qnet_zip: bytes) -> None:  # noqa: F811
    """A .qnet's download put the raw name in Content-Disposition: a name outside latin-1
    crashed the response (500), a '"' broke the header."""
    for name in ("模型.qnet", 'a"b.qnet'):
        q = alice.upload_ok(name, qnet_zip)
        r = alice.get(f"/api/files/{q['id']}/download")
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-disposition"].startswith("attachment")
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert {n.split("/")[-1] for n in zf.namelist()} == {"model.json", "weights.npz"}


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 16


def test_npy_declaring_a_huge_array_is_422(opened) -> None:  # noqa: F811
    """A 100-byte .npy whose header declares terabytes made numpy allocate it: MemoryError, 500."""
    c, s = opened
    data = _npy_header_only((1 << 20, 1 << 20, 1 << 10))
    r = c.upload("huge.npy", data)
    assert r.status_code == 422, r.text
    cmd(c, s["id"], "goto 0")
    r = c.put(f"/api/step/{s['id']}/weights", data)
    assert r.status_code == 422, r.text


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_decompression_bomb_image_is_422(alice: Client) -> None:
    """An image declaring 900 megapixels raised Pillow's DecompressionBombError: 500."""
    r = alice.upload("bomb.png", _png_header(30000, 30000))
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO"])
def test_image_in_another_format_is_refused(alice: Client, fmt: str) -> None:
    """'x.png' was accepted whatever Pillow could open (TIFF, GIF, ICO, and with the right
    binaries EPS via Ghostscript): only the formats the extensions name are accepted."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, format=fmt)
    r = alice.upload("x.png", buf.getvalue())
    assert r.status_code == 422, r.text


def _patched_zip(qnet_zip: bytes, flag: int | None = None, method: int | None = None) -> bytes:
    """The zip with every header's general-purpose flag or compression method overwritten."""
    data = bytearray(qnet_zip)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = data.find(sig)
        while i >= 0:
            if flag is not None:
                data[i + flag_at:i + flag_at + 2] = struct.pack("<H", flag)
            if method is not None:
                data[i + method_at:i + method_at + 2] = struct.pack("<H", method)
            i = data.find(sig, i + 4)
    return bytes(data)


@pytest.mark.parametrize("patch", [{"flag": 1}, {"method": 99}])
def test_qnet_zip_that_cannot_be_read_is_422(alice: Client, qnet_zip: bytes, patch: dict, data_dir) -> None:  # noqa: F811
    """An encrypted member (RuntimeError) or an unknown compression (NotImplementedError) was a 500."""
    r = alice.upload("bad.qnet", _patched_zip(qnet_zip, **patch))
    assert r.status_code == 422, r.text
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


@pytest.mark.parametrize("method,url,body", [
    ("get", "/api/files/{big}", None), ("get", "/api/files/{big}/download", None),
    ("patch", "/api/files/{big}", {"name": "x.cfg", "version": 1}), ("delete", "/api/files/{big}", None),
    ("post", "/api/files/{big}/augment", None), ("get", "/api/models/{big}", None),
    ("get", "/api/models/{big}/graph.svg", None), ("get", "/api/jobs/{big}", None),
    ("get", "/api/jobs/{big}/events", None), ("post", "/api/jobs/{big}/cancel", None),
    ("get", "/api/jobs/{big}/files/layers.csv", None),
    ("post", "/api/jobs/run", {"model_id": "{big}", "image_id": 1}),
    ("post", "/api/step", {"model_id": "{big}", "image_id": 1})])
def test_an_id_beyond_the_database_integer_is_404(alice: Client, method: str, url: str, body) -> None:
    """An id too large for the database's integer (2**63 in SQLite, 2**31 in PostgreSQL)
    raised OverflowError / DataError from the driver: 500 instead of 'not found'."""
    for big in (2 ** 63, 2 ** 40):
        kw = {} if body is None else {"json": {k: (big if v == "{big}" else v) for k, v in body.items()}}
        r = getattr(alice, method)(url.format(big=big), **kw)
        assert r.status_code == 404, (big, r.status_code, r.text)


def test_a_refused_cfg_names_the_users_file_not_a_server_path(alice: Client) -> None:
    """The parser's message named the temporary copy ('/tmp/tmpabc123/bad.cfg:2: ...')."""
    r = alice.upload("bad.cfg", b"[net]\nwidth=abc\n")
    assert r.status_code == 422
    assert r.json()["detail"].startswith("bad.cfg:2: "), r.text


LOGIN_HARNESS = r"""
const fs = require("fs");
let handler = null;
global.location = {search: "?next=" + encodeURIComponent(process.argv[3]), origin: "http://wb.test",
                   href: "http://wb.test/login"};
global.document = {getElementById: id => id === "auth-form" ? {addEventListener: (_e, f) => { handler = f; }}
                                                          : {value: "x"}};
global.api = async () => ({});
global.URL = URL; global.URLSearchParams = URLSearchParams;
eval(fs.readFileSync(process.argv[2], "utf8"));
handler({preventDefault() {}, target: {dataset: {mode: "login"}}}).then(() => console.log(location.href));
"""


@pytest.mark.parametrize("nxt,expected", [("/run", "/run"), ("/models/3?x=1", "/models/3?x=1"),
                                          ("//evil.test", "/"), ("/\\evil.test", "/"), ("/\t/evil.test", "/"),
                                          ("https://evil.test/", "/"), ("javascript:alert(1)", "/")])
def test_login_next_stays_on_the_workbench(tmp_path, nxt: str, expected: str) -> None:
    """The login page followed ?next= if it began with '/' but not '//': browsers read
    '/\\evil.test' (and '/<tab>/evil.test') as '//evil.test', an open redirect after login."""
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        import os

        hint = "node is not installed: apt-get install -y nodejs"
        pytest.fail(hint) if os.environ.get("CI") else pytest.skip(hint)
    harness = tmp_path / "h.js"
    harness.write_text(LOGIN_HARNESS)
    js = ROOT / "dla" / "web" / "static" / "login.js"
    out = subprocess.run([node, str(harness), str(js), nxt], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    href = out.stdout.strip()
    from urllib.parse import urljoin, urlsplit

    assert urlsplit(urljoin("http://wb.test/login", href)).netloc == "wb.test", (nxt, href)
    assert href in (expected, "http://wb.test" + expected), (nxt, href)


def test_login_of_an_unknown_name_costs_a_password_check(alice: Client, client_factory, monkeypatch) -> None:
    """An unknown name answered at once while a known one waited for argon2 (~60 ms): the
    time told which names exist, despite the identical message."""
    from dla.web import auth

    calls = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda h, p: calls.append(h) or real(h, p))
    c = client_factory()
    assert c.post("/api/login", {"username": "alice", "password": "wrong password"}).status_code == 401
    assert c.post("/api/login", {"username": "nobody", "password": "wrong password"}).status_code == 401
    assert len(calls) == 2


def test_step_weights_upload_beyond_the_limit_is_refused_before_it_is_read(tmp_path) -> None:
    """The STEP weights upload read the whole body into memory (request.body()) before
    checking its size, and before looking at the session: any logged-in user could make the
    server buffer gigabytes. A declared size beyond the limit is now refused at once."""
    import socket

    import httpx

    from tests.dla.web.live import live_server

    with live_server(tmp_path / "data") as url:
        c = httpx.Client(base_url=url)
        c.get("/login")
        csrf = c.cookies["dla_csrf"]
        assert c.post("/api/signup", json={"username": "dave", "password": "correct horse"},
                      headers={"X-CSRF-Token": csrf}).status_code == 200
        csrf = c.cookies["dla_csrf"]  # the login's own token (bound to the session)
        cookies = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall((f"PUT /api/step/nosuch/weights HTTP/1.1\r\nHost: {host}\r\nCookie: {cookies}\r\n"
                       f"X-CSRF-Token: {csrf}\r\nContent-Length: {1 << 40}\r\n\r\n").encode() + b"\0" * 1024)
            try:
                answer = s.recv(200)
            except TimeoutError:
                answer = b"(no answer: the server waits for the whole body)"
        assert answer.startswith(b"HTTP/1.1 413"), answer


def test_shutdown_starts_no_queued_job(app_factory) -> None:
    """At shutdown the running workers were terminated, which freed their slots, and the
    queued jobs' threads then started new workers in a server that was stopping."""
    import time

    from fastapi.testclient import TestClient

    from tests.dla.web.conftest import YOLO_CFG
    from tests.dla.web.test_jobs import _wait_running

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


def test_user_names_differing_only_in_case_are_one_name_and_passwords_are_bounded(app) -> None:
    """'Alice' and 'alice' cannot both exist (one could pass for the other); a megabyte
    password is refused before argon2 spends time on it."""
    from fastapi.testclient import TestClient

    from .conftest import Client

    with TestClient(app) as tc:
        Client(tc).signup("Alice")
    with TestClient(app) as tc:
        c = Client(tc)
        r = c.post("/api/signup", json={"username": "alice", "password": "password-2"})
        assert r.status_code == 409 and "without case" in r.text
        r = c.post("/api/signup", json={"username": "bob", "password": "x" * 2000})
        assert r.status_code == 422 and "at most 1024" in r.text
