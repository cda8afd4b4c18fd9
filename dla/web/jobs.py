"""Jobs: long work in worker processes, progress to the page, cancel, clean failure.

Each job runs in its own process (forkserver context with the library preloaded, so a job
starts in milliseconds and never shares the server's threads), at most ``workers`` at a
time.  A supervising thread in the server reads the worker's messages from a pipe and is
the only writer of the job's row.  A job that raises, crashes or is killed is marked failed
(or cancelled) with its message, and its output directory is removed: no partial files.
On success the outputs listed in ``keep`` become the user's files.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import quote
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from dla.web.auth import current_user
from dla.web.context import WebContext, ctx
from dla.web.db import MAX_ID, Database, Job, User, utcnow
from dla.web.fairqueue import FairSlots
from dla.web.limits import check_fits, human
from dla.web.modelref import model_ref
from dla.web.storage import NotFound, Storage, TooLarge
from golden.errors import UserInputError

PRELOAD = ["dla.web.tasks", "dla.scenario", "dla.scenario.outputs", "dla.scenario.plots", "dla.calibration",
           "dla.qnet_file", "dla.compare", "golden.draw", "dla.web.stepworker", "dla.web.stepping", "dla.pictures"]


class JobRunner:
    def __init__(self, db: Database, storage: Storage, data_dir: Path, workers: int = 2,
                 max_memory: int | None = None, max_seconds: float | None = None) -> None:
        self.db, self.storage = db, storage
        self.max_memory, self.max_seconds = max_memory, max_seconds
        self.root = data_dir / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.mp = multiprocessing.get_context("forkserver")  # also starts the STEP workers
        self.mp.set_forkserver_preload(PRELOAD)
        self.slots = FairSlots(workers)  # per-user round robin, not one global FIFO
        self._lock = threading.Lock()
        self._keep_lock = threading.Lock()  # keep(): the check of 'kept' and the copy together
        self._procs: dict[int, Any] = {}
        self._cancelled: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._closing = False  # set by shutdown: no worker starts after it
        for job_id in db.interrupt_running_jobs():
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def job_dir(self, job_id: int) -> Path:
        return self.root / str(int(job_id))

    # ------------------------------------------------------------------ lifecycle
    def submit(self, user_id: int, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.db.session() as db:
            job = Job(user_id=user_id, kind=kind, params_json=json.dumps(params), message="queued")
            db.add(job)
            db.flush()
            out = job.to_dict()
        t = threading.Thread(target=self._supervise, args=(out["id"], user_id, kind, params), daemon=True,
                             name=f"job-{out['id']}")
        self._threads.append(t)
        t.start()
        return out

    def _update(self, job_id: int, **fields: Any) -> None:
        with self.db.session() as db:
            job = db.get(Job, job_id)
            for k, v in fields.items():
                setattr(job, k, v)
            job.updated_at = utcnow()

    def _supervise(self, job_id: int, user_id: int, kind: str, params: dict[str, Any]) -> None:
        try:
            self._run(job_id, user_id, kind, params)
        except Exception as exc:  # noqa: BLE001 - the server's own failure must still end the job
            self._finish_failed(job_id, "failed", f"the job could not run: {type(exc).__name__}: {exc}")

    def _run(self, job_id: int, user_id: int, kind: str, params: dict[str, Any]) -> None:
        with self.slots.slot(user_id, job_id, lambda: job_id in self._cancelled or self._closing) as admitted:
            if not admitted or job_id in self._cancelled:
                return
            out_dir = self.job_dir(job_id)
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True)
            from dla.web.tasks import worker_main

            recv, send = self.mp.Pipe(duplex=False)
            proc = self.mp.Process(target=worker_main, args=(kind, params, str(out_dir), send, self.max_memory),
                                   daemon=True)
            with self._lock:
                if job_id in self._cancelled or self._closing:  # closing: stays queued, then "interrupted"
                    return
                proc.start()
                self._procs[job_id] = proc
            send.close()
            self._update(job_id, status="running", message="started")
            result, error = None, None
            deadline = time.monotonic() + self.max_seconds if self.max_seconds else None
            while True:
                try:
                    if not recv.poll(0.2):
                        if not proc.is_alive() and not recv.poll(0):
                            break
                        if deadline is not None and time.monotonic() > deadline:
                            proc.kill()
                            error = (f"stopped after {self.max_seconds:g} s: the time limit per job "
                                     "(dla serve --max-job-seconds)")
                            break
                        continue
                    msg = recv.recv()
                except (EOFError, OSError):
                    break
                if msg[0] == "progress":
                    self._update(job_id, progress=msg[1], message=msg[2])
                elif msg[0] == "done":
                    result = msg[1]
                elif msg[0] == "error":
                    error = msg[1]
            proc.join()
            with self._lock:
                self._procs.pop(job_id, None)
                cancelled = job_id in self._cancelled
            if cancelled:
                self._finish_failed(job_id, "cancelled", "cancelled by the user")
            elif result is not None:
                self._finish_done(job_id, user_id, result)
            else:
                died = f"the worker process died (exit code {proc.exitcode})"
                if proc.exitcode and proc.exitcode < 0 and self.max_memory:  # a signal: the OOM killer, an admin
                    died += f"; the memory limit is {human(self.max_memory)} per job"
                self._finish_failed(job_id, "failed", error or died)

    def _finish_failed(self, job_id: int, status: str, message: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._update(job_id, status=status, message=message)

    def _finish_done(self, job_id: int, user_id: int, result: dict[str, Any]) -> None:
        out_dir = self.job_dir(job_id)
        moved: list[Path] = []  # outputs already in the user's folder: gone with a rollback
        try:
            with self.db.session() as db:
                kept, not_kept = {}, {}
                for name in [*result.get("keep", []), *result.pop("keep_if_room", [])]:
                    try:
                        rec = self._keep_one(db, job_id, user_id, out_dir, name)
                    except TooLarge as exc:  # refused before any change: the other outputs stand
                        if name in result.get("keep", []):
                            raise
                        not_kept[name] = str(exc)
                        continue
                    moved.append(self.storage.path(rec))
                    kept[name] = {"id": rec.id, "name": rec.name}
                result["kept"] = kept
                if not_kept:
                    result["not_kept"] = not_kept
        except BaseException as exc:
            for p in moved:  # the rows were rolled back: their files must go too
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            if not isinstance(exc, UserInputError):
                raise
            self._finish_failed(job_id, "failed", str(exc))  # e.g. the quota: the results cannot be kept
            return
        self._update(job_id, status="done", progress=100, message="done", result_json=json.dumps(result, default=str))

    def _keep_one(self, db: Any, job_id: int, user_id: int, out_dir: Path, name: str) -> Any:
        """Copy the job's output ``name`` into the user's files (a free name if taken; quota checked)."""
        from dla.web import sniff

        src = out_dir / name
        kind = sniff.EXTENSIONS.get(Path(name).suffix.lower(), "result")
        copy = self.storage.temp_path(".qnet" if kind == "qnet" else "")
        try:
            (shutil.copytree if src.is_dir() else shutil.copyfile)(src, copy)
            return self.storage.add(db, user_id, copy, name, kind, {"job": job_id}, unique=True)
        finally:  # not kept (e.g. over the quota): the copy must not stay in tmp/
            shutil.rmtree(copy, ignore_errors=True) if copy.is_dir() else copy.unlink(missing_ok=True)

    def keep(self, job_id: int, user_id: int, name: str) -> dict[str, Any]:
        """A finished job's output into the user's files on request (the Run page's *Save to my
        files*): recorded in the job's ``kept`` so the page shows it after a reload; 409 while
        the copy kept before is still in the user's files."""
        out_dir, moved = self.job_dir(job_id), None
        try:
            with self._keep_lock, self.db.session() as db:  # one at a time: a double click keeps one copy
                job = db.get(Job, job_id)
                result = json.loads(job.result_json or "{}")
                prev = result.get("kept", {}).get(name)
                if prev:  # still there (perhaps renamed)?  Deleted by the user: it can be saved again
                    try:
                        current = self.storage.get(db, user_id, prev["id"]).name
                    except NotFound:
                        current = None
                    if current is not None:
                        raise HTTPException(409, f"'{name}' is already in your files as '{current}'")
                rec = self._keep_one(db, job_id, user_id, out_dir, name)
                moved = self.storage.path(rec)
                result.setdefault("kept", {})[name] = {"id": rec.id, "name": rec.name}
                job.result_json = json.dumps(result, default=str)
                out = rec.to_dict()
        except BaseException:
            if moved is not None:  # the row was rolled back: its file must go too
                shutil.rmtree(moved, ignore_errors=True) if moved.is_dir() else moved.unlink(missing_ok=True)
            raise
        return out

    def cancel(self, job_id: int) -> None:
        with self._lock:
            self._cancelled.add(job_id)
            proc = self._procs.get(job_id)
        if proc is not None and proc.is_alive():
            proc.terminate()
        else:
            with self.db.session() as db:
                job = db.get(Job, job_id)
                if job is not None and job.status == "queued":
                    job.status, job.message = "cancelled", "cancelled by the user"
            self.slots.wake()  # a queued job leaves the queue now

    def shutdown(self) -> None:
        with self._lock:
            self._closing = True
            procs = list(self._procs.items())
            self._cancelled.update(j for j, _ in procs)
        for _, p in procs:
            if p.is_alive():
                p.terminate()
        self.slots.wake()
        for t in self._threads:
            t.join(timeout=5)


