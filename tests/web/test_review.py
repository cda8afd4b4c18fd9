"""Defects found in a security review of the workbench: each test failed before its fix."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest

from tests.web.conftest import DOG, TINY_CFG, Client
from tests.web.test_step import cmd, opened, qnet_zip  # noqa: F401 - fixtures


def test_step_edit_load_is_refused_in_any_case(opened, tmp_path) -> None:  # noqa: F811
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


def test_step_answers_name_no_server_path(opened, data_dir) -> None:  # noqa: F811
    """``show`` printed the pictures' absolute paths, an uploaded array's edit kept its
    temporary path in the session's edit list, and a refused one named it in the error."""
    c, s = opened
    cmd(c, s["id"], "goto 0")
    r = cmd(c, s["id"], "show output")
    assert r.status_code == 200 and "grid:" in r.json()["output"]
    assert str(data_dir) not in r.text, r.text
    buf = io.BytesIO()
    np.save(buf, np.ones((8, 3, 3, 3), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 200 and str(data_dir) not in r.text, r.text
    assert "the uploaded array" in r.json()["output"]
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 2), np.int8))
    r = c.put(f"/api/step/{s['id']}/weights", buf.getvalue())
    assert r.status_code == 422 and str(data_dir) not in r.text, r.text
    assert str(data_dir) not in c.get(f"/api/step/{s['id']}").text
