"""Fixtures for the workbench tests: an app over a temp data dir, logged-in clients, files.

The app is built with small limits (upload 2 MB, quota 8 MB) so limits are testable cheaply;
``tiny.cfg`` (64x64, three convolutions) keeps jobs and STEP fast."""
from __future__ import annotations

import io
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from dla.web.app import create_app
from tests.dla.web.helpers import POSTGRES_ENV, TINY_CFG, Client, postgres_server_url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``postgres`` runs twice: on SQLite and on the PostgreSQL server named by
    ``DLA_TEST_POSTGRES_URL`` (ids ``[sqlite]`` / ``[postgresql]``)."""
    if metafunc.definition.get_closest_marker("postgres"):
        if "database_url" not in metafunc.fixturenames:  # it would run on SQLite only, silently
            raise pytest.UsageError(f"{metafunc.definition.nodeid} is marked postgres but uses no database")
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[URL]:
    """A PostgreSQL database of its own for this test session, dropped afterwards.

    The server is named by ``DLA_TEST_POSTGRES_URL`` (e.g.
    ``postgresql+psycopg://dla:dla@127.0.0.1/dla_test``; the role must be allowed to create
    databases; .ci/run starts one).  Without the variable or the driver: a failure in CI, a skip
    elsewhere (tests/tools.py) -- a database path that is never tested must not look green."""
    server = postgres_server_url()
    name = f"dla_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - unreachable server, wrong password, no CREATEDB
        admin.dispose()
        pytest.fail(f"{POSTGRES_ENV}: cannot create a test database on {server.render_as_string()}: "
                    f"{str(exc).splitlines()[0]}")
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """The app's database: None = SQLite in the data dir (the default, and ``[sqlite]``); for
    ``[postgresql]`` (tests marked ``postgres``, and test_postgres.py's own) a fresh schema per
    test in the session's PostgreSQL database, so tests never see each other's rows; the app's
    connections use it through their search_path."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    pg_database: URL = request.getfixturevalue("pg_database")
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return pg_database.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


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


@pytest.fixture(scope="module")
def qnet_zip(tmp_path_factory) -> bytes:
    """A calibrated ``.qnet`` of tiny.cfg (random weights, seed 0), zipped as the workbench
    uploads it."""
    from dla.calibration import calibrate
    from dla.config import HardwareConfig
    from dla.qnet_file import save_qnet
    from golden.genweights import random_weights
    from golden.network import parse_network

    d = tmp_path_factory.mktemp("q")
    save_qnet(calibrate(random_weights(parse_network(TINY_CFG), 0), 1, "per_channel"), HardwareConfig(), d / "t.qnet")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for m in ("model.json", "weights.npz"):
            zf.write(d / "t.qnet" / m, m)
    return buf.getvalue()
