"""End to end in a real browser: headless Debian chromium driven by Playwright, against a
real ``dla serve`` on a free loopback port with a temp data dir.

sign up → upload yolov3-tiny.cfg and dog.jpg → graph, click a layer → INT run → download the
report (report.html: checks, embedded plots) → STEP to a layer → edit a weight → re-run → before/after → CROSS → save .qnet; then a
second user sees none of it.  A screenshot of each page goes to ``$DLA_WEB_ARTIFACTS`` (or the
test's tmp dir); with ``DLA_WEB_DOCS_IMG=1`` also to docs/img/ (the pictures in
docs/workbench.md).  Without chromium or playwright the test fails in CI (``CI`` set) with an
install hint, and is skipped elsewhere.
"""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.dla.web.helpers import DOG, YOLO_CFG
from tests.dla.web.live import live_server
from tests.paths import ROOT
from tests.tools import CHROMIUM, require_browser

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
DOCS_IMG = ROOT / "docs" / "img"


def launch(p):
    return p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


@pytest.fixture
def shots(tmp_path: Path):
    out = Path(os.environ.get("DLA_WEB_ARTIFACTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str) -> None:
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("DLA_WEB_DOCS_IMG"):
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMG / f"workbench-{name}.png")

    return shot


def wait_js(page, expression: str, timeout: float = 120.0) -> None:
    """``page.wait_for_function`` without ``eval``: the pages run under the server's CSP
    (``script-src 'self'``, no 'unsafe-eval'), which Playwright's polling predicate would break;
    ``page.evaluate`` goes through the DevTools protocol, outside the page's CSP."""
    import time

    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise AssertionError(f"still false after {timeout:g} s: {expression}")
        time.sleep(0.05)


def watch_csp(page, violations: list[str]) -> None:
    """Collect the page's Content-Security-Policy violations (the UI must need none)."""
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)


def signup(page, url: str, name: str) -> None:
    page.goto(url + "/signup")
    page.fill("#username", name)
    page.fill("#password", "e2e-password")
    page.click("#submit")
    page.wait_for_url(url + "/")


