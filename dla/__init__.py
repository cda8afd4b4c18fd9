"""The DLA model: hardware config, integer arithmetic and kernels, engines, CLI."""

__version__ = "0.1.0"
