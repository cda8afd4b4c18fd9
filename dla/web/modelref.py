"""From the user's files to the library's objects: a cfg (+ weights, or seeded random weights)
or a .qnet.  Plain paths go in, so the same code runs in the server and in job workers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dla.config import HardwareConfig
from golden.errors import UserInputError
from golden.network import Network
from quant.qnet import QuantizedNetwork


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


@dataclass
class Loaded:
    net: Network
    qnet: QuantizedNetwork | None
    hw: HardwareConfig


def stem(name: str) -> str:
    return name[: -len(".qnet")] if name.endswith(".qnet") else Path(name).stem


def parse(ref: ModelRef) -> Network:
    """The network's layers only (graph, layer details, cycles): no weights needed."""
    if ref.kind == "qnet":
        return load(ref).net
    from golden.network import parse_network

    net = parse_network(ref.path, ref.darknet)
    net.cfg_path = Path(ref.name)  # the model is named after the user's file, not the disk id
    return net


def load(ref: ModelRef) -> Loaded:
    if ref.kind == "qnet":
        from dla.qnet_file import load_qnet

        qnet, hw, _ = load_qnet(ref.path)
        if ref.darknet not in ("auto", qnet.net.darknet.value):
            raise UserInputError(f"{ref.name} was quantized for {qnet.net.darknet.value}'s Darknet; "
                                 f"Darknet {ref.darknet} contradicts it")
        qnet.net.cfg_path = Path(stem(ref.name) + ".cfg")
        return Loaded(qnet.net, qnet, hw)
    net = parse(ref)
    if ref.weights:
        from golden.weights import read_weights

        try:
            read_weights(net, ref.weights)
        except UserInputError as exc:  # the message names the disk path: name the user's files instead
            raise UserInputError(str(exc).replace(ref.weights, "the weights file")) from None
    else:
        from golden.genweights import random_weights

        random_weights(net, seed=ref.seed)
    return Loaded(net, None, HardwareConfig())
