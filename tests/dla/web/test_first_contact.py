"""What a first-time user of the workbench ran into, one test per point:
the icon, the quota in human units, the weights that fit the chosen cfg, random weights said
out loud, a calibration set of the user's own photos, a .qnet as the CLI writes it (a folder),
and runs that keep their calibrated model in the job until the user asks to save it."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dla.web.files import human_bytes
from tests.dla.web.helpers import DOG, TINY_CFG, YOLO_CFG, Client, tiny_weights_bytes


def test_favicon_is_an_icon_on_every_page(client_factory) -> None:
    c = client_factory()  # not logged in: the login page asks for it too
    r = c.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "ICO" and {(16, 16), (32, 32), (48, 48)} <= set(im.info["sizes"])
    assert '<link rel="icon" href="/favicon.ico"' in c.get("/login").text


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"),
                                     (12_900_000, "12.3 MiB"), (500 * 2**20, "500 MiB"), (150 * 2**20 + 1, "150 MiB"),
                                     (3 * 2**30 // 2, "1.5 GiB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_quota_is_shown_in_human_units(alice: Client) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")  # noise does not compress: a few KiB
    alice.upload_ok("a.png", buf.getvalue())
    body = alice.get("/api/files").json()
    size = body["files"][0]["size"]
    assert body["quota"] == 8 * 2**20 and body["used"] == size
    assert body["usage"] == f"{human_bytes(size)} of 8 MiB used (0 %)"
    assert body["files"][0]["size_text"] == human_bytes(size) and size > 1024 and "KiB" in human_bytes(size)


# ---------------------------------------------------------------- weights for the chosen cfg
def test_the_weights_that_fit_the_cfg_are_found(alice: Client) -> None:
    """Uploaded before or after the cfg, the .weights whose size is exactly what the cfg needs
    is the one to pre-select; one named like the cfg but of the wrong size is reported, not chosen."""
    from golden.network import parse_network
    from golden.weights import expected_size

    good = alice.upload_ok("random-name.weights", tiny_weights_bytes(1))  # before its cfg: no match at upload
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    wrong = alice.upload_ok("tiny.weights", tiny_weights_bytes()[:-8])  # named like the cfg, 2 floats short
    m = alice.get(f"/api/files/{cfg['id']}/weights").json()
    by = {w["name"]: w for w in m["weights"]}
    need = expected_size(parse_network(TINY_CFG), 0, 2)
    assert by["random-name.weights"]["fits"] and by["random-name.weights"]["expected_size"] == need
    assert not by["tiny.weights"]["fits"] and by["tiny.weights"]["same_stem"] and by["tiny.weights"]["size"] == need - 8
    assert m["best"] == good["id"] and m["parameters"] == (need - 20) // 4
    # a fitting file named like the cfg wins over another fitting one
    alice.delete(f"/api/files/{wrong['id']}")
    right = alice.upload_ok("tiny.weights", tiny_weights_bytes(2))
    assert alice.get(f"/api/files/{cfg['id']}/weights").json()["best"] == right["id"]


def test_no_fitting_weights_means_none_and_only_cfgs_have_weights(alice: Client, bob: Client) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    yolo = alice.upload_ok("yolov3-tiny.cfg", YOLO_CFG)
    alice.upload_ok("tiny.weights", tiny_weights_bytes())
    m = alice.get(f"/api/files/{yolo['id']}/weights").json()
    assert m["best"] is None and [w["fits"] for w in m["weights"]] == [False]
    im = alice.upload_ok("dog.jpg", DOG)
    assert alice.get(f"/api/files/{im['id']}/weights").status_code == 404  # not a cfg
    assert bob.get(f"/api/files/{cfg['id']}/weights").status_code == 404  # not bob's


def test_pages_carry_the_weights_warning_and_the_calibration_set() -> None:
    """The forms have the note the page fills when a cfg runs on random weights, the
    photo-set choice for calibration and the keep-the-.qnet checkbox (the JS needs these ids)."""
    from dla.web.pages import templates

    run = templates.get_template("run.html").render(user=None)
    for needle in ('class="warning weights-note"', 'value="images"', 'class="pick-images" multiple', 'id="save-qnet"',
                   'id="random-result"'):
        assert needle in run, needle
    quant = templates.get_template("quantize.html").render(user=None, activations=[], weight_algs=[], granularities=[])
    assert 'class="pick-images" multiple' in quant and 'class="warning weights-note"' in quant
    step = templates.get_template("step.html").render(user=None)
    assert 'class="pick-weights"' in step and "weights-note" in step


# ---------------------------------------------------------------- runs on random weights say so
def test_a_run_on_random_weights_says_so(alice: Client) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    w = alice.upload_ok("tiny.weights", tiny_weights_bytes())
    body = {"model_id": cfg["id"], "image_id": im["id"], "modes": ["float", "int"]}
    random = alice.wait_job(alice.post("/api/jobs/run", body).json()["id"])
    real = alice.wait_job(alice.post("/api/jobs/run", {**body, "weights_id": w["id"]}).json()["id"])
    assert random["status"] == real["status"] == "done"
    assert random["result"]["random_weights"] is True and real["result"]["random_weights"] is False


# ---------------------------------------------------------------- calibration on the user's photos
def _photos(c: Client, n: int) -> list[dict]:
    rng = np.random.default_rng(7)
    out = []
    for k in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (48 + 8 * k, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append(c.upload_ok(f"photo{k}.png", buf.getvalue()))
    return out


def test_quantize_calibrates_on_a_set_of_the_users_photos(alice: Client, tmp_path: Path) -> None:
    """The scales are those ``dla.calibration.calibrate`` gives on exactly those photos
    (recomputed here from the files), not on synthetic images or the one image."""
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    photos = _photos(alice, 3)
    body = {"model_id": cfg["id"], "output": "mine.qnet",
            "quant": {"calib": "images", "calib_image_ids": [p["id"] for p in photos]}}
    job = alice.wait_job(alice.post("/api/jobs/quantize", body).json()["id"])
    assert job["status"] == "done", job
    assert job["params"]["calib_images"] == ["photo0.png", "photo1.png", "photo2.png"]  # names, no server path
    got = _scales(alice.get(f"/api/files/{job['result']['kept']['mine.qnet']['id']}/download").content, "mine.qnet")
    assert got == _reference_scales(alice, photos, tmp_path)
    assert got != _reference_scales(alice, [], tmp_path, images=2)  # not the default synthetic set


def test_run_calibrates_on_a_set_of_the_users_photos(alice: Client, tmp_path: Path) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    photos = _photos(alice, 2)
    job = alice.wait_job(alice.post("/api/jobs/run", {
        "model_id": cfg["id"], "image_id": im["id"], "modes": ["float", "int"],
        "quant": {"calib": "images", "calib_image_ids": [p["id"] for p in photos]}}).json()["id"])
    assert job["status"] == "done", job
    assert job["params"]["calib_images"] == ["photo0.png", "photo1.png"]
    assert _scales(alice.get(f"/api/jobs/{job['id']}/files/tiny-calibrated.qnet").content, "tiny-calibrated.qnet") \
        == _reference_scales(alice, photos, tmp_path)


def _scales(qnet_zip: bytes, name: str) -> list[float]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(qnet_zip)) as zf:
        return [t["scale"] for t in json.loads(zf.read(f"{name}/model.json"))["tensors"]]


def _reference_scales(c: Client, photos: list[dict], tmp_path: Path, images: int | None = None) -> list[float]:
    """The activation scales ``dla.calibration.calibrate`` gives tiny.cfg (seeded weights) on
    these photos, downloaded back from the server (or on ``images`` synthetic ones)."""
    from dla.calibration import calibrate
    from golden.genweights import random_weights
    from golden.network import parse_network

    local = []
    for p in photos:
        local.append(tmp_path / p["name"])
        local[-1].write_bytes(c.get(f"/api/files/{p['id']}/download").content)
    q = calibrate(random_weights(parse_network(TINY_CFG), 0), images or local, "per_channel")
    return [q.scales[t] for t in range(-1, len(q.net.layers))]


@pytest.mark.parametrize("quant, status, needle", [
    ({"calib": "images", "calib_image_ids": []}, 422, "choose at least one image"),
    ({"calib": "images", "calib_image_ids": [999]}, 404, "image 999 not found"),
    ({"calib": "folder"}, 422, "synthetic, image or images")])
def test_bad_calibration_sets_are_refused(alice: Client, quant: dict, status: int, needle: str) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    for url, body in (("/api/jobs/run", {"image_id": im["id"]}), ("/api/jobs/quantize", {})):
        r = alice.post(url, {"model_id": cfg["id"], **body, "quant": quant})
        assert r.status_code == status and needle in r.json()["detail"], (url, r.text)


def test_another_users_photo_is_not_a_calibration_image(alice: Client, bob: Client) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    theirs = _photos(bob, 1)[0]
    r = alice.post("/api/jobs/quantize", {"model_id": cfg["id"], "quant": {"calib": "images", "calib_image_ids": [theirs["id"]]}})
    assert r.status_code == 404


# ---------------------------------------------------------------- the run's .qnet stays with the job
def test_a_run_keeps_its_qnet_in_the_job_until_asked(alice: Client, bob: Client) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    before = alice.get("/api/files").json()["used"]
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": cfg["id"], "image_id": im["id"],
                                                      "modes": ["float", "int"]}).json()["id"])
    assert job["status"] == "done", job
    q = job["result"]["qnet"]
    files = {f["name"]: f for f in alice.get("/api/files").json()["files"]}
    assert q == "tiny-calibrated.qnet" and q not in files and job["result"]["kept"].keys() == {"run-tiny-report.html"}
    assert alice.get("/api/files").json()["used"] == before + files["run-tiny-report.html"]["size"]
    # downloadable from the job as the zip the upload accepts
    z = alice.get(f"/api/jobs/{job['id']}/files/{q}")
    assert z.status_code == 200 and "tiny-calibrated.qnet.zip" in z.headers["content-disposition"]
    assert bob.post(f"/api/jobs/{job['id']}/keep", {"name": q}).status_code == 404
    assert alice.post(f"/api/jobs/{job['id']}/keep", {"name": "summary2.json"}).status_code == 404
    r = alice.post(f"/api/jobs/{job['id']}/keep", {"name": "summary.json"})
    assert r.status_code == 422 and "only the calibrated .qnet" in r.json()["detail"]
    # kept on request: in the files, recorded in the job, once
    kept = alice.post(f"/api/jobs/{job['id']}/keep", {"name": q})
    assert kept.status_code == 200, kept.text
    assert kept.json()["name"] == q and kept.json()["kind"] == "qnet"
    assert alice.get(f"/api/jobs/{job['id']}").json()["result"]["kept"][q]["id"] == kept.json()["id"]
    assert alice.post(f"/api/jobs/{job['id']}/keep", {"name": q}).status_code == 409
    again = alice.upload("again.qnet", z.content)  # the job's zip uploads as a .qnet
    assert again.status_code == 200, again.text


def test_save_qnet_keeps_it_with_the_run(alice: Client) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": cfg["id"], "image_id": im["id"], "modes": ["float", "int"],
                                                      "save_qnet": True}).json()["id"])
    assert job["status"] == "done" and "tiny-calibrated.qnet" in job["result"]["kept"], job
    assert "tiny-calibrated.qnet" in {f["name"] for f in alice.get("/api/files").json()["files"]}


def test_keeping_a_qnet_over_the_quota_is_413_and_leaves_nothing(app_factory, data_dir) -> None:
    from fastapi.testclient import TestClient

    app = app_factory(max_upload_bytes=16 * 2**20)
    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("carol")
        cfg = c.upload_ok("tiny.cfg", TINY_CFG)
        im = c.upload_ok("dog.jpg", DOG)
        job = c.wait_job(c.post("/api/jobs/run", {"model_id": cfg["id"], "image_id": im["id"],
                                                  "modes": ["float", "int"]}).json()["id"])
        assert job["status"] == "done", job
        room = c.get("/api/files").json()
        filler = c.upload_ok("filler.weights", tiny_weights_bytes()[:20] + bytes(4 * ((room["quota"] - room["used"] - 1000) // 4)))
        r = c.post(f"/api/jobs/{job['id']}/keep", {"name": "tiny-calibrated.qnet"})
        assert r.status_code == 413 and "quota" in r.json()["detail"], r.text
        ids = {str(f["id"]) for f in c.get("/api/files").json()["files"]}
        assert filler["id"] and "tiny-calibrated.qnet" not in c.get(f"/api/jobs/{job['id']}").json()["result"]["kept"]
    on_disk = {p.name.removesuffix(".qnet") for d in (data_dir / "users").iterdir() for p in d.iterdir()}
    assert on_disk == ids and list((data_dir / "tmp").iterdir()) == []


# ---------------------------------------------------------------- a .qnet as the CLI writes it (a folder)
@pytest.fixture(scope="module")
def qnet_dir(tmp_path_factory) -> Path:
    """``t.qnet/`` exactly as ``dla quantize`` writes it (``save_qnet``: a directory)."""
    from dla.calibration import calibrate
    from dla.config import HardwareConfig
    from dla.qnet_file import save_qnet
    from golden.genweights import random_weights
    from golden.network import parse_network

    d = tmp_path_factory.mktemp("cli") / "t.qnet"
    save_qnet(calibrate(random_weights(parse_network(TINY_CFG), 0), 1, "per_channel"), HardwareConfig(), d)
    return d


def _folder(d: Path, members=("model.json", "weights.npz")) -> dict:
    return {m: (f"{d.name}/{m}", (d / m).read_bytes(), "application/octet-stream") for m in members}


def test_a_qnet_folder_uploads_and_downloads_as_the_zip(alice: Client, qnet_dir: Path, tmp_path: Path) -> None:
    """Folder in (what the CLI writes), zip out (what a browser downloads), and the zip goes back
    in; its members are the folder's bytes, so ``unzip`` gives the CLI its folder again."""
    import zipfile

    from dla.qnet_file import load_qnet

    r = alice.tc.post("/api/files/qnet-folder?name=t.qnet", files=_folder(qnet_dir), headers={"X-CSRF-Token": alice.csrf})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["kind"] == "qnet" and f["name"] == "t.qnet" and f["meta"]["layers"] == 6
    z = alice.get(f"/api/files/{f['id']}/download")
    assert z.headers["content-type"] == "application/zip" and "t.qnet.zip" in z.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        zf.extractall(tmp_path)
    for m in ("model.json", "weights.npz"):
        assert (tmp_path / "t.qnet" / m).read_bytes() == (qnet_dir / m).read_bytes()
    load_qnet(tmp_path / "t.qnet")  # the CLI reads the unzipped download
    assert alice.upload_ok("again.qnet", z.content)["meta"]["layers"] == 6
    # a folder not named *.qnet is stored as NAME.qnet
    r = alice.tc.post("/api/files/qnet-folder?name=plain", files=_folder(qnet_dir), headers={"X-CSRF-Token": alice.csrf})
    assert r.status_code == 200 and r.json()["name"] == "plain.qnet"


