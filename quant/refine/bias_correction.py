"""Empirical bias correction: fold a quantized layer's mean output shift into its integer bias.

Method: Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction",
ICCV 2019, §4.2 (bias correction; here its *empirical* form, the shift measured on calibration
data rather than predicted from BN statistics — read for the method, nothing copied).

Quantizing weights and inputs shifts the *mean* of a layer's pre-activation output: rounding
errors that should average out do not when a channel's weights round mostly one way, and the
clipping of an input tensor removes mass from one tail.  Per output channel ``c``, over all
calibration images and output positions, in accumulator units (one unit = ``s_x · s_w[c]``):

* ``acc_q``: the layer's exact integer accumulator in the INT run, ``Σ x_q·w_q + b_q``, on the
  inputs the INT run gives it (so the shift every earlier layer leaves behind is included);
* ``acc_ref = (Σ x·W' + b') / (s_x · s_w[c])``: the float layer (BN-folded weights ``W'`` and bias
  ``b'``, ``quant.fold``) on the inputs the FLOAT run gives it, before the activation;
* ``e[c] = mean(acc_q − acc_ref)``, float64.

The corrected bias is ``b_q'[c] = saturate_int32(round_half_away(b_q[c] − e[c]))``
(:func:`corrected_bias`): ties away from zero as every stored integer (``quant.numerics``), then
clamped to ``[−2^31, 2^31 − 1]``.  Because the correction also changes what the layer outputs
after requantization and the activation, ``dla.refine`` keeps it for a layer only where it
*reduces* that layer's output error on the calibration data (:func:`keeps`).
"""
from __future__ import annotations

import numpy as np

from quant.numerics import round_half_away, saturate


class ShiftAccumulator:
    """Running per-channel sum of ``acc_q − acc_ref`` over images and output positions."""

    def __init__(self, channels: int) -> None:
        self.total = np.zeros(channels, dtype=np.float64)
        self.count = 0

    def add(self, acc_q: np.ndarray, acc_ref: np.ndarray) -> None:
        """One image: ``acc_q``, ``acc_ref`` shaped ``(C, ...)`` (channel first), any real dtype."""
        diff = np.asarray(acc_q, dtype=np.float64) - np.asarray(acc_ref, dtype=np.float64)
        diff = diff.reshape(diff.shape[0], -1)
        self.total += diff.sum(axis=1)
        self.count += diff.shape[1]

    def mean(self) -> np.ndarray:
        """``e[c]``; zeros before any image was added."""
        return self.total / self.count if self.count else np.zeros_like(self.total)


def corrected_bias(b_q: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``saturate_int32(round_half_away(b_q − shift))`` as int64 (the ``QuantLayer.b_q`` type)."""
    return saturate(round_half_away(np.asarray(b_q, dtype=np.float64) - shift), 32)


def keeps(error_before: float, error_after: float) -> bool:
    """Is the correction kept?  Only if it strictly lowers the layer's output error."""
    return error_after < error_before


__all__ = ["ShiftAccumulator", "corrected_bias", "keeps"]
