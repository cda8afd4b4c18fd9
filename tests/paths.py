"""Where the tests find the checkout, their reference data and ``../shared`` (one place, so
moving a test module never breaks a path)."""
from __future__ import annotations

import os
from pathlib import Path

from tests.tools import require_file

ROOT = Path(__file__).resolve().parents[1]
#: Reference data of the tests: SCALE-Sim reports (scalesim/), the scenario tests' tiny detector
#: (scenario/), the web tests' tiny model (web/tiny.cfg).
DATA = ROOT / "tests" / "data"
#: Real Darknet cfgs, yolov3-tiny.weights and photos beside the checkout (``DLA_SHARED`` overrides).
SHARED = Path(os.environ.get("DLA_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A file under ``../shared``; its absence fails the test in CI (``CI`` set) and skips it
    elsewhere (tests/tools.py)."""
    return require_file(SHARED.joinpath(*parts), "the tests need ../shared (set DLA_SHARED to its location)")
