"""Per-user file storage: disk layout, quota, optimistic versions.

On disk a file is ``users/<user id>/<file id>`` (a ``.qnet`` is the directory
``<file id>.qnet``); the name the user chose lives only in the database, so no name can
reach a path.  Every lookup is by ``(user id, file id)``: another user's id is "not found".
"""
from __future__ import annotations

import io
import secrets
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dla.web import sniff
from dla.web.db import MAX_ID, FileRecord, User, utcnow
from golden.errors import UserInputError


class NotFound(UserInputError):
    """A resource that does not exist *for this user* (another user's id included)."""


class Conflict(UserInputError):
    """The resource changed since the client read it (version mismatch) or the name is taken."""


class TooLarge(UserInputError):
    """An upload beyond the size limit or the user's quota."""


class Storage:
    def __init__(self, data_dir: Path, quota_bytes: int, max_upload_bytes: int) -> None:
        self.root = data_dir
        self.quota_bytes = quota_bytes
        self.max_upload_bytes = max_upload_bytes
        (self.root / "users").mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / "tmp"
        self.clean_tmp()
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def clean_tmp(self) -> None:
        """At start-up: ``tmp/`` holds only what requests in flight write (uploads being received
        or unpacked, STEP pictures); whatever a previous server left there (killed mid-upload)
        is nobody's and outside every quota."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def remove_orphans(self, db: Session) -> int:
        """At start-up: files in ``users/`` without a database row (a server killed between moving
        a file in and committing its row); how many were removed."""
        ids = set(db.scalars(select(FileRecord.id)))
        removed = 0
        for udir in (self.root / "users").iterdir():
            for p in udir.iterdir() if udir.is_dir() else ():
                stem = p.name.removesuffix(".qnet")
                if not stem.isdigit() or int(stem) not in ids:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                    removed += 1
        return removed

    def lock_user(self, db: Session, user_id: int) -> None:
        """Make the quota check and the change that follows one step for ``user_id``: hold the
        user's lock until ``db``'s transaction ends (``Database.session`` releases it), and on
        PostgreSQL also the user's row (``FOR UPDATE``: another server process waits too).
        Reads after it see every commit made before (SQLite runs reads outside a transaction
        until the first write; PostgreSQL reads committed data)."""
        held = db.info.setdefault("locks", {})
        if ("user", user_id) in held:
            return
        with self._locks_guard:
            lock = self._locks.setdefault(user_id, threading.Lock())
        lock.acquire()
        held[("user", user_id)] = lock
        if db.get_bind().dialect.name == "postgresql":
            db.execute(select(User.id).where(User.id == user_id).with_for_update())

    # ------------------------------------------------------------------ paths
    def user_dir(self, user_id: int) -> Path:
        d = self.root / "users" / str(int(user_id))
        d.mkdir(parents=True, exist_ok=True)
        return d

    def path(self, rec: FileRecord) -> Path:
        suffix = ".qnet" if rec.kind == "qnet" else ""
        return self.user_dir(rec.user_id) / f"{rec.id}{suffix}"

    def temp_path(self, suffix: str = "") -> Path:
        return self.tmp / f"{secrets.token_hex(8)}{suffix}"

    # ------------------------------------------------------------------ queries
    def get(self, db: Session, user_id: int, file_id: int, kinds: tuple[str, ...] | None = None) -> FileRecord:
        rec = db.get(FileRecord, file_id) if 0 < file_id <= MAX_ID else None
        if rec is None or rec.user_id != user_id or (kinds and rec.kind not in kinds):
            what = " or ".join(kinds) if kinds else "file"
            raise NotFound(f"{what} {file_id} not found")
        return rec

    def list(self, db: Session, user_id: int) -> list[FileRecord]:
        return list(db.scalars(select(FileRecord).where(FileRecord.user_id == user_id).order_by(FileRecord.name)))

    def used(self, db: Session, user_id: int) -> int:
        return int(db.scalar(select(func.coalesce(func.sum(FileRecord.size), 0)).where(FileRecord.user_id == user_id)))

    def cfg_paths(self, db: Session, user_id: int) -> dict[int, Path]:
        rows = db.scalars(select(FileRecord).where(FileRecord.user_id == user_id, FileRecord.kind == "cfg"))
        return {r.id: self.path(r) for r in rows}

    def _by_name(self, db: Session, user_id: int, name: str) -> FileRecord | None:
        return db.scalar(select(FileRecord).where(FileRecord.user_id == user_id, FileRecord.name == name))

    def free_name(self, db: Session, user_id: int, name: str) -> str:
        """``name``, or ``stem-2.ext``, ``stem-3.ext``… if taken (for files the server creates)."""
        if self._by_name(db, user_id, name) is None:
            return name
        p = Path(name)
        stem, ext = (p.name[: -len(".qnet")], ".qnet") if name.endswith(".qnet") else (p.stem, p.suffix)
        k = 2
        while self._by_name(db, user_id, f"{stem}-{k}{ext}") is not None:
            k += 1
        return f"{stem}-{k}{ext}"

    # ------------------------------------------------------------------ changes
    def check_quota(self, db: Session, user_id: int, extra: int, freed: int = 0) -> None:
        used = self.used(db, user_id) - freed
        if used + extra > self.quota_bytes:
            raise TooLarge(f"quota exceeded: {used + extra:,} bytes of {self.quota_bytes:,} allowed")

    @staticmethod
    def disk_size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size

    def add(self, db: Session, user_id: int, src: Path, name: str, kind: str, meta: dict[str, Any],
            replace_version: int | None = None, unique: bool = False) -> FileRecord:
        """Move ``src`` (a file, or a directory for a .qnet) into the user's space as ``name``.

        An existing ``name`` is replaced only when ``replace_version`` equals its version
        (409 otherwise); ``unique`` picks a free name instead (server-made files)."""
        name = sniff.safe_name(name)
        size = self.disk_size(src)
        self.lock_user(db, user_id)  # check and insert as one step: concurrent uploads cannot pass the quota together
        existing = self._by_name(db, user_id, name)
        if existing is not None and unique:
            name, existing = self.free_name(db, user_id, name), None
        if existing is not None:
            if replace_version is None:
                raise Conflict(f"'{name}' exists: choose another name or overwrite it")
            if existing.version != replace_version:
                raise Conflict(f"'{name}' changed since you opened it (version {existing.version}, "
                               f"you have {replace_version}): reload and try again")
            if existing.kind != kind:
                raise Conflict(f"'{name}' is a {existing.kind} file, not {kind}")
            self.check_quota(db, user_id, size, freed=existing.size)
            target = self.path(existing)
            old = self.temp_path(".old")
            if target.exists():
                target.rename(old)
            shutil.move(str(src), target)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
            existing.size, existing.meta_json = size, sniff.dumps(meta)
            existing.version += 1
            existing.updated_at = utcnow()
            db.flush()
            return existing
        self.check_quota(db, user_id, size)
        rec = FileRecord(user_id=user_id, name=name, kind=kind, size=size, meta_json=sniff.dumps(meta))
        db.add(rec)
        db.flush()  # the id names the file on disk
        shutil.move(str(src), self.path(rec))
        return rec

    def rename(self, db: Session, rec: FileRecord, new_name: str, version: int) -> FileRecord:
        new_name = sniff.safe_name(new_name)
        if rec.version != version:
            raise Conflict(f"'{rec.name}' changed since you opened it (version {rec.version}, you have {version})")
        new_kind = sniff.EXTENSIONS.get(Path(new_name).suffix.lower())
        if new_kind != rec.kind:
            raise UserInputError(f"'{new_name}': keep the extension of a {rec.kind} file")
        other = self._by_name(db, rec.user_id, new_name)
        if other is not None and other.id != rec.id:
            raise Conflict(f"'{new_name}' exists")
        rec.name, rec.version, rec.updated_at = new_name, rec.version + 1, utcnow()
        db.flush()
        return rec

    def delete(self, db: Session, rec: FileRecord) -> None:
        p = self.path(rec)
        db.delete(rec)
        db.flush()
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)

    @staticmethod
    def qnet_zip(path: Path, name: str) -> bytes:
        """A .qnet directory as the zip the upload accepts (``NAME.qnet/model.json`` …)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for member in sniff.QNET_MEMBERS:
                zf.write(path / member, f"{name}/{member}")
        return buf.getvalue()
