"""Shared helpers of the scenario tests (plain code, imported; the fixtures are in conftest.py):
a tiny detector (tests/data/scenario/tiny-yolo.cfg) so that a whole scenario — calibration,
three modes, cycles, reports — runs in about a second."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.cli_helpers import fails
from tests.paths import DATA as TEST_DATA

DATA = TEST_DATA / "scenario"
TINY_CFG = DATA / "tiny-yolo.cfg"
#: The start of a scenario on the tiny detector, three lines long (the lines of what follows are 4, 5, ...).
BASE = f"model: {{cfg: {TINY_CFG}, seed: 1}}\nimages: {{synthetic: 1}}\nreport: {{html: false}}\n"
QUANT = "quant: {calib: {synthetic: 2}}\n"  # fast calibration (line 4 when it follows BASE)


def write_scenario(folder: Path, name: str = "tiny", **sections: Any) -> Path:
    """A scenario on the tiny detector (random weights, 2 generated inputs, no HTML unless asked)."""
    data: dict[str, Any] = {
        "name": name,
        "model": {"cfg": str(TINY_CFG), "seed": 1},
        "quant": {"activations": "mse", "granularity": "per_channel", "calib": {"synthetic": 2}},
        "images": {"synthetic": 2},
        "report": {"html": False},
    }
    data.update(sections)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_refused(tmp_path: Path, text: str, needle: str) -> str:
    """`dla run` of the scenario ``text`` (as tmp_path/s.yaml): exit 2, one Error line with
    ``needle``, nothing written; returns the output."""
    p = tmp_path / "s.yaml"
    p.write_text(text)
    res = fails("run", p, "-o", tmp_path / "out", "-q", needle=needle)
    assert not (tmp_path / "out").exists()
    return res.output


def load_error(tmp_path: Path, text: str) -> str:
    """The ``ScenarioError`` message of loading the scenario ``text`` (as tmp_path/s.yaml)."""
    import pytest

    from dla.scenario import ScenarioError, load_scenario

    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    return str(exc.value)
