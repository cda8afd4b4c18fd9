"""``dla tune`` through the CLI: outputs, the budget-not-met exit, and every user mistake
(exit 2, one Error: line, no OUT left behind)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dla.datasets.shapes import write_shapes
from tests.cli_helpers import fails, ok, run
from tests.dla.tune.helpers import planted_model


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path, Path]:
    return planted_model(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "det"
    write_shapes(out, 24, seed=1, size=64, val_fraction=0.5)
    return out


def _model(planted) -> list[str]:
    return [str(planted[0]), str(planted[1])]


def test_tune_writes_every_output_and_prints_the_table(planted, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = ok("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=12", "--cost", "weights",
             "-q", "-o", out)
    assert "chosen" in res.output and "agreement top-1" in res.output and "Pareto" in res.output
    for name in ("tune.json", "tune.csv", "best.qnet"):
        assert (out / name).exists(), name
    d = json.loads((out / "tune.json").read_text())
    assert d["met"] and d["chosen"] and d["scoring"] == "agreement"
    # a re-run into the same folder resumes: nothing is measured again
    res = ok("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=12", "--cost", "weights",
             "-q", "-o", out)
    assert f"0 points measured, {d['evaluations']} from the cache" in res.output


def test_help_has_an_example() -> None:
    res = ok("tune", "--help")
    assert "dla tune shapes-yolo --calib" in res.output and "--max-drop" in res.output and "exit" in res.output.lower()


def test_budget_not_met_writes_the_outputs_and_exits_3(shapes, tmp_path: Path) -> None:
    """A space that can only lower one layer cannot recover int8's mAP@0.5:0.95 loss."""
    space = tmp_path / "space.yaml"
    space.write_text("defaults: {weight_bits: [8], activation_bits: [8]}\nlayers:\n  - layers: [13]\n    weight_bits: [8, 4]\n")
    out = tmp_path / "out"
    res = fails("tune", "shapes-yolo", "--data", shapes, "--max-drop", "map50_95=0", "--space", space, "-q",
                "-o", out, needle="budget not met", code=3)
    d = json.loads((out / "tune.json").read_text())
    assert d["met"] is False and d["shortfall"] > 0 and d["chosen"] == d["baseline"]
    assert f"{d['shortfall']:.4f} over the budget" in res.output
    assert (out / "best.qnet").is_dir() and (out / "tune.csv").is_file()
    # the table's legend must not call the best point "chosen" when it misses (the report never does)
    assert "* chosen," not in res.output and "* best found (budget NOT met)," in res.output
    assert " s in this process" in res.output and "on in-process" not in res.output


@pytest.mark.parametrize("value, needle", [
    ("map50_95", "expected METRIC=VALUE"), ("=0.1", "expected METRIC=VALUE"), ("map=0.1", "unknown metric 'map'"),
    ("map50=abc", "'abc' is not a number"), ("map50=-1", "finite number ≥ 0"), ("map50=inf", "finite number ≥ 0")])
def test_bad_max_drop(planted, tmp_path: Path, value: str, needle: str) -> None:
    fails("tune", *_model(planted), "--data", planted[2], "--max-drop", value, "-o", tmp_path / "o", needle=needle)
    assert not (tmp_path / "o").exists()


def test_a_metric_the_model_cannot_produce(planted, shapes, tmp_path: Path) -> None:
    fails("tune", *_model(planted), "--data", planted[2], "--max-drop", "map50=0.1", "-o", tmp_path / "o",
          needle="is a classifier: use top1 or sqnr")
    fails("tune", "shapes-yolo", "--data", shapes, "--max-drop", "top1=0.1", "-o", tmp_path / "o",
          needle="is a detector: use map50, map50_95 or sqnr")
    assert not (tmp_path / "o").exists()


def test_labels_that_do_not_fit_the_model(shapes, tmp_path: Path) -> None:
    d = tmp_path / "bad"
    shutil.copytree(shapes / "val", d)
    sorted(d.glob("*.txt"))[0].write_text("7 0.5 0.5 0.2 0.2\n")
    fails("tune", "shapes-yolo", "--data", d, "--max-drop", "map50=0.1", "-o", tmp_path / "o",
          needle="class 7 is out of range: shapes-yolo predicts 5 classes")
    assert not (tmp_path / "o").exists()


