"""Login throttling: a sliding window of failures per key (an account, a client address).

In-process and in memory on purpose: the workbench is one process (``dla serve``), and a
restart forgetting the counts only gives an attacker one more window.  A key with ``limit``
failures inside the last ``window`` seconds is refused (429) until the oldest of them leaves
the window; ``Retry-After`` says when.  A throttled attempt is refused *before* the password
is checked (no argon2 work, and the right password does not get through either).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    """Failures per key in a sliding window of ``window`` seconds; at most ``limit`` allowed."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            now = self.clock()
            q = self._prune(key, now)
            if len(q) < self.limit:
                return 0
            return max(1, math.ceil(q[len(q) - self.limit] + self.window - now))

    def fail(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            self._prune(key, now)
            self._fails.setdefault(key, deque()).append(now)
            if len(self._fails) > 100_000:  # bounded memory whatever is sent: drop the stalest keys
                for k in sorted(self._fails, key=lambda k: self._fails[k][-1])[:50_000]:
                    del self._fails[k]

    def clear(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)
