"""The network as a graph: nodes (layers) and edges (who reads whom), drawn by Graphviz.

``graph_data(net)`` is the JSON the web workbench draws: nodes with index, type, output
shape, MACs, parameters (and an optional per-layer value), edges ``{"from", "to", "kind"}``
with ``kind`` = ``next`` (the previous layer), ``route`` or ``shortcut`` (a reference in the
cfg) — the edge list equals the cfg's references.  ``render(net, path)`` lays it out with
Graphviz ``dot`` (a real layered layout; Debian package ``graphviz``) and colours nodes by a
value (e.g. isolated SQNR or cycles).
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from dla.doctor import install_hint
from dla.fileio import write_bytes_atomic
from golden.draw import label_text_colour
from golden.errors import UserInputError
from golden.layers import Kind
from golden.network import Network


def graph_data(net: Network, values: dict[int, float] | None = None, value_name: str = "") -> dict[str, Any]:
    nodes = [{"id": -1, "type": "input", "shape": list(net.input_shape), "macs": 0, "params": 0}]
    edges = []
    for spec in net.layers:
        node: dict[str, Any] = {"id": spec.index, "type": spec.kind.value, "shape": list(spec.out_shape),
                                "macs": spec.macs, "params": spec.n_params}
        if values is not None and spec.index in values:
            v = values[spec.index]
            node["value"] = v if math.isfinite(v) else str(v)
        nodes.append(node)
        for src in spec.inputs:
            kind = "next" if src == spec.index - 1 and spec.kind not in (Kind.ROUTE, Kind.SHORTCUT) else \
                ("shortcut" if spec.kind in (Kind.SHORTCUT, Kind.SCALE_CHANNELS) else
                 ("route" if spec.kind is Kind.ROUTE else "next"))
            edges.append({"from": src, "to": spec.index, "kind": kind})
    return {"model": net.name, "value": value_name or None, "nodes": nodes, "edges": edges}


def _colour(v: float, lo: float, hi: float) -> str:
    import matplotlib

    cmap = matplotlib.colormaps["RdYlGn"]
    t = 0.5 if hi <= lo else (min(max(v, lo), hi) - lo) / (hi - lo)
    r, g, b, _ = cmap(t)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def text_colour(fill: str) -> str:
    """``#000000`` or ``#ffffff``, whichever contrasts more with the ``#rrggbb`` fill (so the
    label of a dark red node is white): ``golden.draw.label_text_colour``."""
    rgb = tuple(int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % label_text_colour(rgb)  # type: ignore[arg-type]


class GraphvizMissing(UserInputError):
    """Graphviz's ``dot`` is not on ``PATH`` (the Python package ``graphviz`` only calls it)."""


def require_dot() -> str:
    """Path of Graphviz's ``dot``; raises :class:`GraphvizMissing` naming the package and the
    install line (the same as ``dla doctor``'s) when it is missing."""
    path = shutil.which("dot")
    if path is None:
        raise GraphvizMissing("drawing the graph needs Graphviz's 'dot', which is not installed: "
                              f"{install_hint(tools=('dot',))} (Debian/Ubuntu; see 'dla doctor')")
    return path


def render(net: Network, path: str | Path, values: dict[int, float] | None = None, value_name: str = "",
           fmt: str | None = None) -> Path:
    """Write the graph as SVG/PNG/PDF with Graphviz ``dot`` (:func:`require_dot` first)."""
    require_dot()
    import graphviz

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".") or "svg"
    data = graph_data(net, values, value_name)
    finite = [v for v in (values or {}).values() if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    g = graphviz.Digraph(net.name, format=fmt, graph_attr={"rankdir": "TB", "fontname": "Helvetica"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                    "fontsize": "10", "fillcolor": "#eeeeee"})
    for n in data["nodes"]:
        shape = "x".join(map(str, n["shape"]))
        label = f"{n['id']} {n['type']}\\n{shape}"
        attrs = {}
        if "value" in n and isinstance(n["value"], (int, float)):
            label += f"\\n{value_name} {n['value']:.3g}"
            attrs["fillcolor"] = _colour(n["value"], lo, hi)
            attrs["fontcolor"] = text_colour(attrs["fillcolor"])
        g.node(str(n["id"]), label, **attrs)
    for e in data["edges"]:
        style = {"next": {}, "route": {"color": "#1f77b4", "style": "dashed"},
                 "shortcut": {"color": "#d62728", "style": "dashed"}}[e["kind"]]
        g.edge(str(e["from"]), str(e["to"]), **style)
    out = g.pipe(format=fmt)
    write_bytes_atomic(path, out)
    return path
