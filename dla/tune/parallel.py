"""Evaluating batches of points: from the cache, in this process, or as Dask tasks.

``Evaluator.run(batch)`` returns one measured point per configuration, in the batch's order.
Points already in ``OUT/cache`` are read back; the others run in this process (``-j 1``,
no scheduler: no Dask start-up cost) or as one Dask task each on a ``LocalCluster`` of
``-j N`` single-thread worker processes or an existing scheduler (``--scheduler``), with the
:class:`~dla.tune.task.Task` shipped once to every worker (``Client.scatter(broadcast=True)``).
Each point is cached the moment it is measured.  Which points a search evaluates never
depends on the number of workers (batches are planned before they run), so ``-j 1`` and
``-j 2`` measure the same points with the same results.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dla.tune.evaluate import PointCache, evaluate_point, point_key
from dla.tune.space import Choice, Config
from dla.tune.task import Task

Progress = Callable[[dict[str, Any]], None]


class Evaluator:
    """Measures points of one task; counts what it measured and what it re-used."""

    def __init__(self, task: Task, base: Choice, cache_dir: Path, workers: int = 1, scheduler: str | None = None,
                 on_point: Progress | None = None) -> None:
        self.task, self.base, self.cache = task, base, PointCache(cache_dir)
        self.workers, self.scheduler = workers, scheduler
        self.on_point = on_point
        self.evaluated = 0
        self.cached = 0
        self._client: Any = None
        self._cluster: Any = None
        self._task_future: Any = None
        self._memo: dict[str, dict[str, Any]] = {}

    @property
    def where(self) -> str:
        if self.scheduler:
            return self.scheduler
        return "in-process" if self.workers <= 1 else f"local:{self.workers}"

    def key(self, config: Config) -> str:
        return point_key(self.task.key, config)

    def _dask(self) -> Any:
        if self._client is None:
            from dla.distributed import dask_client

            self._client, self._cluster = dask_client(self.workers, self.scheduler)
            self._task_future = self._client.scatter(self.task, broadcast=True, hash=False)
        return self._client

    def run(self, batch: list[Config]) -> list[dict[str, Any]]:
        keys = [self.key(c) for c in batch]
        todo: dict[str, Config] = {}
        for k, c in zip(keys, batch):
            if k in self._memo or k in todo:
                continue
            hit = self.cache.get(k)
            if hit is not None:
                self._memo[k] = hit
                self.cached += 1
                self._report(k, hit, cached=True)
            else:
                todo[k] = c
        if todo:
            if self.workers <= 1 and not self.scheduler:
                for k, c in todo.items():
                    self._done(k, evaluate_point(self.task, c, self.base))
            else:
                self._run_dask(todo)
        return [self._memo[k] for k in keys]

    def _run_dask(self, todo: dict[str, Config]) -> None:
        from dask.distributed import as_completed

        client = self._dask()
        futures = {client.submit(evaluate_point, self._task_future, c, self.base, key=f"tune-{k[:16]}", pure=False): k
                   for k, c in todo.items()}
        try:
            for fut in as_completed(list(futures)):
                self._done(futures[fut], fut.result())
                fut.release()
        except BaseException:
            client.cancel(list(futures))
            raise

    def _done(self, key: str, point: dict[str, Any]) -> None:
        self._memo[key] = point
        self.evaluated += 1
        self.cache.put(key, point)
        self._report(key, point, cached=False)

    def _report(self, key: str, point: dict[str, Any], cached: bool) -> None:
        if self.on_point:
            self.on_point({"key": key, "point": point, "cached": cached})

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


__all__ = ["Evaluator"]
