"""STEP in the browser's API: the Session via the debugger's Stepper (its results as data),
pictures, edits, saving, limits."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from tests.dla.web.helpers import DOG, TINY_CFG, Client


@pytest.fixture
def opened(alice: Client, qnet_zip: bytes) -> tuple[Client, dict]:
    q = alice.upload_ok("tiny.qnet", qnet_zip)
    im = alice.upload_ok("dog.jpg", DOG)
    r = alice.post("/api/step", {"model_id": q["id"], "image_id": im["id"], "mode": "int"})
    assert r.status_code == 200, r.text
    return alice, r.json()


def cmd(c: Client, sid: str, line: str):
    return c.post(f"/api/step/{sid}/command", {"command": line})


def test_step_edit_rerun_diff_cross(opened) -> None:
    c, s = opened
    sid = s["id"]
    assert s["index"] == -1 and len(s["layers"]) == 6
    r = cmd(c, sid, "next")
    assert r.status_code == 200 and r.json()["state"]["index"] == 0
    r = cmd(c, sid, "goto 2").json()
    assert r["state"]["index"] == 2 and r["state"]["layer"]["type"] == "convolutional"
    assert r["state"]["stats"]["output"]["dtype"] == "int8" and r["state"]["weights_shape"] == [16, 8, 3, 3]
    for key in ("output_grid", "output_hist", "input_grid", "input_hist", "weights_grid", "weights_hist"):
        pic = c.get(f"/api/step/{sid}/picture/{key}.png")
        assert pic.status_code == 200 and pic.content.startswith(b"\x89PNG"), key
    assert c.get(f"/api/step/{sid}/picture/before.png").status_code == 404
    r = cmd(c, sid, "edit w[3,0,1,1]=-5").json()
    assert r["result"]["kind"] == "edited" and r["result"]["changed"] == 1 and r["state"]["edits"][0]["layer"] == 2
    assert r["result"]["change"] == "w[3,0,1,1] = -5" and isinstance(r["result"]["was"], int)
    r = cmd(c, sid, "rerun").json()
    rerun = r["result"]
    assert rerun["kind"] == "rerun" and rerun["changed"] > 0 and rerun["channels"] == [3] and r["state"]["has_before"]
    assert r["state"]["rerun"] == rerun  # the numbers beside before/after are the rerun's
    assert c.get(f"/api/step/{sid}/picture/before.png").status_code == 200
    assert cmd(c, sid, "diff").json()["result"] == rerun  # the last rerun again
    r = cmd(c, sid, "cross").json()
    assert r["result"]["kind"] == "cross" and r["result"]["other"] == "float" and "sqnr_db" in r["result"]
    assert r["state"]["cross"] == r["result"]
    assert c.get(f"/api/step/{sid}/picture/cross_scatter.png").status_code == 200
    r = cmd(c, sid, "show cross").json()["result"]
    assert r["kind"] == "pictures" and r["pictures"] == [
        {"kind": "scatter", "key": "cross_scatter", "url": f"/api/step/{sid}/picture/cross_scatter.png"}]
    r = cmd(c, sid, "edit scale 1 0.5").json()
    assert r["result"]["change"] == "output channel 1 x 0.5"
    r = cmd(c, sid, "undo").json()
    assert len(r["state"]["edits"]) == 1


def test_pictures_are_dla_steps_and_follow_the_state(opened, app, tmp_path) -> None:
    """Each picture is drawn alone, but is byte for byte what ``dla step``'s ``show`` draws
    for the same state; concurrent requests get one drawing; an edit + rerun redraws."""
    from concurrent.futures import ThreadPoolExecutor

    from dla.debugger.commands import Show
    from dla.debugger.stepper import Stepper
    from dla.session import Session

    c, s = opened
    sid = s["id"]
    cmd(c, sid, "goto 2")
    keys = ("output_grid", "output_hist", "input_grid", "input_hist", "weights_grid", "weights_hist")
    with ThreadPoolExecutor(6) as pool:  # as the page does: all at once (twice each)
        got = list(pool.map(lambda k: c.get(f"/api/step/{sid}/picture/{k}.png"), keys + keys))
    assert all(r.status_code == 200 for r in got)
    web = {k: r.content for k, r in zip(keys + keys, got)}
    st = app.state.ctx.steps.get(1, sid)
    assert len(list(st.pictures.glob("g*.png"))) == len(keys)  # drawn once each
    # the terminal's Stepper on a local Session of the same model and image (the web's lives in its worker)
    local = Session(app.state.ctx.storage.user_dir(1) / f"{st.model_id}.qnet", DOG, mode="int")
    local.run_to(2)
    terminal = Stepper(local, tmp_path)
    for what in ("output", "input", "weights"):
        terminal.execute(Show(what))
    for k in keys:
        assert web[k] == (tmp_path / f"002_{k}.png").read_bytes(), k
    # a new state: the same URL now shows it, and the old file is gone
    cmd(c, sid, "edit w[3,0,1,1]=-5")
    cmd(c, sid, "rerun")
    after = c.get(f"/api/step/{sid}/picture/output_grid.png").content
    assert after != web["output_grid"] and c.get(f"/api/step/{sid}/picture/before.png").content == web["output_grid"]
    assert len(list(st.pictures.glob("g*-output_grid.png"))) == 1
    cmd(c, sid, "next")
    assert c.get(f"/api/step/{sid}/picture/weights_grid.png").status_code == 422  # layer 3: maxpool, no weights


@pytest.mark.parametrize("line,status", [("goto 99", 422), ("edit w[99,0,0,0]=1", 422), ("edit w[0,0,0,0]=300", 422),
                                         ("save /tmp/x", 422), ("export /tmp/x.qnet", 422),
                                         ("edit load /etc/passwd", 422), ("frobnicate", 422), ("", 422)])
def test_bad_commands(opened, line: str, status: int) -> None:
    c, s = opened
    cmd(c, s["id"], "goto 2")
    r = cmd(c, s["id"], line)
    assert r.status_code == status, r.text
    assert r.json()["detail"] and "error:" not in r.json()["detail"]  # one message, the debugger's own
    assert c.get(f"/api/step/{s['id']}").json()["index"] == 2  # unchanged


def test_weights_from_npy(opened) -> None:
    c, s = opened
    cmd(c, s["id"], "goto 0")
    buf = io.BytesIO()
    np.save(buf, np.ones((8, 3, 3, 3), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"kind": "edited", "layer": 0, "change": "weights from the uploaded array",
                                  "changed": int(r.json()["result"]["changed"]), "was": None}
    assert "/tmp" not in r.text and r.json()["state"]["edits"][0]["description"] == "replaced from an array"
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 2), np.int8))
    assert c.put(f"/api/step/{s['id']}/weights", buf.getvalue()).status_code == 422  # wrong shape
    assert c.put(f"/api/step/{s['id']}/weights", b"not npy").status_code == 422


@pytest.mark.postgres
def test_save_as_qnet_and_concurrent_edits(opened, alice: Client) -> None:
    c, s = opened
    sid = s["id"]
    im = [f for f in c.get("/api/files").json()["files"] if f["kind"] == "image"][0]
    other = c.post("/api/step", {"model_id": s["model_id"], "image_id": im["id"], "mode": "int"}).json()
    for sess in (sid, other["id"]):
        cmd(c, sess, "goto 0")
        cmd(c, sess, "edit w[0,0,0,0]=7")
    r = c.post(f"/api/step/{sid}/save", {"name": "edited"})
    assert r.status_code == 200 and r.json()["name"] == "edited.qnet"
    # both sessions opened tiny.qnet at version 1: the first to save wins, the second gets 409
    first = c.post(f"/api/step/{sid}/save", {"name": "tiny.qnet", "overwrite_version": s["model_version"]})
    assert first.status_code == 200 and first.json()["version"] == 2
    second = c.post(f"/api/step/{other['id']}/save", {"name": "tiny.qnet", "overwrite_version": other["model_version"]})
    assert second.status_code == 409
    assert c.post(f"/api/step/{sid}/save", {"name": "edited.qnet"}).status_code == 409  # exists, no version
    assert c.post(f"/api/step/{sid}/save", {"name": "../x.qnet"}).status_code == 422
    # the saved model carries the edit
    saved = c.post("/api/step", {"model_id": r.json()["id"], "image_id": im["id"], "mode": "int"}).json()
    cmd(c, saved["id"], "goto 0")
    assert cmd(c, saved["id"], "stats weights").status_code == 200
    assert c.delete(f"/api/files/{r.json()['id']}").status_code == 409  # open in a session


def test_modes_and_sessions_are_bounded_and_private(opened, bob: Client, client_factory) -> None:
    c, s = opened
    files = c.get("/api/files").json()["files"]
    q = [f for f in files if f["kind"] == "qnet"][0]
    im = [f for f in files if f["kind"] == "image"][0]
    cfg = c.upload_ok("tiny.cfg", TINY_CFG)
    assert c.post("/api/step", {"model_id": cfg["id"], "image_id": im["id"], "mode": "int"}).status_code == 422
    assert c.post("/api/step", {"model_id": cfg["id"], "image_id": im["id"], "mode": "float"}).status_code == 200
    assert c.post("/api/step", {"model_id": q["id"], "image_id": im["id"], "mode": "turbo"}).status_code == 422
    for _ in range(3):
        c.post("/api/step", {"model_id": q["id"], "image_id": im["id"], "mode": "hybrid"})
    sessions = c.get("/api/step").json()["sessions"]
    assert len(sessions) == 3 and s["id"] not in {x["id"] for x in sessions}  # least recently used closed
    assert c.get(f"/api/step/{s['id']}").status_code == 404
    sid = sessions[-1]["id"]
    assert bob.get("/api/step").json()["sessions"] == []
    for r in (bob.get(f"/api/step/{sid}"), cmd(bob, sid, "next"), bob.get(f"/api/step/{sid}/picture/output_grid.png"),
              bob.post(f"/api/step/{sid}/save", {"name": "stolen.qnet"}), bob.delete(f"/api/step/{sid}")):
        assert r.status_code == 404
    assert bob.post("/api/step", {"model_id": q["id"], "image_id": im["id"]}).status_code == 404
    assert c.delete(f"/api/step/{sid}").status_code == 200


def test_step_edit_load_is_refused_in_any_case(opened, tmp_path) -> None:
    """``edit LOAD path`` reached the Stepper (it reads sub-commands case-insensitively) and
    loaded any .npy on the server, another user's uploads included."""
    c, s = opened
    cmd(c, s["id"], "goto 0")
    secret = tmp_path / "secret.npy"
    np.save(secret, np.full((8, 3, 3, 3), 7, np.int8))
    for line in (f"edit LOAD {secret}", f"edit Load {secret}", f"EDIT load {secret}"):
        r = cmd(c, s["id"], line)
        assert r.status_code == 422, (line, r.text)
    assert c.get(f"/api/step/{s['id']}").json()["edits"] == []


