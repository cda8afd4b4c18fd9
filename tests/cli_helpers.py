"""Running the `dla` command in tests: success, and the user-mistake contract."""
from __future__ import annotations

from click.testing import CliRunner, Result

from dla.cli import cli


def run(*args: object, **kwargs: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def ok(*args: object, **kwargs: object) -> Result:
    res = run(*args, **kwargs)
    assert res.exit_code == 0, res.output
    return res


def fails(*args: object, needle: str, code: int = 2) -> Result:
    """A user mistake: the given exit code, one ``Error:`` line containing ``needle``, no traceback."""
    res = run(*args)
    assert res.exit_code == code, (res.output, res.exception)
    assert needle in res.output, res.output
    assert "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert len([line for line in res.output.splitlines() if line.startswith("Error:")]) == 1, res.output
    return res
