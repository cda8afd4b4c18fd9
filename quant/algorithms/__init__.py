"""Calibration algorithms: from a tensor's statistics to its clipping threshold and scale.

Each activation algorithm maps an ``AbsHistogram`` to a threshold ``T`` (values beyond ±T
saturate); the scale is ``T / 127``.  ``log2`` rounds the scale up to a power of two, so
requantization becomes a pure shift.  Weights use ``max`` or ``mse`` on the values
themselves, per tensor or per output channel.
"""
from quant.algorithms.activations import (ACTIVATION_ALGORITHMS, histogram_sqnr_db, kl_threshold,
                                          max_threshold, mse_threshold, percentile_threshold,
                                          scale_for, threshold)
from quant.algorithms.weights import WEIGHT_ALGORITHMS, weight_scales

__all__ = ["ACTIVATION_ALGORITHMS", "WEIGHT_ALGORITHMS", "histogram_sqnr_db", "kl_threshold", "max_threshold",
           "mse_threshold", "percentile_threshold", "scale_for", "threshold", "weight_scales"]
