"""Shared pieces of the loader fuzz tests (tests/*/test_fuzz_*.py).

Every fuzz test mutates a real input (cfg, weights, .qnet, scenario, hardware YAML, image),
runs it through the ``dla`` command in this process and checks the user-mistake contract:
exit 0, or exit 2 with exactly one ``Error:`` line and no traceback; no partial output on
failure; no ``NaN``/``Infinity`` in any JSON written on success.  Hypothesis runs a small,
derandomized number of examples (``FUZZ``) so CI stays fast and repeatable.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

from click.testing import Result
from hypothesis import HealthCheck, settings

from tests.cli_helpers import run

ROOT = Path(__file__).resolve().parents[1]
TINY_CFG = ROOT / "tests" / "data" / "scenario" / "tiny-yolo.cfg"

#: Small, derandomized, no deadline (a CLI run takes ~0.1-1 s): fast and repeatable in CI.
#: ``DLA_FUZZ_EXAMPLES=1000`` runs a longer campaign locally.
FUZZ = settings(max_examples=int(os.environ.get("DLA_FUZZ_EXAMPLES", "25")), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


def _no_constant(name: str) -> object:
    raise AssertionError(f"JSON output holds {name}, which is not JSON")


def strict_json(path: Path) -> object:
    """Parse ``path`` refusing ``NaN``/``Infinity`` (Python's json accepts them by default)."""
    return json.loads(path.read_text(), parse_constant=_no_constant)


def clean(res: Result, outputs: tuple[Path, ...] = ()) -> Result:
    """The contract for any input: success, or one clear error (exit 2) with nothing written."""
    assert res.exit_code in (0, 2), (res.exit_code, res.output, repr(res.exception))
    assert "Traceback" not in res.output, res.output
    if res.exit_code == 2:
        assert isinstance(res.exception, SystemExit), repr(res.exception)
        errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, res.output
        for out in outputs:
            assert not out.exists(), f"{out} written by a failed command"
        parents = {o.parent for o in outputs}
        for parent in parents:
            assert not list(parent.glob(".*.part")), f"partial output left in {parent}"
    else:
        for out in outputs:
            if out.suffix == ".json" and out.exists():
                strict_json(out)
    return res


def refused(res: Result, needle: str, outputs: tuple[Path, ...] = ()) -> Result:
    """One clear error containing ``needle`` (exit 2), nothing written."""
    clean(res, outputs)
    assert res.exit_code == 2, res.output
    assert needle in res.output, res.output
    return res


def dla(*args: object) -> Result:
    return run(*args)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width``x``height`` RGB and that has no pixel data at all."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
