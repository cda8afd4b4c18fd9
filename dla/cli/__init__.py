"""The ``dla`` command: a thin face over the library (one module per command family).

Every command parses its options, calls one library function and prints.  User mistakes
(``golden.errors.UserInputError``) become one ``Error: ...`` line on stderr and a non-zero exit
code, never a traceback (``dla.cli.common.DlaGroup``).  Command modules import their library
code inside the command so that ``dla --help`` stays fast.
"""
from __future__ import annotations

import click

from dla import __version__
from dla.cli import bench, doctor, eval, model, rtl, run, scenario, tune, web
from dla.cli.common import DlaGroup, UserError

__all__ = ["UserError", "cli", "main"]


@click.group(cls=DlaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dla")
def cli() -> None:
    """Bit-accurate simulation of an int8 DLA running Darknet networks.

    MODEL arguments take a .cfg path or the name of a shipped cfg
    (yolov3-tiny, yolov3, yolov2, yolov2-tiny, yolov4-tiny, darknet, ...).
    The name of a shipped trained model (shapes-yolo, shapes-cls) stands alone
    for CFG WEIGHTS: 'dla infer shapes-yolo IMAGE'.
    """
    from dla.int_backend import requested

    requested()  # a misspelt DLA_INT_BACKEND is one error before any work


for _family in (model, run, scenario, rtl, eval, tune, web, doctor, bench):
    _family.register(cli)


def main() -> None:
    cli(prog_name="dla")


if __name__ == "__main__":
    main()
