"""Resource limits of the work the workbench starts: every engine computation (Run and Quantize
jobs, STEP sessions) runs in a worker process that ``confine`` caps, and the server refuses up
front a model or image whose activations cannot fit (``check_fits``).

* memory: ``RLIMIT_AS`` (the whole address space of the worker, libraries included — about
  0.4 GiB of it is numpy/matplotlib/the engine before any work) = ``dla serve --max-job-memory``.
  Beyond it an allocation fails (``MemoryError``): the job fails / the STEP session is closed
  with a message naming the limit.  The kernel's OOM killer is told to pick a worker first
  (``oom_score_adj`` 1000), never the server.
* time: ``--max-job-seconds`` per job, and per STEP command (the server kills the worker).
* a worker dies with the server (``PR_SET_PDEATHSIG``): a killed server leaves no orphan
  holding gigabytes.
"""
from __future__ import annotations

import os
import resource
import signal
from pathlib import Path
from typing import Any

from golden.errors import UserInputError

GIB = 1 << 30
#: What a worker's address space holds before any work (Python, numpy, matplotlib, the engine,
#: thread stacks): measured ~0.4 GiB; the up-front check leaves this much aside.
WORKER_BASELINE = 3 * GIB // 4
DEFAULT_MAX_JOB_MEMORY = 4 * GIB
DEFAULT_MAX_JOB_SECONDS = 1800.0


class LimitExceeded(UserInputError):
    """Work that does not fit the server's limits (answered 413)."""


def human(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / (1 << 20):.0f} MiB"


def confine(max_memory: int | None) -> None:
    """Called first thing in a worker process (see the module's docstring)."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)
    except (OSError, AttributeError):
        pass
    if max_memory:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))


def memory_message(max_memory: int | None, what: str) -> str:
    return (f"{what} needs more memory than this server allows per job ({human(max_memory or 0)}, "
            "dla serve --max-job-memory)")


def estimate_bytes(kind: str, path: str | Path, image_meta: dict[str, Any] | None) -> tuple[int, Any]:
    """``(bytes, network)``: the activation estimate (``golden.network.estimate_activation_bytes``)
    of the model file (a cfg, or a .qnet folder's cfg text) plus the decoded image (RGB bytes,
    float32 planes and the resized copy)."""
    from golden.network import estimate_activation_bytes

    if kind == "qnet":
        from dla.qnet_file import qnet_network

        net = qnet_network(path)
    else:
        from golden.network import parse_network

        net = parse_network(path)
    total = estimate_activation_bytes(net)
    if image_meta and "width" in image_meta and "height" in image_meta:
        total += int(image_meta["width"]) * int(image_meta["height"]) * 3 * (1 + 4 + 4)
    return total, net


def check_fits(max_memory: int | None, kind: str, path: str | Path, name: str,
               image_meta: dict[str, Any] | None = None) -> None:
    """``LimitExceeded`` if the model ``name`` (with the image) cannot run within ``max_memory``."""
    if not max_memory:
        return
    need, net = estimate_bytes(kind, path, image_meta)
    room = max_memory - WORKER_BASELINE
    if need > room:
        c, h, w = net.input_shape
        raise LimitExceeded(f"{name} ({w}x{h}x{c} input, {len(net.layers)} layers) needs about {human(need)} for "
                            f"its activations; this server allows {human(max_memory)} per job "
                            f"(dla serve --max-job-memory), of which {human(room)} for activations")
