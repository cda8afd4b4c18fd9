"""What a first-time user of the workbench ran into (issue J, item 9), one test per point:
the icon, the quota in human units, the weights that fit the chosen cfg, random weights said
out loud, a calibration set of the user's own photos, a .qnet as the CLI writes it (a folder),
and runs that keep their calibrated model in the job until the user asks to save it."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dla.web.files import human_bytes
from tests.web.conftest import Client, png_bytes


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
