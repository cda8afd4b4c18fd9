"""Shared fixtures: paths to the test data that lives outside the package (``../shared``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DLA_SHARED", ROOT.parent / "shared"))
CFG_DIR = SHARED / "darknet-cfg"


def shared_path(*parts: str) -> Path:
    """A file under ``../shared``; in CI (``CI=true``) its absence is a failure, never a skip."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        msg = f"{path} is missing: the tests need ../shared (set DLA_SHARED to its location)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def cfg_dir() -> Path:
    return shared_path("darknet-cfg")