def test_bad_qnet_folders_are_refused_with_one_message(alice: Client, qnet_dir: Path, tmp_path: Path, data_dir) -> None:
    h = {"X-CSRF-Token": alice.csrf}
    r = alice.tc.post("/api/files/qnet-folder?name=a.qnet", files=_folder(qnet_dir, ("model.json",)), headers=h)
    assert r.status_code == 422 and "weights.npz missing" in r.json()["detail"]
    extra = {**_folder(qnet_dir), "evil.sh": ("t.qnet/evil.sh", b"rm -rf /", "text/plain")}
    r = alice.tc.post("/api/files/qnet-folder?name=a.qnet", files=extra, headers=h)
    assert r.status_code in (400, 422), r.text  # three files: more than a .qnet holds
    bad = tmp_path / "b.qnet"
    bad.mkdir()
    (bad / "weights.npz").write_bytes((qnet_dir / "weights.npz").read_bytes())
    model = json.loads((qnet_dir / "model.json").read_text())
    model["tensors"][1]["scale"] = -1.0
    (bad / "model.json").write_text(json.dumps(model))
    r = alice.tc.post("/api/files/qnet-folder?name=b.qnet", files=_folder(bad), headers=h)
    assert r.status_code == 422 and r.json()["detail"].startswith("b.qnet/model.json"), r.text
    assert str(data_dir) not in r.json()["detail"]
    r = alice.tc.post("/api/files/qnet-folder?name=../x.qnet", files=_folder(qnet_dir), headers=h)
    assert r.status_code == 422
    assert alice.tc.post("/api/files/qnet-folder?name=c.qnet", files=_folder(qnet_dir)).status_code == 403  # CSRF
    assert alice.get("/api/files").json()["files"] == [] and list((data_dir / "tmp").iterdir()) == []


