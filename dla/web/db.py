"""The workbench's database: users, login sessions, files, jobs — one SQLAlchemy code path.

SQLite (a file in the data directory) by default, PostgreSQL with ``--database-url``.  The
schema is versioned: ``schema_version`` holds the number of the last migration applied and
``migrate`` applies the missing ones in order at start-up, so an old data directory keeps
working after an upgrade.  Only the server process writes here (job workers report through
a pipe), which keeps SQLite's single-writer rule easy to honour.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, event, select,
                        text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def utcnow() -> datetime:
    """Naive UTC (SQLite has no time zones; every timestamp here is UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


#: The largest id a row can have (``Integer`` is 32 bits in PostgreSQL): a larger one is looked
#: up as "not found" instead of reaching the driver, which refuses it (OverflowError, DataError).
MAX_ID = 2 ** 31 - 1


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginSession(Base):
    """A login: only the SHA-256 of the cookie token is stored (a leaked database is no key)."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class FileRecord(Base):
    """A user's file.  On disk it is named by ``id`` only, so the user's name never reaches a path.

    ``version`` grows on every change (rename, overwrite): writers send the version they
    read and get 409 if someone changed the file in between (optimistic concurrency)."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # cfg | weights | image | qnet | scenario | npy | result
    size: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    meta_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads(self.meta_json or "{}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "size": self.size, "version": self.version,
                "meta": self.meta, "updated_at": self.updated_at.isoformat(timespec="seconds")}


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """A job's params as the browser sees them: without the files' paths on the server (the
    worker needs them; the user knows the files by name)."""
    out = {k: v for k, v in params.items() if k not in ("image", "calib_images")}
    if params.get("calib_images"):
        out["calib_images"] = [f["name"] for f in params["calib_images"]]
    if isinstance(out.get("model"), dict):
        out["model"] = {k: v for k, v in out["model"].items() if k not in ("path", "weights")}
    return out


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # run | quantize
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    message: Mapped[str] = mapped_column(Text, default="")
    params_json: Mapped[str] = mapped_column(Text, default="{}")
    result_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    FINISHED = ("done", "failed", "cancelled", "interrupted")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
                "message": self.message, "params": public_params(json.loads(self.params_json or "{}")),
                "result": json.loads(self.result_json or "{}"),
                "created_at": self.created_at.isoformat(timespec="seconds")}


def _v1(engine: Engine) -> None:
    Base.metadata.create_all(engine)


#: Migration ``n`` (1-based) brings the schema from version n-1 to n.  Append, never edit.
MIGRATIONS: list[Callable[[Engine], None]] = [_v1]


class Database:
    """The engine, a session factory and the migrations for one database URL."""

    def __init__(self, url: str) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.url = url
        self.engine = create_engine(url, future=True, **kwargs)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn: Any, _record: Any) -> None:  # WAL: readers never wait for the writer
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.migrate()

    def version(self) -> int:
        with self.engine.connect() as conn:
            if not self.engine.dialect.has_table(conn, "schema_version"):
                return 0
            return int(conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar() or 0)

    def migrate(self) -> int:
        current = self.version()
        for n, step in enumerate(MIGRATIONS, start=1):
            if n > current:
                step(self.engine)
                with self.session() as db:
                    db.add(SchemaVersion(version=n))
        return len(MIGRATIONS)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        db = self.sessionmaker()
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            locks = db.info.pop("locks", {})
            db.close()
            for lock in locks.values():  # taken for this unit of work (Storage.lock_user)
                lock.release()

    def interrupt_running_jobs(self) -> list[int]:
        """At start-up: jobs a previous server left queued/running can never finish."""
        with self.session() as db:
            jobs = db.scalars(select(Job).where(Job.status.in_(("queued", "running")))).all()
            for j in jobs:
                j.status, j.message, j.updated_at = "interrupted", "the server stopped while the job ran", utcnow()
            return [j.id for j in jobs]


__all__ = ["Base", "Database", "FileRecord", "Job", "LoginSession", "MAX_ID", "MIGRATIONS", "SchemaVersion", "User",
           "utcnow"]
