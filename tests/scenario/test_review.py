"""Review findings: user mistakes that crashed, were silently accepted or passed vacuously."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import fails

from .conftest import TINY_CFG

BASE = f"model: {{cfg: {TINY_CFG}, seed: 1}}\nimages: {{synthetic: 1}}\nreport: {{html: false}}\n"
QUANT = "quant: {calib: {synthetic: 2}}\n"  # fast calibration (line 4 when it follows BASE)


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


@pytest.mark.parametrize("text, needle", [
    (f"model: {{cfg: {TINY_CFG}}}\nimages: []\nchecks:\n  - detections: {{min_recall: 0.5}}\n",
     "s.yaml:2: images: "),
    (BASE + "quant: {activations: [], calib: {synthetic: 2}}\n", "s.yaml:4: quant.activations: "),
    (BASE + "quant: {granularity: [], calib: {synthetic: 2}}\n", "s.yaml:4: quant.granularity: "),
    (BASE + "quant: {calib: {images: []}}\n", "s.yaml:4: quant.calib.images: "),
    (BASE + "quant:\n  activations: [mse, kl, mse]\n", "s.yaml:5: quant.activations: "),
    (BASE + "quant:\n  granularity: [per_tensor, per_tensor]\n", "s.yaml:5: quant.granularity: "),
])
def test_empty_or_repeated_lists_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    """No input made every check pass on nothing; no variant ran HYBRID/INT on nothing; a repeated
    algorithm gave two variants with the same name."""
    _fails(tmp_path, text, needle)