def test_a_qnet_folder_over_the_limits_is_413(app_factory, qnet_dir: Path, data_dir) -> None:
    from fastapi.testclient import TestClient

    size = sum((qnet_dir / m).stat().st_size for m in ("model.json", "weights.npz"))
    for kw in ({"max_upload_bytes": size // 2}, {"quota_bytes": size // 2}):
        with TestClient(app_factory(**kw)) as tc:
            c = Client(tc)
            c.signup(f"u{len(kw)}{next(iter(kw))[:3]}")
            r = tc.post("/api/files/qnet-folder?name=t.qnet", files=_folder(qnet_dir), headers={"X-CSRF-Token": c.csrf})
            assert r.status_code == 413, (kw, r.text)
            assert c.get("/api/files").json()["files"] == []
    assert list((data_dir / "tmp").iterdir()) == []


def _int_step_session(alice: Client, qnet_dir: Path):
    """Upload ``qnet_dir`` zipped and dog.jpg, open an INT STEP session on them; returns the
    session id and a function that sends one command line and gives the answer's JSON."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for m in ("model.json", "weights.npz"):
            zf.write(qnet_dir / m, m)
    q = alice.upload_ok("t.qnet", buf.getvalue())
    im = alice.upload_ok("dog.jpg", DOG)
    s = alice.post("/api/step", {"model_id": q["id"], "image_id": im["id"], "mode": "int"}).json()
    return s["id"], lambda line: alice.post(f"/api/step/{s['id']}/command", {"command": line}).json()


def test_a_refused_qnet_zip_names_the_users_file_not_a_server_path(alice: Client, qnet_dir: Path, data_dir) -> None:
    """The loader's message named the unpacked temp folder (``<data>/tmp/<random>.qnet/model.json``)."""
    import zipfile

    model = json.loads((qnet_dir / "model.json").read_text())
    model["tensors"][1]["scale"] = -1.0
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.json", json.dumps(model))
        zf.write(qnet_dir / "weights.npz", "weights.npz")
    r = alice.upload("b.qnet", buf.getvalue())
    assert r.status_code == 422 and r.json()["detail"].startswith("b.qnet/model.json: layer 0 field 'scale'"), r.text
    assert str(data_dir) not in r.text


# ---------------------------------------------------------------- STEP: the numbers beside the pictures
def test_step_state_carries_the_rerun_and_cross_numbers(alice: Client, qnet_dir: Path) -> None:
    """The numbers the page puts next to before/after are the rerun's, recomputed here from a
    local Session with numpy (count of changed int8 outputs, SQNR/max/mean of after vs before);
    they go when the state moves on; CROSS's come with it."""
    import math

    from dla.qnet_file import load_qnet
    from dla.session import Session

    _, run = _int_step_session(alice, qnet_dir)
    assert run("goto 2")["state"]["rerun"] is None
    run("edit w[3,0,1,1]=-5")
    r = run("rerun")
    got = r["state"]["rerun"]

    qnet, hw, _ = load_qnet(qnet_dir)
    local = Session(qnet, DOG, mode="int", hw=hw)
    local.run_to(2)
    before_q, before = local.output.copy(), local.output_real.astype(np.float64)
    local.edit_weights((3, 0, 1, 1), -5)
    local.rerun()
    after_q, after = local.output, local.output_real.astype(np.float64)
    d = before - after
    assert got["layer"] == 2 and got["total"] == before_q.size
    assert got["changed"] == int(np.count_nonzero(before_q != after_q)) > 0
    assert got["channels"] == sorted({int(c) for c in np.argwhere(before_q != after_q)[:, 0]}) == [3]
    assert got["max_abs"] == float(np.max(np.abs(d))) and got["mean_abs"] == float(np.mean(np.abs(d)))
    assert math.isclose(got["sqnr_db"], 10 * math.log10(np.sum(before ** 2) / np.sum(d ** 2)), rel_tol=1e-12)
    assert got["vs_unedited"] == got["changed"]
    assert r["result"] == got  # the command's answer is the same data
    c = run("cross")["state"]["cross"]
    assert c["layer"] == 2 and c["mode"] == "int" and c["other"] == "float" and isinstance(c["sqnr_db"], float)
    moved = run("next")["state"]
    assert moved["rerun"] is None and moved["cross"] is None
    # undo + rerun: the output is the unedited run's again
    run("goto 2")
    run("undo")
    again = run("rerun")["state"]["rerun"]
    assert again["vs_unedited"] == 0


def test_the_cli_reads_the_downloaded_zip(alice: Client, qnet_dir: Path, tmp_path: Path) -> None:
    """Both sides take both forms: the zip the workbench downloads runs in ``dla step`` as it is
    (no unzip), and loads to exactly the folder's model (every array bit-identical)."""
    from click.testing import CliRunner

    from dla.cli import cli
    from dla.qnet_file import is_qnet, load_qnet, weight_arrays

    r = alice.tc.post("/api/files/qnet-folder?name=t.qnet", files=_folder(qnet_dir), headers={"X-CSRF-Token": alice.csrf})
    z = tmp_path / "t.qnet.zip"
    z.write_bytes(alice.get(f"/api/files/{r.json()['id']}/download").content)
    assert is_qnet(z)
    (zq, zhw, ztext), (dq, dhw, dtext) = load_qnet(z), load_qnet(qnet_dir)
    assert ztext == dtext and zhw == dhw and zq.scales == dq.scales
    za, da = weight_arrays(zq), weight_arrays(dq)
    assert za.keys() == da.keys() and all(np.array_equal(za[k], da[k]) for k in za)
    assert zq.net.cfg_path == z / dq.net.cfg_path.name and zq.net.name == dq.net.name
    res = CliRunner().invoke(cli, ["step", str(z), str(DOG)], input="goto 2\nstats\nquit\n")
    folder = CliRunner().invoke(cli, ["step", str(qnet_dir), str(DOG)], input="goto 2\nstats\nquit\n")
    assert res.exit_code == 0, res.output
    strip = lambda t: re.sub(r"in \d+ ms", "", t).replace(str(z), "M").replace(str(qnet_dir), "M")  # noqa: E731
    assert strip(res.output) == strip(folder.output) and "layer 2" in res.output


@pytest.mark.parametrize("make, needle", [
    (lambda zf, d: zf.write(d / "model.json", "t.qnet/model.json"), "weights.npz missing"),
    (lambda zf, d: [zf.write(d / m, f"{k}/{m}") for k in ("a", "b") for m in ("model.json", "weights.npz")],
     "model.json more than once"),
    (None, "neither a folder nor a zip of one")])
def test_a_bad_zipped_qnet_is_one_message(qnet_dir: Path, tmp_path: Path, make, needle: str) -> None:
    import zipfile

    from click.testing import CliRunner

    from dla.cli import cli

    z = tmp_path / "bad.qnet.zip"
    if make is None:
        z.write_bytes(b"not a zip at all")
    else:
        with zipfile.ZipFile(z, "w") as zf:
            make(zf, qnet_dir)
    res = CliRunner().invoke(cli, ["step", str(z), str(DOG)], input="quit\n")
    assert res.exit_code == 2 and res.output.startswith("Error: ") and needle in res.output, res.output
    assert "Traceback" not in res.output


def test_a_zipped_qnet_with_a_bad_field_names_the_zip(qnet_dir: Path, tmp_path: Path) -> None:
    import zipfile

    from dla.qnet_file import load_qnet
    from golden.errors import UserInputError

    model = json.loads((qnet_dir / "model.json").read_text())
    model["tensors"][1]["scale"] = 0
    z = tmp_path / "b.qnet.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("b.qnet/model.json", json.dumps(model))
        zf.write(qnet_dir / "weights.npz", "b.qnet/weights.npz")
    with pytest.raises(UserInputError) as exc:
        load_qnet(z)
    assert str(exc.value).startswith(f"{z}/model.json: layer 0 field 'scale'"), str(exc.value)
    assert "dla-qnet-" not in str(exc.value)


def test_a_qnet_folder_whose_npz_lies_about_an_array_size_is_422(alice: Client, qnet_dir: Path, tmp_path: Path,
                                                                  data_dir) -> None:
    """A weights.npz member declaring 10^11 elements in a 128-byte .npy: refused by name, the
    server allocating nothing (was a MemoryError: a 500)."""
    import struct
    import zipfile

    header = "{'descr': '|i1', 'fortran_order': False, 'shape': (100000000000,), }"
    header += " " * (117 - len(header)) + "\n"
    lying = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    bad = tmp_path / "big.qnet"
    bad.mkdir()
    (bad / "model.json").write_bytes((qnet_dir / "model.json").read_bytes())
    with zipfile.ZipFile(qnet_dir / "weights.npz") as src, zipfile.ZipFile(bad / "weights.npz", "w") as out:
        for info in src.infolist():
            out.writestr(info, lying if info.filename == "L002.w_q.npy" else src.read(info))
    r = alice.tc.post("/api/files/qnet-folder?name=big.qnet", files=_folder(bad), headers={"X-CSRF-Token": alice.csrf})
    assert r.status_code == 422, r.text
    # refused from the .npy header by the upload's check of weights.npz against the cfg (dla.web.sniff)
    assert r.json()["detail"] == ("big.qnet: weights.npz: array 'L002.w_q' is (100000000000,) int8, the cfg needs "
                                  "(16, 8, 3, 3) int8"), r.text
    assert str(data_dir) not in r.json()["detail"]
    assert alice.get("/api/files").json()["files"] == [] and list((data_dir / "tmp").iterdir()) == []


def _declare_size(zip_bytes: bytes, member: str, size: int) -> bytes:
    """``zip_bytes`` with the central directory declaring ``member`` to unpack to ``size`` bytes
    (what a zip bomb declares; zipfile trusts the central directory)."""
    import struct

    data = bytearray(zip_bytes)
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, pos + 24, size)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(data)


def _zipped(qnet_dir: Path) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in ("model.json", "weights.npz"):
            zf.write(qnet_dir / m, f"t.qnet/{m}")
    return buf.getvalue()


def test_a_zipped_qnet_declaring_a_huge_member_is_refused_before_unpacking(qnet_dir: Path, tmp_path: Path,
                                                                            monkeypatch) -> None:
    """The CLI's zip reader checks the declared sizes first: a model.json declared at 4 GiB (far
    beyond any model's) or members larger than the temp folder's free space are one ``Error:``
    line naming the zip, nothing unpacked."""
    import shutil
    from collections import namedtuple

    from click.testing import CliRunner

    from dla.cli import cli

    z = tmp_path / "big.qnet.zip"
    z.write_bytes(_declare_size(_zipped(qnet_dir), "t.qnet/model.json", 0xFFFFFFF0))
    res = CliRunner().invoke(cli, ["step", str(z), str(DOG)], input="quit\n")
    assert res.exit_code == 2 and res.output.startswith(f"Error: {z}: "), res.output
    assert "model.json" in res.output and "4,294,967,280 bytes" in res.output, res.output

    ok = tmp_path / "ok.qnet.zip"
    ok.write_bytes(_zipped(qnet_dir))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10_000, 9_000, 1_000))
    res = CliRunner().invoke(cli, ["step", str(ok), str(DOG)], input="quit\n")
    assert res.exit_code == 2 and res.output.startswith(f"Error: {ok}: "), res.output
    assert "1,000 bytes free" in res.output, res.output


