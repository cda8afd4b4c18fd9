"""The search space: defaults, rules, the spec a point becomes, moves and the exhaustive count."""
from __future__ import annotations

from pathlib import Path

import pytest

from dla.config import HardwareConfig
from dla.tune.space import DEFAULTS, Move, build_space, tunable_layers
from golden.errors import UserInputError
from golden.network import parse_network
from quant.spec import QuantSpec
from tests.dla.tune.helpers import CFG

PAIRS = HardwareConfig().supported_pairs()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("net") / "planted.cfg"
    cfg.write_text(CFG)
    return parse_network(cfg)


def test_defaults_give_every_conv_layer_int8_int4_weights_and_int8_int16_outputs(net) -> None:
    space = build_space(None, net, PAIRS)
    assert space.layers == tunable_layers(net) == [0, 1, 2, 3, 4]
    for _, o in space.options:
        assert o == DEFAULTS
    base = space.baseline()
    assert all((c.weight_bits, c.activation_bits, c.host, c.granularity) == (8, 8, False, "per_channel")
               for _, c in base.choices)
    assert base.quant_spec(space.base_choice()) == QuantSpec(granularity="per_channel")
    assert len(space.moves()) == 10 and space.size() == 4 ** 5 and space.size_text() == "4^5 = 1024"


def test_rules_restrict_by_index_and_type_later_rules_win(net) -> None:
    space = build_space({"defaults": {"activations": ["max", "mse"]},
                         "layers": [{"types": ["convolutional"], "weight_bits": 8},
                                    {"layers": [3], "weight_bits": [8, 16], "granularity": "per-tensor"}]}, net, PAIRS)
    opts = dict(space.options)
    assert opts[0]["weight_bits"] == (8,) and opts[3]["weight_bits"] == (8, 16)
    assert opts[3]["granularity"] == ("per_tensor",) and opts[0]["activations"] == ("max", "mse")
    assert space.size_text() == "8 x 4^4 = 2048"


def test_a_point_becomes_the_smallest_equivalent_spec(net) -> None:
    space = build_space({"defaults": {"activations": ["max", "kl"], "host": [False, True]}}, net, PAIRS)
    base = space.baseline()
    cfg = base.with_move(Move(2, "weight_bits", 4)).with_move(Move(4, "activation_bits", 16)) \
        .with_move(Move(1, "activations", "kl")).with_move(Move(3, "host", True))
    spec = cfg.quant_spec(space.base_choice())
    assert [o.layers for o in spec.overrides] == [(1,), (2,), (3,), (4,)]
    assert (spec.overrides[0].activations, spec.overrides[1].weight_bits, spec.overrides[2].host,
            spec.overrides[3].activation_bits) == ("kl", 4, True, 16)
    # taking a change back gives the baseline's spec again, and the same hash text
    back = cfg.with_move(Move(2, "weight_bits", 8)).with_move(Move(4, "activation_bits", 8)) \
        .with_move(Move(1, "activations", "max")).with_move(Move(3, "host", False))
    assert back.canonical() == base.canonical() and back.quant_spec(space.base_choice()).overrides == ()


def test_the_default_widths_follow_the_hardware(net) -> None:
    hw = HardwareConfig(passes_w4a8=0, passes_w4a16=0)
    space = build_space({"defaults": {"activation_bits": [8, 16]}}, net, hw.supported_pairs())
    assert dict(space.options)[0]["weight_bits"] == (8,)


def test_an_empty_space_is_refused(net) -> None:
    with pytest.raises(UserInputError, match="the search space is empty"):
        build_space({"defaults": {"weight_bits": [8], "activation_bits": [8]}}, net, PAIRS, "s.yaml")


def test_a_network_without_tunable_layers_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "pool.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[maxpool]\nsize=2\nstride=2\n")
    with pytest.raises(UserInputError, match="no convolutional or connected layer"):
        build_space(None, parse_network(cfg), PAIRS)
