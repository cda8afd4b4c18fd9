"""Darknet loading and the FLOAT golden engine (bottom of the import graph: numpy, Pillow only)."""
from golden.engine import forward
from golden.network import Network, load_network, parse_network

__all__ = ["Network", "forward", "load_network", "parse_network"]
