"""Float activations as Darknet's CPU code computes them (``activations.h``).

All in float32.  ``leaky`` uses a float32 ``0.1f`` multiply (AlexeyAB's
``leaky_activate``); pjreddie multiplies by ``.1`` in double, which differs by at
most 1 ulp on ~16 % of negative inputs.  ``relu`` keeps Darknet's ``x*(x>0)``
(negative inputs give -0.0).  Functions return new arrays unless ``inplace=True``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

_F = np.float32


def _logistic(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) -> inf for x < -88 gives the right limit, 0
        return (_F(1) / (_F(1) + np.exp(-x))).astype(np.float32, copy=False)


def _softplus(x: np.ndarray) -> np.ndarray:
    # Darknet's softplus with threshold 20 (mish_activate): x above 20, e^x below -20.
    with np.errstate(over="ignore"):
        ex = np.exp(x)
        mid = np.log(ex + _F(1))
    return np.where(x > 20, x, np.where(x < -20, ex, mid)).astype(np.float32, copy=False)


def leaky(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    out = x if inplace else np.empty_like(x)
    # max(x, 0.1x) == x for x >= 0 and 0.1x for x < 0, in one pass.
    return np.maximum(x, x * _F(0.1), out=out)


def linear(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    return x if inplace else x.copy()


def relu(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    return np.multiply(x, x > 0, out=x if inplace else None, dtype=np.float32)


def relu6(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    return np.clip(x, _F(0), _F(6), out=x if inplace else None)


def logistic(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    y = _logistic(x)
    if inplace:
        x[...] = y
        return x
    return y


def swish(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    return np.multiply(x, _logistic(x), out=x if inplace else None)


def mish(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    return np.multiply(x, np.tanh(_softplus(x)), out=x if inplace else None)


def tanh(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    return np.tanh(x, out=x if inplace else None)


INTEGER_ACTIVATIONS = ("linear", "leaky", "relu", "relu6")
"""Activations with an integer form: piecewise linear with a kink at 0 (and a clamp at 6), so for
a positive scale ``s`` they commute with it (``act(s·q) = s·act(q)``; relu6 with its clamp
moved to ``6/s``) and the int8 engine applies them to requantized integers (leaky by a second
multiplier or a shift, relu6 by a clamp at ``round(6/s)``).  Every other activation
needs its pre-activation scale and a 256-entry table (``activation_lut``), so calibration
records its pre-activation range.  Read by ``quant.calibrate``/``quant.qnet`` and
``dla.int_kernels``."""

ACTIVATION_FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "linear": linear, "leaky": leaky, "relu": relu, "relu6": relu6, "logistic": logistic,
    "swish": swish, "mish": mish, "tanh": tanh,
}


def activate(x: np.ndarray, name: str, inplace: bool = False) -> np.ndarray:
    return ACTIVATION_FUNCS[name](x, inplace=inplace)
