"""Writing outputs so that a failure leaves nothing half-written behind.

Files are written to a sibling temporary name and renamed into place; directories
are built under a temporary sibling and renamed when complete.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from golden.errors import UserInputError


def _check_parent(path: Path) -> None:
    if not path.parent.exists():
        raise UserInputError(f"{path}: directory {path.parent} does not exist")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    _check_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with open(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: object) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=1) + "\n").encode())


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
