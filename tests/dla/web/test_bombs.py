"""Upload bombs: a .qnet whose weights.npz inflates to gigabytes or holds arrays of other
shapes than its cfg's, and images beyond the pixel limit, are refused from their headers —
before anything is inflated or decoded (the server's peak memory is measured)."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest

from tests.dla.web.helpers import Client, png_bytes
from tests.dla.web.rss import peak, reset_peak

GIB = 1 << 30


def _deflated_zeros(n: int) -> tuple[bytes, int]:
    """``n`` zero bytes deflated (raw, as zip stores them) and their CRC, made in 64 MiB steps."""
    comp, crc, block = zlib.compressobj(9, zlib.DEFLATED, -15), 0, bytes(64 << 20)
    out = []
    for _ in range(n // len(block)):
        out.append(comp.compress(block))
        crc = zlib.crc32(block, crc)
    out.append(comp.flush())
    return b"".join(out), crc


def _raw_member(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """Append a deflated member of ``size`` zero bytes without ever holding them in memory."""
    data, crc = _deflated_zeros(size)
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type, info.file_size, info.compress_size, info.CRC = zipfile.ZIP_DEFLATED, size, len(data), crc
    zf.fp.write(info.FileHeader(zip64=False))  # as ZipFile.writestr does, with the bytes pre-deflated
    zf.fp.write(data)
    info.header_offset = zf.start_dir
    zf.start_dir = zf.fp.tell()
    zf.filelist.append(info)
    zf.NameToInfo[name] = info


def _qnet_with_npz(qnet_zip: bytes, edit) -> bytes:
    """The tiny .qnet zip with its weights.npz rebuilt by ``edit(npz_zipfile, original_members)``."""
    src = zipfile.ZipFile(io.BytesIO(qnet_zip))
    old = zipfile.ZipFile(io.BytesIO(src.read("weights.npz")))
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as zf:
        edit(zf, {i.filename: old.read(i) for i in old.infolist()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("model.json", src.read("model.json"))
        zf.writestr("weights.npz", npz.getvalue())
    return out.getvalue()


def _extra_member(zf: zipfile.ZipFile, members: dict[str, bytes]) -> None:
    for k, v in members.items():
        zf.writestr(k, v)
    zf.start_dir = zf.fp.tell()
    _raw_member(zf, "junk.npy", GIB)


def _huge_w_q(zf: zipfile.ZipFile, members: dict[str, bytes]) -> None:
    for k, v in members.items():
        if k != "L000.w_q.npy":
            zf.writestr(k, v)
    zf.start_dir = zf.fp.tell()
    _raw_member(zf, "L000.w_q.npy", GIB)


def _wrong_shape(zf: zipfile.ZipFile, members: dict[str, bytes]) -> None:
    for k, v in members.items():
        if k == "L000.w_q.npy":
            buf = io.BytesIO()
            np.save(buf, np.zeros((2, 2), np.int8))
            v = buf.getvalue()
        zf.writestr(k, v)


@pytest.mark.parametrize("edit,message", [(_extra_member, "unexpected member 'junk.npy'"),
                                          (_huge_w_q, "declares 1,073,741,824 bytes"),
                                          (_wrong_shape, "array 'L000.w_q' is (2, 2) int8, the cfg needs (8, 3, 3, 3) int8")])
def test_npz_bombs_are_refused_before_inflating(alice: Client, qnet_zip: bytes, edit, message: str,
                                                data_dir) -> None:
    body = _qnet_with_npz(qnet_zip, edit)
    assert len(body) < 2 * 1024 * 1024  # within the upload limit: only the content can refuse it
    reset_peak()
    before = peak()
    r = alice.upload("bomb.qnet", body)
    grew = peak() - before
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"] and r.json()["detail"].startswith("bomb.qnet: weights.npz")
    assert grew < 200 * 1024 * 1024, f"the server's peak memory grew by {grew:,} bytes"
    assert alice.get("/api/files").json()["files"] == []
    assert not any((data_dir / "tmp").iterdir())


def test_outer_zip_declaring_more_than_the_limit(alice: Client, qnet_zip: bytes) -> None:
    src = zipfile.ZipFile(io.BytesIO(qnet_zip))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("weights.npz", src.read("weights.npz"))
        zf.start_dir = zf.fp.tell()
        _raw_member(zf, "model.json", GIB)
    reset_peak()
    before = peak()
    r = alice.upload("outer.qnet", out.getvalue())
    assert r.status_code == 422 and "unpacks to 1,07" in r.json()["detail"], r.text
    assert peak() - before < 200 * 1024 * 1024


def test_the_untouched_qnet_still_loads(alice: Client, qnet_zip: bytes) -> None:
    assert alice.upload_ok("fine.qnet", _qnet_with_npz(qnet_zip, lambda zf, m: [zf.writestr(k, v)
                                                                                for k, v in m.items()]))["kind"] == "qnet"


def test_image_pixel_limit(alice: Client) -> None:
    """An 81-Mpx PNG passed (Pillow's guard starts at ~89 Mpx and only warns up to twice that)."""
    reset_peak()
    before = peak()
    r = alice.upload("big.png", _png_header(9000, 9000))
    assert r.status_code == 422 and "9000x9000 = 81,000,000 pixels; at most 50,000,000" in r.json()["detail"]
    assert peak() - before < 100 * 1024 * 1024


def test_image_pixel_limit_is_configurable(app_factory) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app_factory(max_image_pixels=5000)) as tc:
        c = Client(tc)
        c.signup("ivan")
        assert c.upload("ok.png", png_bytes((80, 60))).status_code == 200  # 4,800 pixels
        r = c.upload("no.png", png_bytes((80, 70)))
        assert r.status_code == 422 and "at most 5,000" in r.json()["detail"]


def test_cli_serve_has_the_pixel_limit() -> None:
    from click.testing import CliRunner

    from dla.cli import cli

    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert "--max-image-pixels" in r.output


def test_scenario_upload_alias_bomb_refused_without_expanding(alice: Client) -> None:
    """A ~400-byte YAML alias bomb uploaded as a scenario: the sniffer reads it with the commands'
    alias bound (dla.yamlsafe) instead of ``yaml.safe_load``, which would expand 9**9 values."""
    text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for p, c in zip("abcdefgh", "bcdefghi"):
        text += f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    assert len(text) < 400
    reset_peak()
    r = alice.upload("bomb.yaml", text.encode())
    assert r.status_code == 422, r.text
    assert "more than 100,000 values" in r.json()["detail"], r.text
    assert alice.get("/api/files").json()["files"] == []


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_decompression_bomb_image_is_422(alice: Client) -> None:
    """An image declaring 900 megapixels raised Pillow's DecompressionBombError: 500."""
    r = alice.upload("bomb.png", _png_header(30000, 30000))
    assert r.status_code == 422, r.text
