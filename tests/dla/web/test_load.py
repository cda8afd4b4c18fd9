"""Load: 20 simulated users at once against a real server on loopback.

Each user signs up, logs in, lists files, uploads the tiny model and an image, runs it
(FLOAT + INT, a job) and waits for it.  Every request must succeed; the p95 latency of the
non-job routes is printed (never asserted: wall time depends on the machine)."""
from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.dla.web.helpers import DOG, TINY_CFG
from tests.dla.web.live import live_server

USERS = 20


def _user(url: str, k: int, cfg: bytes, img: bytes) -> list[tuple[str, float]]:
    times: list[tuple[str, float]] = []
    with httpx.Client(base_url=url, timeout=120) as c:
        def call(route: str, method: str, path: str, **kw) -> httpx.Response:
            t0 = time.perf_counter()
            r = c.request(method, path, headers={"X-CSRF-Token": c.cookies.get("dla_csrf", "")}, **kw)
            times.append((route, time.perf_counter() - t0))
            assert r.status_code == 200, (route, r.status_code, r.text)
            return r

        call("page", "GET", "/login")
        call("signup", "POST", "/api/signup", json={"username": f"user{k}", "password": "load-test-pw"})
        call("logout", "POST", "/api/logout")
        call("login", "POST", "/api/login", json={"username": f"user{k}", "password": "load-test-pw"})
        call("list", "GET", "/api/files")
        m = call("upload", "PUT", "/api/files?name=tiny.cfg", content=cfg).json()
        i = call("upload", "PUT", "/api/files?name=dog.jpg", content=img).json()
        call("list", "GET", "/api/files")
        job = call("job-submit", "POST", "/api/jobs/run",
                   json={"model_id": m["id"], "image_id": i["id"], "modes": ["int"], "quant": {"calib_n": 1}}).json()
        while True:
            j = call("job-poll", "GET", f"/api/jobs/{job['id']}").json()
            if j["status"] not in ("queued", "running"):
                break
            time.sleep(0.3)
        assert j["status"] == "done", j
        call("list", "GET", "/api/files")
    return times


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) > 1 else xs[0]


@pytest.mark.slow
def test_twenty_concurrent_users(tmp_path) -> None:
    cfg, img = TINY_CFG.read_bytes(), DOG.read_bytes()
    with live_server(tmp_path / "data") as url:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(USERS) as pool:
            results = list(pool.map(lambda k: _user(url, k, cfg, img), range(USERS)))
        wall = time.perf_counter() - t0
    all_times = [t for r in results for t in r]
    non_job = [s for route, s in all_times if not route.startswith("job")]
    by_route: dict[str, list[float]] = {}
    for route, s in all_times:
        by_route.setdefault(route, []).append(s)
    print(f"\n{USERS} users, {len(all_times)} requests in {wall:.1f} s; p95 of non-job routes "
          f"{p95(non_job) * 1e3:.0f} ms (without signup/login, argon2-bound: "
          f"{p95([s for route, s in all_times if route not in ('signup', 'login') and not route.startswith('job')]) * 1e3:.0f} ms)")
    for route, xs in sorted(by_route.items()):
        print(f"  {route:<11} n={len(xs):>3}  median {statistics.median(xs) * 1e3:6.0f} ms  p95 {p95(xs) * 1e3:6.0f} ms")
