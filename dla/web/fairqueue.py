"""Job slots shared fairly between users.

One global FIFO let one user's queue delay everybody (4 queued jobs of one user held another
user's tiny job from 3 s to 18 s).  Here a free slot goes to the waiting user who was served
least recently (never served first; ties: who has waited longest), and to that user's oldest
waiting job.  So a user's job waits for at most the jobs already running plus one job of each
other user who is also waiting, however long anyone's queue is.
"""
from __future__ import annotations

import itertools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class FairSlots:
    """At most ``slots`` jobs run at once; waiting jobs are admitted user by user (see module)."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: OrderedDict[int, deque[int]] = OrderedDict()  # user -> job ids, in arrival order
        self._served: dict[int, int] = {}  # user -> tick of their last admission
        self._tick = itertools.count()
        self.admitted: list[int] = []  # job ids in the order they got a slot (for the tests and the docs)

    def _next(self) -> int | None:
        """The job the next free slot goes to."""
        if not self._waiting:
            return None
        user = min(self._waiting, key=lambda u: self._served.get(u, -1))  # min is stable: arrival order breaks ties
        return self._waiting[user][0]

    def _remove(self, user_id: int, job_id: int) -> None:
        q = self._waiting.get(user_id)
        if q is not None and job_id in q:
            q.remove(job_id)
            if not q:
                del self._waiting[user_id]

    def wake(self) -> None:
        """Let waiting jobs look at their ``give_up`` now (after a cancel, at shutdown)."""
        with self._cond:
            self._cond.notify_all()

    @contextmanager
    def slot(self, user_id: int, job_id: int, give_up: Callable[[], bool]) -> Iterator[bool]:
        """Wait for this job's turn; yields True holding a slot, or False if ``give_up()`` became
        true while waiting (cancelled, server closing): then it holds nothing."""
        with self._cond:
            self._waiting.setdefault(user_id, deque()).append(job_id)
            while not (self._running < self.slots and self._next() == job_id):
                if give_up():
                    self._remove(user_id, job_id)
                    self._cond.notify_all()  # the head of the queue may have changed
                    yield False
                    return
                self._cond.wait(0.5)
            self._remove(user_id, job_id)
            self._served[user_id] = next(self._tick)
            self._running += 1
            self.admitted.append(job_id)
        try:
            yield True
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
