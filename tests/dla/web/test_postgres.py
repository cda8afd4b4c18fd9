"""The workbench on PostgreSQL (``dla serve --database-url postgresql+psycopg://...``).

The API tests of sign-up/login/CSRF, files (upload, list, versions, quota, ownership), jobs
(runs, cancel, kill, restart), races and saving a STEP session as .qnet carry the marker
``postgres`` and run twice, ``[sqlite]`` and ``[postgresql]`` (tests/dla/web/conftest.py); this
module holds what only PostgreSQL has: the app really on it, the migrations, ``dla serve``.
The server is named by ``DLA_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg://dla:dla@127.0.0.1/dla_test``; the role must be allowed to create
databases; .ci/run starts one).  The session creates its own uniquely named database (dropped
at the end, connections and all), and every test gets a fresh schema in it.  Without the
variable the tests are skipped locally and FAIL in CI (``CI`` set): a database path that is
never tested must not look green.
"""
from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def test_the_app_really_runs_on_postgresql(app, database_url: str) -> None:
    """Not SQLite by accident: the tables are in this test's schema of the PostgreSQL database."""
    db = app.state.ctx.db
    assert db.engine.dialect.name == "postgresql" and db.url == database_url
    schema = make_url(database_url).query["options"].split("=", 1)[1]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT current_schema()")).scalar() == schema
    assert {"users", "sessions", "files", "jobs", "schema_version"} <= set(inspect(db.engine).get_table_names(schema))


def test_migrations_from_an_empty_database_and_at_restart(database_url: str) -> None:
    from dla.web.db import MIGRATIONS, Database, User

    fresh = Database(database_url)  # an empty schema: every migration runs
    assert fresh.version() == len(MIGRATIONS)
    with fresh.session() as db:
        db.add(User(username="kept", password_hash="x"))
    fresh.engine.dispose()
    again = Database(database_url)  # a restart: nothing re-applied, rows kept
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM schema_version")).scalar() == len(MIGRATIONS)
        assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["kept"]
    again.engine.dispose()


def test_dla_serve_on_postgresql(tmp_path, database_url: str, pg_database: URL) -> None:
    """The command line: ``dla serve --database-url postgresql+psycopg://...`` serves, and a
    wrong password is one ``Error:`` line (exit 2), not a traceback."""
    import httpx
    from click.testing import CliRunner

    from dla.cli import cli
    from tests.dla.web.helpers import TINY_CFG
    from tests.dla.web.live import live_server

    with live_server(tmp_path / "data", "--database-url", database_url) as url, httpx.Client(base_url=url) as http:
        http.get("/login")
        csrf = {"X-CSRF-Token": http.cookies["dla_csrf"]}
        assert http.post("/api/signup", json={"username": "pat", "password": "long enough"}, headers=csrf).is_success
        csrf = {"X-CSRF-Token": http.cookies["dla_csrf"]}  # the login's own token (bound to the session)
        assert http.put("/api/files?name=tiny.cfg", content=TINY_CFG.read_bytes(), headers=csrf).is_success
        assert [f["name"] for f in http.get("/api/files").json()["files"]] == ["tiny.cfg"]
    assert not (tmp_path / "data" / "workbench.sqlite").exists()
    wrong = pg_database.set(password="not-the-password").render_as_string(hide_password=False)
    r = CliRunner().invoke(cli, ["serve", "--database-url", wrong, "--data", str(tmp_path / "other")])
    assert r.exit_code == 2 and r.output.startswith("Error: cannot open the database") and "Traceback" not in r.output
