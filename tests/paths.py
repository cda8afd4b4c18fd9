"""Where the tests find the checkout and their reference data (one place, so moving a test
module never breaks a path)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Reference data of the tests: SCALE-Sim reports, small cfgs, the web tests' tiny model.
DATA = ROOT / "tests" / "data"
