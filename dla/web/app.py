"""The workbench application: ``create_app(data_dir, database_url, allow_signup)``.

Wires the routers (auth, files, model_page, jobs, step, pages) over one ``WebContext`` and turns
the library's user errors into HTTP answers: not found → 404 (also for another user's
ids), conflict → 409 (also a unique constraint lost to a concurrent request), too large → 413, anything else the user got wrong → 422; each with a
one-line ``detail``.  Not logged in: 401 for the API, a redirect to /login for pages.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from dla.web import auth, files, jobs, model_page, pages, stepping
from dla.web.context import Settings, WebContext
from dla.web.db import Database
from dla.web.jobs import JobRunner
from dla.web.limits import LimitExceeded
from dla.web.sniff import BadName, ContentError
from dla.web.stepping import StepSessions
from dla.web.storage import Conflict, NotFound, Storage, TooLarge
from dla.web.throttle import Throttle
from golden.errors import UserInputError

STATIC = Path(__file__).parent / "static"

#: Sent with every answer.  CSP: scripts only from /static (no inline script, no eval), images
#: also as data:/blob: URLs (reports embed their pictures), inline styles allowed (Graphviz's
#: SVG and the reports carry them; styles cannot run code), no plugins, no framing by any page
#: (clickjacking), forms only to this server.  nosniff: a download is never run as a script or
#: page by content guessing.  no-referrer: ids in URLs stay on this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'workbench.sqlite').resolve()}"


def create_app(data_dir: str | Path, database_url: str | None = None, allow_signup: bool = True,
               **overrides: object) -> FastAPI:
    """A workbench over ``data_dir`` (files, jobs; the SQLite database unless ``database_url``).

    ``overrides`` set ``Settings`` fields (tests use small quotas and limits)."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    settings = Settings(data, database_url or default_database_url(data), allow_signup)
    for k, v in overrides.items():
        if not hasattr(settings, k):
            raise TypeError(f"unknown setting {k!r}")
        setattr(settings, k, v)
    db = Database(settings.database_url)
    storage = Storage(data, settings.quota_bytes, settings.max_upload_bytes)  # empties tmp/
    with db.session() as s:
        storage.remove_orphans(s)
    context = WebContext(settings, db, storage, JobRunner(db, storage, data, settings.job_workers, settings.max_job_memory,
                                                          settings.max_job_seconds),
                         StepSessions(settings.step_sessions_per_user),
                         Throttle(settings.login_failures_per_account, settings.login_window_seconds),
                         Throttle(settings.login_failures_per_client, settings.login_window_seconds))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        context.jobs.shutdown()
        context.steps.close_all()

    app = FastAPI(title="dla-sim workbench", lifespan=lifespan, dependencies=[Depends(auth.csrf_protect)],
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = context
    for module in (auth, files, model_page, jobs, stepping, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if settings.secure_cookies:  # behind HTTPS: browsers keep to HTTPS for this host
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.exception_handler(auth.NotLoggedIn)
    async def _not_logged_in(request: Request, _exc: Exception):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "not logged in"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(UserInputError)
    async def _user_error(_request: Request, exc: Exception):
        status = 422
        for cls, code in ((NotFound, 404), (Conflict, 409), (TooLarge, 413), (LimitExceeded, 413), (ContentError, 422),
                          (BadName, 422)):
            if isinstance(exc, cls):
                status = code
                break
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(StaleDataError)
    @app.exception_handler(ObjectDeletedError)
    async def _gone(_request: Request, _exc: Exception):
        # the row was deleted (or changed) by another request between our read and our write
        return JSONResponse({"detail": "changed or deleted by another request at the same moment: reload"},
                            status_code=409)

    @app.exception_handler(IntegrityError)
    async def _race(_request: Request, _exc: Exception):
        # two requests checked "the name is free" at once and the database's unique constraint
        # kept one of them out (PostgreSQL runs them truly in parallel): the loser's answer
        return JSONResponse({"detail": "conflicts with a change made at the same moment: reload and try again"},
                            status_code=409)

    return app
