"""Shared helpers of the workbench tests (plain code, imported; the fixtures are in conftest.py).

The web tests' data: ``tiny.cfg`` (64x64, three convolutions) keeps jobs and STEP fast; the
:class:`Client` logs in and sends the CSRF header like the pages' JS does."""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import URL, make_url

from dla.catalog import CFG_DIR, DEFAULT_IMAGE
from tests.paths import DATA
from tests.tools import missing, require_module

TINY_CFG = DATA / "web" / "tiny.cfg"  # the name matters: the pages pair tiny.weights with tiny.cfg
YOLO_CFG = CFG_DIR / "yolov3-tiny.cfg"
DOG = DEFAULT_IMAGE
PASSWORD = "correct horse"
#: The PostgreSQL server of the ``[postgresql]`` tests (.ci/run sets it).
POSTGRES_ENV = "DLA_TEST_POSTGRES_URL"


class Client:
    """A TestClient that logs in and sends the CSRF header like the pages' JS does."""

    def __init__(self, tc: TestClient) -> None:
        self.tc = tc
        tc.get("/login")  # sets the CSRF cookie

    @property
    def csrf(self) -> str | None:
        """The CSRF cookie as the page's JS reads it on every write (a login replaces it)."""
        return self.tc.cookies.get("dla_csrf")

    def _h(self, headers: dict | None) -> dict:
        return {"X-CSRF-Token": self.csrf, **(headers or {})}

    def get(self, url: str, **kw):
        return self.tc.get(url, **kw)

    def post(self, url: str, json: object = None, headers: dict | None = None, **kw):
        return self.tc.post(url, json=json, headers=self._h(headers), **kw)

    def put(self, url: str, content: bytes, headers: dict | None = None, **kw):
        return self.tc.put(url, content=content, headers=self._h(headers), **kw)

    def patch(self, url: str, json: object = None, headers: dict | None = None):
        return self.tc.patch(url, json=json, headers=self._h(headers))

    def delete(self, url: str, headers: dict | None = None):
        return self.tc.delete(url, headers=self._h(headers))

    def signup(self, name: str, password: str = PASSWORD) -> dict:
        r = self.post("/api/signup", {"username": name, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    def upload(self, name: str, data: bytes | Path, **params) -> "object":
        body = data.read_bytes() if isinstance(data, Path) else data
        q = "".join(f"&{k}={v}" for k, v in params.items())
        return self.put(f"/api/files?name={name}{q}", body)

    def upload_ok(self, name: str, data: bytes | Path) -> dict:
        r = self.upload(name, data)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_job(self, job_id: int, timeout: float = 120) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = self.get(f"/api/jobs/{job_id}").json()
            if job["status"] in ("done", "failed", "cancelled", "interrupted"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish: {job}")


def png_bytes(size: tuple[int, int] = (80, 60)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (120, 60, 200)).save(buf, format="PNG")
    return buf.getvalue()


def tiny_weights_bytes(seed: int = 0) -> bytes:
    from golden.genweights import random_weights
    from golden.network import parse_network
    from golden.weights import weights_bytes

    return weights_bytes(random_weights(parse_network(TINY_CFG), seed))


def postgres_server_url() -> URL:
    """The server named by ``DLA_TEST_POSTGRES_URL``; without it (or without the driver
    psycopg) the test fails in CI and is skipped elsewhere (tests/tools.py)."""
    raw = os.environ.get(POSTGRES_ENV)
    if not raw:
        missing(f"{POSTGRES_ENV} is not set: the PostgreSQL tests need a server, e.g. "
                f"{POSTGRES_ENV}=postgresql+psycopg://dla:dla@127.0.0.1/dla_test (.ci/run starts one)")
    require_module("psycopg", "pip install -e '.[test]'")
    return make_url(raw)
