"""Reading a scenario file: YAML → validated ``Scenario``, with every mistake located.

Errors name the file, the line (and column for YAML syntax) and the dotted key, e.g.::

    study.yaml:7: quant.activations: unknown value 'kll' (valid: max, percentile, mse, kl, log2, auto)
    study.yaml:3: model: unknown key 'wieghts' (did you mean 'weights'?)
    study.yaml:4: model.weights: file not found: nets/tiny.weights (relative to the scenario: /abs/nets/...)

A scenario with a ``matrix:`` expands into one scenario per combination of its values
(``expand_matrix``); ``dla regress`` runs them, ``dla run`` asks for one.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from dla.catalog import DATA, IMAGE_DIR, is_trained_name, resolve_cfg, shipped_model
from dla.scenario.schema import Scenario
from dla.yamlsafe import compose_yaml, construct_yaml
from golden.errors import UserInputError

SCENARIO_DIR = DATA / "scenarios"
HW_DIR = DATA / "hw"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

Loc = tuple[str | int, ...]


class ScenarioError(UserInputError):
    """A scenario that cannot be used: ``file:line: key: what is wrong``."""

    def __init__(self, path: str | Path, line: int | None, msg: str, key: str | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {msg}" if key else f"{where}: {msg}")


@dataclass
class LoadedScenario:
    """A validated scenario with where it came from (for relative paths and error lines)."""

    scenario: Scenario
    path: Path  # the file (or a pseudo-path such as '<web>/x.yaml' for inline mappings)
    lines: dict[Loc, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # the mapping as written (after matrix expansion)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.scenario.name or self.path.stem

    def line(self, *loc: str | int) -> int | None:
        return line_of(self.lines, loc)

    def error(self, msg: str, *loc: str | int) -> ScenarioError:
        return ScenarioError(self.path, self.line(*loc), msg, ".".join(map(str, loc)) or None)


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc`` or of its nearest written ancestor."""
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