def test_a_zipped_qnet_with_a_damaged_member_says_so(qnet_dir: Path, tmp_path: Path) -> None:
    """A member whose data fails its CRC is 'cannot be read', not 'neither a folder nor a zip'."""
    from click.testing import CliRunner

    from dla.cli import cli

    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.write(qnet_dir / "model.json", "t.qnet/model.json")
        zf.write(qnet_dir / "weights.npz", "t.qnet/weights.npz")
    data = bytearray(buf.getvalue())
    at = data.find(b'"format"')  # inside the stored model.json: its CRC no longer matches
    data[at + 1] ^= 0x20
    z = tmp_path / "crc.qnet.zip"
    z.write_bytes(bytes(data))
    res = CliRunner().invoke(cli, ["step", str(z), str(DOG)], input="quit\n")
    assert res.exit_code == 2 and res.output.startswith(f"Error: {z}: the zip cannot be read"), res.output
    assert "CRC" in res.output, res.output


def test_a_kept_qnet_deleted_from_the_files_can_be_kept_again(alice: Client) -> None:
    """'already in your files' must be true: after the user deleted the kept copy (to free
    space) the job's .qnet can be saved again; a renamed copy is named by its current name."""
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": cfg["id"], "image_id": im["id"],
                                                      "modes": ["float", "int"]}).json()["id"])
    q = job["result"]["qnet"]
    first = alice.post(f"/api/jobs/{job['id']}/keep", {"name": q}).json()
    assert alice.tc.patch(f"/api/files/{first['id']}", json={"name": "mine.qnet", "version": first["version"]},
                          headers={"X-CSRF-Token": alice.csrf}).status_code == 200
    r = alice.post(f"/api/jobs/{job['id']}/keep", {"name": q})
    assert r.status_code == 409 and "'mine.qnet'" in r.json()["detail"], r.text
    assert alice.tc.delete(f"/api/files/{first['id']}", headers={"X-CSRF-Token": alice.csrf}).status_code == 200
    again = alice.post(f"/api/jobs/{job['id']}/keep", {"name": q})
    assert again.status_code == 200, again.text
    assert alice.get(f"/api/jobs/{job['id']}").json()["result"]["kept"][q]["id"] == again.json()["id"]
    assert [f["name"] for f in alice.get("/api/files").json()["files"] if f["kind"] == "qnet"] == [q]


