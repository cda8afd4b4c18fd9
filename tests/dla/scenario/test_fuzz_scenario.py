"""Fuzzing the scenario loader; size bounds and the YAML alias bound; `dla regress` leaves no
hidden `.part` folder (worker death, Ctrl-C, a killed campaign) and never re-runs a finished
scenario; every command's output failure is one clear error."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from dla.fileio import atomic_dir
from dla.scenario.load import MAX_MATRIX_COMBINATIONS, MAX_SYNTHETIC_IMAGES, load_scenario
from dla.scenario.regress import OWNER_FILE, Job, collect, run_campaign, run_job
from golden.errors import UserInputError
from tests.fuzz_helpers import FUZZ, TINY_CFG, clean, dla, refused
from tests.dla.scenario.helpers import write_scenario

BASE: dict[str, Any] = {
    "name": "fz", "model": {"cfg": str(TINY_CFG), "seed": 1},
    "hw": {"rows": 8, "cols": 8},
    "quant": {"activations": ["max", "mse"], "granularity": "per_channel", "calib": {"synthetic": 2}},
    "images": {"synthetic": 2}, "modes": ["float", "int"], "checks": [{"sqnr": {"min_db": 0}}],
    "report": {"html": False},
}
GARBAGE = [float("nan"), float("inf"), -1, 0, 10 ** 12, 10 ** 400, 1e308, "", "x", None, [], {}, True, [1, "a"],
           {"synthetic": 10 ** 9}, "../../etc", "yolov3-tiny"]


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(obj, dict):
        out += [p for k, v in obj.items() for p in _paths(v, (*path, k))]
    elif isinstance(obj, list):
        out += [p for i, v in enumerate(obj) for p in _paths(v, (*path, i))]
    return out


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1000), st.sampled_from(GARBAGE)), min_size=1, max_size=3))
def test_fuzz_scenario_loader(edits: list[tuple[int, Any]]) -> None:
    data = copy.deepcopy(BASE)
    for which, value in edits:
        paths = _paths(data)
        path = paths[which % len(paths)]
        node = data
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = copy.deepcopy(value)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.yaml"
        f.write_text(yaml.safe_dump(data))
        try:
            ls = load_scenario(f)
        except UserInputError as exc:
            assert str(exc).startswith(str(f)), exc  # names the file (and line)
            return
        s = ls.scenario
        assert getattr(s.images, "synthetic", 0) <= MAX_SYNTHETIC_IMAGES
        assert (s.quant.calib.synthetic or 0) <= MAX_SYNTHETIC_IMAGES


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 400), st.sampled_from(list("&*:-[]{}\n #!|>'\"") + ["&a ", "*a", "<<: *a"])),
                min_size=1, max_size=5))
def test_fuzz_scenario_yaml_text(edits: list[tuple[int, str]]) -> None:
    text = yaml.safe_dump(BASE)
    for pos, s in edits:
        text = text[:pos] + s + text[pos:]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.yaml"
        f.write_text(text)
        try:
            load_scenario(f)
        except UserInputError as exc:
            assert str(exc).startswith(str(f)), exc


def _bomb(levels: int = 9) -> str:
    text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    names = "abcdefghijklmnop"
    for p, c in zip(names[:levels - 1], names[1:levels]):
        text += f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    return text


def test_yaml_alias_bomb_is_refused_by_dla_run(tmp_path: Path) -> None:
    """Reproducer: a ~400-byte alias bomb made `dla run` spin for over 90 s and reach 5.5 GB."""
    f = tmp_path / "bomb.yaml"
    f.write_text(_bomb())
    assert len(f.read_bytes()) < 400
    refused(dla("run", f, "-o", tmp_path / "out"), "the document expands to more than 100,000 values",
            (tmp_path / "out",))


def test_yaml_alias_count_and_recursion_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "many.yaml"
    f.write_text("a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n")
    refused(dla("run", f), "many.yaml:2: invalid YAML, column 405: more than 100 aliases")
    f.write_text("a: &a [1, *a]\n")
    refused(dla("run", f), "recursive alias")
    spec = tmp_path / "spec.yaml"
    spec.write_text(_bomb())
    refused(dla("quantize", TINY_CFG, "x.weights", "--spec", spec, "-o", tmp_path / "q.qnet"), "spec.yaml:")


def test_synthetic_1e9_images_is_refused_before_running(tmp_path: Path) -> None:
    """Reproducer: `images: {synthetic: 1000000000}` ran without bound."""
    f = write_scenario(tmp_path, images={"synthetic": 10 ** 9})
    refused(dla("run", f), "images.synthetic: 1,000,000,000 images, more than the limit of 1,000")
    f = write_scenario(tmp_path, quant={"calib": {"synthetic": 5000}})
    refused(dla("run", f), "quant.calib.synthetic: 5,000 images, more than the limit of 1,000")


def test_18000_combination_matrix_is_refused_before_expanding(tmp_path: Path) -> None:
    """Reproducer: an 18,000-combination `matrix:` took 30 s to refuse (it was expanded first)."""
    matrix = {"thresh": [0.1 + i / 1000 for i in range(30)], "nms": [0.1 + i / 1000 for i in range(30)],
              "quant.percentile": [90 + i / 10 for i in range(20)]}
    f = write_scenario(tmp_path, matrix=matrix)
    for args in (("run", f), ("regress", f, "-o", tmp_path / "o")):
        refused(dla(*args), f"matrix: 18,000 combinations (30 x 30 x 20), more than the limit of "
                            f"{MAX_MATRIX_COMBINATIONS:,}")


# ------------------------------------------------------------------------------- regress
def _parts(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.part")]


def _dies_half_written(job: Job, out_dir: str) -> dict:
    """The job named 'dies' starts writing its folder, then its worker process ends."""
    if job.id == "dies":
        with atomic_dir(Path(out_dir) / job.id) as tmp:
            (tmp / "summary.json").write_text("{half")
            os._exit(3)
    return run_job(job, out_dir)


def test_regress_worker_death_leaves_no_part_folder(tmp_path: Path) -> None:
    """Reproducer: a dying worker left a hidden `.part` folder inside OUT."""
    src = tmp_path / "scn"
    src.mkdir()
    write_scenario(src, "ok")
    jobs = collect([str(src)])
    jobs.insert(0, Job("dies", jobs[0].scenario))
    out = tmp_path / "out"
    rows = {r["id"]: r for r in run_campaign(jobs, out, workers=1, task=_dies_half_written)}
    assert rows["dies"]["status"] == "error" and rows["ok"]["status"] == "pass"
    assert _parts(tmp_path) == []
    assert not (out / "dies").exists() and (out / "ok" / "summary.json").is_file()


def test_regress_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    """Reproducer: SIGINT left hidden `.part` folders."""
    src = tmp_path / "scn"
    src.mkdir()
    write_scenario(src, "a")
    write_scenario(src, "b")

    def interrupt(row: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_campaign(collect([str(src)]), tmp_path / "out", workers=1, on_done=interrupt)
    assert not (tmp_path / "out").exists() and _parts(tmp_path) == []


def test_regress_removes_stale_folders_of_killed_campaigns_only(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live, other = tmp_path / ".out.x1.part", tmp_path / ".out.x2.part", tmp_path / ".out.x3.part"
    for folder, pid in ((stale, dead.stdout.strip()), (live, str(os.getpid()))):
        folder.mkdir()
        (folder / OWNER_FILE).write_text(pid + "\n")
    other.mkdir()  # not a campaign folder (no owner file): not ours to remove
    src = tmp_path / "scn"
    src.mkdir()
    write_scenario(src, "a")
    run_campaign(collect([str(src)]), tmp_path / "out", workers=1)
    assert not stale.exists() and live.exists() and other.exists()
    assert not (tmp_path / "out" / OWNER_FILE).exists()


def test_a_finished_scenario_is_never_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproducer: a finished scenario seemed to be re-run after a worker death (Dask recomputes a
    task whose result was lost with its worker): the task finds the written folder and stops."""
    src = tmp_path / "scn"
    src.mkdir()
    write_scenario(src, "a", checks=[{"sqnr": {"min_db": 0}}])
    job = collect([str(src)])[0]
    first = run_job(job, str(tmp_path))
    assert first["status"] == "pass", first

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished scenario was run again")

    monkeypatch.setattr("dla.scenario.run_to_dir", must_not_run)
    again = run_job(job, str(tmp_path))
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in first.items() if k != "seconds"}


