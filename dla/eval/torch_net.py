"""A PyTorch module built from a Darknet cfg, with the golden engine's exact layer semantics.

Used to *train* the shipped models; the trained parameters are exported with
``golden.weights`` and from then on only the golden/DLA engines run them.  In ``eval()``
mode the forward pass computes what ``golden.engine.forward`` computes (to float
rounding), layer by layer:

* convolution: zero padding ``spec.padding`` each side, stride, groups; then batch norm with
  the *rolling* statistics as pjreddie's CPU code does it,
  ``(x − mean) / (sqrt(var) + 1e-6) · γ + β`` (``golden.kernels.BN_EPS``), or a bias — for a
  network run as AlexeyAB's (``net.darknet``) ``(x − mean) / sqrt(var + 1e-5) · γ + β``, its
  folded BN up to rounding;
* activations ``leaky`` (slope 0.1), ``linear``, ``relu``, ``logistic``;
* maxpool: windows start at ``i·stride − ⌊padding/2⌋``; out-of-bounds positions never win
  (padded with −inf), output ``(H + padding − size) // stride + 1``;
* global avgpool, nearest upsample (× ``scale``), route (concatenation, with groups),
  shortcut (same shapes only), softmax over all inputs, dropout/cost as identity;
* ``[yolo]``: σ on x, y, objectness and classes, w/h raw (``scale_x_y`` applied).

In ``train()`` mode batch norm normalises with the batch's own statistics in torch's fused
form ``(x − μ_B) / sqrt(σ²_B + 1e-5)`` (biased variance; the 1e-5 inside the root differs
from Darknet's 1e-6 outside it by < 0.1 % for any σ² > 1e-2, and only during training) and
updates the rolling ones (momentum ``bn_momentum``, unbiased variance); ``[yolo]`` layers return their raw input
(the loss applies the logistic itself, numerically stable) and softmax returns logits.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from golden.layers import (AvgPoolSpec, ConvSpec, Kind, LayerSpec, MaxPoolSpec, RouteSpec, ShortcutSpec,
                           SoftmaxSpec, UpsampleSpec, YoloSpec)
from golden.forks import DarknetFork
from golden.network import LayerParams, Network

BN_EPS = 1e-6  # golden.kernels.BN_EPS: added to sqrt(var), not inside it
ALEXEYAB_BN_EPS = 1e-5  # golden.forks: AlexeyAB's ε, inside the root
#: Training-time epsilon inside the square root (batch statistics); inference never uses it.
TRAIN_BN_EPS = 1e-5
TRAINABLE_ACTIVATIONS = ("leaky", "linear", "relu", "logistic")
SUPPORTED = frozenset({Kind.CONV, Kind.MAXPOOL, Kind.AVGPOOL, Kind.ROUTE, Kind.SHORTCUT, Kind.UPSAMPLE,
                       Kind.SOFTMAX, Kind.DROPOUT, Kind.COST, Kind.YOLO})


def _activate(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "leaky":
        return F.leaky_relu(x, 0.1)
    if name == "relu":
        return F.relu(x)
    if name == "logistic":
        return torch.sigmoid(x)
    assert name == "linear", name
    return x


class DarknetBN(nn.Module):
    """Batch norm in Darknet's form (see the module docstring)."""

    def __init__(self, n: int, momentum: float, alexeyab: bool = False) -> None:
        super().__init__()
        self.alexeyab = alexeyab
        self.weight = nn.Parameter(torch.ones(n))   # γ  (Darknet "scales")
        self.bias = nn.Parameter(torch.zeros(n))    # β  (Darknet "biases")
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))
        self.momentum = momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            # torch's fused kernel: (x − μ_B) / sqrt(σ²_B + 1e-5), rolling stats with unbiased σ².
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                True, self.momentum, TRAIN_BN_EPS)
        shape = (1, -1, 1, 1)
        if self.alexeyab:  # fuse_conv_batchnorm's ε inside the root
            x_hat = (x - self.running_mean.view(shape)) / (self.running_var.view(shape) + ALEXEYAB_BN_EPS).sqrt()
        else:
            x_hat = (x - self.running_mean.view(shape)) / (self.running_var.view(shape).sqrt() + BN_EPS)
        return x_hat * self.weight.view(shape) + self.bias.view(shape)


