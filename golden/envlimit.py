"""Resource bounds that an operator may raise through the environment (``DLA_MAX_*``).

One rule for all of them: an unset variable means the default; a set one must be a positive
integer, else it is a user error naming the variable (a typo must not silently lift a bound)."""
from __future__ import annotations

import os

from golden.errors import UserInputError


def env_limit(name: str, default: int, unit: str = "") -> int:
    """``$name`` as a positive integer if set, else ``default``; ``unit`` names what it counts in
    the error message (``"pixels"``)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UserInputError(f"{name}={raw!r}: must be a positive integer" + (f" ({unit})" if unit else ""))
    return value
