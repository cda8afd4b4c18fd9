"""Writing outputs so that a failure leaves nothing half-written behind.

Files are written to a sibling temporary name and renamed into place; directories
are built under a temporary sibling and renamed when complete.  A write the operating
system refuses (read-only folder, full disk, name too long) is one ``OutputError`` naming
the path and the OS reason, and leaves nothing behind.  JSON goes through
:func:`json_text`, which never writes ``NaN``/``Infinity`` (they are not JSON).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from golden.errors import UserInputError


class OutputError(UserInputError):
    """Raised when an output cannot be written (permissions, full disk, bad name): names the path."""

    def __init__(self, path: str | Path, exc: OSError) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: cannot write ({exc.strerror or exc}); nothing was written")


def _check_parent(path: Path) -> None:
    try:
        if not path.parent.exists():
            raise UserInputError(f"{path}: directory {path.parent} does not exist")
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise OutputError(path, exc) from None


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    _check_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(path, exc) from None
    try:
        with open(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).replace(path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(path, exc) from None
        raise


def finite_json(obj: object) -> object:
    """``obj`` with every non-finite float replaced by the string ``"inf"``, ``"-inf"`` or ``"nan"``.

    The project's convention for values that are legitimately infinite (the SQNR of an exact
    layer); inputs that would make a value NaN (non-finite weights, a zero clock) are refused
    when loaded, so ``"nan"`` should never appear."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("nan" if obj != obj else ("inf" if obj > 0 else "-inf"))
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalars and arrays
        return finite_json(obj.tolist())
    return obj


def json_text(obj: object, indent: int | None = 1) -> str:
    """Strict JSON text (``allow_nan=False``) of ``obj`` after :func:`finite_json`, with a newline."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False) + "\n"


def write_json_atomic(path: str | Path, obj: object) -> None:
    write_bytes_atomic(path, json_text(obj).encode())


@contextlib.contextmanager
def atomic_dir(path: str | Path, replace_if: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` only if the block succeeds.

    An existing non-empty ``path`` is refused, unless it contains the file ``replace_if``
    (i.e. it is an earlier output of the same kind), in which case it is replaced.
    """
    path = Path(path)
    _check_parent(path)
    if path.exists():
        if not path.is_dir():
            raise UserInputError(f"{path}: exists and is not a directory")
        if any(path.iterdir()) and not (replace_if and (path / replace_if).exists()):
            raise UserInputError(f"{path}: directory exists and is not empty (choose another output directory)")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name[:200]}.", suffix=".part", dir=path.parent))
    except OSError as exc:
        raise OutputError(path, exc) from None
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and _inside(exc, tmp, path):
            raise OutputError(path, exc) from None
        raise


def _inside(exc: OSError, *roots: Path) -> bool:
    """Whether the failed file operation was on a path under one of ``roots`` (an output)."""
    names = [n for n in (exc.filename, getattr(exc, "filename2", None)) if n]
    try:
        return any(Path(os.fspath(n)).resolve().is_relative_to(r.resolve()) for n in names for r in roots)
    except (OSError, TypeError, ValueError):
        return False
