"""The compiled requantizer is compiled once and then loaded from disk, and the user is told when
a compilation (a pause of seconds to tens of seconds) happens.

Each case runs a fresh Python process: numba's in-memory dispatcher would hide a second
compilation inside one process.  ``NUMBA_CACHE_DIR`` points the cache at a temporary folder so
the first process really compiles (the repository's own ``__pycache__`` may already hold it).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dla import fused

pytestmark = pytest.mark.skipif(not fused.available, reason="numba missing (test_fused fails for that)")

# One INT requantization through dla.int_kernels (the fused path), then what dla.fused saw.
SCRIPT = """
import json, sys
import numpy as np
{prelude}
from dla import fused
from dla.config import HardwareConfig
from dla.int_kernels import LayerPlan, _requant_blocks
from dla.requant import encode
hw = HardwareConfig()
acc = np.arange(-600, 600, dtype=np.float64).reshape(4, 300) * 997
plan = LayerPlan(out_scale=0.05, in_scales=[0.02], b_q=np.arange(4) * 7, rq=encode(np.full(4, 0.0007), hw))
plan.rq_neg = encode(np.full(4, 0.00007), hw)
out, _ = _requant_blocks(acc, "leaky", plan, hw)
print(json.dumps({{"compile_seconds": fused.compile_seconds(), "sum": int(np.asarray(out, np.int64).sum())}}))
"""


def _run(cache_dir: Path, prelude: str = "") -> tuple[dict, str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(prelude=prelude)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.slow
def test_compiled_once_then_loaded_from_disk_with_a_notice_only_when_compiling(tmp_path: Path) -> None:
    first, err1 = _run(tmp_path)
    assert fused.COMPILE_NOTICE in err1  # the pause is announced before it happens
    assert first["compile_seconds"] > 0
    assert any(tmp_path.rglob("*.nbi")), "numba wrote no cache index"
    second, err2 = _run(tmp_path)
    assert fused.COMPILE_NOTICE not in err2  # a cache hit says nothing ...
    assert second["compile_seconds"] == 0.0  # ... and compiles nothing
    assert second["sum"] == first["sum"]


@pytest.mark.slow
def test_no_writable_cache_still_runs(tmp_path: Path) -> None:
    """Where numba finds no cache location it refuses ``cache=True`` at import; the kernels are
    then compiled per process instead of failing the import."""
    prelude = "import numba.core.caching as c; c.CacheImpl._locator_classes = []"
    got, err = _run(tmp_path, prelude)
    assert fused.COMPILE_NOTICE in err
    assert got["compile_seconds"] > 0
    assert not any(tmp_path.rglob("*.nbi"))
