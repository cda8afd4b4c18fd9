"""The cfg parser: Darknet's reading rules, shape inference, and errors that name file:line."""
from __future__ import annotations

from pathlib import Path

import pytest

from golden.cfg import parse_cfg_text
from golden.errors import CfgError
from golden.layers import ConvSpec, Kind, MaxPoolSpec, RouteSpec
from golden.network import parse_network
from tests.paths import shared_path

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"


def write(tmp_path: Path, text: str, name: str = "t.cfg") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_whitespace_comments_and_first_duplicate_win(tmp_path: Path) -> None:
    net = parse_network(write(tmp_path, NET + "# comment\n; other\n[convolutional]\n filters = 8 \n"
                                          "filters=4\nsize=3\npad=1\nactivation = leaky\r\n"))
    conv = net.layers[0]
    assert isinstance(conv, ConvSpec)
    assert (conv.filters, conv.size, conv.padding, conv.activation) == (8, 3, 1, "leaky")
    assert conv.out_shape == (8, 32, 32)


def test_numeric_prefix_like_atoi(tmp_path: Path) -> None:
    net = parse_network(write(tmp_path, NET + "[convolutional]\nfilters=40#32\nsize=1\nactivation=linear\n"))
    assert net.layers[0].out_shape[0] == 40
    assert not net.warnings  # '#' comment after a number is how efficientnet-lite3.cfg is written


def test_conv_defaults_are_darknets(tmp_path: Path) -> None:
    net = parse_network(write(tmp_path, NET + "[convolutional]\nfilters=2\nsize=3\n"))
    conv = net.layers[0]
    assert conv.activation == "logistic"  # Darknet's default, not linear
    assert conv.padding == 0 and conv.out_shape == (2, 30, 30)


def test_pad_means_size_over_two(tmp_path: Path) -> None:
    net = parse_network(write(tmp_path, NET + "[convolutional]\nfilters=2\nsize=1\npad=1\nstride=2\n"
                                          "activation=linear\n"))
    assert net.layers[0].padding == 0 and net.layers[0].out_shape == (2, 16, 16)


@pytest.mark.parametrize("size,stride,padding,in_hw,out_hw", [
    (2, 2, None, 13, 7), (2, 1, None, 13, 13), (5, 1, None, 19, 19), (3, 2, None, 32, 16), (2, 2, 0, 13, 6)])
def test_maxpool_shapes(tmp_path: Path, size: int, stride: int, padding: int | None, in_hw: int,
                        out_hw: int) -> None:
    pad = "" if padding is None else f"padding={padding}\n"
    text = f"[net]\nwidth={in_hw}\nheight={in_hw}\nchannels=3\n[maxpool]\nsize={size}\nstride={stride}\n{pad}"
    mp = parse_network(write(tmp_path, text)).layers[0]
    assert isinstance(mp, MaxPoolSpec)
    assert mp.out_shape == (3, out_hw, out_hw)


def test_route_groups_and_relative_indices(tmp_path: Path) -> None:
    text = (NET + "[convolutional]\nfilters=8\nsize=1\nactivation=linear\n"
            "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n[route]\nlayers=-2,0\n")
    net = parse_network(write(tmp_path, text))
    r1, r2 = net.layers[1], net.layers[2]
    assert isinstance(r1, RouteSpec) and r1.layers == (0,) and r1.out_shape == (4, 32, 32)
    assert isinstance(r2, RouteSpec) and r2.layers == (0, 0) and r2.out_shape == (16, 32, 32)


def test_unknown_option_warns_with_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, NET + "[convolutional]\nfilters=2\nsize=1\nfliters=3\n")
    net = parse_network(p)
    assert net.warnings == [f"{p}:8: unknown option 'fliters' in [convolutional] ignored"]


@pytest.mark.parametrize("body,line,needle", [
    ("[convolutionnal]\nfilters=2\n", 5, "unknown layer type"),
    ("[convolutional]\nsize=abc\n", 6, "option 'size': expected an integer, got 'abc'"),
    ("[convolutional]\nfilters=2\nsize=1\n[route]\nlayers=-5\n", 9, "layer -5 resolves to index -4"),
    ("[route]\nlayers=3\n", 6, "not an earlier layer"),
    ("[convolutional]\nfilters=2\nactivation=leakyy\n", 7, "unknown activation 'leakyy'"),
    ("[convolutional]\nfilters=0\n", 6, "'filters' must be positive"),
    ("[convolutional]\nfilters=3\ngroups=2\n", 7, "groups=2 must divide"),
    ("[yolo]\nmask=0\nanchors=1,2\nnum=1\nclasses=1\n", 5, "len(mask)*(5+classes) = 6 expected"),
    ("[convolutional]\nfilters\n", 6, "expected 'key=value'"),
    ("[convolutional]\nbinary=1\n", 6, "'binary' is not supported"),
])
def test_bad_cfg_names_file_and_line(tmp_path: Path, body: str, line: int, needle: str) -> None:
    p = write(tmp_path, NET + body)
    with pytest.raises(CfgError) as err:
        parse_network(p)
    assert f"{p}:{line}:" in str(err.value)
    assert needle in str(err.value)


