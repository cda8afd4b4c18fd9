"""The model page's API (``/api/models/...``; the model's own page is ``pages.py``): the graph (Graphviz SVG and JSON from ``dla.graph``) and one layer's
details (shapes, parameters, MACs, its operand widths — ``precision``: a .qnet's
``quant.precision.LayerPrecision.to_dict()``, ``null`` for a cfg — and its row of
``dla.cycles.network_cycles``)."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dla.web.auth import current_user
from dla.web.context import WebContext, ctx
from dla.web.db import User
from dla.web.modelref import model_ref
from dla.web.modelref import ModelRef, parse
from dla.web.storage import NotFound

router = APIRouter(prefix="/api/models")
_render_lock = threading.Lock()


@lru_cache(maxsize=32)
def _analysis(ref: ModelRef, key: str) -> dict[str, Any]:
    """Graph JSON and cycles of one version of one model file (cached: files only change by version)."""
    from dla.config import HardwareConfig
    from dla.cycles import network_cycles
    from dla.graph import graph_data
    from dla.web.modelref import load

    # a .qnet's layers come with its integers (and widths); a cfg needs no weights
    resolved = load(ref) if ref.kind == "qnet" else None
    qnet = resolved.qnet if resolved is not None else None
    net = qnet.net if qnet is not None else parse(ref)
    # a .qnet is costed at its own widths on its own hardware (which it was checked against)
    hw = resolved.hw if resolved is not None else HardwareConfig()
    nc = network_cycles(net, hw, qnet.precisions() if qnet is not None else None)
    return {"graph": graph_data(net), "cycles": {lc.index: lc.to_dict() for lc in nc.layers},
            "total_cycles": nc.total_cycles, "fps": nc.fps, "latency_ms": nc.latency_ms,
            "layers": [{"index": s.index, "type": s.kind.value, "inputs": list(s.inputs), "in_shape": list(s.in_shape),
                        "out_shape": list(s.out_shape), "params": s.n_params, "macs": s.macs,
                        "precision": qnet.precision(s).to_dict() if qnet is not None else None} for s in net.layers],
            "input": list(net.input_shape), "name": net.name}


def _ref(c: WebContext, user: User, model_id: int) -> tuple[ModelRef, int, str]:
    """The model, its version, and a cache key that also changes if an id is ever reused."""
    with c.db.session() as db:
        ref = model_ref(c.storage, db, user.id, model_id)
        rec = c.storage.get(db, user.id, model_id)
        version, key = rec.version, f"{rec.version}@{rec.created_at.isoformat()}"
    return ModelRef(ref.kind, ref.path, ref.name), version, key


@router.get("/{model_id}")
def model_summary(model_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    ref, version, key = _ref(c, user, model_id)
    a = _analysis(ref, key)
    return {"id": model_id, "name": ref.name, "kind": ref.kind, "version": version, "input": a["input"],
            "layers": a["layers"], "total_cycles": a["total_cycles"], "fps": a["fps"], "latency_ms": a["latency_ms"]}


@router.get("/{model_id}/graph.json")
def graph_json(model_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    ref, _, key = _ref(c, user, model_id)
    return _analysis(ref, key)["graph"]


@lru_cache(maxsize=32)
def _svg(ref: ModelRef, key: str) -> bytes:
    import tempfile

    from dla.graph import render

    net = parse(ref)
    with tempfile.TemporaryDirectory() as tmp:
        return render(net, Path(tmp) / "graph.svg").read_bytes()


@router.get("/{model_id}/graph.svg")
def graph_svg(model_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> Response:
    ref, _, key = _ref(c, user, model_id)
    with _render_lock:
        svg = _svg(ref, key)
    return Response(svg, media_type="image/svg+xml")


@router.get("/{model_id}/layers/{index}")
def layer(model_id: int, index: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    ref, _, key = _ref(c, user, model_id)
    a = _analysis(ref, key)
    if not 0 <= index < len(a["layers"]):
        raise NotFound(f"layer {index} not found: {a['name']} has layers 0..{len(a['layers']) - 1}")
    return {**a["layers"][index], "cycles": a["cycles"].get(index)}
