"""Post-training refinements of a quantized network (imports only ``golden`` and ``quant``).

Each refinement is a pure transform with exact, documented semantics; the driver that runs the
engines over calibration images and decides where each is kept is ``dla.refine``:

* ``cle`` (:mod:`quant.refine.cle`): cross-layer equalization of the *float* parameters;
* ``bias_correction`` (:mod:`quant.refine.bias_correction`): per-channel mean shift of a
  quantized layer's output folded into its integer bias;
* ``adaround`` (:mod:`quant.refine.adaround`): learned up/down rounding of the integer weights
  (needs PyTorch, the ``train`` extra).

:data:`REFINEMENTS` is also the order in which the pipeline applies them when several are asked
for (``cle`` changes the float network the statistics come from, ``adaround`` the integer
weights the bias correction then measures).
"""
from __future__ import annotations

from collections.abc import Iterable

from golden.errors import UserInputError

REFINEMENTS: tuple[str, ...] = ("cle", "bias_correction", "adaround")
"""Every refinement's name, as ``dla quantize`` flags, the ``.qnet`` and ``dla tune`` spell them."""

PIPELINE_ORDER: tuple[str, ...] = ("cle", "adaround", "bias_correction")
"""The order they run in: CLE on the float net, then quantization, AdaRound, bias correction."""


class UnknownRefinementError(UserInputError):
    """A refinement name that is not one of :data:`REFINEMENTS`."""


def check_refinements(names: Iterable[str], where: str = "refinement") -> tuple[str, ...]:
    """``names`` validated, de-duplicated and in :data:`REFINEMENTS` order (the canonical form a
    ``.qnet`` records).  ``bias-correction`` is accepted for ``bias_correction`` (the CLI spelling).
    An unknown name raises :class:`UnknownRefinementError` naming it and the valid ones."""
    if isinstance(names, str):
        names = [names]
    got = set()
    for n in names:
        key = n.replace("-", "_") if isinstance(n, str) else n
        if key not in REFINEMENTS:
            raise UnknownRefinementError(f"unknown {where} {n!r} (valid: {', '.join(REFINEMENTS)})")
        got.add(key)
    return tuple(r for r in REFINEMENTS if r in got)


__all__ = ["PIPELINE_ORDER", "REFINEMENTS", "UnknownRefinementError", "check_refinements"]
