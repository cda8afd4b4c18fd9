"""``dla doctor``: which system tools and Python extras are installed, and the exact commands for
what is missing (library: ``dla.doctor``)."""
from __future__ import annotations

import sys

import click


@click.command("doctor")
def doctor_cmd() -> None:
    """Check this machine: the system tools (Graphviz, Icarus Verilog, Verilator, Chromium,
    Node.js, PostgreSQL) and the Python extras ([rtl], [bench], [train], [test]), each with the
    features that need it; ends with the exact `apt-get install` and `pip install` lines for
    what is missing.  Exit status 0 when everything is installed, 1 otherwise (the core
    commands — demo, infer, compare, quantize, cycles, run, serve — need none of the missing
    ones unless listed for them)."""
    from dla.doctor import examine

    report = examine()
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.ok else 1)


def register(group: click.Group) -> None:
    """Add ``doctor`` to the main ``dla`` group."""
    group.add_command(doctor_cmd)