@pytest.mark.slow
def test_browser_workflow(tmp_path: Path, shots) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    with live_server(tmp_path / "data") as url, sync_playwright() as p:
        browser = launch(p)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        csp_violations: list[str] = []
        watch_csp(page, csp_violations)
        signup(page, url, "alice")
        shots(page, "login-done")

        # files: upload the shipped model and photo
        page.set_input_files("#upload-input", [str(YOLO_CFG), str(DOG)])
        expect(page.locator('tr[data-name="dog.jpg"]')).to_be_visible()
        expect(page.locator('tr[data-name="yolov3-tiny.cfg"]')).to_be_visible()
        shots(page, "files")

        # model page: the graph, click layer 8
        page.click('tr[data-name="yolov3-tiny.cfg"] a.open-model')
        page.wait_for_selector("#graph svg g.node")
        page.evaluate("""[...document.querySelectorAll('#graph g.node')]
            .find(g => g.querySelector('title').textContent === '8').dispatchEvent(new MouseEvent('click', {bubbles: true}))""")
        expect(page.locator("#layer-details h2")).to_have_text("layer 8 convolutional")
        expect(page.locator("#layer-table")).to_contain_text("total cycles")
        expect(page.locator("#layer-table")).to_contain_text("precision")  # '-': a cfg has no widths
        shots(page, "model")
        model_id = page.url.rsplit("/", 1)[1]

        # run: INT (FLOAT is the reference), calibrated on 2 synthetic images
        page.goto(f"{url}/run?model={model_id}")
        page.wait_for_selector("#image option", state="attached")
        page.fill("#min-sqnr", "3")
        page.check("#save-qnet")  # keep the calibrated model (by default it stays with the job)
        page.click("#start")
        expect(page.locator("#results")).to_be_visible(timeout=180_000)
        expect(page.locator("#metrics")).to_contain_text("int_sqnr_db")
        expect(page.locator("#metrics")).to_contain_text("w8a8")  # the precision column
        wait_js(page, "document.querySelector('#det-int').complete")
        shots(page, "run")
        expect(page.locator("#checks")).to_contain_text("sqnr int layer final")
        with page.expect_download() as dl:
            page.click("#download-report")
        assert dl.value.suggested_filename == "run-yolov3-tiny-report.html"
        report = tmp_path / "report.html"
        dl.value.save_as(report)
        html = report.read_text()
        assert html.startswith("<!DOCTYPE html>") and 'id="checks-table"' in html and "sqnr int layer final" in html
        assert html.count('<img class="plot"') >= 4 and 'src="data:image/png;base64,' in html
        assert str(tmp_path) not in html  # no server path in what the user takes away
        # the report needs nothing else: opened from disk it shows its plots
        report_page = ctx.new_page()
        report_page.goto(report.as_uri())
        assert report_page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        report_page.close()
        with page.expect_download() as dl:
            page.click("#download-zip")
        bundle = tmp_path / "report.zip"
        dl.value.save_as(bundle)
        with zipfile.ZipFile(bundle) as zf:
            assert {"layers.csv", "summary.json", "detections-int.png", "run-yolov3-tiny-report.html"} <= set(zf.namelist())

        # STEP the calibrated model the run kept
        page.click("#step-link")
        page.wait_for_selector("#image option", state="attached")
        page.click("#open")
        expect(page.locator("#stepper")).to_be_visible()
        page.fill("#goto-input", "2")
        page.click("#goto")
        wait_js(page, "document.body.dataset.shown && document.body.dataset.shown.startsWith('2:')")
        expect(page.locator("#where")).to_contain_text("layer 2")
        shots(page, "step")
        page.fill("#edit-index", "3,0,1,1")
        page.fill("#edit-value", "-5")
        page.click("#edit-apply")
        expect(page.locator("#console")).to_contain_text("weight(s) changed")
        page.click("#rerun")
        expect(page.locator("#console")).to_contain_text("outputs changed")
        expect(page.locator("#diff-view")).to_be_visible()
        wait_js(page, "document.querySelector('#pic-before').complete && document.querySelector('#pic-after').complete")
        shots(page, "step-diff")
        page.click("#cross")
        expect(page.locator("#cross-view")).to_be_visible()
        expect(page.locator("#console")).to_contain_text("SQNR")
        page.click("#save")
        expect(page.locator("#console")).to_contain_text("saved yolov3-tiny-calibrated-edited.qnet")
        page.goto(url + "/quantize")
        page.wait_for_selector("#model option", state="attached")
        shots(page, "quantize")
        page.goto(url + "/")
        expect(page.locator('tr[data-name="yolov3-tiny-calibrated-edited.qnet"]')).to_be_visible()
        alice_files = page.request.get(url + "/api/files").json()["files"]
        page.click("#logout")
        page.wait_for_url(url + "/login")

        # a second user sees nothing of the first
        other = browser.new_context()
        page2 = other.new_page()
        signup(page2, url, "bob")
        expect(page2.locator("#usage")).to_contain_text("0 B of")
        assert page2.locator("#file-list tbody tr").count() == 0
        for f in alice_files:
            assert page2.request.get(f"{url}/api/files/{f['id']}/download").status == 404
        browser.close()
    assert csp_violations == []  # every page of the workflow works under the server's CSP


def _overlap_y(a: dict, b: dict) -> bool:
    return a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


