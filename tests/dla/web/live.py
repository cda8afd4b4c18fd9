"""A real ``dla serve`` in a subprocess on a free loopback port (for the load and browser tests)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(data_dir: Path, *extra: str) -> Iterator[str]:
    port = free_port()
    log = open(data_dir.parent / f"server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", "from dla.cli import main; main()", "serve", "--port", str(port),
                             "--data", str(data_dir), *extra], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"dla serve did not start: {(data_dir.parent / f'server-{port}.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def serve_process(data: Path, port: int) -> subprocess.Popen:
    """``dla serve`` on ``port`` with its output discarded, once it answers /login; the caller
    kills it (the crash and restart tests need the bare process)."""
    proc = subprocess.Popen([sys.executable, "-c", "from dla.cli import main; main()", "serve", "--port", str(port),
                             "--data", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("dla serve did not start")
