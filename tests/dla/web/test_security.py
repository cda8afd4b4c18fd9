"""Hardening of accounts and answers: security headers, Secure cookies behind HTTPS, CSRF bound
to the login, login throttling (per account, per client) with 429 + Retry-After."""
from __future__ import annotations

from click.testing import CliRunner

from dla.cli import cli
from dla.web.throttle import Throttle
from tests.dla.web.conftest import PASSWORD, Client


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_security_headers_on_every_answer(alice: Client) -> None:
    for url in ("/", "/login", "/api/files", "/api/files/999", "/static/app.js"):
        r = alice.get(url)
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "object-src 'none'" in csp, url
        assert r.headers["x-frame-options"] == "DENY", url
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert "strict-transport-security" not in r.headers  # plain HTTP: HSTS would be a lie


def test_cookies_not_secure_by_default(client_factory) -> None:
    r = client_factory().post("/api/signup", {"username": "erin", "password": PASSWORD})
    assert all("secure" not in c.lower() for c in r.headers.get_list("set-cookie"))


def test_behind_https_marks_cookies_secure(app_factory) -> None:
    from fastapi.testclient import TestClient

    app = app_factory(secure_cookies=True)
    with TestClient(app, base_url="https://testserver") as tc:
        c = Client(tc)
        assert c.csrf
        r = c.post("/api/signup", {"username": "erin", "password": PASSWORD})
        cookies = r.headers.get_list("set-cookie")
        assert {c.split("=")[0] for c in cookies} == {"dla_session", "dla_csrf"}
        assert all("; secure" in c.lower() for c in cookies), cookies
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_cli_serve_has_behind_https() -> None:
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0 and "--behind-https" in r.output


def test_csrf_is_bound_to_the_login(app, alice: Client, bob: Client) -> None:
    from fastapi.testclient import TestClient

    assert alice.csrf != bob.csrf
    # bob's token with alice's session: refused
    r = alice.tc.post("/api/logout", headers={"X-CSRF-Token": bob.csrf})
    assert r.status_code == 403
    # a planted cookie that matches the header (cookie tossing) but is not the login's: refused
    with TestClient(app) as tc:
        tc.cookies.set("dla_session", alice.tc.cookies.get("dla_session"))
        tc.cookies.set("dla_csrf", "planted-token")
        assert tc.get("/api/me").status_code == 200
        assert tc.post("/api/logout", headers={"X-CSRF-Token": "planted-token"}).status_code == 403
    assert alice.get("/api/me").status_code == 200  # still logged in
    assert alice.post("/api/logout").status_code == 200


def test_login_replaces_the_csrf_token(client_factory, alice: Client) -> None:
    c = client_factory()
    before = c.csrf
    assert c.post("/api/login", {"username": "alice", "password": PASSWORD}).status_code == 200
    assert c.csrf != before
    r = c.tc.post("/api/logout", headers={"X-CSRF-Token": before})  # the pre-login token is dead
    assert r.status_code == 403
    assert c.post("/api/logout").status_code == 200


def test_login_throttled_per_account(app, alice: Client, client_factory) -> None:
    clock = FakeClock()
    app.state.ctx.account_throttle.clock = clock
    app.state.ctx.client_throttle.clock = clock
    c = client_factory()
    for _ in range(5):
        assert c.post("/api/login", {"username": "alice", "password": "wrong password"}).status_code == 401
    r = c.post("/api/login", {"username": "alice", "password": PASSWORD})  # even the right one
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 300
    assert "try again in 300 s" in r.json()["detail"]
    assert c.post("/api/login", {"username": "ALICE", "password": PASSWORD}).status_code == 429  # no case trick
    clock.t += 120
    assert int(c.post("/api/login", {"username": "alice", "password": PASSWORD}).headers["retry-after"]) == 180
    clock.t += 181
    assert c.post("/api/login", {"username": "alice", "password": PASSWORD}).status_code == 200


def test_login_throttled_per_client(app_factory) -> None:
    from fastapi.testclient import TestClient

    app = app_factory(login_failures_per_client=3)
    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("frank")
        c.post("/api/logout")
        for name in ("u1", "u2", "u3"):  # different accounts, one client
            assert c.post("/api/login", {"username": name, "password": "wrong password"}).status_code == 401
        r = c.post("/api/login", {"username": "frank", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_signup_probing_counts_as_failures(app_factory) -> None:
    from fastapi.testclient import TestClient

    app = app_factory(login_failures_per_client=2)
    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("gina")
        for _ in range(2):
            r = c.post("/api/signup", {"username": "gina", "password": PASSWORD})
            assert r.status_code == 409 and "taken" in r.json()["detail"]
        assert c.post("/api/signup", {"username": "gina", "password": PASSWORD}).status_code == 429


def test_throttle_window_semantics() -> None:
    clock = FakeClock()
    t = Throttle(2, 10, clock)
    t.fail("k")
    clock.t += 4
    t.fail("k")
    assert t.retry_after("k") == 6 and t.retry_after("other") == 0
    clock.t += 6
    assert t.retry_after("k") == 0  # the first failure left the window
    t.fail("k")
    assert t.retry_after("k") == 4
    t.clear("k")
    assert t.retry_after("k") == 0
