"""Readable reports: detection labels and roofline labels never cover each
other, graph text contrasts with its node's fill, the CLI table header is not cut."""
from __future__ import annotations

import itertools
import re
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from dla.config import HardwareConfig
from dla.cycles import network_cycles
from dla.cycles.report import roofline_figure
from dla.graph import _colour, render, text_colour
from dla.catalog import resolve_cfg
from dla.scenario.text import summary_lines
from golden.detect import Detection
from golden.draw import (contrast_ratio, detection_label_rects, draw_detections, label_text_colour, place_labels,
                         rects_overlap)
from golden.network import parse_network


def _sizes(dets: list[Detection]) -> list[tuple[float, float]]:
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = ImageFont.load_default()
    out = []
    for d in dets:
        b = draw.textbbox((0, 0), f"{d.name} {d.prob:.2f}", font=font)
        out.append((b[2] - b[0] + 4, b[3] - b[1] + 4))
    return out


def _disjoint(rects) -> bool:
    return not any(rects_overlap(a, b) for a, b in itertools.combinations(rects, 2))


# the issue's picture: real yolov3-tiny on dog.jpg, 'truck 0.55' and 'car 0.52' on one box
DOG = [Detection(2, "car", 0.618, (465, 71, 679, 170)), Detection(1, "bicycle", 0.586, (206, 151, 576, 450)),
       Detection(16, "dog", 0.564, (129, 187, 369, 518)), Detection(7, "truck", 0.553, (533, 95, 621, 157)),
       Detection(2, "car", 0.519, (533, 95, 621, 157))]


def test_detection_labels_do_not_overlap_on_the_issue_picture() -> None:
    rects = detection_label_rects(DOG, (768, 576), _sizes(DOG))
    assert _disjoint(rects)
    assert all(0 <= r[0] and 0 <= r[1] and r[2] <= 768 and r[3] <= 576 for r in rects)
    # the most confident label keeps the natural place: just above its box's corner
    assert rects[0][:2] == (465, 71 - _sizes(DOG)[0][1])


@pytest.mark.parametrize("seed", range(40))
def test_detection_labels_do_not_overlap_on_random_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))
    dets = []
    for k in range(n):
        if k and rng.random() < 0.3:  # same box, another class (as NMS per class leaves them)
            box = dets[-1].box
        else:
            x1, y1 = rng.uniform(0, 560), rng.uniform(0, 420)
            box = (x1, y1, x1 + rng.uniform(5, 200), y1 + rng.uniform(5, 150))
        dets.append(Detection(int(rng.integers(0, 80)), f"class{k}", float(rng.uniform(0.3, 1)), box))
    rects = detection_label_rects(dets, (640, 480), _sizes(dets))
    assert _disjoint(rects)


def test_place_labels_spreads_out_when_every_candidate_is_taken() -> None:
    rects = place_labels([[(0, 0)]] * 5, [(10, 10)] * 5, (0, 0, 100, 100))
    assert _disjoint(rects) and len(set(rects)) == 5


def test_drawn_picture_uses_readable_label_text(tmp_path) -> None:
    img = tmp_path / "im.png"
    Image.new("RGB", (768, 576), (128, 128, 128)).save(img)
    out = draw_detections(img, DOG)
    assert out.size == (768, 576)
    for d in DOG:
        assert contrast_ratio(label_text_colour(_rgb(d)), _rgb(d)) >= 4.5


def _rgb(d: Detection) -> tuple[int, int, int]:
    from golden.draw import class_colour

    return class_colour(d.cls)


@pytest.mark.parametrize("hw", [HardwareConfig(), HardwareConfig(rows=8, cols=8)])
def test_roofline_labels_do_not_overlap(hw: HardwareConfig) -> None:
    nc = network_cycles(parse_network(resolve_cfg("yolov3-tiny")), hw)
    fig = roofline_figure(nc)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    anns = [t for t in ax.texts if t.get_gid() == "roofline-label"]
    boxes = [tuple(t.get_window_extent(renderer).extents) for t in anns]
    assert anns and _disjoint(boxes)
    labelled = sorted(int(i) for t in anns for i in t.get_text().split(","))
    assert labelled == sorted(l.index for l in nc.layers if l.macs)  # every computing layer, once
    points = ax.collections[0].get_offsets()
    for x, y in points:  # no label covers a point
        px, py = ax.transData.transform((x, y))
        assert not any(rects_overlap((px - 2, py - 2, px + 2, py + 2), b) for b in boxes)


def test_graph_text_contrasts_with_every_fill() -> None:
    for t in np.linspace(0, 1, 201):
        fill = _colour(float(t), 0.0, 1.0)
        rgb = tuple(int(fill[i:i + 2], 16) for i in (1, 3, 5))
        txt = tuple(int(text_colour(fill)[i:i + 2], 16) for i in (1, 3, 5))
        assert contrast_ratio(rgb, txt) >= 4.5, (fill, text_colour(fill))
    assert text_colour("#a50026") == "#ffffff" and text_colour("#feffbe") == "#000000"


def test_rendered_graph_svg_text_is_readable(tmp_path) -> None:
    assert shutil.which("dot"), "Graphviz 'dot' is needed: apt-get install graphviz"
    net = parse_network(resolve_cfg("yolov3-tiny"))
    svg = render(net, tmp_path / "g.svg", {s.index: float(s.index) for s in net.layers}, "v").read_text()
    nodes = re.findall(r'<g id="node\d+" class="node">(.*?)</g>', svg, re.S)
    checked = 0
    for n in nodes:
        fill = re.search(r'<path fill="(#[0-9a-f]{6})"', n).group(1)
        texts = re.findall(r"<text [^>]*?>", n)
        for t in texts:
            m = re.search(r'fill="(#[0-9a-f]{6})"', t)
            colour = m.group(1) if m else "#000000"  # Graphviz's default font colour
            rgb = lambda h: tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))  # noqa: E731
            assert contrast_ratio(rgb(fill), rgb(colour)) >= 4.5, (fill, colour)
            checked += 1
    assert checked > 40


def test_cli_table_header_names_every_column_in_full() -> None:
    variants = ["mse/per_channel", "percentile/per_tensor"]
    layers = [{"variant": v, "image": "a", "mode": m, "index": i, "type": "convolutional", "shape": "8x4x4",
               "precision": {"label": "w8a8"}, "sqnr_db": 20.0 + i, "saturated_pct": 0.0, "overflow": 0}
              for v in variants for m in ("hybrid", "int") for i in range(2)]
    s = {"scenario": "s", "model": {"name": "m", "weights": "w"}, "hw_source": "default", "hw": {"rows": 16, "cols": 16},
         "images": [{"name": "a"}], "layers": layers, "outputs": [], "cycles": None, "checks": []}
    lines = summary_lines(s)
    legend, head, row = lines[1], lines[2], lines[3]
    for v in variants:
        assert f"HYB {v}" in head and f"INT {v}" in head
    assert "HYB = HYBRID" in legend
    # every value ends under the end of its column's name
    ends = [m.end() for m in re.finditer(r"(HYB|INT) \S+", head)]
    value_ends = [m.end() for m in re.finditer(r"2[01]\.0", row)]
    assert ends == value_ends
