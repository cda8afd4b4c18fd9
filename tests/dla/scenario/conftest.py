"""Fixtures for the scenario tests (the tiny detector and ``write_scenario`` are in helpers.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dla.scenario.helpers import write_scenario


@pytest.fixture
def scenario_file(tmp_path: Path):
    """``make(name="tiny", **sections)``: a scenario file on the tiny detector in tmp_path."""
    def make(name: str = "tiny", **sections: Any) -> Path:
        return write_scenario(tmp_path, name, **sections)

    return make
