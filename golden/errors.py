"""The exceptions a user can cause, and nothing else.

Every error here is a *user* mistake (a bad file, a bad option), never a bug in
the simulator: the CLI and the web layer turn any ``UserInputError`` into one
clear message and a non-zero exit code, without a Python traceback.  Internal
invariants use ``assert``.

``golden`` sits at the bottom of the import graph, so the one hierarchy lives here and every
package (quant, dla, rtl_bridge, the faces) imports it from here.
"""
from __future__ import annotations

from pathlib import Path


class DlaError(Exception):
    """Base of every error the project raises on purpose.  ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UserInputError(DlaError):
    """Raised when something the user gave us (file, option, value) is wrong."""

    exit_code = 2


class FileMissingError(UserInputError):
    """Raised when a path given by the user does not exist or is not a readable file."""

    def __init__(self, path: str | Path, what: str = "file") -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {what} not found")


class CfgError(UserInputError):
    """Raised when a Darknet ``.cfg`` cannot be understood: names the file and line."""

    def __init__(self, path: str | Path, line: int | None, msg: str) -> None:
        self.path, self.line, self.msg = Path(path), line, msg
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {msg}")


class WeightsError(UserInputError):
    """Raised when a ``.weights`` file does not fit its cfg (size, header): names the layer."""

    def __init__(self, path: str | Path, msg: str, layer: int | None = None) -> None:
        self.path, self.layer, self.msg = Path(path), layer, msg
        where = f"{path}" + (f": layer {layer}" if layer is not None else "")
        super().__init__(f"{where}: {msg}")


class ImageError(UserInputError):
    """Raised when an input image cannot be decoded."""

    def __init__(self, path: str | Path, msg: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {msg}")


class UnsupportedError(UserInputError):
    """Raised when a network uses a feature the simulator does not implement (names layer and option)."""
