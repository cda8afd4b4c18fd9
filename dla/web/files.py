"""The file manager's API: upload (streamed, size-limited, checked by content), list,
download, rename, delete, augment.  Every route is scoped to the logged-in user."""
from __future__ import annotations

import mimetypes
import os
import shutil
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from dla.web import sniff
from dla.web.auth import current_user
from dla.web.context import WebContext, ctx
from dla.web.db import User
from dla.web.storage import NotFound, TooLarge
from golden.errors import UserInputError

router = APIRouter(prefix="/api/files")
CHUNK = 1 << 20


def human_bytes(n: int) -> str:
    """``n`` bytes for people, in binary units: ``"512 B"``, ``"12.3 MiB"``, ``"500 MiB"``
    (one decimal below 100 of a unit, none above; a whole number shows no ``.0``)."""
    value, unit = float(n), "B"
    for next_unit in ("KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, next_unit
    if unit == "B":
        return f"{int(value)} B"
    text = f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text.removesuffix('.0')} {unit}"


@router.get("")
def list_files(user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """The user's files (each with ``size_text``), the bytes used and the quota, and
    ``usage``: both for people ("12.3 MiB of 500 MiB used")."""
    with c.db.session() as db:
        files = [f.to_dict() for f in c.storage.list(db, user.id)]
        used = c.storage.used(db, user.id)
    for f in files:
        f["size_text"] = human_bytes(f["size"])
    quota = c.storage.quota_bytes
    return {"files": files, "used": used, "quota": quota,
            "usage": f"{human_bytes(used)} of {human_bytes(quota)} used ({100 * used / quota:.0f} %)" if quota
            else f"{human_bytes(used)} used"}


async def _receive(request: Request, c: WebContext, target: Path) -> int:
    """Stream the request body to ``target`` in chunks, refusing beyond the size limit."""
    limit = c.storage.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"upload of {int(declared):,} bytes exceeds the limit of {limit:,}")
    n = 0
    with open(target, "wb") as out:
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                raise TooLarge(f"upload exceeds the limit of {limit:,} bytes")
            out.write(chunk)
    if n == 0:
        raise sniff.ContentError("the upload is empty")
    return n


