"""Which Darknet a network is run as: pjreddie's original or AlexeyAB's fork.

The two forks compute different numbers from the same ``.cfg`` + ``.weights`` (see
docs/float-engine.md, "Darknet forks", for the source lines):

* **batch norm** — pjreddie (``src/blas.c: normalize_cpu``):
  ``(x − μ) / (√σ² + 1e-6)``, then ``·γ``, ``+β``.  AlexeyAB's inference drivers fold BN
  into the conv right after loading (``src/network.c: fuse_conv_batchnorm``):
  ``W' = float32(W · γ/√(σ² + 1e-5))``, ``b' = float32(β − γ·μ/√(σ² + 1e-5))`` in double,
  then run the conv with a bias.  Its unfused ``normalize_cpu`` (used by ``[connected]``)
  divides by ``√(σ² + 1e-5f)``.
* **detector input** — pjreddie's ``detector test`` always letterboxes; AlexeyAB's stretches
  the image (``resize_image``) unless ``[net] letter_box=1`` (``src/detector.c:
  test_detector``), and corrects boxes with the same flag (``correct_yolo_boxes(..., letter)``).

``auto`` picks AlexeyAB exactly when the cfg uses something only AlexeyAB's parser reads
(:data:`ALEXEYAB_ONLY`): such a cfg cannot run on pjreddie's Darknet, so AlexeyAB's numbers
are the ones its weights were trained and published with.  Anything else is pjreddie.
The choice is an explicit value carried by the ``Network`` (never a global).
"""
from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np

from golden.cfg import Section
from golden.errors import UserInputError


class DarknetFork(str, enum.Enum):
    """A resolved fork (``auto`` is resolved by :func:`resolve_fork` before anything runs)."""

    PJREDDIE = "pjreddie"
    ALEXEYAB = "alexeyab"


#: Values accepted by ``--darknet``, the ``.qnet`` field and the scenario key ``model.darknet``.
FORK_CHOICES = ("pjreddie", "alexeyab", "auto")
AUTO = "auto"

#: Section names only AlexeyAB's ``parser.c: string_to_layer_type`` knows.
ALEXEYAB_ONLY_SECTIONS = frozenset("""scale_channels sam reorg3d local_avgpool Gaussian_yolo
    implicit empty silence contrastive conv_lstm history""".split())

#: ``[section]`` → option keys only AlexeyAB's parser reads (pjreddie prints "Unused field").
#: Presence of the key is what counts, whatever its value: a cfg that names it was written
#: for AlexeyAB's Darknet.
ALEXEYAB_ONLY: dict[str, frozenset[str]] = {
    "net": frozenset("letter_box mosaic cutmix mixup blur label_smooth_eps ema_alpha "
                     "adversarial_lr track augment_speed".split()),
    "convolutional": frozenset("stride_x stride_y dilation antialiasing share_index deform "
                               "coordconv assisted_excitation sway rotate stretch".split()),
    "maxpool": frozenset("stride_x stride_y maxpool_depth out_channels antialiasing".split()),
    "route": frozenset("groups group_id".split()),
    "shortcut": frozenset("weights_type weights_normalization".split()),
    "yolo": frozenset("""scale_x_y new_coords nms_kind beta_nms iou_loss iou_normalizer
        cls_normalizer obj_normalizer delta_normalizer iou_thresh max_delta resize
        objectness_smooth focal_loss label_smooth_eps""".split()),
    "upsample": frozenset(),
}
#: Section-name aliases, as ``golden.layers.SECTION_ALIASES`` (``[conv]`` is ``[convolutional]``).
_ALIASES = {"conv": "convolutional", "max": "maxpool", "network": "net"}
#: Activation names pjreddie's ``activations.c: get_activation`` does not know (it falls back
#: to relu with a warning, so the network would compute something else).
ALEXEYAB_ONLY_ACTIVATIONS = frozenset("relu6 swish mish hard_mish gelu normalize_channels "
                                      "normalize_channels_softmax normalize_channels_softmax_maxval".split())


