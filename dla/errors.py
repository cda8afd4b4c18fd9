"""Re-export of the error hierarchy (defined in ``golden.errors``, the bottom of the import graph)."""
from golden.errors import (CfgError, DlaError, FileMissingError, ImageError, UnsupportedError,
                           UserInputError, WeightsError)

__all__ = ["CfgError", "DlaError", "FileMissingError", "ImageError", "UnsupportedError",
           "UserInputError", "WeightsError"]
