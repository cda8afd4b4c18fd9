"""``--darknet`` on the commands, the fork stored in a ``.qnet``, and the scenario key
``model.darknet``: each reaches the engine, and every mistake is one clear error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.cli_helpers import fails, ok

from dla.dump import read_dump
from dla.qnet_file import load_qnet
from dla.scenario import ScenarioError, load_scenario
from dla.scenario.build import build_network
from golden.engine import forward
from golden.errors import UserInputError
from golden.forks import DarknetFork, alexeyab_fused
from golden.image import load_image, prepare_input
from golden.network import load_network
from tests.paths import DATA

TINY = DATA / "scenario" / "tiny-yolo.cfg"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLA_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, Path]:
    weights = tmp_path / "tiny.weights"
    ok("gen-weights", TINY, "--seed", "2", "-o", weights, "-q")
    return TINY, weights


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 2:1 image, so letterbox and stretch give different network inputs."""
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_info_shows_the_resolved_fork(model: tuple[Path, Path]) -> None:
    assert "darknet: pjreddie (detector input: letterbox)" in ok("info", *model, "-q").output
    res = ok("info", *model, "--darknet", "alexeyab", "-q")
    assert "darknet: alexeyab (detector input: stretch)" in res.output
    assert "darknet: alexeyab" in ok("info", "yolov4-tiny", "-q").output  # auto on the shipped cfg


@pytest.mark.parametrize("cmd", ["info", "infer", "compare", "quantize", "step"])
def test_bad_fork_name_is_one_error(model: tuple[Path, Path], cmd: str) -> None:
    fails(cmd, *model, "--darknet", "openCV", needle="Invalid value for '--darknet'")


def test_infer_runs_the_chosen_fork(tmp_path: Path, model: tuple[Path, Path], photo: Path) -> None:
    """The dumped FLOAT outputs are the golden engine's for that fork: AlexeyAB's BN on the
    stretched image, pjreddie's on the letterboxed one."""
    for fork, letterbox in (("alexeyab", False), ("pjreddie", True)):
        out = tmp_path / f"dump-{fork}"
        ok("infer", *model, photo, "--darknet", fork, "--dump", out, "-q")
        net = load_network(*model, darknet=fork)
        want = forward(net, prepare_input(load_image(photo), net.input_shape, letterbox=letterbox))
        _, got = read_dump(out)
        assert np.array_equal(got[-1], want[-1]) and all(np.array_equal(got[i], want[i]) for i in want), fork
    a, p = read_dump(tmp_path / "dump-alexeyab")[1], read_dump(tmp_path / "dump-pjreddie")[1]
    assert not np.array_equal(a[-1], p[-1])


def test_qnet_keeps_its_fork(tmp_path: Path, model: tuple[Path, Path], photo: Path) -> None:
    out = tmp_path / "a.qnet"
    ok("quantize", *model, "--calib-synthetic", 1, "--darknet", "alexeyab", "-o", out, "-q")
    meta = json.loads((out / "model.json").read_text())
    assert meta["darknet"] == "alexeyab"
    qnet, _, _ = load_qnet(out)
    assert qnet.net.darknet is DarknetFork.ALEXEYAB and not qnet.net.letter_box
    p = qnet.net.params[0]
    _, b = alexeyab_fused(p.weights, p.biases, p.scales, p.rolling_mean, p.rolling_variance)
    assert np.array_equal(qnet.layers[0].b_float, b.astype(np.float64))  # folded AlexeyAB's way
    ok("infer", out, photo, "--mode", "int", "-q")
    ok("infer", out, photo, "--darknet", "alexeyab", "-q")
    fails("infer", out, photo, "--darknet", "pjreddie", needle="was quantized for alexeyab's Darknet")
    # the default fork of this cfg is pjreddie, so a plain quantize stores that
    out2 = tmp_path / "p.qnet"
    ok("quantize", *model, "--calib-synthetic", 1, "-o", out2, "-q")
    assert json.loads((out2 / "model.json").read_text())["darknet"] == "pjreddie"


def test_qnet_fork_field_errors_and_old_files(tmp_path: Path, model: tuple[Path, Path]) -> None:
    out = tmp_path / "m.qnet"
    ok("quantize", *model, "--calib-synthetic", 1, "--darknet", "alexeyab", "-o", out, "-q")
    meta = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**meta, "darknet": "tensorflow"}))
    fails("info", out, needle="field 'darknet': unknown Darknet fork 'tensorflow' (valid: pjreddie, alexeyab)")
    with pytest.raises(UserInputError, match="model.json field 'darknet'"):
        load_qnet(out)
    old = {k: v for k, v in meta.items() if k != "darknet"}  # written before the field existed
    (out / "model.json").write_text(json.dumps(old))
    assert load_qnet(out)[0].net.darknet is DarknetFork.PJREDDIE


