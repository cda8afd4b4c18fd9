"""Calibration, BN folding and the quantized model (imports only ``golden``)."""
from quant.calibrate import Ranges, calibration_images, collect_ranges, image_inputs
from quant.fold import fold_bn
from quant.qnet import QuantizedNetwork, QuantLayer, quantize
from quant.spec import Override, QuantSpec

__all__ = ["Override", "QuantSpec", "QuantLayer", "QuantizedNetwork", "Ranges", "calibration_images", "collect_ranges", "fold_bn",
           "image_inputs", "quantize"]