def test_cross_continue_moves_the_step_state_on(alice: Client, qnet_dir: Path) -> None:
    """'cross continue' replaces the layer's output by the other mode's: the rerun's numbers and
    before/after no longer describe what is shown, and the pictures must be redrawn (a new
    generation), as after any other command that changes a tensor."""
    sid, run = _int_step_session(alice, qnet_dir)
    run("goto 2")
    run("edit w[3,0,1,1]=-5")
    r = run("rerun")["state"]
    assert r["rerun"] is not None and r["has_before"]
    grid = alice.get(f"/api/step/{sid}/picture/output_grid.png").content
    c = run("cross continue")["state"]
    assert c["cross"] is not None and c["cross"]["layer"] == 2
    assert c["generation"] > r["generation"], "the output changed: the pictures are stale"
    assert c["rerun"] is None and not c["has_before"], "before/after and its numbers describe the old output"
    assert alice.get(f"/api/step/{sid}/picture/output_grid.png").content != grid


@pytest.mark.parametrize("url", ["/api/jobs/quantize", "/api/jobs/run"])
def test_a_calibration_photo_gone_before_the_job_runs_is_named_by_the_users_name(alice: Client, data_dir,
                                                                                   url: str) -> None:
    """A photo of the calibration set whose file went between the request and the job (deleted
    meanwhile): the job fails naming the user's file, never the server's storage path."""
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    photo = alice.upload_ok("cat.jpg", DOG)
    stored = next(p for p in data_dir.rglob(str(photo["id"])) if p.is_file())
    stored.unlink()
    body = {"model_id": cfg["id"], "quant": {"calib": "images", "calib_image_ids": [photo["id"]]}}
    if url.endswith("run"):
        body |= {"image_id": im["id"], "modes": ["float", "int"]}
    job = alice.wait_job(alice.post(url, body).json()["id"])
    assert job["status"] == "failed", job
    assert "cat.jpg" in job["message"] and str(data_dir) not in job["message"], job["message"]


