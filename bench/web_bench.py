"""Workbench latency: from clicking "Step" in the STEP page to the feature maps shown.

Starts ``dla serve`` on a free loopback port with a temp data dir, drives headless Debian
chromium with Playwright, quantizes yolov3-tiny (seeded weights) through the API, opens a
STEP session on dog.jpg in INT and times, in the browser, the click on "Step" until the
page has loaded the new layer's pictures (input and output feature-map grids, histogram,
weights): for layer 0 (416×416) and for layer 13 (a 13×13 layer).  Prints the medians.

    python3 bench/web_bench.py [--repeats 5]

``--load N``: N simulated users at once instead (no browser): each signs up, logs out, logs
in, lists, uploads tests/data/web/tiny.cfg and dog.jpg, opens a STEP session (FLOAT; its own
worker process), steps twice, fetches the output picture, closes it, runs a FLOAT+INT job and
polls it to the end.  Prints the requests, the errors (any answer but 2xx) and p50/p95 per
route (docs/security.md quotes it).

    python3 bench/web_bench.py --load 20
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dla.catalog import CFG_DIR, DEFAULT_IMAGE

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def start_server(data: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from dla.cli import main; main()", "serve", "--port", str(port),
                             "--data", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/login", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("dla serve did not start")


def prepare(url: str) -> tuple[httpx.Client, int, int]:
    """A user with yolov3-tiny quantized (2 synthetic images) and dog.jpg."""
    c = httpx.Client(base_url=url, timeout=300)
    c.get("/login")
    h = {"X-CSRF-Token": c.cookies["dla_csrf"]}
    c.post("/api/signup", json={"username": "bench", "password": "bench-password"}, headers=h).raise_for_status()
    h = {"X-CSRF-Token": c.cookies["dla_csrf"]}  # the login's own token (bound to the session)
    cfg = c.put("/api/files?name=yolov3-tiny.cfg", content=(CFG_DIR / "yolov3-tiny.cfg").read_bytes(), headers=h).json()
    img = c.put("/api/files?name=dog.jpg", content=DEFAULT_IMAGE.read_bytes(), headers=h).json()
    job = c.post("/api/jobs/quantize", json={"model_id": cfg["id"], "output": "yt.qnet"}, headers=h).json()
    while (j := c.get(f"/api/jobs/{job['id']}").json())["status"] in ("queued", "running"):
        time.sleep(0.3)
    if j["status"] != "done":
        raise SystemExit(f"quantize failed: {j['message']}")
    return c, j["result"]["kept"]["yt.qnet"]["id"], img["id"]


def click_to_shown(page, button: str, layer: int) -> float:
    t0 = time.perf_counter()
    page.click(button)
    page.wait_for_function(f"(document.body.dataset.shown || '').startsWith('{layer}:')", polling=5)
    return (time.perf_counter() - t0) * 1e3


def load_user(url: str, k: int, cfg: bytes, img: bytes) -> list[tuple[str, float, int]]:
    """One simulated user's session: (route, seconds, status) per request."""
    out: list[tuple[str, float, int]] = []
    with httpx.Client(base_url=url, timeout=600) as c:
        def call(route: str, method: str, path: str, **kw) -> httpx.Response:
            t0 = time.perf_counter()
            r = c.request(method, path, headers={"X-CSRF-Token": c.cookies.get("dla_csrf", "")}, **kw)
            out.append((route, time.perf_counter() - t0, r.status_code))
            return r

        call("page", "GET", "/login")
        call("signup", "POST", "/api/signup", json={"username": f"load{k}", "password": "load-bench-pw"})
        call("logout", "POST", "/api/logout")
        call("login", "POST", "/api/login", json={"username": f"load{k}", "password": "load-bench-pw"})
        call("list", "GET", "/api/files")
        m = call("upload", "PUT", "/api/files?name=tiny.cfg", content=cfg).json()
        i = call("upload", "PUT", "/api/files?name=dog.jpg", content=img).json()
        call("list", "GET", "/api/files")
        st = call("step-open", "POST", "/api/step", json={"model_id": m["id"], "image_id": i["id"], "mode": "float"})
        if st.is_success:
            sid = st.json()["id"]
            for _ in range(2):
                call("step-cmd", "POST", f"/api/step/{sid}/command", json={"command": "next"})
            call("step-picture", "GET", f"/api/step/{sid}/picture/output_grid.png")
            call("step-close", "DELETE", f"/api/step/{sid}")
        job = call("job-submit", "POST", "/api/jobs/run",
                   json={"model_id": m["id"], "image_id": i["id"], "modes": ["float", "int"], "quant": {"calib_n": 1}})
        if job.is_success:
            while True:
                j = call("job-poll", "GET", f"/api/jobs/{job.json()['id']}")
                if not j.is_success or j.json()["status"] not in ("queued", "running"):
                    if j.is_success and j.json()["status"] != "done":
                        out.append(("job-result", 0.0, 599))  # counted as an error
                    break
                time.sleep(0.3)
        call("list", "GET", "/api/files")
    return out


