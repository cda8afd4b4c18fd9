"""Whole ``dla step`` transcripts, byte for byte: the terminal's wording and number formats are
an interface (scripts and their readers rely on them), and the debugger renders results that
the web page renders too, so a change to either must not move a character here by accident.

``tests/data/debugger/script.dla`` runs every command, with every kind of bad argument, on a
6-layer network with a route of two inputs (``net.cfg``, seeded weights), in INT (per-tensor
and per-channel), HYBRID, FLOAT with a quantized model, and FLOAT without one.  The reference
transcripts were written by ``dla step`` before its commands returned data (the 607-line
``dla/debugger/repl.py``); only the wall time ("in N ms") is masked.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dla.calibration import calibrate
from dla.config import HardwareConfig
from dla.debugger.repl import run_repl
from dla.session import Session
from golden.genweights import random_weights
from golden.network import parse_network
from tests.paths import DATA

HERE = DATA / "debugger"


@pytest.mark.parametrize("name,mode,granularity", [
    ("int", "int", "per_tensor"), ("int-pc", "int", "per_channel"), ("hybrid", "hybrid", "per_channel"),
    ("float", "float", "per_tensor"), ("float-noq", "float", None)])
def test_transcript_is_byte_identical(name: str, mode: str, granularity: str | None, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the script names its files relative to here
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save("img.png")
    np.save("wrong_shape.npy", np.zeros((2, 2), np.int8))
    np.save("zeros0.npy", np.zeros((8, 3, 3, 3), np.int8))
    np.save("floats.npy", np.zeros((8, 3, 3, 3), np.float32))
    np.savez("arch.npz", a=np.zeros(3))
    Path("not_an_array.npy").write_text("hello")
    Path("foreign").mkdir()
    Path("foreign/keep.txt").write_text("mine")
    (tmp_path / "net.cfg").write_text((HERE / "net.cfg").read_text())

    net = random_weights(parse_network(Path("net.cfg")), 1)
    model = net if granularity is None else calibrate(net, [Path("img.png")], granularity, HardwareConfig())
    out = io.StringIO()
    failed = run_repl(Session(model, Path("img.png"), mode=mode), io.StringIO((HERE / "script.dla").read_text()), out,
                      pictures=f"pics-{name}")
    got = re.sub(r"in \d+ ms", "in N ms", out.getvalue()) + f"failed={failed}\n"
    assert got == (HERE / f"transcript-{name}.txt").read_text()
    assert Path("foreign/keep.txt").read_text() == "mine" and not Path("model.txt").exists()
    drawn = [Path(line.split(": ", 1)[1]) for line in got.splitlines() if line.startswith(("grid: ", "histogram: ",
                                                                                           "scatter: "))]
    assert drawn and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)
