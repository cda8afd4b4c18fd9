"""STEP/CROSS in the browser: ``dla.session.Session`` driven by the debugger's own ``Stepper``
(``dla.debugger``), one per open session, each in a worker process of its own
(``dla.web.stepworker``: memory and time limits, so no session can take the server down).

The page sends the same command lines as ``dla step`` (next, goto N, edit w[IDX]=V, edit
scale C F, rerun, undo, diff, cross, stats, info, show, help); they are parsed here
(``dla.debugger.commands``) and run by the Stepper, whose *result* (``dla.debugger.results``)
goes to the page as data, with the session's state — the browser renders both, so the
browser and the terminal work on the same numbers without either reading the other's text.
A result carries no path of the server (a picture is named by its key).  Commands that touch
the server's file system (save, export, edit load) are not accepted as text: the page has
its own routes (an uploaded array reaches the Stepper as an array, never as a file).
Sessions are bounded: at most N per user, the least recently used one is closed first.

``StepState`` is the session as it lives in its worker; its ``op_*`` methods are what the
server may ask of it.  ``RemoteStep`` (stepworker) is the server's handle on it.
"""
from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from dla.debugger import views
from dla.debugger.commands import (Command, Cross, Diff, Edit, Goto, Help, Info, Next, Replace, Rerun, Show, Stats,
                                   StepError, Undo, parse)
from dla.debugger.results import Failed, Pictures, Result
from dla.debugger.stepper import Stepper
from dla.session import Session, tensor_stats
from dla.web import sniff
from dla.web.auth import current_user
from dla.web.context import WebContext, ctx
from dla.web.db import User
from dla.web.modelref import model_ref
from dla.web.modelref import load
from dla.web.limits import check_fits
from dla.web.stepworker import RemoteStep
from dla.web.storage import NotFound
from golden.errors import UserInputError

#: The commands the page may send as text (``edit`` but not ``edit load``).
ON_PAGE: tuple[type[Command], ...] = (Next, Goto, Info, Stats, Show, Edit, Undo, Rerun, Diff, Cross, Help)
ALLOWED = tuple(c.name for c in ON_PAGE)
PICTURES = {"output_grid": ("output", "output_grid"), "output_hist": ("output", "output_hist"),
            "input_grid": ("input", "input_grid"), "input_hist": ("input", "input_hist"),
            "weights_grid": ("weights", "weights_grid"), "weights_hist": ("weights", "weights_hist"),
            "cross_scatter": ("cross", "cross_scatter")}
#: Drawing is serialised in the whole server: matplotlib's text layout (its mathtext parser) is
#: not thread-safe, and two threads drawing at once fail now and then.
MATPLOTLIB = threading.Lock()
#: The pictures the STEP page shows for every state, in the order it looks at them.
SHOWN = ("output_grid", "input_grid", "output_hist", "weights_grid")
#: How an uploaded array is named in the answer and the edit list.
UPLOADED = "the uploaded array"


def _not_here(name: str) -> UserInputError:
    return UserInputError(f"command {name!r} is not available here (use: {', '.join(ALLOWED)}; "
                          "edit load → the upload button, save/export → 'Save as .qnet')")


def page_command(line: str) -> Command:
    """The command the page sent as ``line``, if the page may run it (``UserInputError`` if not,
    or if the line does not parse: the message is the debugger's own)."""
    try:
        command = parse(line)
    except StepError as exc:
        if exc.command is not None and exc.command not in ALLOWED:
            raise _not_here(exc.command) from None
        raise UserInputError(str(exc)) from None
    if command is None:
        raise UserInputError(f"no command given (use: {', '.join(ALLOWED)})")
    if not isinstance(command, ON_PAGE) or (isinstance(command, Edit) and command.loads_file):
        raise _not_here(f"{command.name} load" if isinstance(command, Edit) else command.name)
    return command


