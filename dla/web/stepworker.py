"""A STEP session in a worker process of its own, and the server's handle on it.

The session (model, image, every layer's output, edits) lives in the worker, capped by
``dla.web.limits.confine`` (memory) and by a time limit per request, so a huge model or a
runaway command costs the worker, never the server: the worker is killed, the session closed
and the user told why.  Requests go one at a time over a pipe: ``(op, args)`` in,
``("ok", result)`` / ``("error", message)`` / ``("memory", "")`` out; ``op`` is one of the
``StepState.op_*`` methods (state, command, load_weights, picture, export); what goes over
the pipe is data (a parsed ``dla.debugger.commands`` command in, JSON-able dicts out, the
debugger's results as ``Result.data()``).  Pictures are files in the session's folder, which
the server reads.
"""
from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dla.web.limits import LimitExceeded, confine, human, memory_message
from dla.web.storage import NotFound
from golden.errors import UserInputError

OPS = ("state", "command", "load_weights", "picture", "export")
#: Building the session (loading the model, decoding the image) may take this long (or the
#: per-command limit if longer).
OPEN_SECONDS = 600.0


def worker_main(conn: Any, opener: Callable[..., Any], open_args: dict[str, Any], max_memory: int | None) -> None:
    """The worker: build the session (``opener(**open_args)``, i.e. ``dla.web.stepping.open_state``),
    then answer requests until the pipe closes."""
    import traceback

    confine(max_memory)
    st = None
    try:
        st = opener(**open_args)
        conn.send(("ok", None))
    except MemoryError:
        st = None
        conn.send(("memory", ""))
        return
    except UserInputError as exc:
        conn.send(("error", str(exc)))
        return
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op not in OPS:
                raise UserInputError(f"unknown STEP request {op!r}")
            conn.send(("ok", getattr(st, f"op_{op}")(*args)))
        except MemoryError:
            conn.send(("memory", ""))  # the state may be half-changed: the server closes the session
            return
        except UserInputError as exc:
            conn.send(("error", str(exc) if not isinstance(exc, NotFound) else f"404:{exc}"))
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user as a message
            traceback.print_exc()
            conn.send(("error", f"internal error: {type(exc).__name__}: {exc}"))


class RemoteStep:
    """The server's handle on one STEP worker: ``call(op, *args)`` with the time limit."""

    def __init__(self, sid: str, proc: Any, conn: Any, pictures: Path, open_args: dict[str, Any],
                 max_memory: int | None, max_seconds: float) -> None:
        self.id, self.proc, self.conn, self.pictures = sid, proc, conn, pictures
        self.model_id: int = open_args["model_id"]
        self.model_name: str = open_args["model_name"]
        self.model_version: int = open_args["model_version"]
        self.image_name: str = open_args["image_name"]
        self.mode: str = open_args["mode"]
        self.index = -1
        self.max_memory, self.max_seconds = max_memory, max_seconds
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.closed = False
        self.on_dead: Callable[[], None] = lambda: None  # set by StepSessions: forget this session

    @classmethod
    def start(cls, mp: Any, sid: str, opener: Callable[..., Any], open_args: dict[str, Any], pictures: Path,
              max_memory: int | None, max_seconds: float) -> "RemoteStep":
        """Start the worker and wait until the session is built (its errors are the user's).
        ``opener(**open_args)`` builds the session's state in the worker: a module-level function
        (it travels by name), given by the caller so that this module never imports the one
        that uses it."""
        mine, theirs = mp.Pipe()
        proc = mp.Process(target=worker_main, args=(theirs, opener, open_args, max_memory), daemon=True,
                          name=f"step-{sid}")
        proc.start()
        theirs.close()
        st = cls(sid, proc, mine, pictures, open_args, max_memory, max_seconds)
        with st.lock:
            st._answer("open", max(OPEN_SECONDS, max_seconds or 0))
        return st

    def call(self, op: str, *args: Any) -> Any:
        """One request to the worker; raises what it raised.  A worker over its memory or time
        limit (or dead) is killed and the session closed: ``LimitExceeded`` says why."""
        with self.lock:
            if self.closed:
                raise NotFound(f"STEP session {self.id} not found (closed)")
            self.last_used = time.monotonic()
            try:
                self.conn.send((op, args))
            except (OSError, ValueError):
                self._gone("its process ended")
            result = self._answer(op, self.max_seconds)
        if op in ("state", "command", "load_weights"):
            state = result["state"] if op != "state" else result
            self.index = state["index"]
            state["model_version"] = self.model_version  # a save over the model moves it on
        return result

    def _answer(self, op: str, seconds: float | None) -> Any:
        end = time.monotonic() + seconds if seconds else None
        while True:
            try:
                if self.conn.poll(0.2):
                    status, payload = self.conn.recv()
                    break
            except (EOFError, OSError):
                self._gone(self._death())
            if not self.proc.is_alive() and not self.conn.poll(0):
                self._gone(self._death())
            if end is not None and time.monotonic() > end:
                self._gone(f"the {'session could not be opened' if op == 'open' else op} took longer than "
                           f"{seconds:g} s (dla serve --max-job-seconds)")
        if status == "ok":
            return payload
        if status == "memory":
            self._gone(memory_message(self.max_memory, "this STEP session"))
        if payload.startswith("404:"):
            raise NotFound(payload[4:])
        if op == "open":
            self.close()
        raise UserInputError(payload)

    def _death(self) -> str:
        self.proc.join(1)
        code = self.proc.exitcode
        if code is not None and code < 0 and self.max_memory:  # killed (the OOM killer, or by hand)
            return f"its process was killed (signal {-code}); the limit is {human(self.max_memory)} per session"
        return f"its process ended (exit code {code})"

    def _gone(self, why: str) -> None:
        self.close()
        self.on_dead()
        raise LimitExceeded(f"{why}: the STEP session was closed")

    def close(self) -> None:
        """End the worker and delete the pictures (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.conn.close()
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        shutil.rmtree(self.pictures, ignore_errors=True)
