"""dla.tune.report / dla.tune.plots: the page written from a hand-built tune.json alone."""
from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from dla.tune.plots import budget_of, figures, front, metric_label
from dla.tune.report import best_point, headline, layer_rows, report_html, write_report
from golden.errors import UserInputError
from tests.dla.tune.tune_data import not_met_json, tune_json


def _images(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(m)))
            for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_names_the_chosen_point_and_embeds_the_plots(tmp_path):
    path = write_report(tune_json(), tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert "BUDGET MET" in page and "BUDGET NOT MET" not in page and 'id="shortfall"' not in page
    head = page[page.index('id="headline"'):page.index('id="search"')]
    assert "c0ffee000004" in head and "L0 weight_bits=4 + bias_correction" in head
    assert "0.800×" in head  # 8000 / 10000 cycles
    assert "0.6345" in head and "drop 0.0055" in head
    assert "Changes from all-int8: <b>L0 weight_bits=4, +bias_correction</b>" in head
    search = page[page.index('id="search"'):]
    assert "6 configurations measured (5 run now, 1 from the cache of an earlier run)" in search and "3^2 = 9" in search
    assert "12.5 s on local:2" in search
    imgs = _images(page)
    assert len(imgs) == 3  # accuracy vs cycles, vs weight bytes, sensitivity
    assert all(im.format == "PNG" and im.size[0] > 300 for im in imgs)
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")


def test_layer_table_compares_with_the_baseline():
    data = tune_json()
    h = headline(data)
    rows = layer_rows(h["point"], h["baseline"])
    assert [r["precision"] for r in rows] == ["w4a8", "a8", "w8a8", "a8"]
    assert [r["changed"] for r in rows] == [True, False, False, False]
    assert rows[0]["base_precision"] == "w8a8" and rows[0]["delta_cycles"] == -2000
    page = report_html(data)
    table = page[page.index('id="layer-table"'):page.index("</table>", page.index('id="layer-table"'))]
    assert table.count('<tr class="chg">') == 1 and "w4a8" in table and "-2,000" in table


def test_sensitivity_ranking_is_listed_in_order():
    page = report_html(tune_json())
    table = page[page.index('id="sensitivity-table"'):]
    assert table.index("18.5") < table.index("31.2")  # layer 2 (drop 0.04) ranked before layer 0


def test_hostile_names_are_escaped():
    evil = '<script>alert("x")</script><img src=x onerror=1>'
    data = tune_json(model=evil, data=evil, method=evil)
    data["points"][4]["label"] = evil
    data["sensitivity"][0]["option"] = evil
    page = report_html(data)
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_budget_not_met_shows_the_shortfall_first(tmp_path):
    data = not_met_json()
    assert best_point(data)["id"] == "c0ffee000004"  # smallest drop when chosen is null
    page = write_report(data, tmp_path).read_text()
    assert "BUDGET NOT MET" in page
    box = page[page.index('id="shortfall"'):page.index("</p>", page.index('id="shortfall"'))]
    assert "shortfall 0.0054" in box and "c0ffee000004" in box and "0.0001" in box
    assert page.index('id="shortfall"') < page.index('id="pareto"')
    assert "Best configuration" in page and "Chosen configuration" not in page


def test_agreement_scoring_is_named_everywhere():
    data = tune_json(scoring="agreement")
    assert metric_label(data) == "agreement mAP@0.5:0.95 (vs FLOAT's detections)"
    page = report_html(data)
    assert "agreement mAP@0.5:0.95" in page and "no labels" in page
    assert "agreement" not in report_html(tune_json()).split("<body>")[1].split('id="pareto"')[0].lower()


def test_pareto_front_and_budget():
    assert front([(3, 0.5), (1, 0.2), (2, 0.2), (2, 0.6), (4, 0.55)]) == [(1, 0.2), (2, 0.6)]
    assert budget_of(tune_json()) == pytest.approx(0.63)
    assert budget_of(tune_json(metric="sqnr", float={"sqnr": "inf"})) is None


def test_an_sqnr_budget_is_against_the_baseline():
    """FLOAT's output SQNR is infinite: tune.json's 'reference' (the baseline's SQNR) is what drops
    are measured from, and the page says so."""
    data = tune_json(metric="sqnr", metric_key="sqnr_db", reference=32.5, max_drop=3.0, scoring="agreement",
                     float={"map50": 0.94, "map50_95": 0.64})
    assert budget_of(data) == pytest.approx(29.5)
    assert metric_label(data) == "SQNR (dB)"  # against FLOAT whatever the scoring: never "agreement"
    h = headline(data)
    assert h["value"] == pytest.approx(100 * 0.6345 - 30) and h["reference"] == "all-int8"
    assert "(all-int8 32.5," in report_html(data)


def test_figures_for_every_cost_axis():
    for cost in ("cycles", "latency", "dram", "weights"):
        figs = figures(tune_json(cost=cost))
        assert set(figs) == {"pareto_cost.png", "pareto_weights.png", "sensitivity.png"}
        assert all(png.startswith(b"\x89PNG") for png in figs.values())
    assert "sensitivity.png" not in figures(tune_json(sensitivity=[]))


def test_an_empty_run_still_renders():
    page = report_html(tune_json(points=[], pareto=[], chosen=None, baseline=None, met=False, sensitivity=[]))
    assert "No configuration was evaluated" in page and "BUDGET NOT MET" in page


@pytest.mark.parametrize("data, needle", [
    ([], "not a JSON object"),
    ({"version": 2, "points": []}, "version 2"),
    ({"version": 1, "points": {}}, "'points' is not a list"),
    ({"version": 1, "points": [{"x": 1}]}, "points[0]"),
])
def test_a_bad_tune_json_is_refused(tmp_path, data, needle):
    with pytest.raises(UserInputError, match=re.escape(needle)):
        write_report(data, tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_a_baseline_that_is_not_all_int8_is_not_called_all_int8(tmp_path):
    """A space whose first option is int4 weights (``weight_bits: [4, 8]``) has an int4 baseline;
    the page called it "all-int8" (relative cost, per-layer table, changes), which misstates the
    comparison.  The default baseline keeps the name."""
    data = tune_json()
    base = next(p for p in data["points"] if p["id"] == data["baseline"])
    base["label"] = "baseline"  # as dla tune labels it (the fixture says "all-int8")
    for row in base["layers"]:
        if row["precision"] == "w8a8":
            row["precision"] = "w4a8"
    page = write_report(data, tmp_path).read_text()
    assert "all-int8" not in page
    head = page[page.index('id="headline"'):page.index('id="search"')]
    assert "0.800×</b> the baseline" in head and "Changes from the baseline" in head
    assert "the baseline precision" in page
    assert headline(tune_json())["base_name"] == "all-int8"


def test_the_search_line_says_where_the_points_ran():
    # it read "12.5 s on in-process" with -j 1
    page = report_html(tune_json(workers="in-process"))
    assert "12.5 s in this process." in page and "on in-process" not in page