# ------------------------------------------------------------------ YAML with line numbers
def _line_map(node: yaml.Node, loc: Loc = (), out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = (*loc, k.value)
            if key in out:
                raise ValueError(f"{'.'.join(map(str, key))}: written twice (first on line {out[key]})",
                                 k.start_mark.line + 1)
            out[key] = k.start_mark.line + 1
            _line_map(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[(*loc, i)] = v.start_mark.line + 1
            _line_map(v, (*loc, i), out)
    return out


def parse_yaml(path: Path, text: str) -> tuple[dict[str, Any], dict[Loc, int]]:
    try:  # bounded: a YAML alias bomb is refused here (dla.yamlsafe)
        node = compose_yaml(text)
        data = construct_yaml(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", column {mark.column + 1}" if mark else ""
        raise ScenarioError(path, mark.line + 1 if mark else None,
                            f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(path, None, "a scenario is a mapping of sections (model:, quant:, modes:, checks:, ...)")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ScenarioError(path, None, f"section names must be strings, got {bad[0]!r}")
    try:
        return data, _line_map(node)
    except ValueError as exc:  # a key written twice (YAML loaders silently keep the last one)
        raise ScenarioError(path, exc.args[1], exc.args[0]) from None


# ------------------------------------------------------------------ validation errors
def _models_in(tp: Any) -> list[type[BaseModel]]:
    """The pydantic model classes an annotation can hold (through Optional, Union, list, dict)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in get_args(tp) for m in _models_in(a)] if get_origin(tp) is not None or get_args(tp) else []


def _valid_keys(loc: Loc) -> list[str]:
    """The keys a mapping at ``loc`` may have (by walking the schema)."""
    classes: list[type[BaseModel]] = [Scenario]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        named = False
        for cls in classes:
            f = cls.model_fields.get(part) or next((f for f in cls.model_fields.values() if f.alias == part), None)
            if f is not None:
                named = True
                nxt += _models_in(f.annotation)
        # not a field: a key of a mapping of models (quant.precision.<name>), whose values are those models
        classes = nxt if named else classes
    keys: list[str] = []
    for cls in classes:
        keys += [f.alias or name for name, f in cls.model_fields.items()]
    return keys


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union-branch labels (``list[str]``, ``function-after[...]``) from ``loc``."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in node and not any(
                c in part for c in "[]-") and part[:1].islower():
            out.append(part)  # a missing field (e.g. min_db) or an unknown key
            break
    return tuple(out)


def _describe(err: dict[str, Any], loc: Loc) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        valid = _valid_keys(loc[:-1])
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(valid)})"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind == "bool_type":
        return f"must be true or false, got {err.get('input')!r}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"unknown value {err.get('input')!r} (valid: {expected.replace(chr(39), '')})"
    msg = err["msg"]
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def _rank(err: dict[str, Any]) -> int:
    """Which of pydantic's errors (one per union branch) to show: the most specific."""
    order = {"extra_forbidden": 0, "literal_error": 1, "missing": 2, "value_error": 3}
    return order.get(err["type"], 4) * 100 - len(err["loc"])


def validate(data: dict[str, Any], path: Path, lines: dict[Loc, int]) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        # errors of the first written key in the file come first; within it the most specific
        def order(e: dict[str, Any]) -> tuple[int, int]:
            return (line_of(lines, _clean_loc(data, e["loc"])) or 0, _rank(e))

        err = min(errs, key=order)
        loc = _clean_loc(data, err["loc"])
        line = line_of(lines, loc)
        raise ScenarioError(path, line, _describe(err, loc), ".".join(map(str, loc)) or None) from None


# ------------------------------------------------------------------ files named by the scenario
def shipped_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def find_scenario(name: str | Path) -> Path:
    """A scenario path, or the name of a shipped one (``demo``, ``algorithms``...)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = SCENARIO_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if str(path) == path.name and shipped.is_file():
        return shipped
    from golden.errors import FileMissingError

    if path.suffix in (".yaml", ".yml") or "/" in str(name):
        raise FileMissingError(path, "scenario")
    raise UserInputError(f"{name}: no such scenario file, and not a shipped scenario "
                         f"(shipped: {', '.join(shipped_scenarios())})")


def _file(ls: LoadedScenario, value: str, what: str, *loc: str | int, dirs: bool = False) -> Path:
    p = Path(value).expanduser()
    full = p if p.is_absolute() else ls.base_dir / p
    if not (full.is_dir() if dirs else full.is_file()):
        raise ls.error(f"{what} not found: {value} (relative to the scenario: {full})", *loc)
    return full


def resolve_data(ls: LoadedScenario, value: str, what: str, *loc: str | int, dirs: bool = False) -> Path:
    """An image or folder relative to the scenario, else one shipped in the package
    (``dog``, ``shapes`` — the sample images of the trained models — ``shapes/00200.png``)."""
    local = Path(value).expanduser()
    if not local.is_absolute() and not (ls.base_dir / local).exists():
        for suffix in ("", *IMAGE_SUFFIXES):
            shipped = IMAGE_DIR / f"{value}{suffix}"
            if shipped.is_dir() if dirs else shipped.is_file():
                return shipped
    return _file(ls, value, what, *loc, dirs=dirs)


def resolve_image(ls: LoadedScenario, value: str, i: int) -> Path:
    return resolve_data(ls, value, "image", "images", i)


def resolve_hw_path(ls: LoadedScenario) -> Path | None:
    hw = ls.scenario.hw
    if not isinstance(hw, str):
        return None
    if "/" not in hw and not hw.endswith((".yaml", ".yml")):
        shipped = HW_DIR / f"{hw}.yaml"
        if not shipped.is_file():
            names = ", ".join(sorted(p.stem for p in HW_DIR.glob("*.yaml")))
            raise ls.error(f"not a shipped hardware config: '{hw}' (shipped: {names}; or give a YAML path)", "hw")
        return shipped
    return _file(ls, hw, "hardware config", "hw")


def load_hw(ls: LoadedScenario):
    """The scenario's ``HardwareConfig`` (inline fields, a shipped name or a YAML path), validated."""
    from dla.config import config_from_mapping, load_config

    hw = ls.scenario.hw
    if isinstance(hw, dict):
        return config_from_mapping(hw, ls.path, {k: ls.line("hw", k) for k in hw})
    path = resolve_hw_path(ls)
    assert path is not None
    return load_config(path)


def check_files(ls: LoadedScenario) -> None:
    """Every file the scenario names exists (before anything runs or is written)."""
    s = ls.scenario
    if s.model.trained is not None:
        try:
            shipped_model(s.model.trained)
        except UserInputError as exc:
            raise ls.error(str(exc), "model", "trained") from None
    if s.model.cfg is not None:
        cfg = Path(s.model.cfg)
        if is_trained_name(s.model.cfg) and not (ls.base_dir / cfg).is_file():
            # 'cfg:' means a network with seeded (or given) weights; a trained model's own weights
            # and class names come with 'trained:', so the name is not silently read either way
            raise ls.error(f"{s.model.cfg} is a shipped trained model: write 'trained: {s.model.cfg}' for it "
                           "(its weights and class names), or give a .cfg path for seeded weights", "model", "cfg")
        if not (ls.base_dir / cfg).is_file():
            try:
                resolve_cfg(s.model.cfg) if "/" not in s.model.cfg else _file(ls, s.model.cfg, "cfg", "model", "cfg")
            except UserInputError as exc:
                raise ls.error(str(exc), "model", "cfg") from None
    if s.model.weights is not None:
        _file(ls, s.model.weights, "weights file", "model", "weights")
    if s.model.qnet is not None:
        p = Path(s.model.qnet).expanduser()
        full = p if p.is_absolute() else ls.base_dir / p
        # a .qnet folder as the CLI writes it, or the zip the workbench downloads
        _file(ls, s.model.qnet, "quantized model", "model", "qnet", dirs=not full.is_file())
    load_hw(ls)  # its values too: a campaign must not start with a scenario whose hardware is invalid
    if isinstance(s.images, list):
        for i, im in enumerate(s.images):
            resolve_image(ls, im, i)
    imgs = s.quant.calib.images
    if isinstance(imgs, str):
        resolve_data(ls, imgs, "calibration images", "quant", "calib", "images", dirs=(ls.base_dir / imgs).is_dir()
                     or not (ls.base_dir / imgs).exists())
    elif isinstance(imgs, list):
        for i, im in enumerate(imgs):
            resolve_data(ls, im, "calibration image", "quant", "calib", "images", i)
    if s.tune is not None:
        tune_paths(ls)
    for i, e in enumerate(s.step):
        if e.edit and e.edit.array is not None:
            arr = _file(ls, e.edit.array, "weight array", "step", i, "edit", "array")
            try:
                np.load(arr, allow_pickle=False)
            except (OSError, ValueError):
                raise ls.error(f"not a NumPy .npy array file: {e.edit.array}", "step", i, "edit", "array") from None


def tune_paths(ls: LoadedScenario) -> dict[str, Path | None]:
    """The folders and file the ``tune:`` section names, resolved (relative to the scenario, else
    shipped image folders such as ``shapes``): ``data``, ``calib``, ``space`` (``None`` when absent
    or given inline).  Raises ``ScenarioError`` at the key's line for one that does not exist."""
    t = ls.scenario.tune
    assert t is not None
    out: dict[str, Path | None] = {"data": resolve_data(ls, t.data, "tune data folder", "tune", "data", dirs=True),
                                   "calib": None, "space": None}
    if t.calib is not None:
        out["calib"] = resolve_data(ls, t.calib, "calibration images folder", "tune", "calib", dirs=True)
    if isinstance(t.space, str):
        out["space"] = _file(ls, t.space, "search space file", "tune", "space")
    return out


from golden.genweights import MAX_SYNTHETIC_IMAGES  # noqa: E402 - one bound for commands and scenarios
#: Most scenarios one ``matrix:`` may expand into (checked before expanding anything).
MAX_MATRIX_COMBINATIONS = 1000


def matrix_size(matrix: dict[str, list[Any] | dict[str, Any]] | None) -> int:
    """How many scenarios ``matrix`` expands into (the product of its lengths; 1 if none)."""
    return math.prod(len(v) for v in matrix.values()) if matrix else 1


def check_sizes(ls: LoadedScenario) -> None:
    """Refuse work without a sensible bound before any of it starts (limits in docs/security.md)."""
    s = ls.scenario
    n = matrix_size(s.matrix)
    if n > MAX_MATRIX_COMBINATIONS:
        sizes = " x ".join(str(len(v)) for v in (s.matrix or {}).values())
        raise ls.error(f"{n:,} combinations ({sizes}), more than the limit of {MAX_MATRIX_COMBINATIONS:,}: "
                       "split it into several scenarios", "matrix")
    for loc, value in ((("images", "synthetic"), getattr(s.images, "synthetic", None)),
                       (("quant", "calib", "synthetic"), s.quant.calib.synthetic)):
        if value is not None and value > MAX_SYNTHETIC_IMAGES:
            raise ls.error(f"{value:,} images, more than the limit of {MAX_SYNTHETIC_IMAGES:,}", *loc)


def check_consistency(ls: LoadedScenario) -> None:
    """Sections that must agree with each other (a check on a mode that is not run...)."""
    s = ls.scenario
    for i, c in enumerate(s.checks):
        mode = getattr(getattr(c, c.kind), "mode", None)
        if mode is not None and mode not in s.modes:
            raise ls.error(f"this check is on mode '{mode}', which 'modes' does not run ({', '.join(s.modes)})",
                           "checks", i, c.kind, "mode")
        if c.kind == "rtl" and not s.rtl:
            raise ls.error("an rtl check needs an 'rtl:' section naming the layers to run", "checks", i, "rtl")
        if c.kind == "cycles" and not s.cycles:
            raise ls.error("a cycles check needs 'cycles: true'", "checks", i, "cycles")
        if c.kind == "saturation" and "int" not in s.modes:
            raise ls.error("the saturation check is on INT outputs: add 'int' to 'modes'", "checks", i, "saturation")


def load_scenario(path: str | Path, allow_matrix: bool = False) -> LoadedScenario:
    """Read, validate and check the files of one scenario (a path or a shipped name)."""
    path = find_scenario(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    data, lines = parse_yaml(path, text)
    return scenario_from_mapping(data, path, lines, allow_matrix)


def scenario_from_mapping(data: dict[str, Any], path: str | Path, lines: dict[Loc, int] | None = None,
                          allow_matrix: bool = False) -> LoadedScenario:
    """Validate a mapping (from YAML, or built by a program such as the web workbench);
    relative paths in it are resolved against ``path``'s folder."""
    path = Path(path)
    lines = lines or {}
    scn = validate(data, path, lines)
    ls = LoadedScenario(scn, path, lines, data)
    check_sizes(ls)
    if scn.matrix and not allow_matrix:
        raise ls.error(f"this scenario has a matrix ({matrix_size(scn.matrix)} combinations): run it with "
                       "'dla regress', or remove 'matrix:'", "matrix")
    check_consistency(ls)
    check_files(ls)
    return ls


# ------------------------------------------------------------------ matrix
def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserInputError(f"matrix key '{key}': '{p}' is not a mapping")
    node[parts[-1]] = value


def _slug(value: Any) -> str:
    if isinstance(value, str):
        s = Path(value).stem if value.endswith((".yaml", ".yml")) else value
    elif isinstance(value, (int, float, bool)):
        s = str(value)
    else:
        s = json.dumps(value, sort_keys=True, separators=(",", "="))
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in s).strip("-")[:40]


def expand_matrix(ls: LoadedScenario) -> list[LoadedScenario]:
    """One scenario per combination of the matrix values (the scenario itself if no matrix);
    names get ``-value`` suffixes in key order, ``-name`` for a value given by name::

        matrix:
          hw: [default, small8]                  # -default, -small8
          quant.overrides:                       # -all-int8, -int16-heads
            all-int8: []
            int16-heads: [{layers: [15, 22], activation_bits: 16}]

    A mistake in a value is named at the value's line in the matrix."""
    matrix = ls.scenario.matrix
    if not matrix:
        return [ls]
    keys = list(matrix)
    # per key: (slug, value, the value's location in the file)
    choices = [[(name, v, ("matrix", k, name)) for name, v in matrix[k].items()] if isinstance(matrix[k], dict)
               else [(_slug(v), v, ("matrix", k, i)) for i, v in enumerate(matrix[k])] for k in keys]
    out = []
    for combo in itertools.product(*choices):
        data = copy.deepcopy(ls.data)
        data.pop("matrix")
        for k, (_, v, _) in zip(keys, combo, strict=True):
            try:
                _set_dotted(data, k, v)
            except UserInputError as exc:
                raise ls.error(str(exc), "matrix", k) from None
        data["name"] = "-".join([ls.name, *(slug for slug, _, _ in combo)])
        lines = {k: v for k, v in ls.lines.items() if k[0] != "matrix"}
        for k, (_, _, where) in zip(keys, combo, strict=True):
            dotted = tuple(k.split("."))
            lines[dotted] = line_of(ls.lines, where) or 0
            # the lines inside a structured value (an override list): as written under the matrix
            lines.update({dotted + loc[len(where):]: n for loc, n in ls.lines.items() if loc[:len(where)] == where})
        out.append(scenario_from_mapping(data, ls.path, lines))
    return out
