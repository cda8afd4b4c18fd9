"""dla data shapes / dla train / dla eval through the CLI: results, outputs, and every user mistake."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dla.datasets.shapes import write_shapes
from dla.catalog import shipped_model
from tests.cli_helpers import fails, ok


@pytest.fixture(scope="module")
def val_det(tmp_path_factory) -> Path:
    """A small held-out detection set (seed 1, never used for training)."""
    out = tmp_path_factory.mktemp("data") / "det"
    write_shapes(out, 40, seed=1, size=64, val_fraction=0.5)
    return out


@pytest.fixture(scope="module")
def val_cls(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "cls"
    write_shapes(out, 40, seed=1, size=64, kind="classify", val_fraction=0.5)
    return out


def test_data_shapes_command(tmp_path: Path) -> None:
    res = ok("data", "shapes", "-o", tmp_path / "s", "--n", 5, "--seed", 3, "--size", 40, "-q")
    assert res.output == ""
    assert len(list((tmp_path / "s" / "train").glob("*.txt"))) + len(list((tmp_path / "s" / "val").glob("*.txt"))) == 5
    fails("data", "shapes", "-o", tmp_path / "nope" / "s", "--n", 5, needle="does not exist")
    assert not (tmp_path / "nope").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    fails("data", "shapes", "-o", other, "--n", 3, needle="directory exists and is not empty")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    ok("data", "shapes", "-o", tmp_path / "s", "--n", 2, "--size", 40, "-q")  # an earlier shapes output: replaced
    assert len(list((tmp_path / "s").rglob("*.png"))) == 2


def test_eval_detector_all_outputs(val_det: Path, tmp_path: Path) -> None:
    csv_p, json_p, png_p = tmp_path / "t.csv", tmp_path / "t.json", tmp_path / "t.png"
    res = ok("eval", "shapes-yolo", "--data", val_det, "--activations", "max,mse", "--limit", 12, "-q",
             "--csv", csv_p, "--json", json_p, "--plot", png_p)
    out = res.output
    assert "map50" in out and "map50_95" in out
    for mode in ("FLOAT", "HYBRID", "INT"):
        assert f"wall time per image, {mode}:" in out
    rows = json.loads(json_p.read_text())["results"]
    assert [(r["mode"], r["activations"], r["granularity"]) for r in rows] == [
        ("float", "-", "-"),
        *[(m, a, g) for m in ("hybrid", "int") for a in ("max", "mse") for g in ("per_tensor", "per_channel")]]
    assert all(0 <= r["map50_95"] <= r["map50"] <= 1 and r["seconds_per_image"] > 0 for r in rows)
    assert rows[0]["map50"] > 0.5  # the trained detector finds the shapes
    assert len(csv_p.read_text().splitlines()) == 1 + len(rows)
    assert png_p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_cfg_weights_and_qnet(val_det: Path, tmp_path: Path) -> None:
    m = shipped_model("shapes-yolo")
    a = ok("eval", m.cfg, m.weights, "--data", val_det, "--modes", "float", "--limit", 6, "-q",
           "--json", tmp_path / "a.json")
    b = ok("eval", "shapes-yolo", "--data", val_det, "--modes", "float", "--limit", 6, "-q",
           "--json", tmp_path / "b.json")
    ja, jb = (json.loads((tmp_path / f).read_text())["results"][0] for f in ("a.json", "b.json"))
    assert ja["map50"] == jb["map50"] and "FLOAT" in a.output and "FLOAT" in b.output
    qnet = tmp_path / "m.qnet"
    ok("quantize", m.cfg, m.weights, "--calib", val_det / "train", "--activations", "mse", "-o", qnet, "-q")
    res = ok("eval", qnet, "--data", val_det, "--modes", "int", "--limit", 6, "-q")
    assert "INT     qnet" in res.output
    fails("eval", qnet, "--data", val_det, "--calib", val_det, needle="already calibrated")


def test_eval_classifier(val_cls: Path, tmp_path: Path) -> None:
    res = ok("eval", "shapes-cls", "--data", val_cls, "--activations", "max", "--granularity", "per-channel",
             "-q", "--json", tmp_path / "c.json")
    rows = json.loads((tmp_path / "c.json").read_text())["results"]
    assert "top1" in res.output and [r["mode"] for r in rows] == ["float", "hybrid", "int"]
    assert rows[0]["top1"] > 0.8 and all(r["top5"] == 1.0 for r in rows)  # 5 classes: top-5 is everything


def test_eval_coco_folder(val_det: Path, tmp_path: Path) -> None:
    """A COCO-format folder (instances.json + images) gives the same figures as its YOLO labels."""
    coco = tmp_path / "coco"
    coco.mkdir()
    for p in (val_det / "val").glob("*.png"):
        (coco / p.name).write_bytes(p.read_bytes())
    (coco / "instances.json").write_text((val_det / "val" / "instances.json").read_text())
    ok("eval", "shapes-yolo", "--data", coco, "--modes", "float", "-q", "--json", tmp_path / "c.json")
    ok("eval", "shapes-yolo", "--data", val_det, "--modes", "float", "-q", "--json", tmp_path / "y.json")
    c, y = (json.loads((tmp_path / f).read_text())["results"][0] for f in ("c.json", "y.json"))
    assert abs(c["map50"] - y["map50"]) < 1e-9 and abs(c["map50_95"] - y["map50_95"]) < 1e-9


# ------------------------------------------------------------------------------------ mistakes
def _copy_split(src: Path, dst: Path, n: int = 4) -> Path:
    dst.mkdir(parents=True)
    for p in sorted(src.glob("*.png"))[:n]:
        (dst / p.name).write_bytes(p.read_bytes())
        (dst / p.with_suffix(".txt").name).write_text(p.with_suffix(".txt").read_text())
    return dst


def test_eval_missing_data_folder(tmp_path: Path) -> None:
    fails("eval", "shapes-yolo", "--data", tmp_path / "nowhere", needle="data folder not found")


def test_eval_malformed_label_names_file_and_line(val_det: Path, tmp_path: Path) -> None:
    d = _copy_split(val_det / "val", tmp_path / "bad")
    first = sorted(d.glob("*.txt"))[0]
    first.write_text(first.read_text() + "2 0.5 0.5 0.1\n")
    n_lines = len(first.read_text().splitlines())
    fails("eval", "shapes-yolo", "--data", d, "--json", tmp_path / "o.json",
          needle=f"{first}:{n_lines}: expected 5 values")
    assert not (tmp_path / "o.json").exists()
    first.write_text("1 0.5 zero 0.1 0.1\n")
    fails("eval", "shapes-yolo", "--data", d, needle=f"{first}:1: not numbers")
    first.write_text("1 0.5 0.5 1.7 0.1\n")
    fails("eval", "shapes-yolo", "--data", d, needle="normalised to [0, 1]")


def test_eval_class_count_mismatch(val_det: Path, tmp_path: Path) -> None:
    d = _copy_split(val_det / "val", tmp_path / "many")
    first = sorted(d.glob("*.txt"))[0]
    first.write_text("7 0.5 0.5 0.2 0.2\n")
    fails("eval", "shapes-yolo", "--data", d, needle="class 7 is out of range: shapes-yolo predicts 5 classes")
    d2 = _copy_split(val_det / "val", tmp_path / "named")
    (d2 / "names").write_text("a\nb\nc\n")
    fails("eval", "shapes-yolo", "--data", d2, needle="predicts 5 classes but the data set")


def test_eval_folder_without_labels(val_det: Path, tmp_path: Path) -> None:
    d = tmp_path / "nolabels"
    d.mkdir()
    for p in sorted((val_det / "val").glob("*.png"))[:2]:
        (d / p.name).write_bytes(p.read_bytes())
    fails("eval", "shapes-yolo", "--data", d, needle="no YOLO label files")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails("eval", "shapes-yolo", "--data", empty, needle="no images")


def test_eval_bad_coco(val_det: Path, tmp_path: Path) -> None:
    d = tmp_path / "coco"
    d.mkdir()
    (d / "instances.json").write_text("{\"images\": []")
    fails("eval", "shapes-yolo", "--data", d, needle="not a COCO instances file")
    (d / "instances.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "x.png", "width": 9,
                                                             "height": 9}], "annotations": [], "categories": []}))
    fails("eval", "shapes-yolo", "--data", d, needle="image 'x.png' not found")


def test_eval_bad_options(val_det: Path, tmp_path: Path) -> None:
    fails("eval", "shapes-yolo", "--data", val_det, "--modes", "float,fast", needle="--modes: fast not valid")
    fails("eval", "shapes-yolo", "--data", val_det, "--activations", "max,best", needle="--activations: best")
    fails("eval", "shapes-yolo", "--data", val_det, "--granularity", "per-row", needle="--granularity")
    fails("eval", "no-such-model", "--data", val_det, needle="or a shipped model (shapes-yolo, shapes-cls), got 1")
    fails("eval", shipped_model("shapes-yolo").cfg, tmp_path / "w.weights", "--data", val_det,
          needle="weights file not found")
    fails("eval", "a", "b", "c", "--data", val_det, needle="expected CFG WEIGHTS")
    fails("eval", "shapes-yolo", "--data", val_det, "--csv", tmp_path / "no" / "t.csv", needle="does not exist")
    fails("eval", "shapes-yolo", "--data", val_det, "--calib", val_det, "--calib-synthetic", 2, needle="not both")
    m = shipped_model("shapes-cls")
    fails("eval", shipped_model("shapes-yolo").cfg, m.weights, "--data", val_det, needle="bytes")


def test_eval_classifier_on_detection_names_mismatch(val_det: Path, tmp_path: Path) -> None:
    """The classifier's 5 outputs fit the shapes names; a 3-class names file does not."""
    d = _copy_split(val_det / "val", tmp_path / "d")
    (d / "names").write_text("x\ny\nz\n")
    fails("eval", "shapes-cls", "--data", d, needle="predicts 5 classes")


def test_train_mistakes(tmp_path: Path, val_det: Path) -> None:
    fails("train", "shapes-yolo", tmp_path, "-o", tmp_path / "w.weights", needle="no 'train/' folder")
    fails("train", "shapes-yolo", val_det, "-o", tmp_path / "no" / "w.weights", needle="does not exist")
    fails("train", "yolov2-tiny", val_det, "-o", tmp_path / "w.weights", needle="cannot be trained")
    assert not list(tmp_path.glob("*.weights*"))
