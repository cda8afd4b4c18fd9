"""Job slots are shared user by user: another user's queue delays a job by at most the jobs
already running (one global FIFO let one user's 4 queued jobs hold another's for 15 s)."""
from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from dla.web.fairqueue import FairSlots
from tests.dla.web.helpers import DOG, TINY_CFG, Client, tiny_weights_bytes


def _wait_queued(slots: FairSlots, job: int) -> None:
    end = time.monotonic() + 10
    while not any(job in q for q in slots._waiting.values()):
        assert time.monotonic() < end
        time.sleep(0.01)


def test_least_recently_served_user_goes_first() -> None:
    slots, release, threads = FairSlots(1), threading.Event(), []

    def job(user: int, jid: int, hold: bool = False) -> None:
        with slots.slot(user, jid, lambda: False) as ok:
            assert ok
            if hold:
                release.wait(10)

    def start(user: int, jid: int, hold: bool = False) -> None:
        t = threading.Thread(target=job, args=(user, jid, hold))
        t.start()
        threads.append(t)

    start(1, 10, hold=True)  # user 1's first job runs
    while slots.admitted != [10]:
        time.sleep(0.01)
    for jid in (11, 12, 13):  # user 1 queues three more
        start(1, jid)
        _wait_queued(slots, jid)
    start(2, 20)  # then user 2 one
    _wait_queued(slots, 20)
    start(3, 30)  # and user 3 one
    _wait_queued(slots, 30)
    release.set()
    for t in threads:
        t.join(10)
    assert slots.admitted == [10, 20, 30, 11, 12, 13]


def test_a_cancelled_waiting_job_gives_up_its_place() -> None:
    slots, release, gone = FairSlots(1), threading.Event(), threading.Event()
    got: list[bool] = []

    def holder() -> None:
        with slots.slot(1, 1, lambda: False):
            release.wait(10)

    def waiter() -> None:
        with slots.slot(2, 2, gone.is_set) as ok:
            got.append(ok)

    t1, t2 = threading.Thread(target=holder), threading.Thread(target=waiter)
    t1.start()
    while slots.admitted != [1]:
        time.sleep(0.01)
    t2.start()
    _wait_queued(slots, 2)
    gone.set()
    slots.wake()
    t2.join(10)
    assert got == [False] and slots._waiting == {}
    release.set()
    t1.join(10)


def test_second_users_job_waits_for_one_job_only(app_factory) -> None:
    """One worker; alice queues 4 runs, then bob 1: bob's starts right after alice's first."""
    app = app_factory(job_workers=1)
    with TestClient(app) as ta, TestClient(app) as tb:
        alice, bob = Client(ta), Client(tb)
        alice.signup("alice")
        bob.signup("bob")
        ids = {}
        for who, c in (("alice", alice), ("bob", bob)):
            ids[who] = (c.upload_ok("tiny.cfg", TINY_CFG)["id"], c.upload_ok("dog.jpg", DOG)["id"],
                        c.upload_ok("tiny.weights", tiny_weights_bytes())["id"])

        def run(c: Client, who: str) -> int:
            m, i, w = ids[who]
            r = c.post("/api/jobs/run", {"model_id": m, "weights_id": w, "image_id": i, "modes": ["float"]})
            assert r.status_code == 200, r.text
            return r.json()["id"]

        a = [run(alice, "alice") for _ in range(4)]
        b = run(bob, "bob")
        for j in a:
            assert alice.wait_job(j)["status"] == "done"
        assert bob.wait_job(b)["status"] == "done"
        order = app.state.ctx.jobs.slots.admitted
        assert order[0] == a[0] and order[1] == b, order