# ------------------------------------------------------------------ scenarios


def _scenario(tmp_path: Path, model: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"model": model, "modes": ["float"], "images": {"synthetic": 1},
                                    "report": {"html": False}}, sort_keys=False))
    return path


def test_scenario_darknet_key(tmp_path: Path) -> None:
    ls = load_scenario(_scenario(tmp_path, {"cfg": str(TINY), "seed": 1, "darknet": "alexeyab"}))
    assert build_network(ls)[0].darknet is DarknetFork.ALEXEYAB
    ls = load_scenario(_scenario(tmp_path, {"cfg": str(TINY), "seed": 1}))
    assert ls.scenario.model.darknet == "auto" and build_network(ls)[0].darknet is DarknetFork.PJREDDIE
    ls = load_scenario(_scenario(tmp_path, {"cfg": "yolov4-tiny"}))
    assert build_network(ls)[0].darknet is DarknetFork.ALEXEYAB
    with pytest.raises(ScenarioError, match="model.darknet: unknown value 'AB'"):
        load_scenario(_scenario(tmp_path, {"cfg": str(TINY), "darknet": "AB"}))


def test_scenario_qnet_fork_mismatch(tmp_path: Path, model: tuple[Path, Path]) -> None:
    q = tmp_path / "m.qnet"
    ok("quantize", *model, "--calib-synthetic", 1, "-o", q, "-q")
    ls = load_scenario(_scenario(tmp_path, {"qnet": str(q), "darknet": "alexeyab"}))
    with pytest.raises(ScenarioError, match="model.darknet: .*quantized for pjreddie's Darknet"):
        build_network(ls)
    assert build_network(load_scenario(_scenario(tmp_path, {"qnet": str(q)})))[0].darknet is DarknetFork.PJREDDIE


def test_eval_model_takes_the_fork(model: tuple[Path, Path]) -> None:
    from dla.cli.eval import _eval_model

    assert _eval_model(tuple(map(str, model)), None, "alexeyab").net.darknet is DarknetFork.ALEXEYAB
    assert _eval_model(tuple(map(str, model)), None).net.darknet is DarknetFork.PJREDDIE


def test_calibration_cache_is_per_fork(model: tuple[Path, Path]) -> None:
    """Statistics depend on the fork (BN, letterbox): the cache never hands one fork's to the other."""
    from dla.calibration import collect_statistics

    pj = load_network(*model, darknet="pjreddie")
    ab = load_network(*model, darknet="alexeyab")
    r_pj, cached = collect_statistics(pj, 1)
    assert not cached
    r_ab, cached = collect_statistics(ab, 1)
    assert not cached and r_ab.absmax != r_pj.absmax
    assert collect_statistics(ab, 1)[1] and collect_statistics(pj, 1)[1]


def test_cross_to_float_uses_the_fork(model: tuple[Path, Path]) -> None:
    """CROSS (INT → FLOAT) recomputes the layer with the network's fork (``dla.compare.cross_layer``)."""
    from dla.calibration import calibrate
    from dla.compare import cross_layer, run_input_real
    from dla.config import HardwareConfig
    from dla.engine import Engine, Mode
    from golden.genweights import synthetic_image
    from golden.kernels import KERNELS

    net = load_network(*model, darknet="alexeyab")
    for p in net.params.values():
        if p.rolling_variance is not None:
            p.rolling_variance[:] = 1e-5  # where the two forks' ε differ most
    engine = Engine(net, calibrate(net, 1, "per_tensor", HardwareConfig()), HardwareConfig())
    x = synthetic_image(net.input_shape, np.random.default_rng(0))
    run = engine.run(x, Mode.INT)
    spec = net.layers[0]
    crossed = cross_layer(engine, spec, Mode.INT, run.records, x)
    ins = [run_input_real(engine, Mode.INT, run.records, x, -1)]  # what the INT run gave layer 0
    assert np.array_equal(crossed.other_real, KERNELS[spec.kind](spec, ins, net.params[0], DarknetFork.ALEXEYAB))
    assert not np.array_equal(crossed.other_real, KERNELS[spec.kind](spec, ins, net.params[0], DarknetFork.PJREDDIE))