def alexeyab_features(sections: Sequence[Section]) -> list[str]:
    """What in a cfg only AlexeyAB's Darknet reads, as ``"file:line: [section] key"`` strings."""
    found: list[str] = []
    for sec in sections:
        name = _ALIASES.get(sec.name, sec.name)
        where = f"{sec.path.name}:{sec.line}"
        if name in ALEXEYAB_ONLY_SECTIONS:
            found.append(f"{where}: [{sec.name}]")
            continue
        keys = ALEXEYAB_ONLY.get(name, frozenset())
        for opt in sec.options:
            if opt.key in keys:
                found.append(f"{sec.path.name}:{opt.line}: [{sec.name}] {opt.key}")
            elif opt.key == "activation" and opt.value in ALEXEYAB_ONLY_ACTIVATIONS:
                found.append(f"{sec.path.name}:{opt.line}: [{sec.name}] activation={opt.value}")
        if name == "shortcut":
            frm = next((o for o in sec.options if o.key == "from"), None)
            if frm is not None and "," in frm.value:
                found.append(f"{sec.path.name}:{frm.line}: [{sec.name}] from= with several layers")
    return found


def parse_fork(value: str, where: str = "--darknet") -> str:
    """Validate a user-given fork name (``pjreddie``, ``alexeyab`` or ``auto``); lower-cases it."""
    v = str(value).strip().lower()
    if v not in FORK_CHOICES:
        raise UserInputError(f"{where}: unknown Darknet fork '{value}' "
                             f"(valid: {', '.join(FORK_CHOICES)})")
    return v


def resolve_fork(requested: str | DarknetFork, sections: Sequence[Section]) -> DarknetFork:
    """``auto`` → AlexeyAB iff the cfg uses an AlexeyAB-only feature; else the named fork."""
    if isinstance(requested, DarknetFork):
        return requested
    v = parse_fork(requested)
    if v == AUTO:
        return DarknetFork.ALEXEYAB if alexeyab_features(sections) else DarknetFork.PJREDDIE
    return DarknetFork(v)


def detector_letterbox(fork: DarknetFork, cfg_letter_box: int | None) -> bool:
    """Whether ``detector test`` letterboxes: pjreddie always; AlexeyAB iff ``[net] letter_box``
    is non-zero (default 0: stretch)."""
    if fork is DarknetFork.PJREDDIE:
        return True
    return bool(cfg_letter_box or 0)


# --------------------------------------------------------------------------- batch norm


#: pjreddie ``normalize_cpu``: ε added to √σ² (float literal ``.000001f``).
PJREDDIE_BN_EPS = np.float32(0.000001)
#: The ε quantization has always folded pjreddie's BN with (the double ``1e-6``, not the float
#: literal widened); kept so that existing ``.qnet`` files and results stay bit-identical.
PJREDDIE_FOLD_EPS = 1e-6
#: AlexeyAB ``fuse_conv_batchnorm``: ε inside the root, double literal ``.00001``.
ALEXEYAB_FUSE_EPS = 0.00001
#: AlexeyAB ``normalize_cpu``: ε inside the root, float literal ``.00001f``.
ALEXEYAB_BN_EPS = np.float32(0.00001)


def alexeyab_fused(weights: np.ndarray, biases: np.ndarray, scales: np.ndarray,
                   mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AlexeyAB's ``fuse_conv_batchnorm`` for one conv: ``(W', b')`` as float32, as it stores them.

    Per filter ``f``, in double: ``b'[f] = β[f] − (γ[f]·μ[f]) / √(σ²[f] + 1e-5)`` and
    ``k = γ[f] / √(σ²[f] + 1e-5)``; every weight of the filter becomes ``float32(W·k)``.
    """
    var = variance.astype(np.float64)
    root = np.sqrt(var + ALEXEYAB_FUSE_EPS)
    b = (biases.astype(np.float64) - (scales.astype(np.float64) * mean.astype(np.float64)) / root)
    k = scales.astype(np.float64) / root
    shape = (-1,) + (1,) * (weights.ndim - 1)
    w = (weights.astype(np.float64) * k.reshape(shape)).astype(np.float32)
    return w, b.astype(np.float32)


def bn_factor(fork: DarknetFork, scales: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """The per-channel multiplier BN applies after ``x − μ``, in float64: ``γ/(√σ² + 1e-6)``
    (pjreddie) or ``γ/√(σ² + 1e-5)`` (AlexeyAB).  Used to fold BN for quantization."""
    var = variance.astype(np.float64)
    if fork is DarknetFork.ALEXEYAB:
        return scales.astype(np.float64) / np.sqrt(var + ALEXEYAB_FUSE_EPS)
    return scales.astype(np.float64) / (np.sqrt(var) + PJREDDIE_FOLD_EPS)