def test_first_section_must_be_net(tmp_path: Path) -> None:
    with pytest.raises(CfgError, match="first section must be"):
        parse_network(write(tmp_path, "[convolutional]\nfilters=1\n"))


def test_missing_input_size(tmp_path: Path) -> None:
    with pytest.raises(CfgError, match="'width' must be a positive integer"):
        parse_network(write(tmp_path, "[net]\nheight=3\nchannels=3\n[maxpool]\n"))


def test_binary_file_is_not_a_cfg(tmp_path: Path) -> None:
    p = tmp_path / "x.cfg"
    p.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(CfgError, match="not a text file"):
        parse_network(p)


def test_parse_text_directly() -> None:
    secs = parse_cfg_text("[net]\nwidth=1\n[maxpool]\nsize=2\nsize=3\n")
    assert [s.name for s in secs] == ["net", "maxpool"]
    assert secs[1].get_int("size", 0) == 2


# Layer counts and parameter counts of every shipped cfg, from ../shared/darknet-cfg/SOURCES.md
# (computed there independently from the published weight file sizes).
SOURCES = {
    "pjreddie/darknet.cfg": (16, (1000, 1, 1), 7_323_480),
    "pjreddie/darknet19.cfg": (26, (1000, 1, 1), 20_856_776),
    "pjreddie/extraction.cfg": (27, (1000, 1, 1), 23_455_400),
    "pjreddie/resnet18.cfg": (29, (1000, 1, 1), 11_523_496),
    "pjreddie/tiny.cfg": (22, (1000, 1, 1), 1_046_488),
    "pjreddie/yolov2.cfg": (32, (425, 19, 19), 50_983_561),
    "pjreddie/yolov2-tiny.cfg": (16, (425, 13, 13), 11_237_145),
    "pjreddie/yolov2-tiny-voc.cfg": (16, (125, 13, 13), 15_867_885),
    "pjreddie/yolov3.cfg": (107, None, 62_001_757),
    "pjreddie/yolov3-tiny.cfg": (24, None, 8_858_734),
    "pjreddie/yolov3-spp.cfg": (114, None, 63_052_381),
    "AlexeyAB/efficientnet-lite3.cfg": (117, (1000, 1, 1), 7_522_856),
    "AlexeyAB/enet-coco.cfg": (146, None, 4_808_270),
    "AlexeyAB/yolov3-tiny-prn.cfg": (28, None, 4_939_758),
    "AlexeyAB/yolov4-tiny.cfg": (38, None, 6_062_814),
    "AlexeyAB/yolov4-tiny-3l.cfg": (45, None, 6_334_045),
    "AlexeyAB/yolov4.cfg": (162, None, 64_429_405),
    "AlexeyAB/yolov7-tiny.cfg": (99, None, 6_241_885),
    "AlexeyAB/darknet.cfg": (17, (1000, 1, 1), 7_323_480),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_real_cfgs_parse_with_documented_sizes(name: str) -> None:
    n_layers, out_shape, n_params = SOURCES[name]
    net = parse_network(shared_path("darknet-cfg", name))
    assert len(net.layers) == n_layers
    assert net.n_params == n_params
    if out_shape is not None:
        assert net.layers[net.output_index].out_shape == out_shape
    assert not net.warnings, net.warnings


def test_yolov2_reorg_and_yolov3_tiny_heads() -> None:
    v2 = parse_network(shared_path("darknet-cfg", "pjreddie", "yolov2.cfg"))
    reorg = [s for s in v2.layers if s.kind is Kind.REORG][0]
    assert reorg.in_shape == (64, 38, 38) and reorg.out_shape == (256, 19, 19)
    tiny = parse_network(shared_path("darknet-cfg", "pjreddie", "yolov3-tiny.cfg"))
    assert [h.out_shape for h in tiny.heads] == [(255, 13, 13), (255, 26, 26)]
