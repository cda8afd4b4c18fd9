"""One ``dla step`` command line as a typed command: the command table, its aliases, which
commands are read-only, "did you mean", and the parsing of numbers, weight indices and edits.

``parse(line)`` checks what a line says *by itself* (an integer where one is needed, no stray
arguments).  Checks that need the session (is there a current layer, does it have weights,
is the index in range) are the stepper's (``dla.debugger.stepper``).  Where ``dla step`` has
always reported a state problem before a syntax problem — ``stats``/``show`` name their tensor,
``edit`` its change, only once a layer is current and, for edits, has weights — the command
keeps that part as text (``Stats.tensor``, ``Show.tensor``, ``Edit.text``) and the stepper
reads it at that point (``parse_edit``), so that every message stays what it was.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

HELP = """\
commands (one per line; '#' starts a comment):
  next [N], n [N]         run the next N layers (default 1); the last one becomes current
  goto N, goto last       run up to layer N (going back keeps layers 0..N, later ones run again)
  info                    the current layer: table row (index, type, shapes, params, MACs), scales, edits
  stats [T]               min, max, mean, std, zeros %, saturated % of T = input | output (default) | weights
  show [T]                PNG pictures of T = input | output (default) | weights: feature-map grid and
                          histogram; show cross: float-vs-int scatter of the output
  edit w[IDX]=V           set weights, e.g. edit w[3,0,1,1]=-5 (int8 in int/hybrid; slices like w[3]=0 work)
  edit scale C F          multiply output channel C's weights by F (rounded and clipped in int8)
  edit load FILE.npy      replace the layer's weights by an array of the same shape
  undo                    take back the last edit
  rerun                   run the current layer again; prints what changed and by how much
  diff                    the last rerun's difference again
  cross [continue]        the current layer in the other mode (int/hybrid <-> float) from the same input:
                          SQNR, max/mean abs error, cosine; 'continue' carries on from the crossed output
  save DIR                every tensor so far, the edits and crosses (DIR/session.json + NNN.npy)
  export FILE.qnet        the edited model as a .qnet
  help                    this list
  quit, exit (or end of input)"""

#: The tensors ``stats`` and ``show`` look at.
TENSORS = ("input", "output", "weights")
ALIASES = {"n": "next", "exit": "quit", "q": "quit", "h": "help", "?": "help"}
#: Commands that change nothing a cached CROSS depends on.
READ_ONLY = frozenset({"info", "stats", "show", "diff", "help", "save", "export", "cross"})
EDIT_RE = re.compile(r"^w\s*\[(?P<index>[^\]]*)\]\s*=\s*(?P<value>\S+)$")


class StepError(Exception):
    """A bad command or argument: one message; the session is unchanged.  ``command`` is the
    command's name when the line named a known command (``None`` for an unknown one)."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


# ------------------------------------------------------------------ the commands
@dataclass(frozen=True)
class Command:
    """A command of ``dla step``; ``name`` is its table name."""

    name: ClassVar[str] = ""

    @property
    def read_only(self) -> bool:
        """Changes nothing a cached CROSS depends on (``READ_ONLY``)."""
        return self.name in READ_ONLY

    @property
    def changes_tensors(self) -> bool:
        """Can change a tensor (pictures and a before/after view are then stale): every command
        but the read-only ones — and ``cross continue``, which replaces the layer's output by
        the other mode's."""
        return not self.read_only


@dataclass(frozen=True)
class Next(Command):
    name: ClassVar[str] = "next"
    count: int = 1


@dataclass(frozen=True)
class Goto(Command):
    name: ClassVar[str] = "goto"
    target: int | None  # None: the last layer


@dataclass(frozen=True)
class Info(Command):
    name: ClassVar[str] = "info"


@dataclass(frozen=True)
class Stats(Command):
    name: ClassVar[str] = "stats"
    tensor: str = "output"  # checked against TENSORS by the stepper, once a layer is current


