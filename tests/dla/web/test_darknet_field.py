"""The web forms' Darknet fork: validated with the request, carried by ``ModelRef`` to the
worker, into the Run page's scenario and into the loaded network."""
from __future__ import annotations

from pathlib import Path

import pytest
import numpy as np
from pydantic import ValidationError

from dla.web.jobs import QuantizeRequest, RunRequest
from dla.web.modelref import ModelRef, load, parse
from dla.web.tasks import run_scenario_mapping
from golden.errors import UserInputError
from golden.forks import DarknetFork
from tests.paths import ROOT

V4 = ROOT / "dla" / "data" / "cfg" / "yolov4-tiny.cfg"
V3 = ROOT / "dla" / "data" / "cfg" / "yolov3-tiny.cfg"


def test_requests_take_a_fork_and_refuse_others() -> None:
    assert RunRequest(model_id=1, image_id=2).darknet == "auto"
    assert RunRequest(model_id=1, image_id=2, darknet="alexeyab").darknet == "alexeyab"
    assert QuantizeRequest(model_id=1, darknet="pjreddie").darknet == "pjreddie"
    with pytest.raises(ValidationError):
        RunRequest(model_id=1, image_id=2, darknet="darknet3")


def test_model_ref_carries_the_fork(tmp_path: Path) -> None:
    ref = ModelRef("cfg", str(V4), "yolov4-tiny.cfg", darknet="pjreddie")
    assert ModelRef(**ref.to_dict()) == ref
    assert parse(ref).darknet is DarknetFork.PJREDDIE
    assert parse(ModelRef("cfg", str(V4), "yolov4-tiny.cfg")).darknet is DarknetFork.ALEXEYAB
    assert parse(ModelRef("cfg", str(V3), "yolov3-tiny.cfg", darknet="alexeyab")).darknet is DarknetFork.ALEXEYAB
    image = tmp_path / "im.png"
    image.write_bytes(b"")
    data = run_scenario_mapping({"model": ref.to_dict(), "image": str(image), "image_name": "im.png"},
                                tmp_path / "inputs")
    assert data["model"]["darknet"] == "pjreddie"


def test_qnet_ref_with_another_fork_is_an_error(tmp_path: Path) -> None:
    from dla.config import HardwareConfig
    from dla.qnet_file import save_qnet
    from golden.genweights import random_weights, synthetic_image
    from golden.network import parse_network
    from quant import quantize
    from quant.calibrate import collect_ranges

    cfg = tmp_path / "t.cfg"
    cfg.write_text((ROOT / "tests" / "data" / "scenario" / "tiny-yolo.cfg").read_text())
    net = random_weights(parse_network(cfg), 1)
    qnet = quantize(net, collect_ranges(net, [synthetic_image(net.input_shape, np.random.default_rng(0))]))
    q = save_qnet(qnet, HardwareConfig(), tmp_path / "t.qnet")
    assert load(ModelRef("qnet", str(q), "t.qnet")).net.darknet is DarknetFork.PJREDDIE
    with pytest.raises(UserInputError, match="t.qnet was quantized for pjreddie's Darknet"):
        load(ModelRef("qnet", str(q), "t.qnet", darknet="alexeyab"))
