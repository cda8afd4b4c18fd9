"""The file manager: uploads checked by content, limits, names, versions, ownership."""
from __future__ import annotations

import io
import struct
import zipfile

import pytest

from tests.dla.web.helpers import DOG, TINY_CFG, Client, png_bytes, tiny_weights_bytes


@pytest.mark.postgres
def test_upload_list_download(alice: Client) -> None:
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    assert cfg["kind"] == "cfg" and cfg["meta"]["layers"] == 6
    img = alice.upload_ok("dog.jpg", DOG)
    assert img["meta"]["width"] == 768
    w = alice.upload_ok("tiny.weights", tiny_weights_bytes())
    assert w["meta"]["cfg_ids"] == [cfg["id"]]  # its size fits the cfg
    assert alice.upload_ok("s.yaml", b"model: tiny.cfg\nmodes: [int]\n")["kind"] == "scenario"
    npy = io.BytesIO()
    import numpy as np

    np.save(npy, np.zeros((2, 3), np.int8))
    assert alice.upload_ok("a.npy", npy.getvalue())["meta"]["shape"] == [2, 3]
    listing = alice.get("/api/files").json()
    assert [f["name"] for f in listing["files"]] == ["a.npy", "dog.jpg", "s.yaml", "tiny.cfg", "tiny.weights"]
    assert listing["used"] == sum(f["size"] for f in listing["files"])
    r = alice.get(f"/api/files/{img['id']}/download")
    assert r.status_code == 200 and r.content == DOG.read_bytes()
    assert "attachment" in r.headers["content-disposition"]


