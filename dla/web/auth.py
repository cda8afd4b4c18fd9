"""Accounts and login sessions: argon2 passwords, HttpOnly cookies, CSRF on every write.

* A login is a random token in the ``dla_session`` cookie (HttpOnly, SameSite=Lax); the
  database keeps only its SHA-256 and an expiry, so an expired or logged-out token is dead.
* CSRF: double-submit.  A random ``dla_csrf`` cookie (readable by the page's JS) must be
  echoed in the ``X-CSRF-Token`` header (or a ``csrf_token`` form field) of every POST, PUT,
  PATCH and DELETE; a cross-site page can make the browser send the cookie but cannot read
  it, so it cannot forge the header.  Missing or different → 403.
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


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every state-changing request carries the CSRF cookie's value."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        sent = str((await request.form()).get("csrf_token", ""))
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")


def ensure_csrf_cookie(request: Request, response: Response) -> str:
    """The page's CSRF token (set as a cookie on first visit)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(24)
        response.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="lax",
                            secure=request.app.state.ctx.settings.secure_cookies, path="/")
    return token


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


@router.post("/api/signup")
def signup(body: Credentials, response: Response, c: WebContext = Depends(ctx)) -> dict:
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
            raise HTTPException(409, f"user name '{body.username}' is taken (names are compared without case)")
        user = User(username=body.username, password_hash=hash_password(body.password))
        db.add(user)
    _start_session(c, user, response)
    return {"id": user.id, "username": user.username}


@router.post("/api/login")
def login(body: Credentials, response: Response, c: WebContext = Depends(ctx)) -> dict:
    with c.db.session() as db:
        user = db.scalar(select(User).where(User.username == body.username))
    # the same answer, in the same time, for an unknown user and a wrong password: names are
    # not enumerable (an unknown name is checked against a hash no password matches)
    if not verify_password(user.password_hash if user is not None else _no_user_hash(), body.password) \
            or user is None:
        raise HTTPException(401, "wrong user name or password")
    _start_session(c, user, response)
    return {"id": user.id, "username": user.username}


@router.post("/api/logout")
def logout(request: Request, response: Response, c: WebContext = Depends(ctx)) -> dict:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with c.db.session() as db:
            db.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/api/me")
def me(user: User = Depends(current_user)) -> dict:
    return {"id": user.id, "username": user.username}
