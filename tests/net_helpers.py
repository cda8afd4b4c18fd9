"""Building small networks from cfg text in tests (a helper module, not a test module)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from golden.network import Network, parse_network


def net_from_cfg(text: str) -> Network:
    """Parse a cfg text through ``golden.network.parse_network`` (no warnings allowed)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.cfg"
        path.write_text(text, encoding="utf-8")
        net = parse_network(path)
    assert not net.warnings, net.warnings
    return net


def net_header(c: int, h: int, w: int) -> str:
    """The ``[net]`` section of a ``c``-channel ``h``×``w`` input."""
    return f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n\n"
