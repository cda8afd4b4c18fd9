"""The step:/cross: scenario sections: validation with file:line:key, and execution on a Session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dla.scenario.steps import ScenarioError, load_steps, run_steps
from dla.session import Session
from tests.dla.scenario.helpers import BASE, QUANT, run_refused

GOOD = """model: whatever
rtl:
  - layer: 2
    tiles: 4
step:
  - stop: 2
    print: [output, weights]
  - edit: {index: [1, 0, 1, 1], value: -7}
  - rerun: true
  - undo: true
cross:
  - layer: 4
    continue: false
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_sections_run_on_a_session(tmp_path: Path, tiny) -> None:
    net, qnet, x = tiny
    steps = load_steps(write(tmp_path, GOOD))
    log = run_steps(Session(qnet, x, "int"), steps, tmp_path / "s.yaml")
    actions = [e["action"] for e in log]
    assert actions == ["stop", "stats", "stats", "edit", "rerun", "undo", "cross"]
    assert log[4]["changed"] >= 0 and log[-1]["layer"] == 4 and log[1]["line"] == 6
    assert steps.rtl == [{"_line": 3, "layer": 2, "tiles": 4}]


@pytest.mark.parametrize("text,line,needle", [
    ("step:\n  - stpo: 3\n", 2, "unknown key 'stpo' in 'step' (did you mean 'stop'?)"),
    ("step:\n  - stop: three\n", 2, "'stop' must be an integer"),
    ("step:\n  - print: [outptu]\n", 2, "cannot print ['outptu']"),
    ("cross:\n  - continue: true\n", 2, "each 'cross' entry needs 'layer'"),
    ("step: 5\n", 1, "'step' must be a list"),
    ("step:\n  - edit: {idx: 3}\n", 2, "'edit' takes index+value"),
    ("step:\n  - stop: [1\n", 3, "invalid YAML"),
    ("rtl:\n  - layer: 2\n    tyles: 3\n", 3, "unknown key 'tyles' in 'rtl' (did you mean 'tiles'?)"),
    ("rtl:\n  - tiles: 3\n", 2, "each 'rtl' entry needs 'layer'"),
])
def test_validation_names_line_and_key(tmp_path: Path, text: str, line: int, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_steps(p)
    assert f"{p}:{line}:" in str(err.value) and needle in str(err.value)


def test_runtime_error_names_the_step_line(tmp_path: Path, tiny) -> None:
    net, qnet, x = tiny
    p = write(tmp_path, "step:\n  - stop: 1\n  - stop: 999\n")
    with pytest.raises(ScenarioError, match=r"s.yaml:3: layer 999 is out of range"):
        run_steps(Session(qnet, x, "int"), load_steps(p), p)


@pytest.mark.parametrize("edit, needle", [
    ("{bogus: 1}", "s.yaml:7: step.1.edit.bogus: unknown key 'bogus'"),
    ("{scale_channel: banana}", "s.yaml:7: step.1.edit.scale_channel: "),
    ("{index: [0, 0, 0, 0]}", "s.yaml:7: step.1.edit: "),
    ("{array: w.npy, value: 3}", "s.yaml:7: step.1.edit: "),
    ("{array: w.npy}", "s.yaml:7: step.1.edit.array: "),
])
def test_bad_step_edits_are_one_error_line(tmp_path: Path, edit: str, needle: str) -> None:
    """An unknown edit key was a TypeError traceback; a file that is not a .npy array a ValueError one."""
    (tmp_path / "w.npy").write_text("not an array")
    run_refused(tmp_path, BASE + QUANT + f"step:\n  - stop: 0\n  - edit: {edit}\n", needle)


def test_a_valid_step_edit_still_runs(tmp_path: Path) -> None:
    from dla.scenario import run_to_dir

    np.save(tmp_path / "w.npy", np.zeros((8, 3, 3, 3), dtype=np.int8))
    p = tmp_path / "s.yaml"
    p.write_text(BASE + QUANT + "step:\n  - stop: 0\n  - edit: {array: w.npy}\n    rerun: true\n"
                 "  - edit: {index: [0, 0, 1, 1], value: 5}\n  - edit: {scale_channel: [1, 0.5]}\n")
    r = run_to_dir(p, tmp_path / "o")
    assert [e["action"] for e in r.summary["step"]] == ["stop", "edit", "rerun", "edit", "edit"]
