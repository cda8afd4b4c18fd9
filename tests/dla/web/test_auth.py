"""Accounts, login sessions, CSRF, and "every private route needs a login"."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from dla.web.db import LoginSession, utcnow
from tests.dla.web.helpers import PASSWORD, Client

PRIVATE = [("GET", "/api/me"), ("GET", "/api/files"), ("PUT", "/api/files?name=a.cfg"), ("GET", "/api/files/1"),
           ("GET", "/api/files/1/download"), ("PATCH", "/api/files/1"), ("DELETE", "/api/files/1"),
           ("POST", "/api/files/1/augment"), ("GET", "/api/models/1"), ("GET", "/api/models/1/graph.json"),
           ("GET", "/api/models/1/graph.svg"), ("GET", "/api/models/1/layers/0"), ("POST", "/api/jobs/run"),
           ("POST", "/api/jobs/quantize"), ("GET", "/api/jobs"), ("GET", "/api/jobs/1"), ("POST", "/api/jobs/1/cancel"),
           ("GET", "/api/jobs/1/events"), ("GET", "/api/jobs/1/files/layers.csv"), ("POST", "/api/step"),
           ("GET", "/api/step"), ("GET", "/api/step/x"), ("POST", "/api/step/x/command"), ("PUT", "/api/step/x/weights"),
           ("GET", "/api/step/x/picture/output_grid.png"), ("POST", "/api/step/x/save"), ("DELETE", "/api/step/x")]


@pytest.mark.parametrize("method,url", PRIVATE)
def test_every_private_route_needs_a_login(client_factory, method: str, url: str) -> None:
    c = client_factory()
    r = c.tc.request(method, url, headers={"X-CSRF-Token": c.csrf}, json={} if method != "GET" else None)
    assert r.status_code == 401, (method, url, r.text)
    assert r.json()["detail"] == "not logged in"


@pytest.mark.parametrize("page", ["/", "/run", "/quantize", "/step", "/models/1"])
def test_pages_redirect_to_login(client_factory, page: str) -> None:
    r = client_factory().get(page, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.mark.postgres
def test_signup_login_logout(client_factory) -> None:
    c = client_factory()
    user = c.signup("carol")
    assert c.get("/api/me").json() == user
    cookie = [h for h in c.tc.cookies.jar if h.name == "dla_session"][0]
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert c.post("/api/logout").status_code == 200
    assert c.get("/api/me").status_code == 401
    assert c.post("/api/login", {"username": "carol", "password": PASSWORD}).status_code == 200
    assert c.get("/api/me").json()["username"] == "carol"


def test_session_cookie_flags(client_factory) -> None:
    c = client_factory()
    r = c.post("/api/signup", {"username": "dave", "password": PASSWORD})
    header = r.headers["set-cookie"].lower()
    assert "dla_session=" in header and "httponly" in header and "samesite=lax" in header


@pytest.mark.postgres
def test_wrong_password_and_unknown_user_are_the_same_answer(alice: Client, client_factory) -> None:
    c = client_factory()
    wrong = c.post("/api/login", {"username": "alice", "password": "not the password"})
    unknown = c.post("/api/login", {"username": "nobody", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert c.get("/api/me").status_code == 401


@pytest.mark.postgres
def test_expired_session_is_refused(alice: Client, app) -> None:
    with app.state.ctx.db.session() as db:
        db.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert alice.get("/api/me").status_code == 401
    assert alice.get("/api/files").status_code == 401


@pytest.mark.postgres
def test_signup_rules(client_factory) -> None:
    c = client_factory()
    assert c.post("/api/signup", {"username": "x", "password": PASSWORD}).status_code == 422
    assert c.post("/api/signup", {"username": "../etc", "password": PASSWORD}).status_code == 422
    assert c.post("/api/signup", {"username": "erin", "password": "short"}).status_code == 422
    c.signup("erin")
    assert client_factory().post("/api/signup", {"username": "erin", "password": PASSWORD}).status_code == 409


@pytest.mark.postgres
def test_passwords_are_stored_hashed_with_argon2(alice: Client, app) -> None:
    from sqlalchemy import select

    from dla.web.db import User

    with app.state.ctx.db.session() as db:
        stored = db.scalar(select(User.password_hash).where(User.username == "alice"))
    assert stored.startswith("$argon2") and PASSWORD not in stored


@pytest.mark.postgres
def test_no_signup(app_factory) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app_factory(allow_signup=False)) as tc:
        c = Client(tc)
        assert c.post("/api/signup", {"username": "frank", "password": PASSWORD}).status_code == 403
        assert c.get("/signup", follow_redirects=False).status_code == 303


@pytest.mark.postgres
def test_csrf_missing_or_wrong_is_403(alice: Client) -> None:
    r = alice.tc.post("/api/logout")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = alice.tc.put("/api/files?name=a.cfg", content=b"x", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    # a form post carries the token as a field
    r = alice.tc.post("/api/logout", data={"csrf_token": alice.csrf})
    assert r.status_code == 200


@pytest.mark.postgres
def test_schema_is_versioned(app) -> None:
    from dla.web.db import MIGRATIONS

    assert app.state.ctx.db.version() == len(MIGRATIONS)
    assert app.state.ctx.db.migrate() == len(MIGRATIONS)  # idempotent


@pytest.mark.postgres
def test_concurrent_signups_of_one_name(client_factory) -> None:
    """Both requests see the name free, one insert wins: the other is 409, never a 500."""
    from concurrent.futures import ThreadPoolExecutor

    clients = [client_factory() for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        codes = sorted(pool.map(lambda c: c.post("/api/signup", {"username": "carol", "password": "long enough"})
                                .status_code, clients))
    assert codes == [200, 409, 409]


def test_user_names_differing_only_in_case_are_one_name_and_passwords_are_bounded(app) -> None:
    """'Alice' and 'alice' cannot both exist (one could pass for the other); a megabyte
    password is refused before argon2 spends time on it."""
    from fastapi.testclient import TestClient

    with TestClient(app) as tc:
        Client(tc).signup("Alice")
    with TestClient(app) as tc:
        c = Client(tc)
        r = c.post("/api/signup", json={"username": "alice", "password": "password-2"})
        assert r.status_code == 409 and "without case" in r.text
        r = c.post("/api/signup", json={"username": "bob", "password": "x" * 2000})
        assert r.status_code == 422 and "at most 1024" in r.text