# ---------------------------------------------------------------------- routes
router = APIRouter(prefix="/api/jobs")


class QuantOptions(BaseModel):
    activations: str = "max"
    weights: str = "max"
    granularity: str = "per_channel"
    percentile: float = 99.99
    calib: str = "synthetic"  # "synthetic" | "image" | "images" (the user's photos in calib_image_ids)
    calib_n: int = Field(2, ge=1, le=64)
    calib_image_ids: list[int] = Field(default_factory=list, max_length=256)
    overrides: list[dict[str, Any]] = []


class RunRequest(BaseModel):
    model_id: int
    weights_id: int | None = None
    image_id: int
    modes: list[str] = ["float", "hybrid", "int"]
    quant: QuantOptions = QuantOptions()
    darknet: Literal["pjreddie", "alexeyab", "auto"] = "auto"
    min_sqnr_db: float | None = None  # a check in the report: final SQNR of each quantized mode
    save_qnet: bool = False  # the calibrated .qnet into the user's files (else only in the job's outputs)


class QuantizeRequest(BaseModel):
    model_id: int
    weights_id: int | None = None
    image_id: int | None = None
    output: str | None = None
    quant: QuantOptions = QuantOptions()
    darknet: Literal["pjreddie", "alexeyab", "auto"] = "auto"


