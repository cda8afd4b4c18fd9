"""This process's resident memory from /proc (Linux): the current RSS and the peak since the
last ``reset_peak`` (``VmHWM``, reset by writing 5 to /proc/self/clear_refs, Linux >= 4.0).

The workbench tests run the app in the test process (TestClient), so the server's memory
is this process's: a refused bomb must not raise its peak."""
from __future__ import annotations

from pathlib import Path


def _status(field: str, pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def rss(pid: int | str = "self") -> int:
    return _status("VmRSS", pid)


def peak(pid: int | str = "self") -> int:
    return _status("VmHWM", pid)


def reset_peak(pid: int | str = "self") -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
