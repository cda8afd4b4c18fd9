"""Hardening of accounts and answers: security headers, Secure cookies behind HTTPS, CSRF bound
to the login, login throttling (per account, per client) with 429 + Retry-After."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from dla.cli import cli
from dla.web.throttle import Throttle
from tests.dla.web.helpers import PASSWORD, Client
from tests.paths import ROOT
from tests.tools import require_tool


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
    import subprocess

    node = require_tool("node", "nodejs", hint="apt-get install -y nodejs")
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
