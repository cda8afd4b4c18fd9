"""Review findings: user mistakes that crashed, were silently accepted or passed vacuously."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import fails

from .conftest import TINY_CFG

BASE = (f"model: {{cfg: {TINY_CFG}, seed: 1}}\nquant: {{calib: {{synthetic: 2}}}}\nimages: {{synthetic: 1}}\n"
        "report: {html: false}\n")


def _fails(tmp_path: Path, text: str, needle: str) -> str:
    """`dla run` of ``text``: exit 2, one Error line with ``needle``, nothing written."""
    p = tmp_path / "s.yaml"
    p.write_text(text)
    res = fails("run", p, "-o", tmp_path / "out", "-q", needle=needle)
    assert not (tmp_path / "out").exists()
    return res.output


@pytest.mark.parametrize("text, needle", [
    (f"model: {{cfg: {TINY_CFG}, seed: -5}}\n", "s.yaml:1: model.seed: "),
    (f"model: {{cfg: {TINY_CFG}}}\nimages: {{synthetic: 1, seed: -1}}\n", "s.yaml:2: images.seed: "),
])
def test_negative_seeds_are_refused_not_a_traceback(tmp_path: Path, text: str, needle: str) -> None:
    _fails(tmp_path, text, needle)
