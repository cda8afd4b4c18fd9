"""``dla step``: an interactive debugger over one ``dla.session.Session``.

Commands are read line by line (from the terminal with a prompt such as
``dla[12 convolutional]> ``, or from a script); ``help`` lists them::

    next [N] | n [N]          run the next N layers (default 1)
    goto N | goto last        run up to layer N (going back keeps layers 0..N)
    info                      the layer's row of the layer table, its scales and edits
    stats [input|output|weights]   min, max, mean, std, zeros %, saturated %
    show [input|output|weights|cross]   PNG pictures (feature-map grid, histogram, scatter)
    edit w[IDX]=V | edit scale C F | edit load FILE.npy
    undo | rerun | diff | cross [continue] | save DIR | export FILE.qnet | help | quit

This module is the line loop only: ``dla.debugger.commands`` parses a line,
``dla.debugger.stepper`` runs it and returns a result, ``dla.debugger.text`` prints it.
A bad command or argument prints one ``error: ...`` line and leaves the session as it
was; ``run_repl`` returns how many commands failed (``dla step --strict`` exits 1 then).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from dla.debugger.commands import Quit, StepError, parse
from dla.debugger.results import Failed, Result
from dla.debugger.stepper import Stepper
from dla.debugger.text import banner, lines, prompt
from dla.session import Session


def _lines(stream: TextIO, output: TextIO, prompt: Callable[[], str], interactive: bool) -> Iterator[str]:
    """Command lines from ``stream``; with a prompt when interactive (``input()`` with line editing
    when reading the terminal)."""
    use_input = interactive and stream is sys.stdin
    if use_input:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
    while True:
        try:
            if use_input:
                try:
                    line = input(prompt())
                except EOFError:
                    output.write("\n")
                    return
            else:
                if interactive:
                    output.write(prompt())
                    output.flush()
                line = stream.readline()
                if not line:
                    if interactive:
                        output.write("\n")
                    return
        except KeyboardInterrupt:
            if not interactive:
                raise
            output.write("\n")
            continue
        yield line


def run_repl(session: Session, input_stream: TextIO, output: TextIO, *, interactive: bool = False,
             echo: bool | None = None, pictures: str | Path = "dla-step") -> int:
    """Read commands from ``input_stream`` until quit/EOF and run them on ``session``.

    ``interactive``: print a prompt before each line (and Ctrl-C fails the command, instead
    of ending the session).  ``echo`` (default: when not interactive): print each command
    after the prompt, so a script's output reads like a terminal session.  ``pictures``:
    where ``show`` writes PNGs.  Returns the number of commands that failed.
    """
    stepper = Stepper(session, pictures)
    echo = (not interactive) if echo is None else echo
    failed = 0

    def say(text: str) -> None:
        output.write(text + "\n")
        output.flush()

    say(banner(session))
    for line in _lines(input_stream, output, lambda: prompt(session), interactive):
        if echo:
            say(prompt(session) + line.strip())
        result: Result
        try:
            command = parse(line)
            if command is None:
                continue
            if isinstance(command, Quit):
                break
            result = stepper.execute(command)
        except StepError as exc:
            result = stepper.refuse(exc)
        except KeyboardInterrupt:
            if not interactive:
                raise
            result = Failed("interrupted")
        failed += isinstance(result, Failed)
        for text in lines(result):
            say(text)
    return failed


__all__ = ["run_repl"]