@pytest.mark.parametrize("name,data,needle", [
    ("fake.jpg", b"this is not a JPEG at all", "not a readable image"),
    ("fake.cfg", b"\x89PNG\r\n\x1a\n\x00binary", "cfg"),
    ("bad.cfg", b"[net]\nwidth=0\nheight=64\nchannels=3\n[convolutional]\nfilters=4\n", "width"),
    ("short.weights", b"\x00\x00", "shorter than its header"),
    ("odd.weights", b"\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 8 + b"\x01\x02\x03", "float32"),
    ("m.qnet", b"PK not really a zip", "not a .qnet"),
    ("s.yaml", b"- a list\n- not a mapping\n", "mapping"),
    ("s.yml", b"key: [unclosed\n", "YAML"),
    ("a.npy", b"\x93NUMPY garbage", ".npy"),
    ("script.sh", b"#!/bin/sh\n", "unsupported file type"),
    ("empty.cfg", b"", "empty"),
])
def test_a_file_that_is_not_what_it_claims_is_refused(alice: Client, name: str, data: bytes, needle: str) -> None:
    r = alice.upload(name, data)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert alice.get("/api/files").json()["files"] == []


def test_pickled_npy_is_refused(alice: Client) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert alice.upload("evil.npy", buf.getvalue()).status_code == 422


@pytest.mark.parametrize("name", ["../evil.cfg", "..", "a/b.cfg", "..\\x.cfg", ".hidden.cfg", "x\x00.cfg",
                                  "/etc/passwd.cfg", "ok..cfg"])
def test_path_traversal_names_are_refused(alice: Client, name: str, data_dir) -> None:
    from urllib.parse import quote

    r = alice.put(f"/api/files?name={quote(name)}", TINY_CFG.read_bytes())
    assert r.status_code == 422, (name, r.text)
    assert not (data_dir.parent / "evil.cfg").exists()


def test_rename_traversal_refused(alice: Client) -> None:
    f = alice.upload_ok("tiny.cfg", TINY_CFG)
    r = alice.patch(f"/api/files/{f['id']}", {"name": "../../x.cfg", "version": 1})
    assert r.status_code == 422


def test_oversized_upload_is_413_and_leaves_nothing(alice: Client, data_dir) -> None:
    r = alice.upload("big.png", b"\x00" * (2 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert alice.get("/api/files").json()["files"] == []
    assert list((data_dir / "tmp").iterdir()) == []


@pytest.mark.postgres
def test_quota(app_factory) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app_factory(quota_bytes=200_000)) as tc:
        c = Client(tc)
        c.signup("gina")
        c.upload_ok("dog.jpg", DOG)  # 164 kB of 200 kB
        r = c.upload("dog2.jpg", DOG)
        assert r.status_code == 413 and "quota" in r.json()["detail"]


@pytest.mark.postgres
def test_rename_with_version_and_conflicts(alice: Client) -> None:
    f = alice.upload_ok("tiny.cfg", TINY_CFG)
    alice.upload_ok("other.cfg", TINY_CFG)
    r = alice.patch(f"/api/files/{f['id']}", {"name": "renamed.cfg", "version": 1})
    assert r.status_code == 200 and r.json()["version"] == 2
    stale = alice.patch(f"/api/files/{f['id']}", {"name": "again.cfg", "version": 1})
    assert stale.status_code == 409  # someone (this same user in another tab) changed it
    assert alice.patch(f"/api/files/{f['id']}", {"name": "other.cfg", "version": 2}).status_code == 409
    assert alice.patch(f"/api/files/{f['id']}", {"name": "renamed.jpg", "version": 2}).status_code == 422


@pytest.mark.postgres
def test_overwrite_needs_the_current_version(alice: Client) -> None:
    alice.upload_ok("p.png", png_bytes())
    assert alice.upload("p.png", png_bytes((10, 10))).status_code == 409
    r = alice.upload("p.png", png_bytes((10, 10)), overwrite_version=1)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["meta"]["width"] == 10
    assert alice.upload("p.png", png_bytes((12, 12)), overwrite_version=1).status_code == 409


@pytest.mark.postgres
def test_delete(alice: Client, data_dir) -> None:
    f = alice.upload_ok("tiny.cfg", TINY_CFG)
    assert alice.delete(f"/api/files/{f['id']}").status_code == 200
    assert alice.get(f"/api/files/{f['id']}").status_code == 404
    assert alice.delete(f"/api/files/{f['id']}").status_code == 404


def test_augment_makes_five_images(alice: Client) -> None:
    f = alice.upload_ok("dog.jpg", DOG)
    r = alice.post(f"/api/files/{f['id']}/augment")
    assert r.status_code == 200
    names = sorted(x["name"] for x in r.json()["files"])
    assert names == [f"dog-{v}.png" for v in sorted(["original", "rotate", "blur", "flip", "flop"])]
    again = alice.post(f"/api/files/{f['id']}/augment").json()["files"]
    assert all(x["name"].endswith("-2.png") for x in again)  # never overwrites
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    assert alice.post(f"/api/files/{cfg['id']}/augment").status_code == 404


@pytest.mark.postgres
def test_qnet_roundtrip_as_zip(alice: Client, tmp_path) -> None:
    from dla.calibration import calibrate
    from dla.config import HardwareConfig
    from dla.qnet_file import save_qnet
    from golden.genweights import random_weights
    from golden.network import parse_network

    net = random_weights(parse_network(TINY_CFG), 0)
    save_qnet(calibrate(net, 1), HardwareConfig(), tmp_path / "t.qnet")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for m in ("model.json", "weights.npz"):
            zf.write(tmp_path / "t.qnet" / m, f"t.qnet/{m}")
    f = alice.upload_ok("t.qnet", buf.getvalue())
    assert f["kind"] == "qnet" and f["meta"]["layers"] == 6
    r = alice.get(f"/api/files/{f['id']}/download")
    assert r.status_code == 200
    again = alice.upload_ok("t2.qnet", r.content)
    assert again["kind"] == "qnet" and again["meta"]["layers"] == 6
    # a zip with traversal member names: only the two known files are read, under fixed names
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../evil.txt", "x")
        for m in ("model.json", "weights.npz"):
            zf.write(tmp_path / "t.qnet" / m, m)
    assert alice.upload_ok("t3.qnet", evil.getvalue())["kind"] == "qnet"


@pytest.mark.postgres
def test_nothing_of_one_user_is_visible_to_another(alice: Client, bob: Client) -> None:
    f = alice.upload_ok("dog.jpg", DOG)
    cfg = alice.upload_ok("tiny.cfg", TINY_CFG)
    assert bob.get("/api/files").json()["files"] == []
    for url in (f"/api/files/{f['id']}", f"/api/files/{f['id']}/download", f"/api/models/{cfg['id']}",
                f"/api/models/{cfg['id']}/graph.svg", f"/api/models/{cfg['id']}/layers/0"):
        assert bob.get(url).status_code == 404, url
    assert bob.patch(f"/api/files/{f['id']}", {"name": "mine.jpg", "version": 1}).status_code == 404
    assert bob.post(f"/api/files/{f['id']}/augment").status_code == 404
    assert bob.delete(f"/api/files/{f['id']}").status_code == 404
    assert bob.upload("dog.jpg", DOG, overwrite_version=1).status_code == 200  # his own, separate file
    assert alice.get(f"/api/files/{f['id']}/download").content == DOG.read_bytes()
    assert len(alice.get("/api/files").json()["files"]) == 2


def test_qnet_download_with_any_name(alice: Client, qnet_zip: bytes) -> None:
    """A .qnet's download put the raw name in Content-Disposition: a name outside latin-1
    crashed the response (500), a '"' broke the header."""
    for name in ("模型.qnet", 'a"b.qnet'):
        q = alice.upload_ok(name, qnet_zip)
        r = alice.get(f"/api/files/{q['id']}/download")
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-disposition"].startswith("attachment")
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert {n.split("/")[-1] for n in zf.namelist()} == {"model.json", "weights.npz"}


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO"])
def test_image_in_another_format_is_refused(alice: Client, fmt: str) -> None:
    """'x.png' was accepted whatever Pillow could open (TIFF, GIF, ICO, and with the right
    binaries EPS via Ghostscript): only the formats the extensions name are accepted."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, format=fmt)
    r = alice.upload("x.png", buf.getvalue())
    assert r.status_code == 422, r.text


def _patched_zip(qnet_zip: bytes, flag: int | None = None, method: int | None = None) -> bytes:
    """The zip with every header's general-purpose flag or compression method overwritten."""
    data = bytearray(qnet_zip)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = data.find(sig)
        while i >= 0:
            if flag is not None:
                data[i + flag_at:i + flag_at + 2] = struct.pack("<H", flag)
            if method is not None:
                data[i + method_at:i + method_at + 2] = struct.pack("<H", method)
            i = data.find(sig, i + 4)
    return bytes(data)


@pytest.mark.parametrize("patch", [{"flag": 1}, {"method": 99}])
def test_qnet_zip_that_cannot_be_read_is_422(alice: Client, qnet_zip: bytes, patch: dict, data_dir) -> None:
    """An encrypted member (RuntimeError) or an unknown compression (NotImplementedError) was a 500."""
    r = alice.upload("bad.qnet", _patched_zip(qnet_zip, **patch))
    assert r.status_code == 422, r.text
    assert list((data_dir / "tmp").iterdir()) == []


def test_a_refused_cfg_names_the_users_file_not_a_server_path(alice: Client) -> None:
    """The parser's message named the temporary copy ('/tmp/tmpabc123/bad.cfg:2: ...')."""
    r = alice.upload("bad.cfg", b"[net]\nwidth=abc\n")
    assert r.status_code == 422
    assert r.json()["detail"].startswith("bad.cfg:2: "), r.text