def _check_quant(q: QuantOptions) -> None:
    """Unknown algorithms are refused now (422), not in the worker: by the library's spec and
    by the scenario schema the Run job goes through."""
    from pydantic import ValidationError

    from dla.scenario.schema import QuantSection
    from dla.web.tasks import form_spec

    form_spec(q.model_dump())
    try:
        QuantSection.model_validate({k: v for k, v in q.model_dump().items() if k not in ("calib", "calib_n", "calib_image_ids")}
                                    | {"overrides": [{k: v for k, v in o.items() if v not in (None, "", [])}
                                                     for o in q.overrides]})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserInputError(f"quant.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def calib_set(c: WebContext, db: Any, user_id: int, q: QuantOptions) -> list[dict[str, str]]:
    """The calibration photos chosen by id (ownership checked) as ``{"path", "name"}``, for
    ``calib: images``; empty for the other sources.  Their names are the user's (unique per user)."""
    if q.calib not in ("synthetic", "image", "images"):
        raise UserInputError(f"quant.calib: synthetic, image or images (got {q.calib!r})")
    if q.calib != "images":
        return []
    if not q.calib_image_ids:
        raise UserInputError("calibration on your photos: choose at least one image")
    recs = [c.storage.get(db, user_id, i, ("image",)) for i in dict.fromkeys(q.calib_image_ids)]
    return [{"path": str(c.storage.path(r)), "name": r.name} for r in recs]


@router.post("/run")
def start_run(body: RunRequest, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    bad = [m for m in body.modes if m not in ("float", "hybrid", "int")]
    if bad or not body.modes:
        raise UserInputError(f"modes: float, hybrid, int (got {', '.join(bad) or 'none'})")
    _check_quant(body.quant)
    with c.db.session() as db:
        ref = model_ref(c.storage, db, user.id, body.model_id, body.weights_id, body.darknet)
        image = c.storage.get(db, user.id, body.image_id, ("image",))
        weights = c.storage.get(db, user.id, body.weights_id).name if body.weights_id is not None else None
        check_fits(c.settings.max_job_memory, ref.kind, ref.path, ref.name, image.meta)
        params = {"model": ref.to_dict(), "image": str(c.storage.path(image)), "image_name": image.name,
                  "weights_name": weights, "modes": body.modes, "quant": body.quant.model_dump(),
                  "min_sqnr_db": body.min_sqnr_db, "save_qnet": body.save_qnet,
                  "calib_images": calib_set(c, db, user.id, body.quant)}
    return c.jobs.submit(user.id, "run", params)


@router.post("/quantize")
def start_quantize(body: QuantizeRequest, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    _check_quant(body.quant)
    if body.output:
        from dla.web.sniff import safe_name

        safe_name(body.output)
    with c.db.session() as db:
        ref = model_ref(c.storage, db, user.id, body.model_id, body.weights_id, body.darknet)
        if ref.kind != "cfg":
            raise UserInputError("quantize a cfg model (a .qnet is already quantized)")
        image = c.storage.get(db, user.id, body.image_id, ("image",)) if body.image_id is not None else None
        check_fits(c.settings.max_job_memory, ref.kind, ref.path, ref.name, image.meta if image else None)
        params = {"model": ref.to_dict(), "image": str(c.storage.path(image)) if image else None,
                  "image_name": image.name if image else None, "output": body.output, "quant": body.quant.model_dump(),
                  "calib_images": calib_set(c, db, user.id, body.quant)}
    return c.jobs.submit(user.id, "quantize", params)


def _job(c: WebContext, user_id: int, job_id: int) -> dict:
    with c.db.session() as db:
        job = db.get(Job, job_id) if 0 < job_id <= MAX_ID else None
        if job is None or job.user_id != user_id:
            raise NotFound(f"job {job_id} not found")
        return job.to_dict()


@router.get("")
def list_jobs(user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    with c.db.session() as db:
        jobs = db.scalars(select(Job).where(Job.user_id == user.id).order_by(Job.id.desc()).limit(50))
        return {"jobs": [j.to_dict() for j in jobs]}


@router.get("/{job_id}")
def get_job(job_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    return _job(c, user.id, job_id)


@router.post("/{job_id}/cancel")
def cancel_job(job_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    job = _job(c, user.id, job_id)
    if job["status"] in Job.FINISHED:
        raise HTTPException(409, f"job {job_id} has already finished ({job['status']})")
    c.jobs.cancel(job_id)
    return {"id": job_id, "cancelling": True}


@router.delete("/{job_id}")
def delete_job(job_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """Forget a finished job and delete its outputs (reports, plots, zips): job folders are not
    part of the user's file quota, so this is how a user gives the space back.  Files the job
    kept in the user's files (a calibrated .qnet, the report) stay there."""
    job = _job(c, user.id, job_id)
    if job["status"] not in Job.FINISHED:
        raise HTTPException(409, f"job {job_id} is {job['status']}: cancel it first")
    with c.db.session() as db:
        row = db.get(Job, job_id)
        if row is not None and row.user_id == user.id:
            db.delete(row)
    shutil.rmtree(c.jobs.job_dir(job_id), ignore_errors=True)
    return {"id": job_id, "deleted": True}


@router.get("/{job_id}/events")
async def job_events(job_id: int, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> StreamingResponse:
    """Server-sent events: one ``data:`` line (the job as JSON) per change, until it finishes."""
    _job(c, user.id, job_id)

    async def stream():
        last = None
        while True:
            job = await asyncio.to_thread(_job, c, user.id, job_id)
            key = (job["status"], job["progress"], job["message"])
            if key != last:
                last = key
                yield f"data: {json.dumps(job)}\n\n"
            if job["status"] in Job.FINISHED:
                return
            await asyncio.sleep(0.25)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _output(c: WebContext, user_id: int, job_id: int, name: str) -> dict:
    job = _job(c, user_id, job_id)
    if job["status"] != "done" or name not in job["result"].get("files", []):
        raise NotFound(f"job {job_id} has no file '{name}'")
    return job


@router.get("/{job_id}/files/{name}")
def job_file(job_id: int, name: str, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> Response:
    """One output of a finished job; a .qnet (a folder on disk) as the zip the upload accepts."""
    _output(c, user.id, job_id, name)
    if name.endswith(".qnet"):
        quoted = quote(f"{name}.zip")
        return Response(c.storage.qnet_zip(c.jobs.job_dir(job_id) / name, name), media_type="application/zip",
                        headers={"Content-Disposition": f"attachment; filename*=utf-8''{quoted}"})
    inline = name.endswith(".png")
    return FileResponse(c.jobs.job_dir(job_id) / name, filename=name,
                        content_disposition_type="inline" if inline else "attachment")


class KeepRequest(BaseModel):
    name: str


@router.post("/{job_id}/keep")
def keep_output(job_id: int, body: KeepRequest, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """Save a finished job's output (the calibrated .qnet of a run) into the user's files, under
    its name or a free variant of it; counted against the quota (413 when it does not fit)."""
    _output(c, user.id, job_id, body.name)  # 404 unless this user has that finished output
    if not body.name.endswith(".qnet"):
        raise UserInputError(f"only the calibrated .qnet is saved on request; '{body.name}' is a download")
    return c.jobs.keep(job_id, user.id, body.name)
