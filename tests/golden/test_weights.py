"""The .weights reader and writer: Darknet's layout, every header version, exact-size checks."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from golden.errors import WeightsError
from golden.genweights import random_weights
from golden.network import load_network, parse_network
from golden.weights import expected_size, read_weights, weights_bytes, write_weights
from tests.paths import shared_path

CFG = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[convolutional]
filters=2
size=1
activation=linear
[connected]
output=5
batch_normalize=1
activation=linear
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "small.cfg"
    p.write_text(CFG)
    return p


def hand_written_file(major: int, minor: int, seen: int, transpose_connected: bool = False) -> tuple[bytes, list]:
    """Build a weights file by hand, independently of the writer: header + arrays in Darknet order."""
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=n).astype("<f4") for n in
              (4, 4, 4, 4, 4 * 3 * 9,      # conv0: biases, scales, mean, var, weights
               2, 2 * 4,                    # conv1: biases, weights
               5, 5 * 128, 5, 5, 5)]        # connected: biases, weights, scales, mean, var
    arrays[3] = np.abs(arrays[3]) + 0.1
    arrays[11] = np.abs(arrays[11]) + 0.1  # variances are >= 0 (a negative one is refused at load)
    head = struct.pack("<3i", major, minor, 0)
    head += struct.pack("<Q", seen) if major * 10 + minor >= 2 and major < 1000 and minor < 1000 \
        else struct.pack("<I", seen)
    body = list(arrays)
    if transpose_connected:
        body[8] = arrays[8].reshape(5, 128).T.copy().reshape(-1)
    return head + b"".join(a.tobytes() for a in body), arrays


@pytest.mark.parametrize("major,minor,seen,hsize", [(0, 1, 12345, 16), (0, 2, 2**40 + 7, 20),
                                                      (1, 0, 99, 20), (0, 1000, 3, 16)])
def test_read_matches_hand_layout_and_round_trips(tmp_path: Path, cfg: Path, major: int, minor: int,
                                                  seen: int, hsize: int) -> None:
    data, arrays = hand_written_file(major, minor, seen, transpose_connected=minor > 1000)
    wpath = tmp_path / "w.weights"
    wpath.write_bytes(data)
    net = read_weights(parse_network(cfg), wpath)
    assert len(data) == expected_size(net, major, minor) and expected_size(net, major, minor) - hsize == 4 * 794
    assert net.weights_header == (major, minor, 0, seen)
    p0, p1, p2 = net.params[0], net.params[1], net.params[2]
    assert np.array_equal(p0.biases, arrays[0]) and np.array_equal(p0.rolling_variance, arrays[3])
    assert np.array_equal(p0.weights, arrays[4].reshape(4, 3, 3, 3))
    assert np.array_equal(p1.weights, arrays[6].reshape(2, 4, 1, 1))
    assert np.array_equal(p2.weights, arrays[8].reshape(5, 128))  # transposed back when minor > 1000
    assert np.array_equal(p2.scales, arrays[9]) and np.array_equal(p2.rolling_variance, arrays[11])
    out = tmp_path / "again.weights"
    write_weights(net, out)
    assert out.read_bytes() == data


def test_real_yolov3_tiny_round_trip_is_byte_identical(tmp_path: Path) -> None:
    src = shared_path("models", "yolov3-tiny.weights")
    net = load_network(shared_path("darknet-cfg", "pjreddie", "yolov3-tiny.cfg"), src)
    assert net.weights_header == (0, 2, 0, 32_013_312)
    assert weights_bytes(net) == src.read_bytes()


def test_truncated_file_names_layer_and_missing_bytes(tmp_path: Path, cfg: Path) -> None:
    data, _ = hand_written_file(0, 2, 0)
    wpath = tmp_path / "short.weights"
    wpath.write_bytes(data[:-4 * 600])  # ends inside the connected layer's weights
    with pytest.raises(WeightsError) as err:
        read_weights(parse_network(cfg), wpath)
    msg = str(err.value)
    assert "layer 2 (connected)" in msg and "2400 bytes missing" in msg and "'weights'" in msg


def test_too_long_file_says_how_many_bytes_are_left(tmp_path: Path, cfg: Path) -> None:
    data, _ = hand_written_file(0, 2, 0)
    wpath = tmp_path / "long.weights"
    wpath.write_bytes(data + b"\0" * 12)
    with pytest.raises(WeightsError, match="12 bytes left over"):
        read_weights(parse_network(cfg), wpath)


def test_header_only_and_tiny_files(tmp_path: Path, cfg: Path) -> None:
    wpath = tmp_path / "tiny.weights"
    wpath.write_bytes(b"\0" * 5)
    with pytest.raises(WeightsError, match="shorter than the 16-byte header"):
        read_weights(parse_network(cfg), wpath)


def test_mismatched_cfg_is_refused(tmp_path: Path, cfg: Path) -> None:
    """Weights of another network: caught by the exact size check."""
    other = parse_network(shared_path("darknet-cfg", "pjreddie", "yolov2-tiny.cfg"))
    wpath = tmp_path / "small.weights"
    write_weights(random_weights(parse_network(cfg), 0), wpath)
    with pytest.raises(WeightsError, match="bytes missing"):
        read_weights(other, wpath)


def test_gen_weights_is_deterministic_and_realistic(cfg: Path) -> None:
    a = weights_bytes(random_weights(parse_network(cfg), 3))
    b = weights_bytes(random_weights(parse_network(cfg), 3))
    c = weights_bytes(random_weights(parse_network(cfg), 4))
    assert a == b and a != c
    net = random_weights(parse_network(cfg), 3)
    assert (net.params[0].rolling_variance > 0).all()
    assert net.params[0].weights.std() == pytest.approx(np.sqrt(2 / 27), rel=0.5)