@pytest.mark.slow
def test_step_page_layout(tmp_path: Path, shots) -> None:
    """The STEP page as a user sees it: panels that are not in use are not on the page (no
    broken-image placeholders), the pictures share rows (a grid, not one narrow column), the
    captions are readable text, and after an edit + re-run the diff numbers stand next to the
    before/after pictures (and the CROSS numbers next to its scatter)."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    with live_server(tmp_path / "data") as url, sync_playwright() as p:
        browser = launch(p)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        signup(page, url, "alice")
        page.set_input_files("#upload-input", [str(YOLO_CFG), str(DOG)])
        expect(page.locator('tr[data-name="dog.jpg"]')).to_be_visible()
        files = {f["name"]: f["id"] for f in page.request.get(url + "/api/files").json()["files"]}
        csrf = next(c["value"] for c in ctx.cookies() if c["name"] == "dla_csrf")
        job = page.request.post(url + "/api/jobs/quantize", headers={"X-CSRF-Token": csrf},
                                data={"model_id": files["yolov3-tiny.cfg"], "image_id": files["dog.jpg"],
                                      "output": "tiny-int.qnet", "quant": {"calib": "synthetic", "calib_n": 1}}).json()
        for _ in range(600):
            job = page.request.get(f"{url}/api/jobs/{job['id']}").json()
            if job["status"] not in ("queued", "running"):
                break
            page.wait_for_timeout(500)
        assert job["status"] == "done", job
        qid = job["result"]["kept"]["tiny-int.qnet"]["id"]

        page.goto(f"{url}/step?model={qid}")
        page.wait_for_selector("#image option", state="attached")
        page.click("#open")
        page.fill("#goto-input", "2")
        page.click("#goto")
        wait_js(page, "document.body.dataset.shown && document.body.dataset.shown.startsWith('2:')")
        # not in use: not shown, no placeholder takes room
        for sel in ("#diff-view", "#cross-view", "#pic-before", "#pic-after", "#pic-cross"):
            assert not page.locator(sel).is_visible(), sel
            assert page.locator(sel).bounding_box() is None, sel
        # a grid: input and output side by side, histogram and weights side by side
        box = {k: page.locator(f"#pic-{k}").bounding_box() for k in ("input", "output", "hist", "weights")}
        assert _overlap_y(box["input"], box["output"]) and box["output"]["x"] > box["input"]["x"] + box["input"]["width"] / 2
        assert _overlap_y(box["hist"], box["weights"]) and box["weights"]["x"] > box["hist"]["x"]
        # readable captions naming the layer in text
        cap = page.locator("#step-pictures figcaption").first
        expect(cap).to_contain_text("layer 2 convolutional")
        assert float(cap.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 14

        page.fill("#edit-index", "3,0,1,1")
        page.fill("#edit-value", "-5")
        page.click("#edit-apply")
        expect(page.locator("#console")).to_contain_text("weight(s) changed")
        page.click("#rerun")
        expect(page.locator("#diff-view")).to_be_visible()
        wait_js(page, "document.querySelector('#pic-before').complete && document.querySelector('#pic-after').complete"
                               " && document.querySelector('#pic-after').naturalWidth > 0")
        numbers = page.locator("#diff-numbers")
        expect(numbers).to_be_visible()
        expect(numbers).to_contain_text("outputs changed")
        expect(numbers).to_contain_text("SQNR after vs before")
        expect(numbers).to_contain_text("max |Δ|")
        text = numbers.inner_text()
        console = page.locator("#console").inner_text()
        changed = text.split("outputs changed")[1].split("of")[0].strip()
        assert f"{changed} of" in console  # the same count as `dla step` prints
        b, a, n = (page.locator(s).bounding_box() for s in ("#pic-before", "#pic-after", "#diff-numbers"))
        assert _overlap_y(b, a) and _overlap_y(a, n) and b["x"] < a["x"] < n["x"]  # one row: before | after | numbers
        out = Path(os.environ.get("DLA_WEB_ARTIFACTS") or tmp_path / "screenshots") / "step-page.png"
        page.screenshot(path=str(out), full_page=True)
        if os.environ.get("DLA_WEB_DOCS_IMG"):
            shutil.copyfile(out, DOCS_IMG / "step-page.png")
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 2300, height  # was 2,300-3,700 px with one column of pictures

        page.click("#cross")
        expect(page.locator("#cross-view")).to_be_visible()
        expect(page.locator("#cross-numbers")).to_contain_text("SQNR")
        wait_js(page, "document.querySelector('#pic-cross').complete && document.querySelector('#pic-cross').naturalWidth > 0")
        s, n = page.locator("#pic-cross").bounding_box(), page.locator("#cross-numbers").bounding_box()
        assert _overlap_y(s, n) and n["x"] > s["x"]
        browser.close()


def test_forms_choose_the_fitting_weights_and_warn_about_random_ones(tmp_path: Path, shots) -> None:
    """Run, Quantize and STEP pre-select the .weights that fits the chosen cfg; a cfg without
    one shows the random-weights warning; the calibration set is a multi-select of the photos;
    a .qnet folder (as the CLI writes it) uploads through the folder picker; the icon loads."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from dla.calibration import calibrate
    from dla.config import HardwareConfig
    from dla.qnet_file import save_qnet
    from golden.genweights import random_weights
    from golden.network import parse_network
    from tests.dla.web.helpers import TINY_CFG, tiny_weights_bytes

    weights = tmp_path / "tiny.weights"
    weights.write_bytes(tiny_weights_bytes())
    folder = tmp_path / "t.qnet"
    save_qnet(calibrate(random_weights(parse_network(TINY_CFG), 0), 1, "per_channel"), HardwareConfig(), folder)
    with live_server(tmp_path / "data") as url, sync_playwright() as p:
        browser = launch(p)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        signup(page, url, "alice")
        assert page.request.get(url + "/favicon.ico").headers["content-type"] == "image/x-icon"
        # the weights first, its cfg after: still found (the match is made when the form asks)
        page.set_input_files("#upload-input", [str(weights)])
        expect(page.locator('tr[data-name="tiny.weights"]')).to_be_visible()
        page.set_input_files("#upload-input", [str(TINY_CFG), str(YOLO_CFG), str(DOG)])
        expect(page.locator('tr[data-name="yolov3-tiny.cfg"]')).to_be_visible()
        expect(page.locator("#usage")).to_contain_text("KiB of")
        page.set_input_files("#upload-qnet-dir", str(folder))
        expect(page.locator('tr[data-name="t.qnet"]')).to_be_visible()
        files = {f["name"]: f["id"] for f in page.request.get(url + "/api/files").json()["files"]}

        for path in ("/run", "/quantize", "/step"):
            page.goto(f"{url}{path}?model={files['tiny.cfg']}")
            expect(page.locator("#weights")).to_have_value(str(files["tiny.weights"]))
            expect(page.locator("#weights-note")).to_be_hidden()
            page.select_option("#model", str(files["yolov3-tiny.cfg"]))
            expect(page.locator("#weights")).to_have_value("")
            expect(page.locator("#weights-note")).to_be_visible()
            expect(page.locator("#weights-note")).to_contain_text("random weights")
            if path != "/quantize":  # (Quantize lists cfgs only)
                page.select_option("#model", str(files["t.qnet"]))  # a .qnet carries its own weights
                expect(page.locator("#weights")).to_be_disabled()
                expect(page.locator("#weights-note")).to_be_hidden()
        for path in ("/run", "/quantize"):
            page.goto(url + path)
            page.wait_for_selector("#calib-images option", state="attached")
            expect(page.locator("#calib-images")).to_be_hidden()
            page.select_option("#calib", "images")
            expect(page.locator("#calib-images")).to_be_visible()
            expect(page.locator("#calib-n")).to_be_hidden()

        # a run on random weights says so where its results are
        page.goto(f"{url}/run?model={files['tiny.cfg']}")
        expect(page.locator("#weights")).to_have_value(str(files["tiny.weights"]))
        page.select_option("#weights", "")
        expect(page.locator("#weights-note")).to_be_visible()
        page.select_option("#calib", "images")
        page.select_option("#calib-images", [str(files["dog.jpg"])])
        page.click("#start")
        expect(page.locator("#results")).to_be_visible(timeout=120_000)
        expect(page.locator("#random-result")).to_be_visible()
        expect(page.locator("#random-result")).to_contain_text("seeded random weights")
        expect(page.locator("#download-qnet")).to_be_visible()
        page.click("#keep-qnet")
        expect(page.locator("#step-link")).to_have_text("tiny-calibrated.qnet")
        browser.close()


