"""``dla tune``: the cheapest configuration on the DLA that meets an accuracy budget.

A face (like ``dla.eval``): it uses the library, ``dla.eval`` and ``dla.datasets``.  The search
space (``space``), one point's real INT evaluation and its cache (``evaluate``, ``task``),
parallel batches on Dask (``parallel``), the method (``search``), the outputs (``result``;
``report`` draws report.html) and the entry point (``api``).  Method and formats:
docs/tune.md.
"""
from dla.tune.api import TuneRequest, check_out_dir, tune
from dla.tune.result import TuneBudgetNotMet, TuneResult
from dla.tune.space import SearchSpace, build_space, load_space

__all__ = ["SearchSpace", "TuneBudgetNotMet", "TuneRequest", "TuneResult", "build_space", "check_out_dir",
           "load_space", "tune"]
