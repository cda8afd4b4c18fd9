"""``dla demo``: the shipped ``demo`` scenario, adapted to the model the user picks.

The shipped scenario (``dla/data/scenarios/demo.yaml``) is written for the project's trained
64×64 ``shapes-yolo``.  With ``--model``/``--weights``/``--image`` the study stays the same
(FLOAT vs HYBRID vs INT, cycles, a STEP/CROSS look, checks) but every check must still mean
something for the chosen model:

* with another cfg (``--model``), calibration uses the input images themselves (as ``dla infer``
  does), not the shapes samples the shipped model was calibrated on;
* the ``detections`` check (agreement with FLOAT) needs real weights: with seeded random
  weights there is nothing meaningful to detect, so it is left out (and said so);
* the ``cycles`` check's 100 fps is the shipped 64×64 model's target on the default DLA: for
  another cfg the cycle model is run and reported, not checked against that figure (``--weights``
  alone keeps the demo's cfg, so its calibration and every check stay);
* the STEP/CROSS layer is layer 8 when it is a convolution, else the middle convolution.

Every left-out check is named in ``notes`` (printed by the CLI and written into the report's
description): nothing is dropped silently.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golden.errors import UserInputError


@dataclass
class DemoPlan:
    """The scenario mapping to run and what was changed for the chosen model, in words."""

    data: dict[str, Any]
    lines: dict
    path: Path
    notes: list[str] = field(default_factory=list)


def _step_layer(cfg: Path, preferred: int = 8) -> int:
    from golden.layers import Kind
    from golden.network import parse_network

    net = parse_network(cfg)
    convs = [s.index for s in net.layers if s.kind is Kind.CONV]
    if not convs:
        raise UserInputError(f"{cfg}: the demo steps into a convolutional layer, and this network has none")
    return preferred if preferred in convs else convs[len(convs) // 2]


def _image(value: str) -> str:
    """An image file (made absolute), else the name of a shipped image (``dog.jpg``, ``dog``,
    ``shapes/00200.png``) as scenarios accept it."""
    from dla.catalog import IMAGE_DIR
    from dla.scenario.load import IMAGE_SUFFIXES

    if Path(value).is_file():
        return str(Path(value).resolve())
    if any((IMAGE_DIR / f"{value}{s}").is_file() for s in ("", *IMAGE_SUFFIXES)):
        return value
    shipped = ", ".join(sorted(p.name for p in IMAGE_DIR.iterdir() if p.suffix in IMAGE_SUFFIXES))
    raise UserInputError(f"--image {value}: file not found, and not a shipped image ({shipped}, shapes/NNNNN.png)")


def demo_plan(model: str | None = None, image: str | Path | None = None, weights: str | Path | None = None,
              seed: int | None = None) -> DemoPlan:
    """The demo scenario for ``model`` (a shipped cfg name or a .cfg path; default the shipped
    trained shapes-yolo), real ``weights`` (a Darknet .weights file; default: the shipped
    model's trained weights, or seeded random ones for another cfg), ``image`` (default: the
    shipped sample images).  User mistakes raise ``UserInputError`` naming the option."""
    from dla.catalog import resolve_cfg, shipped_model
    from dla.scenario.load import SCENARIO_DIR, parse_yaml

    path = SCENARIO_DIR / "demo.yaml"
    data, lines = parse_yaml(path, path.read_text())
    data = copy.deepcopy(data)
    notes: list[str] = []
    if seed is not None and weights is not None:
        raise UserInputError("--seed generates weights; it does not go with --weights")
    if seed is not None and model is None:
        raise UserInputError("--seed goes with --model: the demo's own model (shapes-yolo) has trained weights")
    if weights is not None and not Path(weights).is_file():
        raise UserInputError(f"--weights {weights}: file not found")
    shipped = model is None and weights is None
    if not shipped:
        cfg = resolve_cfg(model).resolve() if model is not None else shipped_model(data["model"]["trained"]).cfg
        data["model"] = {"cfg": str(cfg)}
        if weights is not None:
            data["model"]["weights"] = str(Path(weights).resolve())
        else:
            data["model"]["seed"] = seed if seed is not None else 0
        step = _step_layer(cfg)
        data["step"] = [{**data["step"][0], "stop": step}]
        data["cross"] = [{**data["cross"][0], "layer": step}]
    if image is not None:
        data["images"] = [_image(str(image))]
    if model is not None:  # another network: calibration and checks of the shipped model do not apply
        data["quant"]["calib"] = {"images": list(data["images"])}  # shipped sample names resolve there too
        notes.append("calibrated on the input image(s), as `dla infer` does")
        checks = []
        for c in data["checks"]:
            if "cycles" in c:
                notes.append("no fps check: the 100 fps target is the shipped 64x64 shapes-yolo's; the cycle "
                             "model's fps for this model is reported, not checked")
                continue
            if "detections" in c and weights is None:
                notes.append("no detections check: seeded random weights detect nothing meaningful "
                             "(give --weights for real ones)")
                continue
            checks.append(c)
        data["checks"] = checks
    if not shipped:
        data["description"] = (f"{data['description']} — run on {Path(data['model']['cfg']).name}"
                               f"{' with ' + Path(weights).name if weights else ' with seeded weights'}"
                               + (": " + "; ".join(notes) if notes else ""))
    return DemoPlan(data, lines, path, notes)


__all__ = ["DemoPlan", "demo_plan"]