def test_saving_a_runs_qnet_twice_at_once_keeps_one_copy(alice: Client, app, monkeypatch) -> None:
    """A double click on 'save to my files' (two requests at the same moment) keeps the .qnet
    once: the second is told it is already in the files — not a second copy counted against
    the quota, nor a 'conflicts with a change' from the storage's unique name."""
    import threading

    from dla.web.jobs import JobRunner

    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    im = alice.upload_ok("dog.jpg", DOG)
    job = alice.wait_job(alice.post("/api/jobs/run", {"model_id": cfg["id"], "image_id": im["id"],
                                                      "modes": ["float", "int"]}).json()["id"])
    slow = JobRunner._keep_one

    def keep_one(self, *a, **kw):  # widen the window between the check and the copy
        threading.Event().wait(0.3)
        return slow(self, *a, **kw)

    monkeypatch.setattr(JobRunner, "_keep_one", keep_one)
    answers: list = []
    clicks = [threading.Thread(target=lambda: answers.append(
        alice.post(f"/api/jobs/{job['id']}/keep", {"name": job["result"]["qnet"]}))) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    second = next(r for r in answers if r.status_code == 409)
    assert "already in your files as 'tiny-calibrated.qnet'" in second.json()["detail"], second.text
    assert [f["name"] for f in alice.get("/api/files").json()["files"] if f["kind"] == "qnet"] == ["tiny-calibrated.qnet"]


@pytest.mark.parametrize("name", ["t.qnet (1).zip", "t.zip", "T.QNET.ZIP"])
def test_the_cli_takes_the_zip_under_the_name_the_browser_gave_it(qnet_dir: Path, tmp_path: Path, name: str) -> None:
    """A second download of the same .qnet is saved as 'NAME.qnet (1).zip' (and people rename
    files): any .zip given as the model is read as a zipped .qnet, not refused with 'expected
    CFG WEIGHTS IMAGE or MODEL.qnet IMAGE, got 2 argument(s)'."""
    from click.testing import CliRunner

    from dla.cli import cli

    z = tmp_path / name
    z.write_bytes(_zipped(qnet_dir))
    res = CliRunner().invoke(cli, ["step", str(z), str(DOG)], input="goto 2\nquit\n")
    assert res.exit_code == 0 and "layer 2" in res.output, res.output


def test_a_run_asked_to_save_its_qnet_without_room_still_finishes(app_factory, data_dir) -> None:
    """'save the .qnet' ticked but the quota has no room for it: the run is done (its report,
    pictures and the .qnet download are there) and says why the .qnet is not in the files,
    instead of failing at the end and deleting minutes of results."""
    import zipfile

    from fastapi.testclient import TestClient

    app = app_factory(max_upload_bytes=16 * 2**20)
    with TestClient(app) as tc:
        c = Client(tc)
        c.signup("dave")
        cfg = c.upload_ok("tiny.cfg", TINY_CFG)
        im = c.upload_ok("dog.jpg", DOG)
        body = {"model_id": cfg["id"], "image_id": im["id"], "modes": ["float", "int"]}
        first = c.wait_job(c.post("/api/jobs/run", body).json()["id"])
        z = zipfile.ZipFile(io.BytesIO(c.get(f"/api/jobs/{first['id']}/files/{first['result']['qnet']}").content))
        qnet_size = sum(i.file_size for i in z.infolist())
        report = next(f for f in c.get("/api/files").json()["files"] if f["name"].endswith("report.html"))
        room = c.get("/api/files").json()
        free = room["quota"] - room["used"]
        c.upload_ok("filler.weights", tiny_weights_bytes()[:20] +
                    bytes(4 * ((free - report["size"] - qnet_size // 2) // 4)))
        job = c.wait_job(c.post("/api/jobs/run", {**body, "save_qnet": True}).json()["id"])
        assert job["status"] == "done", job
        q = job["result"]["qnet"]
        assert q not in job["result"]["kept"] and "quota" in job["result"]["not_kept"][q], job["result"]
        assert c.get(f"/api/jobs/{job['id']}/files/{q}").status_code == 200
        names = [f["name"] for f in c.get("/api/files").json()["files"]]
        assert sum(n.endswith(".html") for n in names) == 2 and not any(n.endswith(".qnet") for n in names)
    assert list((data_dir / "tmp").iterdir()) == []


def test_a_qnet_zipped_on_windows_with_backslashes_loads(qnet_dir: Path, tmp_path: Path) -> None:
    """Windows PowerShell 5's Compress-Archive writes member names with backslashes
    ('t.qnet\\\\model.json'): the members are still found by their base names."""
    import zipfile

    from dla.qnet_file import load_qnet

    z = tmp_path / "t.qnet.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for m in ("model.json", "weights.npz"):
            info = zipfile.ZipInfo(f"t.qnet\\{m}")
            zf.writestr(info, (qnet_dir / m).read_bytes())
    assert [i.filename for i in zipfile.ZipFile(z).infolist()] == ["t.qnet\\model.json", "t.qnet\\weights.npz"]
    qnet, _hw, _ = load_qnet(z)
    assert len(qnet.net.layers) == 6