def result_data(result: Result, sid: str) -> dict[str, Any]:
    """``result`` as the page gets it: its data (no server path), and for each picture the page
    can fetch, its URL."""
    data = result.data()
    if isinstance(result, Pictures):
        for p in data["pictures"]:
            if p["key"] in PICTURES:
                p["url"] = f"/api/step/{sid}/picture/{p['key']}.png"
    return data


@dataclass
class StepState:
    id: str
    session: Session
    stepper: Stepper
    pictures: Path
    model_id: int
    model_name: str
    model_version: int
    image_name: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = 0  # grows with every command that can change a tensor
    rendered: dict[str, tuple[int, Path]] = field(default_factory=dict)  # picture -> (generation, file)
    _drawing: dict[tuple[str, int], Future] = field(default_factory=dict)  # pictures being drawn
    _pictures_lock: threading.Lock = field(default_factory=threading.Lock)  # guards the two above
    has_before: bool = False
    last_used: float = field(default_factory=time.monotonic)

    def run(self, command: Command) -> Result:
        """One Stepper command (caller holds ``lock``); its result (``UserInputError`` with the
        Stepper's message if it failed).  ``show`` draws, so it waits for matplotlib."""
        if isinstance(command, Show):
            with MATPLOTLIB:
                result = self.stepper.execute(command)
        else:
            result = self.stepper.execute(command)
        if command.changes_tensors:  # a failed goto may still have run some layers
            self.generation += 1
        if isinstance(result, Failed):
            raise UserInputError(result.message)
        return result

    def picture(self, key: str) -> Path:
        """The picture ``key`` of the current state, drawn now if it is not yet (caller holds ``lock``)."""
        return self.picture_task(key)()

    def picture_task(self, key: str) -> Callable[[], Path]:
        """Take what picture ``key`` needs from the session (caller holds ``lock``); the returned
        call draws it, or waits for the request already drawing it, and needs no lock.

        Only the requested picture is drawn (``show output`` would draw the grid *and* the
        histogram; the page shows four of the six), and pictures of one state are drawn by their
        own requests without the session's lock (matplotlib itself draws one at a time: its text
        layout is not thread-safe).  The pictures are those of ``dla step``'s ``show`` (same
        functions, same titles; a test compares the bytes)."""
        gen = self.generation
        with self._pictures_lock:
            done = self.rendered.get(key)
            if done is not None and done[0] == gen and done[1].exists():
                return lambda: done[1]
            running = self._drawing.get((key, gen))
        if running is not None:
            return running.result
        if key == "cross_scatter":  # CROSS runs the layer again: a command, drawn under the lock
            shown = self.run(Show("cross"))
            assert isinstance(shown, Pictures)
            path = shown.pictures[0].path
            self._done(key, gen, path)
            return lambda: path
        draw = self._drawing_of(key)
        fut: Future[Path] = Future()
        with self._pictures_lock:
            self._drawing[(key, gen)] = fut
        path = self.pictures / f"g{gen}-{key}.png"

        def run() -> Path:
            try:
                with MATPLOTLIB:
                    draw(path)
                self._done(key, gen, path)
                fut.set_result(path)
            except BaseException as exc:
                fut.set_exception(exc)
                raise
            finally:
                with self._pictures_lock:
                    self._drawing.pop((key, gen), None)
            return path

        return run

    def prefetch(self) -> None:
        """Start drawing the pictures the page shows for the new state (output grid first) while
        the answer travels to the browser, whose picture requests then join these drawings.
        Stops as soon as the state moves on; the others are drawn when asked for."""
        gen = self.generation

        def work() -> None:
            for key in SHOWN:
                with self.lock:
                    if self.generation != gen:
                        return
                    try:
                        task = self.picture_task(key)
                    except UserInputError:  # e.g. no weights in this layer
                        continue
                try:
                    task()
                except Exception:  # noqa: BLE001 - the page's own request reports it
                    return

        if self.session.index >= 0:
            threading.Thread(target=work, daemon=True, name=f"step-{self.id}-pictures").start()

    def _drawing_of(self, key: str) -> Callable[[Path], Path]:
        """``show``'s drawing of one picture, on a copy of the tensor (an edit may follow)."""
        what, kind = PICTURES[key]
        try:
            v = views.tensor_views(self.session, what)[0]  # several inputs: the page shows the first
            title = views.title(self.session, v)
        except StepError as exc:
            raise UserInputError(str(exc)) from None
        v = dataclasses.replace(v, stored=np.array(v.stored), real=np.array(v.real))
        if kind.endswith("_grid"):
            return lambda path: views.draw_grid(v, path, title)
        return lambda path: views.draw_histogram(v, path, title)

    def _done(self, key: str, gen: int, path: Path) -> None:
        with self._pictures_lock:
            old = self.rendered.get(key)
            if old is not None and old[0] > gen:  # a newer state was drawn meanwhile: keep it
                path.unlink(missing_ok=True)
                return
            self.rendered[key] = (gen, path)
        if old is not None and old[1] != path:
            old[1].unlink(missing_ok=True)

    def state(self) -> dict[str, Any]:
        s = self.session
        out: dict[str, Any] = {
            "id": self.id, "model": self.model_name, "model_id": self.model_id, "model_version": self.model_version,
            "image": self.image_name, "mode": s.mode.value, "index": s.index, "generation": self.generation,
            "layers": [{"index": sp.index, "type": sp.kind.value, "shape": list(sp.out_shape)} for sp in s.net.layers],
            "edits": [{"layer": e.layer, "description": e.description, "changed": int(e.changed.shape[0])}
                      for e in s.edits], "has_before": self.has_before,
            # the numbers of the rerun whose before/after the page shows, and of the last CROSS
            "rerun": self._data(self.stepper.last_rerun) if self.has_before else None,
            "cross": self._data(self.stepper.last_cross)}
        if s.index >= 0:
            layer = s.layer
            out["layer"] = {k: v for k, v in layer.items() if k != "weight_scale"}
            out["stats"] = {"output": tensor_stats(s.output, bins=32), "input": tensor_stats(s.input, bins=32)}
            try:
                out["stats"]["weights"] = tensor_stats(s.weights, bins=32)
                out["weights_shape"] = list(s.weights.shape)
            except UserInputError:
                pass
        return out


    # ------------------------------------------------------------------ what the server asks (in the worker)
    def op_state(self) -> dict[str, Any]:
        with self.lock:
            return self.state()

    def _data(self, result: Result | None) -> dict[str, Any] | None:
        return None if result is None else result_data(result, self.id)

    def op_command(self, command: Command) -> dict[str, Any]:
        """Run ``command`` (``page_command`` checked it); its result and the new state."""
        with self.lock:
            if isinstance(command, Rerun) and self.session.index >= 0:
                shutil.copyfile(self.picture("output_grid"), self.pictures / "before.png")
            result = self.run(command)  # a failed command changes nothing, the difference view included
            if isinstance(command, Rerun):
                self.has_before = True
            elif command.changes_tensors:
                self.has_before = False
            if command.changes_tensors:
                self.prefetch()
            return {"result": self._data(result), "state": self.state()}

    def op_load_weights(self, data: bytes) -> dict[str, Any]:
        """Replace the current layer's weights by the .npy array ``data`` (as ``edit load``)."""
        array = sniff.load_npy_bytes(data)  # refuse a non-array (or a pickle) before it reaches the stepper
        with self.lock:
            self.has_before = False
            result = self.run(Replace(array, UPLOADED))
            self.prefetch()
            return {"result": self._data(result), "state": self.state()}

    def op_picture(self, key: str) -> str:
        """The file of picture ``key`` of the current state (drawn now if need be)."""
        with self.lock:
            if key == "before":
                if not self.has_before:
                    raise NotFound("no rerun yet: the 'before' picture appears after a rerun")
                return str(self.pictures / "before.png")
            draw = self.picture_task(key)
        return str(draw())  # outside the lock: the prefetch thread draws the others meanwhile

    def op_export(self, target: str) -> int:
        """The edited model as a .qnet folder at ``target``; the number of edits."""
        with self.lock:
            self.session.export_qnet(Path(target))
            return len(self.session.edits)


