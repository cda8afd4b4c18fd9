"""From a float network and calibration images to a ready INT/HYBRID ``Engine``."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dla.config import HardwareConfig
from dla.engine import Engine
from golden.network import Network
from quant import calibration_images, collect_ranges, image_inputs, quantize
from quant.qnet import Granularity, QuantizedNetwork


def calibrate(net: Network, images: list[Path], granularity: Granularity = "per_tensor",
              hw: HardwareConfig | None = None, on_image: Callable[[int], None] | None = None) -> QuantizedNetwork:
    """Max calibration over ``images`` (letterboxed as for inference), then quantization."""
    hw = hw or HardwareConfig()
    ranges = collect_ranges(net, image_inputs(net, images), on_image=on_image)
    return quantize(net, ranges, granularity, route_shared_scale=hw.route_shared_scale)


def quantized_engine(net: Network, calib: str | Path | list[Path], granularity: Granularity = "per_tensor",
                     hw: HardwareConfig | None = None, on_image: Callable[[int], None] | None = None) -> Engine:
    images = calib if isinstance(calib, list) else calibration_images(calib)
    hw = hw or HardwareConfig()
    return Engine(net, calibrate(net, images, granularity, hw, on_image), hw)