@dataclass(frozen=True)
class Show(Command):
    name: ClassVar[str] = "show"
    tensor: str = "output"  # one of TENSORS or "cross"; checked by the stepper


@dataclass(frozen=True)
class Edit(Command):
    name: ClassVar[str] = "edit"
    text: str  # what follows 'edit'; read by ``parse_edit`` once the layer is known to have weights

    @property
    def loads_file(self) -> bool:
        """Names a file on this machine (``edit load FILE``, in any case): a face that must not
        read files for its user refuses it before it runs."""
        words = self.text.split(None, 1)
        return bool(words) and words[0].lower() == "load"


@dataclass(frozen=True, eq=False)
class Replace(Command):
    """The current layer's weights replaced by ``array`` (as ``edit load`` with an array in
    hand, not a file); ``source`` names it in the answer.  No command line makes one."""

    name: ClassVar[str] = "edit"
    array: np.ndarray
    source: str


@dataclass(frozen=True)
class Undo(Command):
    name: ClassVar[str] = "undo"


@dataclass(frozen=True)
class Rerun(Command):
    name: ClassVar[str] = "rerun"


@dataclass(frozen=True)
class Diff(Command):
    name: ClassVar[str] = "diff"


@dataclass(frozen=True)
class Cross(Command):
    name: ClassVar[str] = "cross"
    carry_on: bool = False  # 'cross continue'

    @property
    def changes_tensors(self) -> bool:
        return self.carry_on


@dataclass(frozen=True)
class Save(Command):
    name: ClassVar[str] = "save"
    folder: str


@dataclass(frozen=True)
class Export(Command):
    name: ClassVar[str] = "export"
    target: str


@dataclass(frozen=True)
class Help(Command):
    name: ClassVar[str] = "help"


@dataclass(frozen=True)
class Quit(Command):
    name: ClassVar[str] = "quit"


# ------------------------------------------------------------------ the changes an edit makes
@dataclass(frozen=True)
class SetWeights:
    """``edit w[IDX]=V``: ``index`` as numpy takes it; ``text`` is IDX as typed, without spaces."""

    index: tuple[int | slice, ...]
    text: str
    value: int | float


@dataclass(frozen=True)
class ScaleChannel:
    """``edit scale C F``."""

    channel: int
    factor: int | float


@dataclass(frozen=True)
class LoadWeights:
    """``edit load FILE.npy``."""

    path: str


# ------------------------------------------------------------------ numbers
def parse_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StepError(f"{what} must be an integer, got {text!r}") from None


def parse_number(text: str, what: str) -> int | float:
    """An int if ``text`` is one, else a finite float."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        raise StepError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise StepError(f"{what} must be a finite number, got {text!r}")
    return v


def parse_index(text: str) -> tuple[int | slice, ...]:
    """``"3,0,1,1"`` -> ``(3, 0, 1, 1)``; parts may be slices (``1:3``, ``:``)."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise StepError(f"bad weight index [{text}]: give integers separated by commas, e.g. w[3,0,1,1]")
    index: list[int | slice] = []
    for p in parts:
        if ":" in p:
            bits = p.split(":")
            if len(bits) > 3:
                raise StepError(f"bad slice {p!r} in [{text}]")
            vals = [None if b.strip() == "" else parse_int(b.strip(), f"slice bound in [{text}]") for b in bits]
            index.append(slice(*vals))
        else:
            index.append(parse_int(p, f"weight index in [{text}]"))
    return tuple(index)