class ConvBlock(nn.Module):
    def __init__(self, spec: ConvSpec, bn_momentum: float, alexeyab: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv2d(spec.in_shape[0], spec.filters, spec.size, (spec.stride_y, spec.stride_x),
                              spec.padding, groups=spec.groups, bias=not spec.batch_normalize)
        self.bn = DarknetBN(spec.filters, bn_momentum, alexeyab) if spec.batch_normalize else None
        nn.init.kaiming_normal_(self.conv.weight, a=0.1, nonlinearity="leaky_relu")
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        return _activate(y, self.spec.activation)


def maxpool_darknet(x: torch.Tensor, spec: MaxPoolSpec) -> torch.Tensor:
    """``golden.kernels.maxpool`` on an ``(N, C, H, W)`` batch."""
    _, _, h, w = x.shape
    _, oh, ow = spec.out_shape
    lo = spec.padding // 2
    need_h, need_w = (oh - 1) * spec.stride_y + spec.size, (ow - 1) * spec.stride_x + spec.size
    pad_b, pad_r = max(need_h - h - lo, 0), max(need_w - w - lo, 0)
    if lo or pad_b or pad_r:
        x = F.pad(x, (lo, pad_r, lo, pad_b), value=float("-inf"))
    return F.max_pool2d(x, spec.size, (spec.stride_y, spec.stride_x))[:, :, :oh, :ow]


def yolo_activate(x: torch.Tensor, spec: YoloSpec) -> torch.Tensor:
    """``golden.kernels.yolo`` on a batch: σ on planes 0, 1, 4.. of each anchor."""
    n, c, h, w = x.shape
    t = x.view(n, len(spec.mask), 5 + spec.classes, h, w)
    xy = torch.sigmoid(t[:, :, 0:2])
    if spec.scale_x_y != 1:
        xy = xy * spec.scale_x_y - 0.5 * (spec.scale_x_y - 1)
    out = torch.cat([xy, t[:, :, 2:4], torch.sigmoid(t[:, :, 4:])], dim=2)
    return out.view(n, c, h, w)


class DarknetTorch(nn.Module):
    """The network of a parsed cfg; ``forward`` returns ``{layer index: output}`` for the heads
    (yolo layers, or the network output for a classifier) and, with ``keep_all``, every layer."""

    def __init__(self, net: Network, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.net = net
        for spec in net.layers:
            if spec.kind not in SUPPORTED:
                raise ValueError(f"layer {spec.index} ({spec.kind.value}) cannot be trained here")
            if isinstance(spec, ConvSpec) and spec.activation not in TRAINABLE_ACTIVATIONS:
                raise ValueError(f"layer {spec.index}: activation {spec.activation} not supported for training")
        self.blocks = nn.ModuleDict({str(s.index): ConvBlock(s, bn_momentum, net.darknet is DarknetFork.ALEXEYAB)
                                     for s in net.layers if isinstance(s, ConvSpec)})

    @property
    def head_indices(self) -> list[int]:
        heads = [s.index for s in self.net.layers if s.kind is Kind.YOLO]
        return heads or [self.net.output_index]

    def _layer(self, spec: LayerSpec, xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0]
        if isinstance(spec, ConvSpec):
            return self.blocks[str(spec.index)](x)
        if isinstance(spec, MaxPoolSpec):
            return maxpool_darknet(x, spec)
        if isinstance(spec, AvgPoolSpec):
            return x.mean(dim=(2, 3), keepdim=True)
        if isinstance(spec, RouteSpec):
            parts = [t.chunk(spec.groups, dim=1)[spec.group_id] if spec.groups > 1 else t for t in xs]
            return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if isinstance(spec, ShortcutSpec):
            out = x * spec.alpha
            for t in xs[1:]:
                out = out + t * spec.beta
            return _activate(out, spec.activation)
        if isinstance(spec, UpsampleSpec):
            out = x.repeat_interleave(spec.stride, dim=2).repeat_interleave(spec.stride, dim=3)
            return out * spec.scale if spec.scale != 1 else out
        if isinstance(spec, SoftmaxSpec):
            if self.training:
                return x
            flat = x.reshape(x.shape[0], spec.groups, -1) / spec.temperature
            return torch.softmax(flat, dim=-1).reshape(x.shape)
        if isinstance(spec, YoloSpec):
            return x if self.training else yolo_activate(x, spec)
        return x  # dropout, cost

    def forward(self, x: torch.Tensor, keep_all: bool = False) -> dict[int, torch.Tensor]:
        outputs: dict[int, torch.Tensor] = {-1: x}
        for spec in self.net.layers:
            outputs[spec.index] = self._layer(spec, [outputs[i] for i in spec.inputs])
        if keep_all:
            return outputs
        return {i: outputs[i] for i in self.head_indices}

    # ------------------------------------------------------------------ export / import
    def to_params(self) -> dict[int, LayerParams]:
        """The parameters in Darknet's ``.weights`` layout (with BN, ``biases`` = β)."""
        params: dict[int, LayerParams] = {}
        for key, block in self.blocks.items():
            w = block.conv.weight.detach().cpu().numpy().astype(np.float32)
            if block.bn is not None:
                bn = block.bn
                params[int(key)] = LayerParams(
                    biases=bn.bias.detach().cpu().numpy().astype(np.float32), weights=w,
                    scales=bn.weight.detach().cpu().numpy().astype(np.float32),
                    rolling_mean=bn.running_mean.cpu().numpy().astype(np.float32),
                    rolling_variance=bn.running_var.cpu().numpy().astype(np.float32))
            else:
                params[int(key)] = LayerParams(biases=block.conv.bias.detach().cpu().numpy().astype(np.float32),
                                               weights=w)
        return params

    def load_params(self, params: dict[int, LayerParams]) -> None:
        """Load Darknet parameters (e.g. read from a ``.weights`` file) into the module."""
        with torch.no_grad():
            for key, block in self.blocks.items():
                p = params[int(key)]
                block.conv.weight.copy_(torch.from_numpy(p.weights))
                if block.bn is not None:
                    block.bn.bias.copy_(torch.from_numpy(p.biases))
                    block.bn.weight.copy_(torch.from_numpy(p.scales))
                    block.bn.running_mean.copy_(torch.from_numpy(p.rolling_mean))
                    block.bn.running_var.copy_(torch.from_numpy(p.rolling_variance))
                else:
                    block.conv.bias.copy_(torch.from_numpy(p.biases))
