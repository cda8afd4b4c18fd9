"""The workbench on PostgreSQL (``dla serve --database-url postgresql+psycopg://...``).

The API tests of sign-up/login/CSRF, files (upload, list, versions, quota, ownership), jobs
(runs, cancel, kill, restart) and the migrations run again here against a real server named
by ``DLA_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://dla:dla@127.0.0.1/dla_test``; the
role must be allowed to create databases; .ci/run starts one).  The session creates its own
uniquely named database (dropped at the end, connections and all), and every test gets a fresh
schema in it, so tests never see each other's rows.  Without the variable the tests are skipped
locally and FAIL in CI (``CI`` set): a database path that is never tested must not look green.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

# The API tests, collected again in this module, where ``database_url`` is PostgreSQL.
from tests.dla.web.test_auth import (test_concurrent_signups_of_one_name, test_csrf_missing_or_wrong_is_403,  # noqa: F401
                                 test_expired_session_is_refused, test_no_signup,
                                 test_passwords_are_stored_hashed_with_argon2, test_schema_is_versioned,
                                 test_signup_login_logout, test_signup_rules,
                                 test_wrong_password_and_unknown_user_are_the_same_answer)
from tests.dla.web.test_files import (test_delete, test_nothing_of_one_user_is_visible_to_another,  # noqa: F401
                                  test_overwrite_needs_the_current_version, test_qnet_roundtrip_as_zip, test_quota,
                                  test_rename_with_version_and_conflicts, test_upload_list_download)
from tests.dla.web.test_jobs import (test_a_failing_job_is_failed_with_its_message_and_leaves_no_files,  # noqa: F401
                                 test_bad_job_requests, test_cancel_and_kill,
                                 test_jobs_left_running_are_interrupted_at_start, test_other_users_jobs_are_invisible,
                                 test_progress_events, test_quantize_with_overrides, test_run_three_modes, tiny)
from tests.dla.web.test_races import (test_concurrent_uploads_cannot_pass_the_quota,  # noqa: F401
                                  test_rename_racing_delete_is_never_500)
from tests.dla.web.test_step import opened, qnet_zip, test_save_as_qnet_and_concurrent_edits  # noqa: F401

ENV = "DLA_TEST_POSTGRES_URL"


def _server_url() -> URL:
    raw = os.environ.get(ENV)
    problem = None
    if not raw:
        problem = (f"{ENV} is not set: the PostgreSQL tests need a server, e.g. "
                   f"{ENV}=postgresql+psycopg://dla:dla@127.0.0.1/dla_test (.ci/run starts one)")
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            problem = "the driver psycopg is missing: pip install -e '.[test]'"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return make_url(raw)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[URL]:
    """A database of its own for this test session, dropped afterwards."""
    server = _server_url()
    name = f"dla_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - unreachable server, wrong password, no CREATEDB
        admin.dispose()
        pytest.fail(f"{ENV}: cannot create a test database on {server.render_as_string()}: "
                    f"{str(exc).splitlines()[0]}")
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def database_url(pg_database: URL) -> str:
    """A fresh schema per test; the app's connections use it through their search_path."""
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return pg_database.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


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
    from tests.dla.web.conftest import TINY_CFG
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