def test_missing_folders_and_files(planted, tmp_path: Path) -> None:
    m = _model(planted)
    fails("tune", *m, "--data", tmp_path / "nope", "--max-drop", "sqnr=1", "-o", tmp_path / "o",
          needle="data folder not found")
    fails("tune", *m, "--data", planted[2], "--calib", tmp_path / "nope", "--max-drop", "sqnr=1",
          "-o", tmp_path / "o", needle="calibration set not found")
    fails("tune", *m, "--data", planted[2], "--space", tmp_path / "nope.yaml", "--max-drop", "sqnr=1",
          "-o", tmp_path / "o", needle="search space file not found")
    fails("tune", *m, "--data", planted[2], "--max-drop", "sqnr=1", "-o", tmp_path / "no" / "o",
          needle="does not exist")
    assert not (tmp_path / "o").exists()


def test_an_output_folder_that_is_not_a_tune_output_is_refused(planted, tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("keep me")
    fails("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=1", "-o", tmp_path / "o",
          needle="not an earlier 'dla tune' output")
    assert (tmp_path / "o" / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("text, needle", [
    ("defaults: {weight_bits: [8], activation_bits: [8]}\n", "the search space is empty"),
    ("defaults: {weight_bits: []}\n", "'weight_bits' is an empty list"),
    ("defaults: {weight_bits: [3]}\n", "'weight_bits' option 3 is not valid"),
    ("defaults: {colour: [red]}\n", "defaults: unknown key 'colour'"),
    ("layerz: []\n", "unknown key 'layerz'"),
    ("layers:\n  - layers: [99]\n    weight_bits: [8]\n", "layer 99 does not exist"),
    ("layers:\n  - types: [maxpool]\n    weight_bits: [8]\n", "type 'maxpool' is not tunable"),
    ("layers:\n  - layers: [0]\n", "sets no option"),
    ("layers:\n  - weight_bits: [8]\n", "names no layer"),
    ("refinements: [magic]\n", "refinements: unknown refinement 'magic'"),
    ("- 1\n", "expected a mapping"),
])
def test_search_space_mistakes_name_the_file_and_key(planted, tmp_path: Path, text: str, needle: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(text)
    res = fails("tune", *_model(planted), "--data", planted[2], "--space", space, "--max-drop", "sqnr=1",
                "-o", tmp_path / "o", needle=needle)
    assert str(space) in res.output
    assert not (tmp_path / "o").exists()


def test_a_width_the_hardware_does_not_run_is_refused(planted, tmp_path: Path) -> None:
    hw = tmp_path / "hw.yaml"
    hw.write_text("passes_w4a8: 0\npasses_w4a16: 0\n")
    space = tmp_path / "space.yaml"
    space.write_text("defaults: {weight_bits: [8, 4]}\n")
    fails("tune", *_model(planted), "--data", planted[2], "--space", space, "--hw", hw, "--max-drop", "sqnr=1",
          "-o", tmp_path / "o", needle="'weight_bits' option 4 is in no operand pair the hardware runs")


def test_scheduler_and_jobs_together_are_refused(planted, tmp_path: Path) -> None:
    fails("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=1", "-j", "2", "--scheduler",
          "tcp://127.0.0.1:1", "-o", tmp_path / "o", needle="not both")


def test_an_unreachable_scheduler_is_one_clear_error(planted, tmp_path: Path) -> None:
    res = run("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=1", "--scheduler",
              "tcp://127.0.0.1:1", "-q", "-o", tmp_path / "o")
    assert res.exit_code == 2 and "cannot reach the Dask scheduler" in res.output, res.output
    assert not (tmp_path / "o").exists()


def test_dla_eval_of_best_qnet_reproduces_the_chosen_metrics_exactly(shapes, tmp_path: Path) -> None:
    """The acceptance check of docs/tune.md, on a small held-out set: the chosen point's metrics
    and cycles in tune.json are what 'dla eval out/best.qnet' measures, bit for bit."""
    space = tmp_path / "space.yaml"
    space.write_text("defaults: {weight_bits: [8], activation_bits: [8]}\n"
                     "layers:\n  - layers: [13, 20]\n    activation_bits: [8, 16]\n  - layers: [8]\n"
                     "    weight_bits: [8, 4]\n")
    out = tmp_path / "out"
    run("tune", "shapes-yolo", "--data", shapes, "--max-drop", "map50_95=0.05", "--space", space, "-q", "-o", out)
    d = json.loads((out / "tune.json").read_text())
    chosen = next(p for p in d["points"] if p["id"] == d["chosen"])
    ok("eval", out / "best.qnet", "--data", shapes, "--modes", "int", "-q", "--json", tmp_path / "e.json")
    row = json.loads((tmp_path / "e.json").read_text())["results"][0]
    assert (row["map50"], row["map50_95"]) == (chosen["metrics"]["map50"], chosen["metrics"]["map50_95"])
    assert row["total_cycles"] == chosen["cost"]["cycles"] and row["images"] == d["images"]
    assert d["float"]["map50_95"] - chosen["metrics"]["map50_95"] == pytest.approx(chosen["drop"], abs=0)


def test_a_qnet_is_tuned_from_its_float_network(planted, tmp_path: Path) -> None:
    """MODEL.qnet: its float parameters are re-quantized; the result equals tuning the cfg."""
    a = tmp_path / "a"
    ok("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=12", "--cost", "weights", "-q", "-o", a)
    b = tmp_path / "b"
    ok("tune", a / "best.qnet", "--data", planted[2], "--max-drop", "sqnr=12", "--cost", "weights", "-q", "-o", b)
    da, db = (json.loads((x / "tune.json").read_text()) for x in (a, b))
    assert [p["metrics"] for p in da["points"]] == [p["metrics"] for p in db["points"]]
    assert da["model"] == "planted" and db["model"] == "best.qnet"


def test_host_fallback_in_the_space_is_flagged_in_the_verdict(planted, tmp_path: Path) -> None:
    """Host layers cost only their DRAM transfer in the cycle model: a chosen point that uses
    them says so (this is why host fallback is off by default)."""
    space = tmp_path / "space.yaml"
    space.write_text("defaults: {weight_bits: [8], activation_bits: [8], host: [false, true]}\n")
    res = ok("tune", *_model(planted), "--data", planted[2], "--space", space, "--max-drop", "sqnr=3", "-q",
             "-o", tmp_path / "o")
    d = json.loads((tmp_path / "o" / "tune.json").read_text())
    chosen = next(p for p in d["points"] if p["id"] == d["chosen"])
    assert any(row["host"] for row in chosen["layers"]) and "run on the host" in res.output


def test_ctrl_c_exits_130_and_says_how_to_resume(planted, tmp_path: Path, monkeypatch) -> None:
    """docs/tune.md: 130, OUT/cache kept, the next run resumes; the message must say so (it was
    a bare 'Error: interrupted', which reads as if the work were lost)."""
    import dla.tune

    real = dla.tune.tune

    def interrupted(req, on_progress=None):  # Ctrl-C after three measured points
        seen = []

        def stop(ev: dict) -> None:
            if on_progress:
                on_progress(ev)
            if "point" in ev:
                seen.append(ev)
                if len(seen) == 3:
                    raise KeyboardInterrupt
        return real(req, on_progress=stop)

    monkeypatch.setattr(dla.tune, "tune", interrupted)
    out = tmp_path / "out"
    res = fails("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=12", "-q", "-o", out,
                code=130, needle=f"interrupted: 3 measured point(s) kept in {out / 'cache'}; run the same "
                                 "command again to resume")
    assert not (out / "tune.json").exists()
    monkeypatch.setattr(dla.tune, "tune", real)
    res = ok("tune", *_model(planted), "--data", planted[2], "--max-drop", "sqnr=12", "-q", "-o", out)
    assert "3 from the cache" in res.output