def load(users: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    here = Path(__file__).resolve().parent.parent
    cfg, img = (here / "tests" / "data" / "web" / "tiny.cfg").read_bytes(), DEFAULT_IMAGE.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "data")
        try:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(users) as pool:
                results = list(pool.map(lambda k: load_user(url, k, cfg, img), range(users)))
            wall = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    rows = [r for rs in results for r in rs]
    errors = [r for r in rows if not 200 <= r[2] < 300]
    by_route: dict[str, list[float]] = {}
    for route, secs, _ in rows:
        if route != "job-result":
            by_route.setdefault(route, []).append(secs)

    def pct(xs: list[float], q: int) -> float:
        return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]

    print(f"{users} users at once: {len(rows)} requests in {wall:.1f} s, {len(errors)} errors"
          + (f" ({', '.join(sorted({f'{r[0]} {r[2]}' for r in errors}))})" if errors else ""))
    print(f"| route | requests | p50 ms | p95 ms |\n|---|---|---|---|")
    for route, xs in sorted(by_route.items()):
        print(f"| {route} | {len(xs)} | {pct(xs, 50) * 1e3:.0f} | {pct(xs, 95) * 1e3:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--load", type=int, default=0, metavar="USERS", help="the load test with USERS users instead")
    args = ap.parse_args()
    if args.load:
        load(args.load)
        return
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "data")
        try:
            client, qnet_id, _ = prepare(url)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                # bypass_csp: wait_for_function's predicate is eval'd, which the server's CSP forbids
                ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
                ctx.add_cookies([{"name": k, "value": v, "url": url} for k, v in client.cookies.items()])
                page = ctx.new_page()
                page.set_default_timeout(120_000)
                first, thirteen = [], []
                for _ in range(args.repeats):
                    page.goto(f"{url}/step?model={qnet_id}")
                    page.wait_for_selector("#image option", state="attached")
                    page.click("#open")
                    page.wait_for_selector("#stepper", state="visible")
                    first.append(click_to_shown(page, "#next", 0))  # runs layer 0 (416x416), then its pictures
                    page.fill("#goto-input", "12")
                    click_to_shown(page, "#goto", 12)
                    thirteen.append(click_to_shown(page, "#next", 13))  # layer 13: 13x13
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    print(f"STEP click -> feature maps shown (yolov3-tiny INT, dog.jpg, {args.repeats} repeats, median):")
    print(f"  layer 0  (16x416x416 output): {statistics.median(first):7.0f} ms  (all: {', '.join(f'{t:.0f}' for t in first)})")
    print(f"  layer 13 (256x13x13 output):  {statistics.median(thirteen):7.0f} ms  (all: {', '.join(f'{t:.0f}' for t in thirteen)})")


if __name__ == "__main__":
    main()
