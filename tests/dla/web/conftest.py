"""Fixtures for the workbench tests: an app over a temp data dir, logged-in clients, files.

The app is built with small limits (upload 2 MB, quota 8 MB) so limits are testable cheaply;
``tiny.cfg`` (64x64, three convolutions) keeps jobs and STEP fast."""
from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dla.models import CFG_DIR, DEFAULT_IMAGE
from dla.web.app import create_app
from tests.paths import DATA

TINY_CFG = DATA / "web-tiny.cfg"
YOLO_CFG = CFG_DIR / "yolov3-tiny.cfg"
DOG = DEFAULT_IMAGE
PASSWORD = "correct horse"


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


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def database_url() -> str | None:
    """The app's database: None = SQLite in the data dir (test_postgres.py overrides it)."""
    return None


@pytest.fixture
def app_factory(data_dir: Path, database_url: str | None):
    apps = []

    def make(**kw):
        kw.setdefault("max_upload_bytes", 2 * 1024 * 1024)
        kw.setdefault("quota_bytes", 8 * 1024 * 1024)
        kw.setdefault("database_url", database_url)
        app = create_app(data_dir, **kw)
        apps.append(app)
        return app

    yield make
    for app in apps:  # a server's connections end with it (PostgreSQL counts them)
        app.state.ctx.jobs.shutdown()
        app.state.ctx.db.engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client_factory(app) -> Iterator:
    clients: list[TestClient] = []

    def make() -> Client:
        tc = TestClient(app)
        tc.__enter__()
        clients.append(tc)
        return Client(tc)

    yield make
    for tc in clients:
        tc.__exit__(None, None, None)


@pytest.fixture
def alice(client_factory) -> Client:
    c = client_factory()
    c.signup("alice")
    return c


@pytest.fixture
def bob(client_factory) -> Client:
    c = client_factory()
    c.signup("bob")
    return c


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
