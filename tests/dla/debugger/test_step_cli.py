"""`dla step` driven by scripted input (stdin and --script), and the pictures of dla.pictures.

Every command's output is checked against a ``Session`` built the same way as the CLI
builds it (same calibration), so the numbers printed are the simulator's numbers.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from dla import pictures
from dla.calibration import calibrate
from dla.cli import cli
from dla.config import HardwareConfig
from dla.info import layer_table
from dla.catalog import DEFAULT_IMAGE
from dla.qnet_file import load_qnet
from dla.session import Session
from dla.debugger.repl import run_repl
from golden.errors import UserInputError
from golden.network import load_network

PNG = b"\x89PNG\r\n\x1a\n"

DET_CFG = """[net]
width=32
height=32
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=18
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=10,14,23,27,37,58
classes=1
num=3
"""

PROMPT = re.compile(r"^dla\[(?P<where>[^\]]*)\]> ?(?P<cmd>.*)$")


# ------------------------------------------------------------------ helpers


def invoke(*args: object, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def step(*args: object, script: list[str] | None = None, code: int = 0) -> str:
    """``dla step ARGS`` with ``script`` on stdin; the transcript (exit code checked, no traceback)."""
    res = invoke("step", *args, input="\n".join(script) + "\n" if script is not None else None)
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    return res.output


def blocks(transcript: str) -> list[tuple[str, str, list[str]]]:
    """``(prompt location, command, output lines)`` for each echoed command of a transcript."""
    out: list[tuple[str, str, list[str]]] = []
    for line in transcript.splitlines():
        m = PROMPT.match(line)
        if m:
            out.append((m["where"], m["cmd"], []))
        elif out:
            out[-1][2].append(line)
    return out


def answer(transcript: str, command: str, nth: int = 0) -> list[str]:
    """The output lines of the ``nth`` occurrence of ``command``."""
    found = [lines for _, cmd, lines in blocks(transcript) if cmd == command]
    assert len(found) > nth, f"{command!r} not in transcript:\n{transcript}"
    return found[nth]


def changed(lines: list[str]) -> int:
    m = re.search(r"([\d,]+) of ([\d,]+) outputs changed", "\n".join(lines))
    assert m, lines
    return int(m[1].replace(",", ""))


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 4-layer detector (conv, maxpool, conv, yolo) with seeded weights, a PNG, and the Session
    the CLI builds for INT (calibrated on the image itself, per tensor)."""
    tmp = tmp_path_factory.mktemp("tiny")
    cfg, weights, image = tmp / "det.cfg", tmp / "det.weights", tmp / "img.png"
    cfg.write_text(DET_CFG)
    res = invoke("gen-weights", cfg, "--seed", "1", "-o", weights, "-q")
    assert res.exit_code == 0, res.output
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    net = load_network(cfg, weights)
    qnet = calibrate(net, [image], "per_tensor", HardwareConfig())
    return SimpleNamespace(cfg=cfg, weights=weights, image=image, net=net, qnet=qnet)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped 'darknet' classifier (16 layers), seeded weights, quantized by
    ``dla quantize --calib-synthetic 1`` with its statistics cache in a temporary DLA_CACHE."""
    tmp = tmp_path_factory.mktemp("shipped")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLA_CACHE", str(tmp / "cache"))
        weights, qnet = tmp / "darknet.weights", tmp / "darknet.qnet"
        for args in (("gen-weights", "darknet", "-o", weights, "-q"),
                     ("quantize", "darknet", weights, "--calib-synthetic", "1", "-o", qnet, "-q")):
            res = invoke(*args)
            assert res.exit_code == 0, res.output
    return qnet


# ------------------------------------------------------------------ moving and looking


def test_next_goto_info_stats_match_the_session(tiny: SimpleNamespace, tmp_path: Path) -> None:
    out = step(tiny.cfg, tiny.weights, tiny.image, "--pictures", tmp_path / "pics", "-q", script=[
        "next", "info", "stats", "stats input", "stats weights", "n 2", "goto 1", "info", "goto last", "quit",
        "next"])  # nothing after quit runs
    assert out.splitlines()[0].startswith("dla step: det, 4 layers (0..3), mode int")
    assert [(where, cmd) for where, cmd, _ in blocks(out)] == [
        ("input", "next"), ("0 convolutional", "info"), ("0 convolutional", "stats"),
        ("0 convolutional", "stats input"), ("0 convolutional", "stats weights"), ("0 convolutional", "n 2"),
        ("2 convolutional", "goto 1"), ("1 maxpool", "info"), ("1 maxpool", "goto last"), ("3 yolo", "quit")]

    s = Session(tiny.qnet, tiny.image, "int")
    rec = s.run_to(0)
    assert answer(out, "next")[0].startswith(f"layer 0 convolutional 3x32x32 -> 8x32x32: int8, scale {rec.scale:.6g}, "
                                             f"range [{rec.real.min():.4g}, {rec.real.max():.4g}]")
    info = answer(out, "info")
    rows = layer_table(tiny.net, tiny.qnet)
    assert info[:2] == [rows[1], rows[2]]  # header and layer 0's row: index, type, shapes, params, MACs, precision
    assert "221,184" in info[1] and "248" in info[1]
    assert info[0].split()[-1] == "precision" and info[1].split()[-1] == "w8a8"
    assert info[2].endswith("; runs in int; precision w8a8")
    assert f"output {s.layer['out_scale']:.6g}" in info[3] and "weight scale:" in info[4]
    assert "edits in effect: 0" in info[5]

    for command, tensor in (("stats", s.output), ("stats input", s.input), ("stats weights", s.weights)):
        lines = answer(out, command)
        assert lines[1].split() == ["min", "max", "mean", "std", "zeros", "%", "sat", "%"]
        int_row = lines[2].split()
        assert int_row[0] == "int8" and lines[3].split()[0] == "real"
        assert (float(int_row[1]), float(int_row[2])) == (tensor.min(), tensor.max())
        assert float(int_row[5]) == pytest.approx(np.mean(tensor == 0) * 100, abs=0.01)
        assert float(int_row[6]) == pytest.approx(np.mean((tensor == 127) | (tensor == -128)) * 100, abs=0.01)
    assert "maxpool" in answer(out, "info", 1)[1]
    assert "layer 3 yolo" in answer(out, "goto last")[0] and "ran 2 layer(s)" in answer(out, "goto last")[1]


def test_show_writes_png_pictures(tiny: SimpleNamespace, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    out = step(tiny.cfg, tiny.weights, tiny.image, "--pictures", pics, "-q",
               script=["goto 0", "show", "show input", "show weights", "show cross", "goto 2", "show output"])
    paths = [Path(line.split(": ", 1)[1]) for line in out.splitlines()
             if line.startswith(("grid: ", "histogram: ", "scatter: "))]
    assert len(paths) == 9
    assert {p.name for p in paths} == {
        "000_output_grid.png", "000_output_hist.png", "000_input_grid.png", "000_input_hist.png",
        "000_weights_grid.png", "000_weights_hist.png", "000_cross_scatter.png", "002_output_grid.png",
        "002_output_hist.png"}
    for p in paths:
        assert p.parent == pics and is_png(p), p
        with Image.open(p) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    assert "SQNR" in answer(out, "show cross")[1]


# ------------------------------------------------------------------ editing


def test_edit_rerun_undo_is_bit_identical_again(tiny: SimpleNamespace, tmp_path: Path) -> None:
    """Through --script: an edit changes outputs of its channel only; undo + rerun restores them exactly."""
    np.save(tmp_path / "zeros.npy", np.zeros((8, 3, 3, 3), np.int8))
    script = tmp_path / "edit.dla"
    script.write_text("\n".join([
        "# edit one weight, then take it back", "goto 0", f"save {tmp_path / 'before'}",
        "edit w[1,0,1,1]=-127", "rerun", "diff", "undo", "rerun", f"save {tmp_path / 'after'}",
        "edit scale 2 0", "rerun", f"edit load {tmp_path / 'zeros.npy'}", "rerun", "undo", "undo", "rerun",
        "next 2", "edit w[3, 0, 0, 0] = 5", "rerun", "info"]) + "\n")
    res = CliRunner().invoke(cli, ["step", str(tiny.cfg), str(tiny.weights), str(tiny.image), "--script",
                                   str(script), "--pictures", str(tmp_path / "pics"), "-q", "--strict"],
                             catch_exceptions=False)
    out = res.output
    assert res.exit_code == 0, out
    assert "edited layer 0: w[1,0,1,1] = -127: 1 weight(s) changed (was " in answer(out, "edit w[1,0,1,1]=-127")[0]
    first = answer(out, "rerun", 0)
    assert changed(first) > 0 and "in channel(s) 1" in first[0] and "vs the unedited run" in first[2]
    assert answer(out, "diff") == first  # the last rerun's metrics again
    assert answer(out, "undo")[0].startswith("undone: layer 0")
    back = answer(out, "rerun", 1)
    assert changed(back) == changed(first) and back[2] == "  vs the unedited run: bit-identical"
    _, before = Session.load_saved(tmp_path / "before")
    _, after = Session.load_saved(tmp_path / "after")
    assert np.array_equal(before[0], after[0]) and before[0].dtype == np.int8

    scaled = answer(out, "rerun", 2)
    assert changed(scaled) > 0 and "in channel(s) 2" in scaled[0]
    assert changed(answer(out, "rerun", 3)) > 0  # all weights zero
    assert answer(out, "rerun", 4)[-1] == "  vs the unedited run: bit-identical"  # both edits undone
    # spaces inside the edit are fine; an edit at layer 2 after edits at layer 0 were undone
    assert "w[3,0,0,0] = 5: 1 weight(s) changed" in answer(out, "edit w[3, 0, 0, 0] = 5")[0]
    assert changed(answer(out, "rerun", 5)) > 0 and "in channel(s) 3" in answer(out, "rerun", 5)[0]
    assert "edits in effect: 1 (1 at this layer)" in answer(out, "info")[-1]


def test_edit_rerun_matches_session_edit(tiny: SimpleNamespace, tmp_path: Path) -> None:
    out = step(tiny.cfg, tiny.weights, tiny.image, "-q", script=["goto 2", "edit w[4,0,0,0]=-100", "rerun"])
    s = Session(tiny.qnet, tiny.image, "int")
    s.run_to(2)
    s.edit_weights(index=(4, 0, 0, 0), value=-100)
    assert changed(answer(out, "rerun")) == s.rerun().n_changed > 0


def test_cross_save_export(tiny: SimpleNamespace, tmp_path: Path) -> None:
    out = step(tiny.cfg, tiny.weights, tiny.image, "-q", script=[
        "goto 2", "cross", "edit w[0,0,0,0]=77", "rerun", f"save {tmp_path / 'sess'}",
        f"export {tmp_path / 'edited.qnet'}", "goto 3", "cross"])
    s = Session(tiny.qnet, tiny.image, "int")
    s.run_to(2)
    m = s.cross().metrics
    lines = answer(out, "cross")
    assert lines[0] == "cross layer 2 (convolutional): int vs float from the same input (float is the reference): the layer's isolated error, as `dla compare --isolated`"
    assert lines[1] == (f"  SQNR {m.sqnr_db:.2f} dB, max abs error {m.max_abs:.4g}, mean abs error {m.mean_abs:.4g}, "
                        f"cosine {m.cosine:.6f}")
    assert answer(out, "cross", 1) == [
        "error: layer 3 (yolo) runs on the host in float in every mode: there is nothing to cross"]

    meta, arrays = Session.load_saved(tmp_path / "sess")
    assert meta["mode"] == "int" and meta["current"] == 2 and sorted(arrays) == [-1, 0, 1, 2]
    assert [e["changed"] for e in meta["edits"]] == [1] and len(meta["crosses"]) == 1
    qnet, _, _ = load_qnet(tmp_path / "edited.qnet")
    assert qnet.layers[2].w_q[0, 0, 0, 0] == 77
    expected = tiny.qnet.layers[2].w_q.copy()
    expected[0, 0, 0, 0] = 77
    assert np.array_equal(qnet.layers[2].w_q, expected)
    assert np.array_equal(qnet.layers[0].w_q, tiny.qnet.layers[0].w_q)


# ------------------------------------------------------------------ bad input


BAD_BEFORE_START = ["info", "stats", "show", "edit w[0,0,0,0]=1", "rerun", "cross", "undo", "diff"]
BAD_AT_LAYER_2 = [
    "frobnicate", "goto 99", "goto -1", "goto x", "goto", "next 0", "next 5", "next many",
    "edit w[0,0,0,0]=300", "edit w[0,0,0,0]=-128", "edit w[0,0,0,0]=1.5", "edit w[99,0,0,0]=1",
    "edit w[0,0,0,0]=abc", "edit w[0,0,0,0,0,0]=1", "edit w[]=1", "edit w[0,0,0,0]=inf", "edit scale 99 2",
    "edit scale 0 nan", "edit scale 0", "edit load missing.npy", "edit load wrong_shape.npy",
    "edit load floats.npy", "edit load not_an_array.npy", "edit", "edit bogus", "undo", "diff",
    "cross sideways", "stats bogus", "show bogus", "save", "save foreign", "export", "export model.txt",
    "info extra"]
BAD_AT_LAST = ["cross", "stats weights", "edit w[0]=1", "next"]


def test_bad_input_prints_one_error_and_the_session_goes_on(tiny: SimpleNamespace, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("wrong_shape.npy", np.zeros((2, 2), np.int8))
    np.save("floats.npy", np.zeros((18, 8, 1, 1), np.float32))
    Path("not_an_array.npy").write_text("hello")
    Path("foreign").mkdir()
    Path("foreign/keep.txt").write_text("mine")
    script = BAD_BEFORE_START + ["goto 2"] + BAD_AT_LAYER_2 + ["rerun", "info", "goto 3"] + BAD_AT_LAST
    out = step(tiny.cfg, tiny.weights, tiny.image, "-q", script=script)
    done = blocks(out)
    assert [cmd for _, cmd, _ in done] == script  # every line was read: the session went on
    good = {len(BAD_BEFORE_START)} | {len(BAD_BEFORE_START) + 1 + len(BAD_AT_LAYER_2) + k for k in range(3)}
    for i, (where, cmd, lines) in enumerate(done):
        if i not in good:
            assert len(lines) == 1 and lines[0].startswith("error: "), (cmd, lines)
    assert out.count("error: ") == len(BAD_BEFORE_START) + len(BAD_AT_LAYER_2) + len(BAD_AT_LAST)
    # the state never moved: at layer 2 after every bad command there, weights untouched, no edits
    first = len(BAD_BEFORE_START) + 1
    assert {where for where, _, _ in done[first:first + len(BAD_AT_LAYER_2) + 3]} == {"2 convolutional"}
    assert changed(answer(out, "rerun", 1)) == 0
    assert "edits in effect: 0 (0 at this layer)" in answer(out, "info", 1)[-1]
    assert Path("foreign/keep.txt").read_text() == "mine"
    assert not Path("model.txt").exists()
    assert "unknown command 'frobnicate'" in answer(out, "frobnicate")[0]
    assert "did you mean 'next'" in step(tiny.cfg, tiny.weights, tiny.image, "-q", script=["nxet"])
    assert "out of range" in answer(out, "goto 99")[0] and "[-127, 127]" in answer(out, "edit w[0,0,0,0]=300")[0]
    assert "has shape (2, 2)" in answer(out, "edit load wrong_shape.npy")[0]
    assert "already at the last layer (3)" in answer(out, "next")[0]


def test_strict_exits_1_when_a_command_failed(tiny: SimpleNamespace, tmp_path: Path) -> None:
    script = tmp_path / "s.dla"
    script.write_text("next\ngoto 42\nnext\n")
    res = invoke("step", tiny.cfg, tiny.weights, tiny.image, "--script", script, "--strict", "-q")
    assert res.exit_code == 1 and "1 command(s) failed" in res.output and "Traceback" not in res.output
    assert "layer 1 maxpool" in res.output  # the script went on after the error
    assert invoke("step", tiny.cfg, tiny.weights, tiny.image, "--script", script, "-q").exit_code == 0


def test_bad_command_line_is_a_click_error(tiny: SimpleNamespace, shipped: Path, tmp_path: Path) -> None:
    res = invoke("step", tiny.cfg, tiny.image, "-q", input="quit\n")
    assert res.exit_code == 2 and "expected CFG WEIGHTS IMAGE or MODEL.qnet IMAGE" in res.output
    res = invoke("step", shipped, DEFAULT_IMAGE, "--calib", tmp_path, "-q", input="quit\n")
    assert res.exit_code == 2 and "already calibrated" in res.output
    res = invoke("step", tiny.cfg, tiny.weights, tmp_path / "none.png", "-q", input="quit\n")
    assert res.exit_code == 2 and "none.png: image not found" in res.output


# ------------------------------------------------------------------ other modes, a shipped network


def test_shipped_qnet_int(shipped: Path, tmp_path: Path) -> None:
    out = step(shipped, DEFAULT_IMAGE, "--pictures", tmp_path / "pics", "-q", script=[
        "goto 12", "info", "stats weights", "show", "edit w[5,0,1,1]=-127", "rerun", "undo", "rerun", "cross",
        "goto 14", "show", "goto last", "cross", f"export {tmp_path / 'e.qnet'}"])
    assert out.splitlines()[0].startswith("dla step: darknet, 16 layers (0..15), mode int")
    assert "1024x4x4" in answer(out, "info")[1] and "weight scale:" in answer(out, "info")[4]
    assert changed(answer(out, "rerun", 0)) > 0
    assert answer(out, "rerun", 1)[-1] == "  vs the unedited run: bit-identical"
    assert "cross layer 12 (convolutional): int vs float" in answer(out, "cross")[0]
    assert "runs on the host" in answer(out, "cross", 1)[0]  # softmax
    for lines in (answer(out, "show", 0), answer(out, "show", 1)):  # 1024 channels, and a 1000x1x1 vector
        assert all(is_png(Path(line.split(": ", 1)[1])) for line in lines)
    qnet, _, _ = load_qnet(tmp_path / "e.qnet")
    original, _, _ = load_qnet(shipped)
    assert all(np.array_equal(qnet.layers[i].w_q, original.layers[i].w_q) for i in original.layers)  # undone


def test_hybrid_and_float_sessions(shipped: Path, tiny: SimpleNamespace, tmp_path: Path) -> None:
    out = step(shipped, DEFAULT_IMAGE, "--mode", "hybrid", "-q",
               script=["goto 2", "stats", "edit scale 3 0.5", "rerun", "cross"])
    assert answer(out, "stats")[2].split()[0] == "float"  # HYBRID keeps float activations
    assert changed(answer(out, "rerun")) > 0 and "in channel(s) 3" in answer(out, "rerun")[0]
    assert "hybrid vs float" in answer(out, "cross")[0]

    out = step(shipped, DEFAULT_IMAGE, "--mode", "float", "-q",
               script=["goto 0", "cross", "edit w[0,0,0,0]=0.25", "rerun", f"export {tmp_path / 'f.qnet'}"])
    assert "float vs int" in answer(out, "cross")[0]
    assert changed(answer(out, "rerun")) > 0
    assert "float-mode edits are not in the int8 weights" in answer(out, "export " + str(tmp_path / "f.qnet"))[0]

    out = step(tiny.cfg, tiny.weights, tiny.image, "--mode", "float", "-q", script=["goto 0", "cross"])
    assert "cross needs a quantized model" in answer(out, "cross")[0]
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "a.png").write_bytes(tiny.image.read_bytes())
    out = step(tiny.cfg, tiny.weights, tiny.image, "--mode", "float", "--calib", calib, "-q",
               script=["goto 0", "cross"])
    assert "float vs int" in answer(out, "cross")[0]


# ------------------------------------------------------------------ the REPL itself


def test_interactive_prompt_and_quit(tiny: SimpleNamespace) -> None:
    s = Session(tiny.qnet, tiny.image, "int")
    out = io.StringIO()
    failed = run_repl(s, io.StringIO("next\nbogus\n"), out, interactive=True)
    text = out.getvalue()
    assert failed == 1 and s.index == 0
    assert "dla[input]> layer 0 convolutional" in text and "dla[0 convolutional]> error: unknown command" in text
    assert text.endswith("dla[0 convolutional]> \n")  # EOF: a newline after the last prompt

    s = Session(tiny.qnet, tiny.image, "int")
    assert run_repl(s, io.StringIO("exit\nnext\n"), io.StringIO()) == 0 and s.index == -1


# ------------------------------------------------------------------ dla.pictures


@pytest.mark.parametrize("tensor,scale", [
    (np.random.default_rng(1).integers(-128, 128, (16, 8, 8)).astype(np.int8), 0.05),  # int8 feature maps
    (np.random.default_rng(2).normal(size=(100, 5, 5)).astype(np.float32), None),  # > 64 channels
    (np.random.default_rng(3).normal(size=(6, 4, 3, 3)), None),  # conv weights
    (np.random.default_rng(4).normal(size=(10, 50)), None),  # connected weights
    (np.abs(np.random.default_rng(5).normal(size=(1000, 1, 1))), None),  # a vector of 1x1 maps
    (np.zeros((2, 3, 3), np.int8), 1.0),  # constant
])
def test_feature_map_grid_writes_a_png(tmp_path: Path, tensor: np.ndarray, scale: float | None) -> None:
    path = pictures.feature_map_grid(tensor, tmp_path / "g.png", "a title", scale=scale)
    assert path == tmp_path / "g.png" and is_png(path)


def test_tiles_and_mosaic_layout() -> None:
    tiles, _ = pictures._as_tiles(np.zeros((6, 4, 3, 3)))
    assert tiles.shape == (6, 4, 9)  # one tile per output channel: inputs x taps
    tiles, unit = pictures._as_tiles(np.arange(10.0).reshape(10, 1, 1))
    assert tiles.shape == (1, 4, 4) and "folded" in unit and np.isnan(tiles).sum() == 6
    mosaic = pictures._mosaic(np.ones((5, 2, 2)), 5)
    assert np.nansum(mosaic) == 20 and mosaic.shape == (2 * 3 - 1, 3 * 3 - 1)


def test_histogram_with_clip_discrete_and_nonfinite(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    assert is_png(pictures.histogram(rng.normal(size=10_000), tmp_path / "a.png", "float", clip=1.5))
    assert is_png(pictures.histogram(rng.integers(-127, 128, 3000) * 0.01, tmp_path / "b.png", "int8", clip=1.27))
    assert is_png(pictures.histogram(np.array([1.0, np.nan, np.inf]), tmp_path / "c.png", "some non-finite"))
    assert is_png(pictures.histogram(np.array([np.nan]), tmp_path / "d.png", "nothing finite", clip=1.0))


def test_scatter_and_its_errors(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(8, 30, 30))
    assert is_png(pictures.scatter(x, np.round(x * 10) / 10, tmp_path / "s.png", "float vs int"))
    assert is_png(pictures.scatter(np.arange(100_000.0), np.arange(100_000.0), tmp_path / "big.png", "subsampled"))
    with pytest.raises(ValueError, match="as many float as int values"):
        pictures.scatter(np.zeros(3), np.zeros(4), tmp_path / "x.png", "mismatch")
    with pytest.raises(UserInputError, match="does not exist"):
        pictures.histogram(np.zeros(3), tmp_path / "no" / "where.png", "missing directory")
