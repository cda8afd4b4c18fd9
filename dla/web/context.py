"""What every request handler needs: settings, the database, file storage, jobs, STEP sessions.

One ``WebContext`` per app (``app.state.ctx``), so two apps in one process (tests) never
share state, and nothing lives in module globals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from dla.web.db import Database
from dla.web.limits import DEFAULT_MAX_JOB_MEMORY, DEFAULT_MAX_JOB_SECONDS
from golden.image import max_image_pixels as _default_max_image_pixels

if TYPE_CHECKING:
    from dla.web.jobs import JobRunner
    from dla.web.stepping import StepSessions
    from dla.web.storage import Storage
    from dla.web.throttle import Throttle


@dataclass
class Settings:
    data_dir: Path
    database_url: str
    allow_signup: bool = True
    session_hours: float = 12.0
    max_upload_bytes: int = 256 * 1024 * 1024
    quota_bytes: int = 2 * 1024 * 1024 * 1024
    job_workers: int = 2
    step_sessions_per_user: int = 3
    secure_cookies: bool = False  # `dla serve --behind-https`: cookies only travel over HTTPS
    #: login throttling (dla.web.throttle): failed logins allowed per account and per client
    #: address inside a sliding window, then 429 with Retry-After until the oldest leaves it
    login_failures_per_account: int = 5
    login_failures_per_client: int = 20
    login_window_seconds: float = 300.0
    #: every engine computation (jobs, STEP sessions) runs in a worker process with these limits
    #: (dla.web.limits); None/0 = no limit
    max_job_memory: int | None = DEFAULT_MAX_JOB_MEMORY
    max_job_seconds: float | None = DEFAULT_MAX_JOB_SECONDS
    max_image_pixels: int = field(default_factory=_default_max_image_pixels)  # uploads with more pixels are refused before decoding


@dataclass
class WebContext:
    settings: Settings
    db: Database
    storage: "Storage"
    jobs: "JobRunner"
    steps: "StepSessions"
    account_throttle: "Throttle | None" = None
    client_throttle: "Throttle | None" = None


def ctx(request: Request) -> WebContext:
    return request.app.state.ctx
