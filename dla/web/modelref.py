"""The workbench's reference to a model among the user's files: a stored cfg (+ stored weights,
or seeded random weights) or a stored .qnet, by disk path and by the name the user gave it.

Plain paths go in, so the same code runs in the server and in job workers; loading is
``dla.resolve.resolve_model`` (the resolver every face uses), with two web rules on top: the
model is named after the user's file, never the disk id, and error messages name "the weights
file" instead of its disk path."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dla.resolve import ForkMismatchError, ResolvedModel, resolve_model
from golden.errors import UserInputError
from golden.network import Network

if TYPE_CHECKING:
    from dla.web.storage import Storage


@dataclass(frozen=True)
class ModelRef:
    """Where a model is on disk and what the user calls it (picklable: it crosses to workers)."""

    kind: str  # "cfg" or "qnet"
    path: str
    name: str  # the user's file name
    weights: str | None = None  # a .weights path (cfg only); None = seeded random weights
    seed: int = 0
    darknet: str = "auto"  # pjreddie | alexeyab | auto (golden.forks); a .qnet keeps its own

    def to_dict(self) -> dict[str, Any]:
        return dict(kind=self.kind, path=self.path, name=self.name, weights=self.weights, seed=self.seed,
                    darknet=self.darknet)


def stem(name: str) -> str:
    return name[: -len(".qnet")] if name.endswith(".qnet") else Path(name).stem


def parse(ref: ModelRef) -> Network:
    """The network's layers only (graph, layer details, cycles): no weights needed."""
    if ref.kind == "qnet":
        return load(ref).net
    return resolve_model(ref.path, darknet=ref.darknet, display_name=ref.name).net


def load(ref: ModelRef) -> ResolvedModel:
    """The model with its weights (a cfg without a weights file gets seeded random weights)
    and hardware (the .qnet's own, else the default)."""
    if ref.kind == "qnet":
        try:
            return resolve_model(ref.path, darknet=ref.darknet, display_name=ref.name)
        except ForkMismatchError as exc:
            raise UserInputError(f"{exc.name} was quantized for {exc.quantized}'s Darknet; "
                                 f"Darknet {exc.wanted} contradicts it") from None
    try:
        return resolve_model(ref.path, ref.weights, seed=None if ref.weights else ref.seed, darknet=ref.darknet,
                             display_name=ref.name)
    except UserInputError as exc:  # the message names the disk path: name the user's files instead
        if ref.weights and ref.weights in str(exc):
            raise UserInputError(str(exc).replace(ref.weights, "the weights file")) from None
        raise


def model_ref(storage: Storage, db: Any, user_id: int, model_id: int, weights_id: int | None = None,
              darknet: str = "auto") -> ModelRef:
    """The user's model file (cfg or .qnet) and optional weights, by id, ownership checked."""
    rec = storage.get(db, user_id, model_id, ("cfg", "qnet"))
    weights = None
    if weights_id is not None:
        if rec.kind != "cfg":
            raise UserInputError("weights go with a cfg; a .qnet carries its own")
        weights = str(storage.path(storage.get(db, user_id, weights_id, ("weights",))))
    return ModelRef(rec.kind, str(storage.path(rec)), rec.name, weights, darknet=darknet)
