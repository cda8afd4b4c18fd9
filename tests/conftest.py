"""Fixtures shared by every test directory (helpers that are plain code live in tests/paths.py,
tests/tools.py and tests/cli_helpers.py, and are imported, never this file)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import shared_path


@pytest.fixture(scope="session")
def cfg_dir() -> Path:
    """``../shared/darknet-cfg`` (a failure in CI, a skip elsewhere when it is missing)."""
    return shared_path("darknet-cfg")
