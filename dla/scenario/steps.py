"""The ``step:`` and ``cross:`` sections of a scenario: a scripted debugging session (what ``dla step``
does interactively) run in order on one Session, so a scenario can replay and report it.

::

    step:                       # executed in order on one Session
      - stop: 8                 # run up to layer 8 (it becomes the current layer)
        print: [output, weights]   # statistics of these tensors (input | output | weights)
      - edit: {index: [3, 0, 1, 1], value: -5}      # or {scale_channel: [3, 0.5]} or {array: w.npy}
      - rerun: true             # re-run the current layer; the difference is recorded
      - undo: true
    cross:                      # CROSS at these layers (after the steps), in this session's mode
      - layer: 12
        continue: false         # continue the run from the crossed output?
    rtl:                        # layers (or their first tiles) to run through the RTL core
      - layer: 2                #   (validated here; `dla rtl run` executes one, reports wire them in)
        tiles: 4

Validation names the file, the line and the key, and lists the valid keys.  ``run_steps``
executes both sections on a ``Session`` and returns a JSON-able log.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dla.scenario.load import ScenarioError  # one error type for every part of a scenario
from golden.errors import UserInputError

STEP_KEYS = {"stop": int, "print": list, "edit": dict, "rerun": bool, "undo": bool}
EDIT_KEYS = {"index", "value", "scale_channel", "array"}
CROSS_KEYS = {"layer": int, "continue": bool}
RTL_KEYS = {"layer": int, "tiles": int}
TENSORS = ("input", "output", "weights")


@dataclass
class Steps:
    step: list[dict[str, Any]] = field(default_factory=list)
    cross: list[dict[str, Any]] = field(default_factory=list)
    rtl: list[dict[str, Any]] = field(default_factory=list)


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(valid)})"


def _check_items(node: yaml.Node, path: Path, section: str, keys: dict[str, type]) -> list[dict[str, Any]]:
    if not isinstance(node, yaml.SequenceNode):
        raise ScenarioError(path, node.start_mark.line + 1, f"'{section}' must be a list of entries")
    items = []
    for item in node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            raise ScenarioError(path, line, f"each '{section}' entry must be a mapping of keys {sorted(keys)}")
        entry: dict[str, Any] = {"_line": line}
        for k, v in item.value:
            key = k.value
            if key not in keys:
                raise ScenarioError(path, k.start_mark.line + 1, f"unknown key '{key}' in '{section}'"
                                    + _suggest(key, keys))
            value = yaml.safe_load(yaml.serialize(v))
            want = keys[key]
            if want is int and (not isinstance(value, int) or isinstance(value, bool)):
                raise ScenarioError(path, k.start_mark.line + 1, f"'{key}' must be an integer layer index")
            if want is bool and not isinstance(value, bool):
                raise ScenarioError(path, k.start_mark.line + 1, f"'{key}' must be true or false")
            if want is list:
                value = value if isinstance(value, list) else [value]
                bad = [t for t in value if t not in TENSORS]
                if bad:
                    raise ScenarioError(path, k.start_mark.line + 1, f"cannot print {bad} (valid: {', '.join(TENSORS)})")
            if want is dict:
                if not isinstance(value, dict) or not value or set(value) - EDIT_KEYS:
                    raise ScenarioError(path, k.start_mark.line + 1,
                                        f"'edit' takes index+value, scale_channel or array (got {value!r})")
            entry[key] = value
        items.append(entry)
    return items


def parse_steps(mapping: yaml.MappingNode, path: str | Path) -> Steps:
    """Validate the ``step:`` and ``cross:`` entries of a scenario's top-level mapping node."""
    path = Path(path)
    steps = Steps()
    for k, v in mapping.value:
        if k.value == "step":
            steps.step = _check_items(v, path, "step", STEP_KEYS)
        elif k.value == "cross":
            steps.cross = _check_items(v, path, "cross", CROSS_KEYS)
            for e in steps.cross:
                if "layer" not in e:
                    raise ScenarioError(path, e["_line"], "each 'cross' entry needs 'layer'")
        elif k.value == "rtl":
            steps.rtl = _check_items(v, path, "rtl", RTL_KEYS)
            for e in steps.rtl:
                if "layer" not in e:
                    raise ScenarioError(path, e["_line"], "each 'rtl' entry needs 'layer'")
                if e.get("tiles", 1) < 1:
                    raise ScenarioError(path, e["_line"], "'tiles' must be at least 1")
    return steps


def load_steps(path: str | Path) -> Steps:
    path = Path(path)
    try:
        node = yaml.compose(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(path, mark.line + 1 if mark else None,
                            f"invalid YAML{f', column {mark.column + 1}' if mark else ''}: "
                            f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(node, yaml.MappingNode):
        raise ScenarioError(path, None, "a scenario is a mapping of sections")
    return parse_steps(node, path)


def _stats_row(session, what: str) -> dict[str, Any]:
    tensor = {"input": lambda: session.input, "output": lambda: session.output,
              "weights": lambda: session.weights}[what]()
    st = session.stats(tensor)
    st.pop("histogram")
    return {"tensor": what, **st}


def run_steps(session, steps: Steps, path: str | Path = "<scenario>") -> list[dict[str, Any]]:
    """Execute the sections; a step that fails names its line in the scenario."""
    log: list[dict[str, Any]] = []
    for e in steps.step:
        try:
            if "stop" in e:
                session.run_to(e["stop"])
                log.append({"line": e["_line"], "action": "stop", "layer": session.index})
            for what in e.get("print", []):
                log.append({"line": e["_line"], "action": "stats", "layer": session.index, **_stats_row(session, what)})
            if "edit" in e:
                ed = dict(e["edit"])
                if "array" in ed:
                    ed["array"] = np.load(Path(path).parent / ed["array"])
                if "index" in ed:
                    ed["index"] = tuple(ed["index"]) if isinstance(ed["index"], list) else ed["index"]
                if "scale_channel" in ed:
                    ed["scale_channel"] = tuple(ed["scale_channel"])
                edit = session.edit_weights(**ed)
                log.append({"line": e["_line"], "action": "edit", "layer": edit.layer, "description": edit.description})
            if e.get("rerun"):
                d = session.rerun()
                log.append({"line": e["_line"], "action": "rerun", "layer": session.index, "changed": d.n_changed,
                            "sqnr_db": d.metrics.sqnr_db})
            if e.get("undo"):
                session.undo()
                log.append({"line": e["_line"], "action": "undo"})
        except UserInputError as exc:
            raise ScenarioError(path, e["_line"], str(exc)) from None
    for e in steps.cross:
        try:
            session.run_to(e["layer"])
            c = session.cross(continue_from_cross=e.get("continue", False))
        except UserInputError as exc:
            raise ScenarioError(path, e["_line"], str(exc)) from None
        log.append({"line": e["_line"], "action": "cross", "layer": c.layer, "mode": c.mode.value,
                    "other": c.other.value, **c.metrics.to_dict()})
    return log
