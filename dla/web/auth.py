"""Accounts and login sessions: argon2 passwords, HttpOnly cookies, CSRF on every write.

* A login is a random token in the ``dla_session`` cookie (HttpOnly, SameSite=Lax); the
  database keeps only its SHA-256 and an expiry, so an expired or logged-out token is dead.
* CSRF: double-submit, bound to the login.  The ``dla_csrf`` cookie (readable by the page's
  JS) must be echoed in the ``X-CSRF-Token`` header (or a ``csrf_token`` form field) of every
  POST, PUT, PATCH and DELETE; a cross-site page can make the browser send the cookie but
  cannot read it, so it cannot forge the header.  Once logged in, the token must moreover be
  ``HMAC(session token, "dla-csrf")``: a token planted by someone else (a cookie set from a
  sibling host, a token from another login) is refused.  Before login (the login and sign-up
  forms) it is a random value.  Missing or different → 403.
* Login throttling (``dla.web.throttle``): failures per account and per client address in a
  sliding window; beyond the limit 429 with ``Retry-After``, checked before the password.
* Sign-up says when a name is taken: on a shared workbench user names are not secrets (people
  pick one another's names to share work) and a neutral answer would leave a newcomer unable
  to tell why they cannot log in.  Probing names that way costs a failure on the client's
  throttle, like a wrong password.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, func, select

from dla.web.context import WebContext, ctx
from dla.web.db import LoginSession, User, utcnow

SESSION_COOKIE = "dla_session"
CSRF_COOKIE = "dla_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~60 ms per login here,
# so 20 people logging in at once on 2 cores wait ~1 s, not the ~5 s of the library default.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
router = APIRouter()


class NotLoggedIn(Exception):
    """Raised by ``current_user``; the app answers 401 (API) or redirects to /login (pages)."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _no_user_hash() -> str:
    return hash_password(secrets.token_urlsafe(32))


def session_csrf(session_token: str) -> str:
    """The CSRF token of a login: derived from its (HttpOnly, secret) session token, so only
    that login's pages can know it, and it needs no storage."""
    return hmac.new(session_token.encode(), b"dla-csrf", hashlib.sha256).hexdigest()


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every state-changing request carries the CSRF cookie's value,
    which for a logged-in request must be the one derived from its session."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        sent = str((await request.form()).get("csrf_token", ""))
    session = request.cookies.get(SESSION_COOKIE)
    expected = session_csrf(session) if session else cookie
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")


def _set_csrf_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="lax", secure=secure, path="/")


def ensure_csrf_cookie(request: Request, response: Response) -> str:
    """The page's CSRF token: the login's own when logged in, else a random one (set as a
    cookie when missing or not the login's)."""
    token = request.cookies.get(CSRF_COOKIE)
    session = request.cookies.get(SESSION_COOKIE)
    want = session_csrf(session) if session else token or secrets.token_urlsafe(24)
    if token != want:
        _set_csrf_cookie(response, want, request.app.state.ctx.settings.secure_cookies)
    return want


def user_from_request(request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    c: WebContext = ctx(request)
    with c.db.session() as db:
        row = db.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
        if row is None or row.expires_at <= utcnow():
            return None
        return db.get(User, row.user_id)


def current_user(request: Request) -> User:
    """Dependency of every private route: the logged-in user, or ``NotLoggedIn``."""
    user = user_from_request(request)
    if user is None:
        raise NotLoggedIn()
    return user


#: Longer passwords are refused: argon2 hashes any length, but a megabyte "password" per login
#: request would be a cheap way to make the server work.
MAX_PASSWORD = 1024


class Credentials(BaseModel):
    username: str
    password: str


def _start_session(c: WebContext, user: User, response: Response) -> None:
    token = secrets.token_urlsafe(32)
    with c.db.session() as db:
        db.add(LoginSession(user_id=user.id, token_hash=_token_hash(token),
                            expires_at=utcnow() + timedelta(hours=c.settings.session_hours)))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=c.settings.secure_cookies,
                        max_age=int(c.settings.session_hours * 3600), path="/")
    _set_csrf_cookie(response, session_csrf(token), c.settings.secure_cookies)  # the new login's token


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy: the proxy's; see docs/security.md)."""
    return request.client.host if request.client else "unknown"


def _throttled(c: WebContext, keys: list[tuple[object, str]]) -> None:
    """429 with Retry-After if any (throttle, key) is over its limit."""
    wait = max((t.retry_after(k) for t, k in keys if t is not None), default=0)
    if wait:
        raise HTTPException(429, f"too many failed attempts: try again in {wait} s",
                            headers={"Retry-After": str(wait)})


@router.post("/api/signup")
def signup(body: Credentials, request: Request, response: Response, c: WebContext = Depends(ctx)) -> dict:
    client = client_address(request)
    _throttled(c, [(c.client_throttle, client)])
    if not c.settings.allow_signup:
        raise HTTPException(403, "sign-up is disabled on this server")
    if not USERNAME.match(body.username):
        raise HTTPException(422, "user name: 3-32 letters, digits, '_', '.', '-'")
    if len(body.password) < 8:
        raise HTTPException(422, "password: at least 8 characters")
    if len(body.password) > MAX_PASSWORD:
        raise HTTPException(422, f"password: at most {MAX_PASSWORD} characters")
    with c.db.session() as db:
        # names differing only in case would let one user pass for another ('Alice' vs 'alice')
        if db.scalar(select(User).where(func.lower(User.username) == body.username.lower())) is not None:
            if c.client_throttle is not None:  # probing names counts like a wrong password
                c.client_throttle.fail(client)
            raise HTTPException(409, f"user name '{body.username}' is taken (names are compared without case)")
        user = User(username=body.username, password_hash=hash_password(body.password))
        db.add(user)
    _start_session(c, user, response)
    return {"id": user.id, "username": user.username}


@router.post("/api/login")
def login(body: Credentials, request: Request, response: Response, c: WebContext = Depends(ctx)) -> dict:
    client, account = client_address(request), body.username.lower()[:64]
    _throttled(c, [(c.account_throttle, account), (c.client_throttle, client)])
    if len(body.password) > MAX_PASSWORD:
        raise HTTPException(401, "wrong user name or password")
    with c.db.session() as db:
        user = db.scalar(select(User).where(User.username == body.username))
    # the same answer, in the same time, for an unknown user and a wrong password: names are
    # not enumerable (an unknown name is checked against a hash no password matches)
    if not verify_password(user.password_hash if user is not None else _no_user_hash(), body.password) \
            or user is None:
        for t, k in ((c.account_throttle, account), (c.client_throttle, client)):
            if t is not None:
                t.fail(k)
        raise HTTPException(401, "wrong user name or password")
    if c.account_throttle is not None:
        c.account_throttle.clear(account)
    _start_session(c, user, response)
    return {"id": user.id, "username": user.username}


@router.post("/api/logout")
def logout(request: Request, response: Response, c: WebContext = Depends(ctx)) -> dict:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with c.db.session() as db:
            db.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
    response.delete_cookie(SESSION_COOKIE, path="/")
    _set_csrf_cookie(response, secrets.token_urlsafe(24), c.settings.secure_cookies)  # the login's token dies with it
    return {"ok": True}


@router.get("/api/me")
def me(user: User = Depends(current_user)) -> dict:
    return {"id": user.id, "username": user.username}
