"""``dla.resolve``: one answer to "which model does the user mean", and to "calibrate now or
reuse the .qnet".  Each form is checked against loading it by hand (bit-exact), and every
mistake against its exact message."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dla.calibration import calibrate
from dla.catalog import MODEL_DIR, SHIPPED, resolve_cfg, sample_images, shipped_model
from dla.config import HardwareConfig
from dla.qnet_file import save_qnet
from dla.resolve import AlreadyCalibratedError, ForkMismatchError, make_engine, resolve_model
from golden.errors import UserInputError
from golden.genweights import random_weights
from golden.network import Network, load_network
from tests.paths import DATA

TINY = DATA / "scenario" / "tiny-yolo.cfg"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLA_CACHE", str(tmp_path / "cache"))


def same_params(a: Network, b: Network) -> bool:
    if a.params.keys() != b.params.keys():
        return False
    return all(np.array_equal(getattr(a.params[i], k), getattr(b.params[i], k))
               for i in a.params for k in vars(a.params[i]) if isinstance(getattr(a.params[i], k), np.ndarray))


@pytest.fixture(scope="module")
def qnet_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = random_weights(load_network(TINY), seed=1)
    hw = HardwareConfig(rows=8)
    path = tmp_path_factory.mktemp("q") / "t.qnet"
    save_qnet(calibrate(net, 1, "per_tensor", hw), hw, path)
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_a_trained_name_is_its_cfg_weights_and_names(name: str) -> None:
    sm = shipped_model(name)
    m = resolve_model(name)
    assert same_params(m.net, load_network(sm.cfg, sm.weights)) and m.net.params
    assert m.qnet is None and m.names == sm.names and m.label == name
    assert m.source == {"cfg": name, "weights": f"shipped ({name})"}
    assert m.hw == HardwareConfig() and m.hw_from == "default"
    assert resolve_cfg(name) == MODEL_DIR / f"{name}.cfg"  # dla train / gen-weights take it as a cfg


def test_a_trained_name_with_other_weights_keeps_only_its_cfg(tmp_path: Path) -> None:
    from golden.weights import weights_bytes

    other = random_weights(load_network(shipped_model("shapes-cls").cfg), seed=5)
    w = tmp_path / "other.weights"
    w.write_bytes(weights_bytes(other))
    m = resolve_model("shapes-cls", w)
    assert same_params(m.net, other) and m.names is None and m.source["weights"] == str(w)


def test_a_cfg_with_a_seed_without_weights_or_with_weights(tmp_path: Path) -> None:
    seeded = resolve_model(TINY, seed=3)
    assert same_params(seeded.net, random_weights(load_network(TINY), seed=3))
    assert seeded.source == {"cfg": str(TINY), "weights": "random (seed 3)"} and seeded.label == "tiny-yolo"
    bare = resolve_model(TINY)
    assert not bare.net.params and bare.source["weights"] == "none"
    renamed = resolve_model(TINY, display_name="mine.cfg")
    assert renamed.net.name == "mine"


def test_hardware_given_wins_over_the_qnet_and_the_default(qnet_path: Path) -> None:
    q = resolve_model(qnet_path)
    assert q.hw.rows == 8 and q.hw_from == "qnet" and q.source == {"qnet": str(qnet_path)} and q.label == "t.qnet"
    assert resolve_model(qnet_path, hw=HardwareConfig(rows=4)).hw.rows == 4
    yaml = Path(__file__).parents[2] / "scenarios" / "hw" / "default.yaml"
    c = resolve_model(TINY, hw=yaml)
    assert c.hw == HardwareConfig() and c.hw_from == "given"


def test_a_qnet_keeps_its_fork_and_its_weights(qnet_path: Path) -> None:
    with pytest.raises(ForkMismatchError) as info:
        resolve_model(qnet_path, darknet="alexeyab")
    assert (info.value.name, info.value.quantized, info.value.wanted) == (str(qnet_path), "pjreddie", "alexeyab")
    assert str(info.value) == (f"{qnet_path} was quantized for pjreddie's Darknet; --darknet alexeyab contradicts "
                               "it (re-quantize with 'dla quantize --darknet alexeyab')")
    with pytest.raises(UserInputError, match=r"^weights go with a cfg; a \.qnet carries its own$"):
        resolve_model(qnet_path, TINY)


def test_unknown_names_list_what_is_shipped() -> None:
    with pytest.raises(UserInputError, match=r"^yolov9: no such cfg file, and not a shipped model \(shipped: "):
        resolve_model("yolov9")


def test_make_engine_reuses_a_qnet_and_refuses_calibration_images(qnet_path: Path) -> None:
    m = resolve_model(qnet_path)
    assert make_engine(m).qnet is m.qnet
    for kw in ({"calib": "x"}, {"synthetic": 2}):
        with pytest.raises(AlreadyCalibratedError, match=r"^a \.qnet is already calibrated: --calib/--calib-synthetic "
                                                         r"do not apply \(re-quantize with 'dla quantize' instead\)$"):
            make_engine(m, **kw)
    assert make_engine(m, calibrate_now=False, synthetic=2).qnet is m.qnet  # never calibrates


def test_make_engine_calibrates_like_calibrate(tmp_path: Path) -> None:
    m = resolve_model("shapes-yolo")
    images = sample_images()[:2]
    seen: list[int] = []
    e = make_engine(m, calib=images, granularity="per-channel", on_image=seen.append)
    ref = calibrate(m.net, images, "per_channel", HardwareConfig())
    assert seen == [1, 2] and e.hw == HardwareConfig()
    assert e.qnet.scales == ref.scales
    assert all(np.array_equal(e.qnet.layers[i].w_q, ref.layers[i].w_q) for i in ref.layers)
    default = make_engine(m, default_image=images[0], hw=HardwareConfig(rows=4))
    assert default.hw.rows == 4 and default.qnet.scales == calibrate(m.net, images[:1]).scales
    assert make_engine(m, calibrate_now=False).qnet is None
    with pytest.raises(UserInputError, match="no calibration data"):
        make_engine(m)