def test_step_answers_name_no_server_path(opened, data_dir) -> None:
    """``show`` printed the pictures' absolute paths, an uploaded array's edit kept its
    temporary path in the session's edit list, and a refused one named it in the error."""
    c, s = opened
    cmd(c, s["id"], "goto 0")
    r = cmd(c, s["id"], "show output")
    assert r.status_code == 200 and [p["key"] for p in r.json()["result"]["pictures"]] == ["output_grid", "output_hist"]
    assert str(data_dir) not in r.text, r.text
    buf = io.BytesIO()
    np.save(buf, np.ones((8, 3, 3, 3), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 200 and str(data_dir) not in r.text, r.text
    assert r.json()["result"]["change"] == "weights from the uploaded array"
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 2), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 422 and str(data_dir) not in r.text, r.text
    assert str(data_dir) not in c.get(f"/api/step/{s['id']}").text


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 16


def test_npy_declaring_a_huge_array_is_422(opened) -> None:
    """A 100-byte .npy whose header declares terabytes made numpy allocate it: MemoryError, 500."""
    c, s = opened
    data = _npy_header_only((1 << 20, 1 << 20, 1 << 10))
    r = c.upload("huge.npy", data)
    assert r.status_code == 422, r.text
    cmd(c, s["id"], "goto 0")
    r = c.put(f"/api/step/{s['id']}/weights", data)
    assert r.status_code == 422, r.text


def test_step_weights_upload_beyond_the_limit_is_refused_before_it_is_read(tmp_path) -> None:
    """The STEP weights upload read the whole body into memory (request.body()) before
    checking its size, and before looking at the session: any logged-in user could make the
    server buffer gigabytes. A declared size beyond the limit is now refused at once."""
    import socket

    import httpx

    from tests.dla.web.live import live_server

    with live_server(tmp_path / "data") as url:
        c = httpx.Client(base_url=url)
        c.get("/login")
        csrf = c.cookies["dla_csrf"]
        assert c.post("/api/signup", json={"username": "dave", "password": "correct horse"},
                      headers={"X-CSRF-Token": csrf}).status_code == 200
        csrf = c.cookies["dla_csrf"]  # the login's own token (bound to the session)
        cookies = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall((f"PUT /api/step/nosuch/weights HTTP/1.1\r\nHost: {host}\r\nCookie: {cookies}\r\n"
                       f"X-CSRF-Token: {csrf}\r\nContent-Length: {1 << 40}\r\n\r\n").encode() + b"\0" * 1024)
            try:
                answer = s.recv(200)
            except TimeoutError:
                answer = b"(no answer: the server waits for the whole body)"
        assert answer.startswith(b"HTTP/1.1 413"), answer
