"""The model page's API (graph, layer details with cycles), and the CLI commands."""
from __future__ import annotations

from click.testing import CliRunner
from PIL import Image

from dla.cli import cli
from tests.dla.web.helpers import DOG, YOLO_CFG, Client


def test_graph_and_layer_details(alice: Client) -> None:
    m = alice.upload_ok("yolov3-tiny.cfg", YOLO_CFG)["id"]
    summary = alice.get(f"/api/models/{m}").json()
    assert summary["name"] == "yolov3-tiny.cfg" and len(summary["layers"]) == 24 and summary["total_cycles"] > 0
    g = alice.get(f"/api/models/{m}/graph.json").json()
    assert any(e["kind"] == "route" for e in g["edges"])
    svg = alice.get(f"/api/models/{m}/graph.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    layer = alice.get(f"/api/models/{m}/layers/0").json()
    assert layer["out_shape"] == [16, 416, 416] and layer["macs"] > 0 and layer["cycles"]["total_cycles"] > 0
    assert alice.get(f"/api/models/{m}/layers/24").status_code == 404
    img = alice.upload_ok("dog.jpg", DOG)["id"]
    assert alice.get(f"/api/models/{img}").status_code == 404  # not a model


def test_pages_render_for_a_user(alice: Client) -> None:
    m = alice.upload_ok("yolov3-tiny.cfg", YOLO_CFG)["id"]
    for page in ("/", "/run", "/quantize", "/step", f"/models/{m}"):
        r = alice.get(page)
        assert r.status_code == 200 and "alice" in r.text, page
    assert "cdn" not in alice.get("/").text.lower() and "http" not in alice.get("/static/app.js").text


def test_cli_augment(tmp_path) -> None:
    r = CliRunner().invoke(cli, ["augment", str(DOG), "-o", str(tmp_path / "aug")])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "aug").iterdir())
    assert names == ["dog-blur.png", "dog-flip.png", "dog-flop.png", "dog-original.png", "dog-rotate.png"]
    with Image.open(tmp_path / "aug" / "dog-flop.png") as flop, Image.open(DOG) as orig:
        assert flop.size == orig.size
        assert flop.getpixel((0, 0)) == orig.convert("RGB").getpixel((orig.width - 1, 0))


def test_cli_augment_bad_input(tmp_path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    r = CliRunner().invoke(cli, ["augment", str(bad), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Error:" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(cli, ["augment", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not found" in r.output


def test_cli_serve_help_and_bad_database() -> None:
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0 and "--no-signup" in r.output and "--database-url" in r.output
    r = CliRunner().invoke(cli, ["serve", "--database-url", "nonsense://x", "--data", "/tmp/dla-web-bad"])
    assert r.exit_code == 2 and r.output.startswith("Error:") and "Traceback" not in r.output


def test_graph_without_graphviz_names_the_install_line(alice: Client, monkeypatch) -> None:
    """The server lacks Graphviz's dot: the SVG request says which package and command (the
    model page shows it in place of the graph; test_e2e checks that in a browser)."""
    import shutil

    from dla.doctor import apt_line
    from dla.web import model_page

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd == "dot" else real(cmd, *a, **k))
    model_page._svg.cache_clear()
    m = alice.upload_ok("yolov3-tiny.cfg", YOLO_CFG)["id"]
    r = alice.get(f"/api/models/{m}/graph.svg")
    assert r.status_code == 422 and apt_line(["graphviz"]) in r.json()["detail"]
    assert "Graphviz" in r.json()["detail"]
    assert alice.get(f"/api/models/{m}/graph.json").status_code == 200  # the rest of the page still works


def test_layer_details_name_the_precision_of_a_qnet(alice: Client, qnet_zip: bytes, monkeypatch) -> None:
    """The layer panel's data: a .qnet's layers carry ``precision`` (LayerPrecision.to_dict(),
    label included: w8a8 for a conv, host for yolo), a cfg's carry ``null`` (no widths yet);
    widths set in the quantized network (int16 output, a host conv) reach the panel as they are."""
    from dla.web import model_page, modelref

    cfg = alice.upload_ok("yolov3-tiny.cfg", YOLO_CFG)["id"]
    assert alice.get(f"/api/models/{cfg}/layers/0").json()["precision"] is None
    q = alice.upload_ok("t.qnet", qnet_zip)["id"]
    layers = alice.get(f"/api/models/{q}").json()["layers"]
    labels = [lay["precision"]["label"] for lay in layers]
    kinds = [lay["type"] for lay in layers]
    assert {lb for lb, k in zip(labels, kinds) if k == "convolutional"} == {"w8a8"}
    assert {lb for lb, k in zip(labels, kinds) if k == "yolo"} == {"host"}
    assert alice.get(f"/api/models/{q}/layers/0").json()["precision"] == {
        "weight_bits": 8, "input_bits": [8], "output_bits": 8, "host": False, "label": "w8a8"}

    real = modelref.load

    def widened(ref):  # the quantizer's widths by hand, until `dla quantize` writes them
        r = real(ref)
        if ref.kind == "qnet":
            convs = [s.index for s in r.qnet.net.layers if s.kind.value == "convolutional"]
            r.qnet.bits[convs[0]] = 16
            r.qnet.host = frozenset({convs[1]})
        return r

    monkeypatch.setattr(modelref, "load", widened)
    model_page._analysis.cache_clear()
    layers = alice.get(f"/api/models/{q}").json()["layers"]
    convs = [lay for lay in layers if lay["type"] == "convolutional"]
    assert convs[0]["precision"]["label"] == "w8a8>a16" and convs[0]["precision"]["output_bits"] == 16
    assert convs[1]["precision"]["label"] == "host" and convs[1]["precision"]["host"] is True
    # the cycle model of the page costs the .qnet at its own widths: the host conv only moves bytes
    cyc = alice.get(f"/api/models/{q}/layers/{convs[1]['index']}").json()["cycles"]
    assert cyc["bound"] == "host" and cyc["host"] is True and cyc["weight_bytes"] == 0
    assert alice.get(f"/api/models/{q}/layers/{convs[0]['index']}").json()["cycles"]["output_bits"] == 16
    model_page._analysis.cache_clear()
