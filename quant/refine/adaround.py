"""AdaRound: choose, per weight, whether to round down or up so the layer's output error is least.

Method: Nagel, Amjad, van Baalen, Louizos, Blankevoort, "Up or Down? Adaptive Rounding for
Post-Training Quantization", ICML 2020 (read for the method; nothing copied).  Needs PyTorch
(the ``train`` extra); without it :func:`require_torch` raises a ``UserInputError`` with the
pip command.

For one conv/connected layer with folded float weights ``W`` (``(N, K)``, K = the im2col row),
per-channel weight scales ``s`` and ``bits``-wide narrow-range codes ``[−q, q]``:

* ``W_floor = floor(W / s)``; a continuous ``V`` (init so that ``h(V) = W/s − W_floor``) gives the
  soft weights ``W~ = s · clip(W_floor + h(V), −q, q)`` with the rectified sigmoid
  ``h(V) = clip(sigmoid(V)·(ζ − γ) + γ, 0, 1)``, ``ζ = 1.1``, ``γ = −0.1``;
* the loss is ``‖W~ · X_q − W · X‖² / P + λ · Σ (1 − |2h(V) − 1|^β)`` (squared error summed over
  the output channels, averaged over the ``P`` sampled positions), where ``X`` are input
  columns of the FLOAT run and ``X_q`` the same columns as the INT run's (dequantized) inputs —
  so the rounding also compensates the error the earlier layers pass on (the paper's
  asymmetric reconstruction); the bias is common to both sides and left out;
* β anneals linearly from 20 to 2 after a warm-up of 20 % of the ``iterations`` (λ acts only
  then), Adam with learning rate ``lr``; ``columns`` random input columns per iteration;
* result: ``w_q = clip(W_floor + [V ≥ 0], −q, q)`` (``h(V) ≥ ½``), always in the width's range.

Deterministic for a given ``seed`` and ``threads`` (torch runs on ``threads`` threads, 1 by
default, while it optimises: on a shared machine more threads mostly wait for each other).  The result is a rounding choice
only: every code is ``floor`` or ``floor + 1`` of ``W/s`` (clipped), never further away.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.errors import UserInputError

ZETA, GAMMA = 1.1, -0.1


class TorchMissingError(UserInputError):
    """AdaRound was asked for, but PyTorch is not installed."""


def require_torch():  # noqa: ANN201 (returns the torch module)
    """The ``torch`` module, or :class:`TorchMissingError` with the install hint."""
    try:
        import torch
    except ImportError:
        raise TorchMissingError("adaround needs PyTorch (the 'train' extra): pip install -e '.[train]' "
                                "(or pip install 'dla-sim[train]')") from None
    return torch


@dataclass(frozen=True)
class AdaRoundOptions:
    """Optimisation settings (defaults keep a yolov3-tiny pass to a few minutes on 2 cores)."""

    iterations: int = 200
    columns: int = 512
    lr: float = 1e-2
    reg: float = 0.01  # λ
    warmup: float = 0.2
    beta: tuple[float, float] = (20.0, 2.0)
    seed: int = 0
    threads: int = 1  # torch threads while optimising: one keeps results reproducible across machines


def adaround_weights(w: np.ndarray, scale: np.ndarray, bits: int, x_float: np.ndarray, x_quant: np.ndarray,
                     options: AdaRoundOptions = AdaRoundOptions()) -> np.ndarray:
    """Integer codes (int64, ``w``'s shape) for float weights ``w`` (``(N, ...)``, per-channel
    ``scale`` ``(N,)``): see the module docstring.  ``x_float``/``x_quant`` are ``(K, P)`` input
    columns (K = ``w[0].size``) of the FLOAT and INT runs, same positions."""
    torch = require_torch()
    before = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        return _optimise(torch, w, scale, bits, x_float, x_quant, options)
    finally:
        torch.set_num_threads(before)


def _optimise(torch, w: np.ndarray, scale: np.ndarray, bits: int, x_float: np.ndarray,  # noqa: ANN001
              x_quant: np.ndarray, options: AdaRoundOptions) -> np.ndarray:
    n = w.shape[0]
    w2 = np.asarray(w, dtype=np.float64).reshape(n, -1)
    q = (1 << (bits - 1)) - 1
    s = np.asarray(scale, dtype=np.float64).reshape(n, 1)
    w_floor = np.floor(w2 / s)
    rest = np.clip(w2 / s - w_floor, 0.0, 1.0)
    # h(V) = rest  ⇔  sigmoid(V) = (rest − γ)/(ζ − γ)
    p = np.clip((rest - GAMMA) / (ZETA - GAMMA), 1e-6, 1 - 1e-6)
    gen = torch.Generator().manual_seed(options.seed)
    v = torch.tensor(np.log(p / (1 - p)), dtype=torch.float32, requires_grad=True)
    tw_floor = torch.tensor(w_floor, dtype=torch.float32)
    ts = torch.tensor(s, dtype=torch.float32)
    target_w = torch.tensor(w2, dtype=torch.float32)
    xf = torch.tensor(np.asarray(x_float, dtype=np.float32))
    xq = torch.tensor(np.asarray(x_quant, dtype=np.float32))
    total = xf.shape[1]
    opt = torch.optim.Adam([v], lr=options.lr)
    warm = int(options.warmup * options.iterations)

    def h(v_: "torch.Tensor") -> "torch.Tensor":
        return torch.clamp(torch.sigmoid(v_) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)

    for it in range(options.iterations):
        idx = torch.randint(0, total, (min(options.columns, total),), generator=gen)
        cf, cq = xf[:, idx], xq[:, idx]
        with torch.no_grad():
            target = target_w @ cf
        soft = ts * torch.clamp(tw_floor + h(v), -q, q)
        loss = torch.sum((soft @ cq - target) ** 2) / cq.shape[1]
        if it >= warm:
            frac = (it - warm) / max(1, options.iterations - warm)
            beta = options.beta[0] + (options.beta[1] - options.beta[0]) * frac
            loss = loss + options.reg * torch.sum(1 - torch.abs(2 * h(v) - 1) ** beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    up = (v.detach().numpy() >= 0).astype(np.float64)
    return np.clip(w_floor + up, -q, q).astype(np.int64).reshape(w.shape)


__all__ = ["AdaRoundOptions", "TorchMissingError", "adaround_weights", "require_torch"]
