"""A YOLOv3 loss for training the shipped detector (simple, Darknet's assignment rules).

Per ``[yolo]`` head with grid ``H × W``, anchors ``mask`` out of all ``num`` anchors of the cfg
(``yolo_layer.c: forward_yolo_layer``, pjreddie):

* **assignment** — each ground-truth box goes to the one anchor (over *all* ``num``) whose
  ``w × h`` shape has the best IoU with it, both centred at the origin; if that anchor is in
  this head's ``mask`` the box is its target at cell ``(⌊cx·W⌋, ⌊cy·H⌋)`` (a later box in
  the same cell and anchor replaces an earlier one, as in Darknet);
* **ignore** — an unassigned prediction whose decoded box has IoU > ``ignore_thresh`` with
  any ground truth of its image gets no objectness loss;
* **losses** (summed, divided by the batch size), with ``s = 2 − w·h`` (Darknet's small-box
  weight): objectness BCE (1 at assigned, 0 elsewhere), class BCE one-hot at assigned,
  ``s·BCE(σ(tx), cx·W − i)`` for x and y, ``s·½(tw − log(w·net_w / anchor_w))²`` for w and h.

Darknet itself uses squared-error gradients on x, y; BCE on the sigmoid is the common,
better-conditioned variant.  Targets are ``(B, T, 5)`` tensors of ``cls cx cy w h``
(normalised), padded with ``cls = −1``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from golden.layers import YoloSpec


def _wh_iou(wh1: torch.Tensor, wh2: torch.Tensor) -> torch.Tensor:
    """IoU of origin-centred boxes: ``wh1`` (n, 2) × ``wh2`` (m, 2) → (n, m)."""
    inter = torch.min(wh1[:, None, 0], wh2[None, :, 0]) * torch.min(wh1[:, None, 1], wh2[None, :, 1])
    union = (wh1[:, 0] * wh1[:, 1])[:, None] + (wh2[:, 0] * wh2[:, 1])[None, :] - inter
    return inter / union


def _box_iou_cxcywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a`` (B, P, 4), ``b`` (B, T, 4) centre/size → (B, P, T)."""
    a1, a2 = a[..., :2] - a[..., 2:] / 2, a[..., :2] + a[..., 2:] / 2
    b1, b2 = b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    lt = torch.max(a1[:, :, None], b1[:, None])
    rb = torch.min(a2[:, :, None], b2[:, None])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = a[..., 2:].prod(-1)[:, :, None] + b[..., 2:].prod(-1)[:, None] - inter
    return inter / union.clamp(min=1e-12)


def yolo_head_loss(raw: torch.Tensor, spec: YoloSpec, targets: torch.Tensor, net_w: int, net_h: int,
                   ignore_thresh: float = 0.7) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one head; ``raw`` is the head's *input* (B, A·(5+C), H, W), before any σ."""
    bsz, _, gh, gw = raw.shape
    na, nc = len(spec.mask), spec.classes
    p = raw.view(bsz, na, 5 + nc, gh, gw).permute(0, 1, 3, 4, 2)  # (B, A, H, W, 5+C)
    anchors_all = torch.tensor(spec.anchors, dtype=raw.dtype).view(-1, 2) / torch.tensor([net_w, net_h])
    anchors = anchors_all[list(spec.mask)]  # (A, 2) normalised

    # decoded predictions (detached) for the ignore mask
    with torch.no_grad():
        gy, gx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        px = (torch.sigmoid(p[..., 0]) + gx) / gw
        py = (torch.sigmoid(p[..., 1]) + gy) / gh
        pw = torch.exp(p[..., 2].clamp(max=10)) * anchors[:, 0].view(1, na, 1, 1)
        ph = torch.exp(p[..., 3].clamp(max=10)) * anchors[:, 1].view(1, na, 1, 1)
        pred = torch.stack([px, py, pw, ph], -1).view(bsz, -1, 4)
        valid = targets[..., 0] >= 0  # (B, T)
        ious = _box_iou_cxcywh(pred, targets[..., 1:5])
        ious = ious.masked_fill(~valid[:, None, :], 0)
        best = ious.max(dim=2).values.view(bsz, na, gh, gw) if targets.shape[1] else torch.zeros(bsz, na, gh, gw)

    obj_t = torch.zeros(bsz, na, gh, gw)
    noobj = best <= ignore_thresh
    cls_t = torch.zeros(bsz, na, gh, gw, nc)
    box_t = torch.zeros(bsz, na, gh, gw, 4)
    scale = torch.zeros(bsz, na, gh, gw)
    b_idx, t_idx = torch.nonzero(targets[..., 0] >= 0, as_tuple=True)
    if len(b_idx):
        t = targets[b_idx, t_idx]  # (n, 5)
        best_anchor = _wh_iou(t[:, 3:5], anchors_all).argmax(dim=1)
        for k in range(len(t)):  # in order: a later box replaces an earlier one
            a_all = int(best_anchor[k])
            if a_all not in spec.mask:
                continue
            a = spec.mask.index(a_all)
            b = int(b_idx[k])
            cx, cy, w, h = (float(v) for v in t[k, 1:5])
            i, j = min(int(cx * gw), gw - 1), min(int(cy * gh), gh - 1)
            obj_t[b, a, j, i] = 1
            noobj[b, a, j, i] = True
            cls_t[b, a, j, i] = 0
            cls_t[b, a, j, i, int(t[k, 0])] = 1
            box_t[b, a, j, i] = torch.tensor([cx * gw - i, cy * gh - j,
                                              float(torch.log(torch.tensor(w) / anchors[a, 0])),
                                              float(torch.log(torch.tensor(h) / anchors[a, 1]))])
            scale[b, a, j, i] = 2 - w * h
    pos = obj_t > 0
    obj_w = (pos | noobj).float()
    l_obj = (F.binary_cross_entropy_with_logits(p[..., 4], obj_t, reduction="none") * obj_w).sum()
    if pos.any():
        pp, bt, s = p[pos], box_t[pos], scale[pos]
        l_xy = (F.binary_cross_entropy_with_logits(pp[:, 0:2], bt[:, 0:2], reduction="none").sum(1) * s).sum()
        l_wh = (0.5 * (pp[:, 2:4] - bt[:, 2:4]).square().sum(1) * s).sum()
        l_cls = F.binary_cross_entropy_with_logits(pp[:, 5:], cls_t[pos], reduction="sum")
    else:
        l_xy = l_wh = l_cls = raw.sum() * 0
    total = (l_obj + l_xy + l_wh + l_cls) / bsz
    parts = {k: float(v.detach()) / bsz for k, v in (("obj", l_obj), ("xy", l_xy), ("wh", l_wh), ("cls", l_cls))}
    return total, parts
