"""The search on a network whose right answer is known, the cache, and Dask's agreement with -j 1."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dla.tune import TuneRequest, tune
from tests.dla.tune.helpers import planted_model

PLANTED = 2


def _request(tmp: Path, out: str, **kw) -> TuneRequest:
    cfg, weights, images = planted_model(tmp) if not (tmp / "planted.cfg").exists() else \
        (tmp / "planted.cfg", tmp / "planted.weights", tmp / "images")
    args = dict(model=str(cfg), weights=str(weights), data=str(images), metric="sqnr", max_drop=12.0,
                cost="weights", out_dir=tmp / out)
    args.update(kw)
    return TuneRequest(**args)


def _weight_bits(result) -> dict[int, int]:
    return {row["layer"]: row["weight_bits"] for row in result.chosen["layers"]}


def test_the_planted_outlier_layer_keeps_int8_and_every_other_layer_is_lowered(tmp_path: Path) -> None:
    result = tune(_request(tmp_path, "out"))
    assert result.met
    assert _weight_bits(result) == {0: 4, 1: 4, 2: 8, 3: 4, 4: 4}
    d = result.to_json()
    # the sensitivity ranking puts the planted layer's int4 first, with the worst isolated error
    top = d["sensitivity"][0]
    assert (top["layer"], top["option"]) == (PLANTED, "weight_bits=4")
    iso = {s["layer"]: s["isolated_sqnr_db"] for s in d["sensitivity"] if s["option"] == "weight_bits=4"}
    assert min(iso, key=iso.get) == PLANTED
    # every reported point is measured: the chosen one is in the points, on the Pareto front
    assert d["chosen"] in d["pareto"] and d["relative_cost"] < 1
    assert d["scoring"] == "agreement" and "agreement" in d["scoring_note"]


def test_without_the_outlier_the_search_lowers_the_layer_too(tmp_path: Path) -> None:
    """The test above can fail: the same network with the outlier planted in another layer
    moves the kept layer."""
    planted_model(tmp_path, layer=3)
    result = tune(_request(tmp_path, "out"))
    assert result.met and _weight_bits(result)[3] == 8 and _weight_bits(result)[PLANTED] == 4


def test_a_second_run_measures_nothing_new_and_gives_the_same_result(tmp_path: Path) -> None:
    first = tune(_request(tmp_path, "out"))
    first.write(tmp_path / "out")
    assert first.to_json()["evaluations"] > 10 and first.to_json()["cached"] == 0
    again = tune(_request(tmp_path, "out"))
    d1, d2 = first.to_json(), again.to_json()
    assert d2["evaluations"] == 0 and d2["cached"] == d1["evaluations"]
    assert [p["id"] for p in d1["points"]] == [p["id"] for p in d2["points"]]
    assert [p["metrics"] for p in d1["points"]] == [p["metrics"] for p in d2["points"]]
    assert d2["chosen"] == d1["chosen"]


def test_an_interrupted_run_resumes_from_its_cache(tmp_path: Path) -> None:
    """Ctrl-C after a few points: the cache keeps them, the next run re-uses them."""
    seen = []

    def stop(ev: dict) -> None:
        if "point" in ev:
            seen.append(ev)
            if len(seen) == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(_request(tmp_path, "out"), on_progress=stop)
    assert len(list((tmp_path / "out" / "cache").glob("*.json"))) == 5
    d = tune(_request(tmp_path, "out")).to_json()
    assert d["cached"] == 5 and d["evaluations"] == len(d["points"]) - 5


def test_dask_with_two_workers_measures_the_same_points_as_one_process(tmp_path: Path) -> None:
    one = tune(_request(tmp_path, "one")).to_json()
    two = tune(_request(tmp_path, "two", workers=2)).to_json()
    assert two["workers"] == "local:2" and one["workers"] == "in-process"
    strip = [{k: v for k, v in p.items() if k != "seconds"} for p in one["points"]]
    assert strip == [{k: v for k, v in p.items() if k != "seconds"} for p in two["points"]]
    assert (one["chosen"], one["pareto"], one["sensitivity"]) == (two["chosen"], two["pareto"], two["sensitivity"])


def test_the_outputs_follow_the_contract(tmp_path: Path) -> None:
    result = tune(_request(tmp_path, "out"))
    written = result.write(tmp_path / "out")
    d = json.loads((tmp_path / "out" / "tune.json").read_text())
    for key in ("version", "model", "data", "images", "scoring", "metric", "max_drop", "cost", "hw", "float",
                "baseline", "points", "sensitivity", "pareto", "chosen", "met", "shortfall", "relative_cost",
                "evaluations", "cached", "exhaustive", "method", "seconds", "workers"):
        assert key in d, key
    p = d["points"][0]
    for key in ("id", "phase", "label", "spec", "refinements", "metrics", "drop", "cost", "layers", "seconds", "meets"):
        assert key in p, key
    assert set(p["cost"]) == {"cycles", "latency_ms", "dram_bytes", "weight_bytes"}
    assert d["exhaustive"] == "4^5 = 1024"
    csv = (tmp_path / "out" / "tune.csv").read_text().splitlines()
    assert len(csv) == len(d["points"]) + 1
    assert (tmp_path / "out" / "best.qnet" / "model.json").is_file() and tmp_path / "out" / "best.qnet" in written


def test_configurations_the_hardware_cannot_run_are_never_measured(tmp_path: Path) -> None:
    """Without w4a16, int4 weights reading a 16-bit tensor are infeasible: listed, not run."""
    from dla.config import HardwareConfig

    hw = HardwareConfig(passes_w4a16=0)
    result = tune(_request(tmp_path, "out", hw=hw, max_drop=30.0))
    d = result.to_json()
    assert d["infeasible"] and all("w4a16" in x["reason"] for x in d["infeasible"])
    for p in d["points"]:
        assert not any(row["precision"].startswith("w4a16") for row in p["layers"]), p["changes"]


def test_a_refinement_is_a_measured_dimension(tmp_path: Path) -> None:
    """bias_correction switched on is measured as its own point, through dla.refine: its
    output SQNR is that of quantize_refined's network run by the INT engine here."""
    import numpy as np

    from dla.engine import Engine, Mode
    from dla.refine import quantize_refined
    from dla.tune.task import outputs_sqnr
    from golden.image import load_image, prepare_input
    from golden.network import load_network
    from quant.spec import QuantSpec

    req = _request(tmp_path, "out", space={"defaults": {"weight_bits": [8], "activation_bits": [8]},
                                          "refinements": ["bias_correction"]}, max_drop=0.0)
    d = tune(req).to_json()
    row = next(s for s in d["sensitivity"] if s["option"] == "refinement=bias_correction")
    point = next(p for p in d["points"] if p["id"] == row["point"])
    base = next(p for p in d["points"] if p["id"] == d["baseline"])
    assert point["refinements"] == ["bias_correction"] and base["refinements"] == []
    net = load_network(req.model, req.weights)
    images = sorted(Path(req.data).glob("*.png"))
    xs = [prepare_input(load_image(p), net.input_shape, letterbox=net.letter_box) for p in images]
    qnet = quantize_refined(net, images, QuantSpec(granularity="per_channel"), ["bias_correction"], use_cache=False)
    engine = Engine(net, qnet)
    last = net.output_index
    ref = [{last: engine.run(x, Mode.FLOAT).records[last].real} for x in xs]
    test = [{last: engine.run(x, Mode.INT).records[last].real} for x in xs]
    assert point["metrics"]["sqnr_db"] == outputs_sqnr(ref, test, [last])
    assert point["metrics"]["sqnr_db"] != base["metrics"]["sqnr_db"]
    assert np.isfinite(row["drop"])
