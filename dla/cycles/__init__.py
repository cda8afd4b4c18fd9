"""Cycle model of the DLA (docs/cycle-model.md): compute on the MAC array, memory traffic, totals."""
from dla.cycles.compute import Gemm, fold_cycles, gemm_cycles, gemm_of, scalesim_cycles, tile_cycles
from dla.cycles.memory import BufferTooSmall, Tiling, tile_conv, transfer_cycles
from dla.cycles.model import LayerCycles, NetworkCycles, conv_cycles, network_cycles

__all__ = ["BufferTooSmall", "Gemm", "LayerCycles", "NetworkCycles", "Tiling", "conv_cycles", "fold_cycles",
           "gemm_cycles", "gemm_of", "network_cycles", "scalesim_cycles", "tile_conv", "tile_cycles",
           "transfer_cycles"]
