"""Races and crashes: concurrent uploads cannot pass the quota together, a rename racing a
delete answers 404/409 (never 500), and a server killed mid-upload leaves nothing behind
once it restarts."""
from __future__ import annotations

import io
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.dla.web.helpers import Client
from tests.dla.web.live import free_port, serve_process

MB = 1024 * 1024


def _npy(n_bytes: int, seed: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.full(n_bytes // 4, seed, np.float32))
    return buf.getvalue()


@pytest.mark.postgres
def test_concurrent_uploads_cannot_pass_the_quota(alice: Client, data_dir: Path) -> None:
    """8 uploads of 1.5 MiB at once against the 8 MiB quota: at most 5 fit, and the stored total
    (database and disk) stays within the quota."""
    bodies = [_npy(int(1.5 * MB), k) for k in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda k: alice.upload(f"a{k}.npy", bodies[k]), range(8)))
    codes = sorted(r.status_code for r in answers)
    assert set(codes) <= {200, 413}, [r.text for r in answers]
    listing = alice.get("/api/files").json()
    assert listing["used"] <= listing["quota"] == 8 * MB
    assert codes.count(200) == len(listing["files"]) == 5
    on_disk = sum(p.stat().st_size for p in (data_dir / "users").rglob("*") if p.is_file())
    assert on_disk == listing["used"]
    assert not any((data_dir / "tmp").iterdir())


@pytest.mark.postgres
def test_rename_racing_delete_is_never_500(alice: Client) -> None:
    for k in range(12):
        f = alice.upload_ok(f"r{k}.npy", _npy(64, k))
        with ThreadPoolExecutor(3) as pool:
            ren = pool.submit(alice.patch, f"/api/files/{f['id']}", {"name": f"s{k}.npy", "version": f["version"]})
            dl = pool.submit(alice.get, f"/api/files/{f['id']}/download")
            rm = pool.submit(alice.delete, f"/api/files/{f['id']}")
            codes = (ren.result().status_code, dl.result().status_code, rm.result().status_code)
        assert codes[0] in (200, 404, 409) and codes[1] in (200, 404) and codes[2] in (200, 404, 409), codes
        assert alice.get(f"/api/files/{f['id']}").status_code == 404 or codes[2] != 200


def test_server_killed_mid_upload_leaves_nothing_after_restart(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    proc = serve_process(data, port)
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        c.get("/login")
        c.post("/api/signup", json={"username": "kim", "password": "correct horse"},
               headers={"X-CSRF-Token": c.cookies["dla_csrf"]}).raise_for_status()
        cookies = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall((f"PUT /api/files?name=big.npy HTTP/1.1\r\nHost: x\r\nCookie: {cookies}\r\n"
                       f"X-CSRF-Token: {c.cookies['dla_csrf']}\r\nContent-Length: {100 * MB}\r\n\r\n").encode())
            s.sendall(b"\0" * (3 * MB))  # a third of the body, then the server dies
            end = time.monotonic() + 30
            while not any(p.stat().st_size > 0 for p in (data / "tmp").iterdir()):
                assert time.monotonic() < end, "the upload never reached tmp/"
                time.sleep(0.1)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert any((data / "tmp").iterdir())  # the partial upload is there...
        user_dir = data / "users" / "1"
        user_dir.mkdir(exist_ok=True)
        (user_dir / "999").write_bytes(b"orphan: no row")  # and a file whose row was never committed
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = serve_process(data, port)  # ...until the server starts again
    try:
        assert list((data / "tmp").iterdir()) == []
        assert not (user_dir / "999").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