def parse_edit(text: str) -> SetWeights | ScaleChannel | LoadWeights:
    """What ``edit TEXT`` asks for (``text`` not empty)."""
    sub, _, args = text.partition(" ")
    args = args.strip()
    if sub.lower() == "scale":
        bits = args.split()
        if len(bits) != 2:
            raise StepError("edit scale needs an output channel and a factor, e.g. edit scale 3 0.5")
        return ScaleChannel(parse_int(bits[0], "the channel"), parse_number(bits[1], "the factor"))
    if sub.lower() == "load":
        if not args:
            raise StepError("edit load needs a .npy file")
        return LoadWeights(args)
    m = EDIT_RE.match(text)
    if m is None:
        raise StepError(f"cannot read {text!r}: use w[IDX]=V (e.g. w[3,0,1,1]=-5), scale C F or load FILE.npy")
    index = parse_index(m["index"])
    return SetWeights(index, m["index"].replace(" ", ""), parse_number(m["value"], "the value"))


def load_npy(path: str) -> np.ndarray:
    """The one array saved (``numpy.save``) in ``path``; no pickles."""
    p = Path(path)
    if not p.is_file():
        raise StepError(f"{path}: file not found")
    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StepError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(data, np.ndarray):
        data.close()
        raise StepError(f"{path}: an .npz archive; give one array saved with numpy.save (.npy)")
    return data


# ------------------------------------------------------------------ the table
def _no_args(name: str, rest: str) -> None:
    if rest:
        raise StepError(f"{name} takes no arguments, got {rest!r}")


def _next(rest: str) -> Next:
    count = parse_int(rest, "next's count") if rest else 1
    if count < 1:
        raise StepError(f"next's count must be at least 1, got {count}")
    return Next(count)


def _goto(rest: str) -> Goto:
    if not rest:
        raise StepError("goto needs a layer index (or 'last')")
    return Goto(None if rest.lower() in ("last", "end") else parse_int(rest, "goto's layer"))


def _cross(rest: str) -> Cross:
    if rest not in ("", "continue"):
        raise StepError(f"cross takes nothing or 'continue', got {rest!r}")
    return Cross(rest == "continue")


def _save(rest: str) -> Save:
    if not rest:
        raise StepError("save needs a directory")
    return Save(rest)


def _export(rest: str) -> Export:
    if not rest:
        raise StepError("export needs a FILE.qnet")
    if not rest.endswith(".qnet"):
        raise StepError(f"{rest}: the export must be named *.qnet")
    return Export(rest)


def _simple(cls: type[Command]):  # noqa: ANN202 - a parser
    def parse_no_args(rest: str) -> Command:
        _no_args(cls.name, rest)
        return cls()

    return parse_no_args


#: name -> parser of the rest of the line (the order is that of "did you mean").
TABLE = {
    "next": _next, "goto": _goto, "info": _simple(Info), "stats": lambda rest: Stats(rest or "output"),
    "show": lambda rest: Show(rest or "output"), "edit": Edit, "undo": _simple(Undo), "rerun": _simple(Rerun),
    "diff": _simple(Diff), "cross": _cross, "save": _save, "export": _export, "help": lambda rest: Help()}


def parse(line: str) -> Command | None:
    """The command on ``line``; ``None`` for an empty line or a comment (``#``).  Raises
    ``StepError`` for an unknown command (with the closest name) or a bad argument."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split(None, 1)
    name = ALIASES.get(parts[0].lower(), parts[0].lower())
    rest = parts[1].strip() if len(parts) > 1 else ""
    if name == "quit":
        return Quit()
    parser = TABLE.get(name)
    if parser is None:
        close = difflib.get_close_matches(name, [*TABLE, "quit"], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise StepError(f"unknown command {parts[0]!r}{hint}; 'help' lists the commands")
    try:
        return parser(rest)
    except StepError as exc:
        raise StepError(str(exc), name) from None


__all__ = ["ALIASES", "HELP", "READ_ONLY", "TENSORS", "Command", "Cross", "Diff", "Edit", "Export", "Goto", "Help",
           "Info", "LoadWeights", "Next", "Quit", "Replace", "Rerun", "Save", "ScaleChannel", "SetWeights", "Show",
           "Stats", "StepError", "Undo", "load_npy", "parse", "parse_edit", "parse_index", "parse_int",
           "parse_number"]