def open_state(sid: str, ref: dict[str, Any], image_path: str, mode: str, pictures: str, model_id: int,
               model_name: str, model_version: int, image_name: str) -> StepState:
    """The session, built in its worker process (loading the model and the image is work too)."""
    from dla.web.modelref import ModelRef

    loaded = load(ModelRef(**ref))
    model = loaded.qnet if loaded.qnet is not None else loaded.net
    session = Session(model, image_path, mode=mode, hw=loaded.hw)
    # the Stepper reports any exception as a failed command, keeping the session: out of memory
    # must instead end this worker (its state may be half-changed), so it passes through
    stepper = Stepper(session, Path(pictures), fatal=(MemoryError,))
    return StepState(sid, session, stepper, Path(pictures), model_id, model_name, model_version, image_name)


class StepSessions:
    """Open STEP sessions per user (bounded, least recently used closed first), each a
    ``RemoteStep``: closing one ends its worker process and deletes its pictures."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._lock = threading.Lock()
        self._by_user: dict[int, OrderedDict[str, RemoteStep]] = {}

    def add(self, user_id: int, state: RemoteStep) -> None:
        state.on_dead = lambda: self._discard(user_id, state.id)
        with self._lock:
            mine = self._by_user.setdefault(user_id, OrderedDict())
            mine[state.id] = state
            closing = []
            while len(mine) > self.per_user:
                closing.append(mine.popitem(last=False)[1])
        for old in closing:
            old.close()

    def _discard(self, user_id: int, sid: str) -> None:
        with self._lock:
            self._by_user.get(user_id, OrderedDict()).pop(sid, None)

    def get(self, user_id: int, sid: str) -> RemoteStep:
        with self._lock:
            mine = self._by_user.get(user_id, OrderedDict())
            if sid not in mine:
                raise NotFound(f"STEP session {sid} not found (closed, or the server restarted)")
            mine.move_to_end(sid)
            st = mine[sid]
            st.last_used = time.monotonic()
            return st

    def list(self, user_id: int) -> list[RemoteStep]:
        with self._lock:
            return list(self._by_user.get(user_id, OrderedDict()).values())

    def close(self, user_id: int, sid: str) -> None:
        with self._lock:
            st = self._by_user.get(user_id, OrderedDict()).pop(sid, None)
        if st is None:
            raise NotFound(f"STEP session {sid} not found")
        st.close()

    def uses_file(self, user_id: int, file_id: int) -> bool:
        return any(st.model_id == file_id for st in self.list(user_id))

    def close_all(self) -> None:
        with self._lock:
            states = [st for mine in self._by_user.values() for st in mine.values()]
            self._by_user.clear()
        for st in states:
            st.close()


router = APIRouter(prefix="/api/step")


class OpenRequest(BaseModel):
    model_id: int
    weights_id: int | None = None
    image_id: int
    mode: str = "int"


class CommandLine(BaseModel):
    """The body of ``POST /api/step/{sid}/command``: one command line."""

    command: str


class SaveRequest(BaseModel):
    name: str
    overwrite_version: int | None = None


@router.post("")
def open_session(body: OpenRequest, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    if body.mode not in ("float", "hybrid", "int"):
        raise UserInputError(f"mode: float, hybrid or int (got {body.mode!r})")
    with c.db.session() as db:
        ref = model_ref(c.storage, db, user.id, body.model_id, body.weights_id)
        image = c.storage.get(db, user.id, body.image_id, ("image",))
        image_path, image_name, image_meta = c.storage.path(image), image.name, image.meta
        version = c.storage.get(db, user.id, body.model_id).version
    if ref.kind != "qnet" and body.mode != "float":
        raise UserInputError(f"{body.mode.upper()} needs a quantized model: choose a .qnet (the Quantize page, "
                             "or the *-calibrated.qnet a run keeps), or FLOAT mode")
    check_fits(c.settings.max_job_memory, ref.kind, ref.path, ref.name, image_meta)
    pictures = Path(tempfile.mkdtemp(prefix="step-", dir=c.storage.tmp))
    sid = secrets.token_urlsafe(9)
    open_args = dict(sid=sid, ref=ref.to_dict(), image_path=str(image_path), mode=body.mode, pictures=str(pictures),
                     model_id=body.model_id, model_name=ref.name, model_version=version, image_name=image_name)
    state = RemoteStep.start(c.jobs.mp, sid, open_state, open_args, pictures, c.settings.max_job_memory,
                             c.settings.max_job_seconds)
    c.steps.add(user.id, state)
    return state.call("state")


@router.get("")
def list_sessions(user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    return {"sessions": [{"id": s.id, "model": s.model_name, "image": s.image_name, "mode": s.mode,
                          "index": s.index} for s in c.steps.list(user.id)]}


@router.get("/{sid}")
def get_state(sid: str, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    return c.steps.get(user.id, sid).call("state")


@router.post("/{sid}/command")
def command(sid: str, body: CommandLine, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    return c.steps.get(user.id, sid).call("command", page_command(body.command))


@router.put("/{sid}/weights")
async def upload_weights(sid: str, request: Request, user: User = Depends(current_user),
                         c: WebContext = Depends(ctx)) -> dict:
    """Replace the current layer's weights by a .npy array (the request body)."""
    from dla.web.storage import TooLarge

    limit = c.storage.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # refused before a byte is read
        raise TooLarge(f"the array exceeds the upload limit of {limit:,} bytes")
    buf = bytearray()
    async for chunk in request.stream():  # and never more than the limit held in memory
        buf += chunk
        if len(buf) > limit:
            raise TooLarge(f"the array exceeds the upload limit of {limit:,} bytes")
    data = bytes(buf)
    sniff.load_npy_bytes(data)  # refuse a non-array (or a pickle) before it reaches the worker
    return c.steps.get(user.id, sid).call("load_weights", data)


