"""Fuzzing the cfg loader through the CLI: a cfg that `dla info` accepts never crashes
gen-weights, cycles or infer; invalid and absurd values are refused at parse with file:line."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from golden.errors import CfgError
from golden.network import (DEFAULT_MAX_ACTIVATION_BYTES, estimate_activation_bytes, estimate_param_count,
                            parse_network)
from tests.fuzz_helpers import FUZZ, TINY_CFG, clean, dla, refused

LINES = TINY_CFG.read_text().splitlines()
OPTION_LINES = [i for i, line in enumerate(LINES) if "=" in line and not line.startswith("#")]
VALUES = ["-1", "0", "1", "2", "3", "-3", "1000000000", "99999999999999999999", "1e999", "abc", "", "0.5",
          "-0.5", "7", "64", "100000", "leaky", "linear", "1,2", "-1,4", "-100"]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "in.png"
    Image.new("RGB", (40, 30), (120, 60, 200)).save(path)
    return path


def _mutate(choices: list[tuple[int, str, int]]) -> str:
    lines = list(LINES)
    for line_index, value, op in choices:
        i = OPTION_LINES[line_index % len(OPTION_LINES)]
        key = lines[i].split("=", 1)[0]
        if op == 0:
            lines[i] = f"{key}={value}"
        elif op == 1:
            lines[i] = ""  # option removed
        else:
            lines.insert(i, f"{key}={value}")  # duplicated (the first one wins)
    return "\n".join(lines) + "\n"


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 200), st.sampled_from(VALUES), st.integers(0, 2)), min_size=1, max_size=3))
def test_fuzz_cfg_info_accepts_means_no_crash(image: Path, choices: list[tuple[int, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "m.cfg"
        cfg.write_text(_mutate(choices))
        info = clean(dla("info", cfg))
        weights, json_out = Path(d) / "m.weights", Path(d) / "out.json"
        gen = clean(dla("gen-weights", cfg, "--seed", 1, "-o", weights, "-q"), (weights,))
        clean(dla("cycles", cfg, "-q"))
        if info.exit_code == 0:
            assert gen.exit_code == 0, gen.output  # what info accepts, gen-weights can build
            clean(dla("infer", cfg, weights, image, "--json", json_out, "-q"), (json_out,))


def test_filters_1e9_is_refused_at_parse_by_every_command(tmp_path: Path) -> None:
    """Reproducer: `filters=1000000000` passed `dla info` and then raised MemoryError."""
    cfg = tmp_path / "big.cfg"
    cfg.write_text(TINY_CFG.read_text().replace("filters=8", "filters=1000000000", 1))
    line = next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if t == "[convolutional]")
    out = tmp_path / "w.weights"
    for args in (("info", cfg), ("gen-weights", cfg, "--seed", 1, "-o", out), ("cycles", cfg),
                 ("infer", cfg, out, TINY_CFG)):
        refused(dla(*args), f"big.cfg:{line}: [convolutional] layer 0: the network needs", (out,))
    assert "DLA_MAX_PARAMS" in dla("info", cfg).output


def test_maxpool_negative_padding_is_refused_with_file_line(tmp_path: Path) -> None:
    """Reproducer: `padding=-1` under [maxpool] gave a ValueError in golden/kernels.py."""
    text = TINY_CFG.read_text().replace("[maxpool]\nsize=2", "[maxpool]\npadding=-1\nsize=2", 1)
    cfg = tmp_path / "pad.cfg"
    cfg.write_text(text)
    line = text.splitlines().index("padding=-1") + 1
    refused(dla("info", cfg), f"pad.cfg:{line}: [maxpool] option 'padding' must not be negative, got -1")


def test_conv_negative_padding_and_infinite_numbers_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(TINY_CFG.read_text().replace("pad=1", "padding=-2", 1))
    refused(dla("info", cfg), "[convolutional] option 'padding' must not be negative")
    cfg.write_text(TINY_CFG.read_text().replace("anchors = 10,14", "anchors = 1e999,14", 1))
    refused(dla("info", cfg), "option 'anchors': 1e999,14")
    assert "is not a finite number" in dla("info", cfg).output
    cfg.write_text(TINY_CFG.read_text().replace("classes=2", "classes=-4", 1))
    refused(dla("info", cfg), "option 'classes' must be positive")


def test_huge_input_is_refused_naming_the_layer_and_the_bound(tmp_path: Path, monkeypatch) -> None:
    cfg = tmp_path / "wide.cfg"
    cfg.write_text(TINY_CFG.read_text().replace("width=64", "width=1000000", 1))
    res = refused(dla("info", cfg), "estimated activation memory")
    assert re.search(r"wide\.cfg:\d+: \[convolutional\] layer 0", res.output), res.output
    monkeypatch.setenv("DLA_MAX_ACTIVATION_BYTES", str(1 << 20))  # the bound is configurable
    refused(dla("info", TINY_CFG), "above the limit of 0.0 GiB")
    monkeypatch.setenv("DLA_MAX_ACTIVATION_BYTES", "lots")
    refused(dla("info", TINY_CFG), "DLA_MAX_ACTIVATION_BYTES='lots': must be a positive integer")


def test_estimate_activation_bytes_is_outputs_plus_the_largest_transient() -> None:
    """An independent count for the tiny detector: input + every output, plus the largest one-layer
    transient (a conv's im2col and float64 accumulator, else one more output)."""
    net = parse_network(TINY_CFG)
    expect, transients = 3 * 64 * 64 * 4, []
    for spec in net.layers:
        c, h, w = spec.out_shape
        expect += c * h * w * 4
        if spec.kind.value == "convolutional":
            transients.append(spec.in_shape[0] * spec.size ** 2 * h * w * 4 + c * h * w * 8)
        else:
            transients.append(c * h * w * 4)
    expect += max(transients)
    assert estimate_activation_bytes(net) == expect
    assert estimate_param_count(net) == net.n_params
    assert expect < DEFAULT_MAX_ACTIVATION_BYTES


def test_size_bound_error_is_a_cfg_error() -> None:
    with pytest.raises(CfgError, match="above the limit of 10"):
        from golden.network import check_size

        check_size(parse_network(TINY_CFG), max_params=10)