@router.put("")
async def upload(request: Request, name: str = Query(...), overwrite_version: int | None = Query(None),
                 user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """The raw file is the request body (``fetch(url, {method: 'PUT', body: file})``)."""
    name = sniff.safe_name(name)
    kind = sniff.kind_of(name)
    tmp = c.storage.temp_path()
    qdir = c.storage.temp_path(".qnet")
    try:
        await _receive(request, c, tmp)
        from fastapi.concurrency import run_in_threadpool

        def store() -> dict:
            with c.db.session() as db:
                c.storage.check_quota(db, user.id, tmp.stat().st_size)
                try:
                    meta = sniff.check(kind, tmp, name, c.storage.cfg_paths(db, user.id), qdir,
                                       c.storage.max_upload_bytes * 4, c.settings.max_image_pixels)
                except UserInputError as exc:  # the .qnet loader names the unpacked temp folder
                    raise sniff.ContentError(str(exc).replace(str(qdir), name)) from None
                src = qdir if kind == "qnet" else tmp
                return c.storage.add(db, user.id, src, name, kind, meta, replace_version=overwrite_version).to_dict()

        return await run_in_threadpool(store)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(qdir, ignore_errors=True)


@router.post("/qnet-folder")
async def upload_qnet_folder(request: Request, name: str = Query(...), overwrite_version: int | None = Query(None),
                             user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """A ``.qnet`` as ``dla quantize`` / ``dla step``'s export write it: a folder (the browser's
    folder picker sends its ``model.json`` and ``weights.npz`` as two multipart parts).  The
    same checks as a zipped upload: size limit before reading, quota, ``load_qnet`` must accept it."""
    from fastapi.concurrency import run_in_threadpool  # starlette is fastapi's, not ours to pin

    if not name.endswith(".qnet"):
        name += ".qnet"
    name = sniff.safe_name(name)
    limit = c.storage.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise HTTPException(411, "a folder upload needs a Content-Length")
    if int(declared) > limit:
        raise TooLarge(f"upload of {int(declared):,} bytes exceeds the limit of {limit:,}")
    qdir = c.storage.temp_path(".qnet")
    try:
        async with request.form(max_files=len(sniff.QNET_MEMBERS), max_fields=0) as form:
            parts = {}
            for key, value in form.multi_items():
                if isinstance(value, str) or key not in sniff.QNET_MEMBERS or key in parts:
                    raise sniff.ContentError(f"a .qnet folder holds {' and '.join(sniff.QNET_MEMBERS)}, each once "
                                             f"(got {key!r})")
                parts[key] = value
            missing = [m for m in sniff.QNET_MEMBERS if m not in parts]
            if missing:
                raise sniff.ContentError(f"'{name}' is not a .qnet folder: {' and '.join(missing)} missing")
            qdir.mkdir(parents=True)
            for member, upload in parts.items():  # written under fixed names: nothing from the client names a path
                with open(qdir / member, "wb") as out:
                    shutil.copyfileobj(upload.file, out, CHUNK)

        def store() -> dict:
            with c.db.session() as db:
                c.storage.check_quota(db, user.id, c.storage.disk_size(qdir))
                qnet, _hw = sniff.load_qnet_checked(qdir, name)  # errors name the user's file
                meta = {"layers": len(qnet.net.layers), "input": list(qnet.net.input_shape), "model": qnet.net.name}
                return c.storage.add(db, user.id, qdir, name, "qnet", meta, replace_version=overwrite_version).to_dict()

        return await run_in_threadpool(store)
    finally:
        shutil.rmtree(qdir, ignore_errors=True)


@router.get("/{file_id}")
def file_info(file_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    with c.db.session() as db:
        return c.storage.get(db, user.id, file_id).to_dict()


@router.get("/{file_id}/weights")
def matching_weights(file_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """The user's .weights files as candidates for the cfg ``file_id``, checked now (a cfg
    uploaded after its weights counts too): ``fits`` = the file has exactly the bytes
    ``golden.weights.read_weights`` requires for this cfg (its header + 4 bytes per
    parameter), ``same_stem`` = it is named like the cfg.  ``best`` is the one to pre-select:
    a fitting file named like the cfg, else the most recently changed fitting one, else none
    (then the page warns that the run uses seeded random weights)."""
    from golden.network import parse_network
    from golden.weights import expected_size

    with c.db.session() as db:
        cfg = c.storage.get(db, user.id, file_id, ("cfg",))
        cfg_path, cfg_name = c.storage.path(cfg), cfg.name
        weights = [(r.to_dict(), c.storage.path(r)) for r in c.storage.list(db, user.id) if r.kind == "weights"]
    net = parse_network(cfg_path)
    n_params = sum(s.n_params for s in net.param_layers())
    stem = Path(cfg_name).stem
    out = []
    for rec, path in weights:
        try:
            major, minor, *_ = sniff.weights_header(path)
            expected = expected_size(net, major, minor)
        except (sniff.ContentError, OSError):
            expected = None
        out.append({"id": rec["id"], "name": rec["name"], "size": rec["size"], "expected_size": expected,
                    "fits": expected == rec["size"], "same_stem": Path(rec["name"]).stem == stem,
                    "updated_at": rec["updated_at"]})
    ranked = sorted((w for w in out if w["fits"]), key=lambda w: (w["same_stem"], w["updated_at"]), reverse=True)
    return {"cfg": cfg_name, "parameters": n_params, "weights": out, "best": ranked[0]["id"] if ranked else None}


@router.get("/{file_id}/download")
def download(file_id: int, inline: bool = False, user: User = Depends(current_user),
             c: WebContext = Depends(ctx)) -> Response:
    with c.db.session() as db:
        rec = c.storage.get(db, user.id, file_id)
        path, name, kind = c.storage.path(rec), rec.name, rec.kind
    if kind == "qnet":  # the name quoted as FileResponse does: any character, no broken header
        quoted = quote(f"{name}.zip")
        try:
            body = c.storage.qnet_zip(path, name)
        except FileNotFoundError:  # deleted by another request since the lookup
            raise NotFound(f"file {file_id} not found") from None
        return Response(body, media_type="application/zip",
                        headers={"Content-Disposition": f"attachment; filename*=utf-8''{quoted}"})
    try:  # opened now: a delete racing this download cannot pull the file from under it
        f = open(path, "rb")
    except FileNotFoundError:  # deleted by another request since the lookup
        raise NotFound(f"file {file_id} not found") from None
    disposition = "inline" if inline else "attachment"
    quoted = quote(name)  # as FileResponse names it
    disposition += f"; filename*=utf-8''{quoted}" if quoted != name else f'; filename="{name}"'

    def chunks():
        with f:
            while block := f.read(CHUNK):
                yield block

    return StreamingResponse(chunks(), media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                             headers={"Content-Disposition": disposition,
                                      "Content-Length": str(os.fstat(f.fileno()).st_size)})


class Rename(BaseModel):
    name: str
    version: int


@router.patch("/{file_id}")
def rename(file_id: int, body: Rename, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    with c.db.session() as db:
        rec = c.storage.get(db, user.id, file_id)
        return c.storage.rename(db, rec, body.name, body.version).to_dict()


@router.delete("/{file_id}")
def delete(file_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    with c.db.session() as db:
        rec = c.storage.get(db, user.id, file_id)
        if c.steps.uses_file(user.id, file_id):
            raise HTTPException(409, f"'{rec.name}' is open in a STEP session: close it first")
        c.storage.delete(db, rec)
    return {"deleted": file_id}


@router.post("/{file_id}/augment")
def augment(file_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """Five images (original, rotate, blur, flip, flop) from one, as new files."""
    from dla.augment import augment_files

    out = c.storage.temp_path(".aug")
    try:
        with c.db.session() as db:
            rec = c.storage.get(db, user.id, file_id, ("image",))
            written = augment_files([c.storage.path(rec)], out, stem=Path(rec.name).stem)
            created = []
            for p in written:
                meta = sniff.check("image", p, p.name, {}, out, 0)
                created.append(c.storage.add(db, user.id, p, p.name, "image", meta, unique=True).to_dict())
        return {"files": created}
    finally:
        shutil.rmtree(out, ignore_errors=True)
