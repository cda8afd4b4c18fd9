"""What a test needs from outside Python's reach: system tools, optional modules, files.

One rule, written once: a missing requirement is a test **failure in CI** (environment variable
``CI`` set to anything non-empty, as .ci/run and every CI service do) with the command that
installs it, and a **skip elsewhere** with the same message.  A path that CI never exercises must
not look green, while a developer without Chromium can still run the rest of the suite.

Tests that must fail even outside CI (the RTL tests without iverilog, the graph test without dot)
assert on ``shutil.which`` directly; this module is only for "fail in CI, skip elsewhere".
"""
from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set and non-empty."""
    return bool(os.environ.get("CI"))


def missing(problem: str) -> NoReturn:
    """Stop the current test because ``problem`` (what is missing + how to install it): a
    failure in CI, a skip elsewhere.  Never returns."""
    if in_ci():
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


def require_tool(*names: str, hint: str) -> str:
    """The path of the first of ``names`` found on PATH (e.g. ``"node", "nodejs"``); if none
    is, :func:`missing` with "<name> is not installed: <hint>"."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    missing(f"{' / '.join(names)} is not installed: {hint}")


def require_module(name: str, hint: str) -> ModuleType:
    """The imported module ``name``; if it cannot be imported, :func:`missing` with
    "<name> (Python) is missing: <hint>"."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} (Python) is missing: {hint}")


def require_file(path: Path, hint: str) -> Path:
    """``path`` if it exists; else :func:`missing` with "<path> is missing: <hint>"."""
    if not path.exists():
        missing(f"{path} is missing: {hint}")
    return path


#: Debian's Chromium, the browser Playwright drives (no browser download; .ci/run installs it).
CHROMIUM = Path("/usr/bin/chromium")


def require_browser() -> str:
    """Playwright for Python and Debian's Chromium, for the report and workbench browser tests;
    returns Chromium's path (for ``executable_path``)."""
    require_module("playwright.sync_api", "pip install -e '.[test]'")
    return str(require_file(CHROMIUM, "apt-get install -y chromium"))
