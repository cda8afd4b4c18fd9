"""Every shipped scenario runs (by name, as a user would) and passes its own checks; the
demo's HTML report opens in a real headless Chromium without console errors, plots drawn."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from junitparser import JUnitXml

from dla.scenario.load import shipped_scenarios
from tests.cli_helpers import ok
from tests.tools import CHROMIUM, require_browser

SINGLE = ["demo", "granularity", "algorithms", "log2-hw", "acc16-overflow", "rtl-regression", "precision", "tune"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_the_list_is_complete() -> None:
    assert sorted(SINGLE + ["hw-sweep"]) == shipped_scenarios()
    res = ok("scenarios")
    assert all(name in res.output for name in shipped_scenarios())


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shipped")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "rtl-regression" else n for n in SINGLE])
def test_shipped_scenario_runs_and_passes(name: str, reports: Path) -> None:
    out = reports / name
    res = ok("run", name, "-o", out, "-q")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["checks"], res.output
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    assert xml.tests == len(summary["checks"]) and xml.failures == 0 and xml.errors == 0
    assert (out / "report.html").stat().st_size > 50_000  # the plots are embedded
    if name == "rtl-regression":
        assert [r["ok"] for r in summary["rtl"]] == [True, True] and summary["rtl"][0]["tiles_run"] == 3
    if name == "acc16-overflow":
        assert sum(r["overflow"] for r in summary["layers"]) > 0
    if name == "precision":  # the heads (13, 20) int16 in one variant, on the host in another
        prec = {(r["variant"].rsplit("/", 1)[1], r["index"]): r["precision"] for r in summary["layers"]}
        for head in (13, 20):
            assert [prec[(v, head)]["label"] for v in ("all-int8", "int16-heads", "heads-on-host")] == \
                ["w8a8", "w8a8>a16", "host"]
            assert prec[("int16-heads", head + 1)]["input_bits"] == [16]  # its yolo layer reads int16
    if name == "tune":  # the search found a cheaper configuration within the budget, and wrote tune/
        assert summary["tune"]["met"] and summary["tune"]["relative_cost"] < 1
        assert [c["name"] for c in summary["checks"]] == ["tune"]
        assert json.loads((out / "tune" / "tune.json").read_text())["chosen"] == summary["tune"]["chosen"]


@pytest.mark.slow
def test_matrix_scenario_runs_under_regress(reports: Path) -> None:
    out = reports / "hw-sweep"
    res = ok("regress", "hw-sweep", "-j", "2", "-o", out, "-q")
    assert "2/2 scenarios passed" in res.output
    a, b = (json.loads((out / n / "summary.json").read_text()) for n in ("hw-sweep-default", "hw-sweep-small8"))
    assert a["hw"]["rows"] == 16 and b["hw"]["rows"] == 8
    assert b["cycles"]["total_cycles"] > a["cycles"]["total_cycles"]  # a quarter of the PEs


def _browser():
    """Playwright driving Debian's chromium; missing in CI = a failure with the install command."""
    require_browser()
    from playwright.sync_api import sync_playwright

    return sync_playwright


def test_demo_report_opens_in_headless_chromium(reports: Path, tmp_path: Path) -> None:
    sync_playwright = _browser()
    report = reports / "demo" / "report.html"
    if not report.exists():  # the demo test did not run first (e.g. -k selection)
        ok("run", "demo", "-o", reports / "demo", "-q")
    shots = Path(os.environ.get("DLA_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img.plot", "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])")
            assert problems == []
            assert {alt for alt, *_ in images} >= {"per-layer SQNR", "histogram", "detections", "cycles"}
            assert all(done and w > 300 and h > 200 for _, done, w, h in images), images
            assert page.locator("#checks-table tr").count() == 1 + 5
            assert "PASS" in page.locator("h1 .badge").inner_text()
            shot = shots / "demo-report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    from PIL import Image

    with Image.open(shot) as im:
        assert im.height > 2000  # the whole report, plots included
        colours = im.convert("RGB").resize((64, 256)).getcolors(64 * 256)
        assert colours is not None and len(colours) > 50  # not a blank page