@router.get("/{sid}/picture/{key}.png")
def picture(sid: str, key: str, which: str = Query("current"), user: User = Depends(current_user),
            c: WebContext = Depends(ctx)) -> Response:
    if key not in PICTURES and key != "before":
        raise NotFound(f"no picture '{key}' (pictures: {', '.join(PICTURES)}, before)")
    path = Path(c.steps.get(user.id, sid).call("picture", key))
    # read now: a newer state's picture replaces this file once drawn
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/{sid}/save")
def save(sid: str, body: SaveRequest, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    """The edited model as a .qnet in the user's files.  Overwriting needs the version the
    session started from: if someone saved the file since, the answer is 409."""
    name = sniff.safe_name(body.name if body.name.endswith(".qnet") else body.name + ".qnet")
    st = c.steps.get(user.id, sid)
    target = c.storage.temp_path(".qnet")
    try:
        edits = st.call("export", str(target))
        with c.db.session() as db:
            rec = c.storage.add(db, user.id, target, name, "qnet", {"from_step": st.model_name, "edits": edits},
                                replace_version=body.overwrite_version)
            out = rec.to_dict()
        if out["id"] == st.model_id:
            st.model_version = out["version"]
        return out
    finally:
        shutil.rmtree(target, ignore_errors=True)


@router.delete("/{sid}")
def close(sid: str, user: User = Depends(current_user), c: WebContext = Depends(ctx)) -> dict:
    c.steps.close(user.id, sid)
    return {"closed": sid}
