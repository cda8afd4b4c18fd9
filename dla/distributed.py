"""A Dask client for the commands that fan work out (``dla regress``, ``dla tune``).

``dask_client(workers, scheduler)`` connects to ``scheduler`` (an address, refused with one
clear message when unreachable) or starts a ``LocalCluster`` of ``workers`` processes with one
thread each, and returns ``(client, cluster or None)``; the caller closes both.  Dask's retry
of a task whose worker died is off (``allowed-failures: 0``) and each worker thread takes one
task at a time, so a task that kills its worker takes down only itself.
"""
from __future__ import annotations

from typing import Any

from golden.errors import UserInputError

SCHEDULER_TIMEOUT_S = 10


class SchedulerError(UserInputError):
    """The Dask scheduler given by address cannot be reached."""


def dask_client(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    import dask
    from dask.distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0,
                     "distributed.logging.distributed": "error"})
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler} within {SCHEDULER_TIMEOUT_S} s "
                                 f"({type(exc).__name__}: {exc}); nothing was run") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=50)
    return Client(cluster), cluster


__all__ = ["SCHEDULER_TIMEOUT_S", "SchedulerError", "dask_client"]