# ------------------------------------------------------------------------------- outputs
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("in")
    out = {"w": d / "t.weights", "img": d / "in.png", "q": d / "t.qnet", "data": d / "data"}
    assert dla("gen-weights", TINY_CFG, "--seed", 2, "-o", out["w"], "-q").exit_code == 0
    Image.new("RGB", (40, 30), (120, 60, 200)).save(out["img"])
    assert dla("quantize", TINY_CFG, out["w"], "--calib-synthetic", 2, "-o", out["q"], "-q").exit_code == 0
    out["data"].mkdir()  # two labelled images in YOLO format, classes of the tiny detector (0..1)
    for k in range(2):
        Image.new("RGB", (64, 64), (40 * k, 90, 30)).save(out["data"] / f"{k}.png")
        (out["data"] / f"{k}.txt").write_text(f"{k} 0.5 0.5 0.25 0.25\n")
    out["scn"] = write_scenario(d, "outscn")
    return out


COMMANDS = {
    "gen-weights": lambda i, o: ("gen-weights", TINY_CFG, "--seed", 1, "-o", o / "x.weights"),
    "infer-png": lambda i, o: ("infer", TINY_CFG, i["w"], i["img"], "-o", o / "x.png"),
    "infer-json": lambda i, o: ("infer", TINY_CFG, i["w"], i["img"], "--json", o / "x.json"),
    "infer-dump": lambda i, o: ("infer", TINY_CFG, i["w"], i["img"], "--dump", o / "dump"),
    "compare-csv": lambda i, o: ("compare", i["q"], i["img"], "--csv", o / "x.csv"),
    "compare-json": lambda i, o: ("compare", i["q"], i["img"], "--json", o / "x.json"),
    "quantize": lambda i, o: ("quantize", TINY_CFG, i["w"], "--calib-synthetic", 2, "-o", o / "x.qnet"),
    "graph": lambda i, o: ("graph", TINY_CFG, "-o", o / "g.json"),
    "cycles-json": lambda i, o: ("cycles", TINY_CFG, "--json", o / "c.json"),
    "cycles-csv": lambda i, o: ("cycles", TINY_CFG, "--csv", o / "c.csv"),
    "cycles-plot": lambda i, o: ("cycles", TINY_CFG, "--plot", o / "plots"),
    "augment": lambda i, o: ("augment", i["img"], "-o", o / "aug"),  # (has no -q)
    "data-shapes": lambda i, o: ("data", "shapes", "-o", o / "shapes", "--n", 2),
    "eval-json": lambda i, o: ("eval", i["q"], "--data", i["data"], "--json", o / "e.json"),
    "run": lambda i, o: ("run", i["scn"], "-o", o / "report"),
    "regress": lambda i, o: ("regress", i["scn"], "-o", o / "campaign", "-j", 1),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_output_into_read_only_folder_is_one_error(inputs: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Reproducer: any output into a read-only folder was a PermissionError traceback.  The
    folder is made read-only; as root (which ignores permissions) the operating system's
    refusal is simulated where outputs are created (dla.fileio)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:
        def refuse(*args: object, dir: str | None = None, **kwargs: object) -> str:  # noqa: A002
            raise PermissionError(13, "Permission denied", dir)

        monkeypatch.setattr("dla.fileio.tempfile.mkstemp", refuse)
        monkeypatch.setattr("dla.fileio.tempfile.mkdtemp", refuse)
    try:
        args = COMMANDS[name](inputs, ro)
        res = refused(dla(*args) if name == "augment" else dla(*args, "-q"), "Permission denied")
        assert str(ro) in res.output, res.output
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
