"""What every request handler needs: settings, the database, file storage, jobs, STEP sessions.

One ``WebContext`` per app (``app.state.ctx``), so two apps in one process (tests) never
share state, and nothing lives in module globals.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from dla.web.db import Database

if TYPE_CHECKING:
    from dla.web.jobs import JobRunner
    from dla.web.stepping import StepSessions
    from dla.web.storage import Storage


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
    secure_cookies: bool = False  # set behind HTTPS


@dataclass
class WebContext:
    settings: Settings
    db: Database
    storage: "Storage"
    jobs: "JobRunner"
    steps: "StepSessions"


def ctx(request: Request) -> WebContext:
    return request.app.state.ctx