def test_a_qnet_folder_uploads_once_whatever_was_done_before(tmp_path: Path) -> None:
    """The folder picker's handler is registered once: uploads, renames and deletes done
    before must not add copies of it (each copy would send the folder again, and the second
    upload fails on the name the first one took)."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from dla.calibration import calibrate
    from dla.config import HardwareConfig
    from dla.qnet_file import save_qnet
    from golden.genweights import random_weights
    from golden.network import parse_network
    from tests.dla.web.helpers import TINY_CFG

    folder = tmp_path / "t.qnet"
    save_qnet(calibrate(random_weights(parse_network(TINY_CFG), 0), 1, "per_channel"), HardwareConfig(), folder)
    other = tmp_path / "other.cfg"
    other.write_bytes(TINY_CFG.read_bytes())
    with live_server(tmp_path / "data") as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        signup(page, url, "alice")
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if "/api/files/qnet-folder" in r.url else None)
        page.on("dialog", lambda d: d.accept("renamed.cfg") if d.type == "prompt" else d.accept())
        for f in (TINY_CFG, other):  # two uploads through the file picker
            page.set_input_files("#upload-input", [str(f)])
            expect(page.locator(f'tr[data-name="{f.name}"]')).to_be_visible()
        page.locator('tr[data-name="other.cfg"] button.rename').click()
        expect(page.locator('tr[data-name="renamed.cfg"]')).to_be_visible()
        page.locator('tr[data-name="renamed.cfg"] button.delete').click()
        expect(page.locator('tr[data-name="renamed.cfg"]')).to_have_count(0)
        page.set_input_files("#upload-qnet-dir", str(folder))
        expect(page.locator('tr[data-name="t.qnet"]')).to_be_visible()
        expect(page.locator("#upload-status")).to_have_text("uploaded")
        page.wait_for_timeout(500)  # a duplicate handler would have sent its request by now
        names = [f["name"] for f in page.request.get(url + "/api/files").json()["files"]]
        assert len(sent) == 1, sent
        assert sorted(names) == ["t.qnet", "tiny.cfg"], names
        browser.close()


def test_the_weights_preselection_follows_the_last_chosen_cfg(tmp_path: Path) -> None:
    """Two cfgs chosen in quick succession, the first one's answer arriving last (a busy
    server): the weights shown are the last cfg's, never the first's (which would not fit it)."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from tests.dla.web.helpers import TINY_CFG, tiny_weights_bytes

    weights = tmp_path / "tiny.weights"
    weights.write_bytes(tiny_weights_bytes())
    with live_server(tmp_path / "data") as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        signup(page, url, "alice")
        page.set_input_files("#upload-input", [str(TINY_CFG), str(weights), str(YOLO_CFG)])
        expect(page.locator('tr[data-name="yolov3-tiny.cfg"]')).to_be_visible()
        files = {f["name"]: f["id"] for f in page.request.get(url + "/api/files").json()["files"]}
        page.goto(f"{url}/run?model={files['yolov3-tiny.cfg']}")
        expect(page.locator("#weights-note")).to_be_visible()
        held: list = []
        page.route("**/api/files/*/weights", lambda route: held.append(route))
        page.select_option("#model", str(files["tiny.cfg"]))  # fits tiny.weights ...
        page.select_option("#model", str(files["yolov3-tiny.cfg"]))  # ... but the user moves on
        while len(held) < 2:
            page.wait_for_timeout(50)
        for route in reversed(held):  # the last question answered first
            route.fulfill(response=route.fetch())
            page.wait_for_timeout(300)
        expect(page.locator("#model")).to_have_value(str(files["yolov3-tiny.cfg"]))
        expect(page.locator("#weights")).to_have_value("")
        expect(page.locator("#weights-note")).to_be_visible()
        browser.close()


def test_model_page_without_graphviz_shows_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server without Graphviz's dot: the model page says so (with the install line) where the
    graph would be, instead of "loading the graph…" forever."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from dla.doctor import apt_line

    empty = tmp_path / "no-tools"
    empty.mkdir()
    with monkeypatch.context() as m:  # only the server's PATH lacks dot (it needs no other program)
        m.setenv("PATH", str(empty))
        server = live_server(tmp_path / "data")
        url = server.__enter__()
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            signup(page, url, "bob")
            page.set_input_files("#upload-input", [str(YOLO_CFG)])
            page.click('tr[data-name="yolov3-tiny.cfg"] a.open-model')
            expect(page.locator("#graph-error")).to_contain_text(apt_line(["graphviz"]))
            expect(page.locator("#graph")).not_to_contain_text("loading the graph")
            expect(page.locator("#model-summary")).to_contain_text("layers")
            browser.close()
    finally:
        server.__exit__(None, None, None)
