"""A few-second training run: exports loadable weights, is bit-reproducible per seed, and learns."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dla.datasets.shapes import write_shapes
from dla.catalog import shipped_model
from golden.network import load_network
from tests.cli_helpers import ok
from tests.paths import ROOT


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "tiny"
    write_shapes(out, 24, seed=9, size=64, val_fraction=0.25)
    return out


def test_smoke_detector_is_reproducible(tiny: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.weights", tmp_path / "b.weights", tmp_path / "c.weights"
    res = ok("train", "shapes-yolo", tiny, "-o", a, "--epochs", 1, "--batch", 6, "--seed", 5)
    assert "epoch 1/1: loss obj" in res.output and "map50" in res.output
    ok("train", "shapes-yolo", tiny, "-o", b, "--epochs", 1, "--batch", 6, "--seed", 5, "-q")
    ok("train", "shapes-yolo", tiny, "-o", c, "--epochs", 1, "--batch", 6, "--seed", 6, "-q")
    assert a.read_bytes() == b.read_bytes()  # same seed, same thread count: the same bytes
    assert a.read_bytes() != c.read_bytes()
    net = load_network(shipped_model("shapes-yolo").cfg, a)  # the golden reader accepts it
    assert net.weights_header[3] == 18  # images seen


def test_tools_train_script_is_dla_train() -> None:
    """tools/train.py runs the same command (its --help is dla train's)."""
    import subprocess
    import sys

    root = ROOT
    res = subprocess.run([sys.executable, str(root / "tools" / "train.py"), "--help"], capture_output=True, text=True,
                         cwd=root, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Train CFG with PyTorch on DATA" in res.stdout and "--seed" in res.stdout


def test_smoke_classifier_learns(tiny: Path, tmp_path: Path) -> None:
    """Training lowers the classifier's loss on its own data (a 3-epoch run)."""
    from dla.eval.train import Recipe, train

    lines: list[str] = []
    train(shipped_model("shapes-cls").cfg, tiny, tmp_path / "c.weights", Recipe(epochs=3, batch=6, seed=1),
          log=lines.append)
    losses = [float(l.split("loss ce ")[1].split()[0]) for l in lines if l.startswith("epoch")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    net = load_network(shipped_model("shapes-cls").cfg, tmp_path / "c.weights")
    assert np.all(np.isfinite(net.params[0].weights))


def test_targets_follow_the_letterbox() -> None:
    """Training targets in network-input coordinates map back to the image boxes through the
    golden decoder's letterbox correction (``correct_yolo_boxes``)."""
    from dla.eval.train import _to_input_frame
    from golden.detect import _correct
    from golden.network import parse_network

    net = parse_network(shipped_model("shapes-yolo").cfg)
    boxes = np.array([[0.5, 0.5, 0.2, 0.4], [0.1, 0.9, 0.2, 0.2], [0.7, 0.3, 0.05, 0.5]])
    for w, h in ((64, 64), (128, 64), (50, 90)):
        t = _to_input_frame(boxes, w, h, net)
        back = _correct(t[:, 0], t[:, 1], t[:, 2], t[:, 3], w, h, 64, 64, True)
        assert np.allclose(np.stack(back, 1), boxes, atol=1e-9)
