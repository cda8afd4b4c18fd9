"""`dla eval`'s report: a Δ against FLOAT for every metric (table, CSV, JSON) and a bar chart
whose y-axis says where it starts."""
from __future__ import annotations

import csv
import io

import pytest

from dla.eval.evaluate import EvalReport, Variant, VariantResult


def _report(task: str = "detect") -> EvalReport:
    names = ("map50", "map50_95") if task == "detect" else ("top1", "top5")
    vals = {"float": (0.912, 0.656), "hybrid": (0.913, 0.640), "int": (0.913, 0.571)}
    results = [VariantResult(Variant(m, "-" if m == "float" else "mse", "-" if m == "float" else "per_channel"),
                             dict(zip(names, v)), 0.01, 10) for m, v in vals.items()]
    return EvalReport("m", "d", 10, task, "calib", results)


def test_every_metric_has_its_delta_in_table_csv_and_json() -> None:
    rep = _report()
    lines = rep.table_lines()
    assert "Δ map50" in lines[0] and "Δ map50_95" in lines[0]
    int_row = next(ln for ln in lines if ln.startswith("INT"))
    assert "+0.0010" in int_row and "-0.0850" in int_row  # mAP@0.5 barely moves, mAP@0.5:0.95 drops
    rows = list(csv.DictReader(io.StringIO(rep.to_csv())))
    assert rows[0]["delta_map50"] == "" and float(rows[2]["delta_map50_95"]) == pytest.approx(-0.085)
    js = rep.to_json()["results"]
    assert js[0]["delta_map50"] is None and js[2]["delta_map50"] == pytest.approx(0.001)
    assert js[2]["delta_map50_95"] == pytest.approx(-0.085)
    cls = _report("classify").to_json()["results"]
    assert {"delta_top1", "delta_top5"} <= set(cls[1])


def test_plot_axis_says_where_it_starts() -> None:
    import matplotlib.pyplot as plt

    fig = _report().figure()
    try:
        for ax in fig.axes:
            bottom = ax.get_ylim()[0]
            assert bottom == 0 or f"axis starts at {bottom:.2f}, not 0" in ax.get_ylabel(), ax.get_ylabel()
        assert any(ax.get_ylim()[0] > 0 for ax in fig.axes)  # the zoomed case is the one exercised
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert "-0.085" in texts and "+0.001" in texts, texts
    finally:
        plt.close(fig)
    assert _report().plot_png().startswith(b"\x89PNG")
