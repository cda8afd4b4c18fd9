"""``HardwareConfig`` defaults and the YAML loader: valid files, and every mistake a user can make
reported as one ``ConfigError`` whose message starts with ``path:line:`` (DESIGN §5)."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import dla.config
from dla.config import ConfigError, HardwareConfig, config_from_mapping, load_config
from golden.errors import FileMissingError, UserInputError

HW_DIR = Path(dla.config.__file__).resolve().parent / "data" / "hw"


def write(tmp_path: Path, text: str, name: str = "hw.yaml") -> Path:
    """Write ``text`` to a YAML file under ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def prefix(path: Path, line: int) -> str:
    """The regex for the ``path:line: `` start of a ``ConfigError`` message."""
    return "^" + re.escape(f"{path}:{line}: ")


# =========================================================================== defaults


def test_defaults_match_design() -> None:
    """Every default is DESIGN §4/§5's: int32 saturating accumulator, gemmlowp Q0.31 requant with
    half-away rounding and saturating left shift, fused leaky (7 bits), 16×16 weight-stationary array."""
    hw = HardwareConfig()
    assert (hw.acc_bits, hw.acc_overflow) == (32, "saturate")
    assert (hw.requant, hw.multiplier_bits, hw.shift_bits, hw.rounding) == ("gemmlowp", 32, 6, "half_away")
    assert hw.left_shift_overflow == "saturate"
    assert (hw.leaky, hw.leaky_bits, hw.activation_lut) == ("fused", 7, False)
    assert (hw.route_shared_scale, hw.shortcut_left_shift) == (False, 20)
    assert (hw.rows, hw.cols, hw.dataflow) == (16, 16, "weight_stationary")
    assert (hw.clock_mhz, hw.dram_bytes_per_cycle) == (500.0, 16.0)
    assert (hw.input_buffer_kib, hw.weight_buffer_kib, hw.output_buffer_kib) == (128, 512, 64)
    assert (hw.dram_latency_cycles, hw.requant_latency, hw.pool_latency) == (100, 3, 2)
    assert hw.problems() == []


def test_derived_properties_frozen_and_replace() -> None:
    """Derived values (accumulator range, MACs/cycle); the dataclass is frozen; ``replace`` revalidates."""
    hw = HardwareConfig()
    assert (hw.acc_min, hw.acc_max, hw.macs_per_cycle) == (-(1 << 31), (1 << 31) - 1, 256)
    assert HardwareConfig(acc_bits=16).acc_max == 32767
    with pytest.raises(dataclasses.FrozenInstanceError):
        hw.rows = 8  # type: ignore[misc]
    assert hw.replace(rows=8).macs_per_cycle == 128
    with pytest.raises(UserInputError, match="rows=0 must be positive"):
        hw.replace(rows=0)
    assert HardwareConfig(**hw.to_dict()) == hw


# =========================================================================== valid files


def test_load_valid_file(tmp_path: Path) -> None:
    """A file with comments, blank lines and a subset of keys: given keys set, others default,
    integers given for float fields become floats."""
    path = write(tmp_path, "# my DLA\n\nacc_bits: 24\nrequant: single_round\nrounding: half_up\n"
                           "activation_lut: true\nclock_mhz: 400   # integer for a float field\nrows: 32\n")
    hw = load_config(path)
    assert hw == HardwareConfig(acc_bits=24, requant="single_round", rounding="half_up", activation_lut=True,
                                clock_mhz=400.0, rows=32)
    assert isinstance(hw.clock_mhz, float)
    assert hw.cols == 16


def test_load_shipped_configs_and_empty_files(tmp_path: Path) -> None:
    """The shipped ``default.yaml`` is exactly the defaults; ``acc16.yaml`` loads; an empty or
    comment-only file means all defaults; a string path works like a ``Path``."""
    assert load_config(HW_DIR / "default.yaml") == HardwareConfig()
    acc16 = load_config(str(HW_DIR / "acc16.yaml"))
    assert (acc16.acc_bits, acc16.requant, acc16.multiplier_bits, acc16.shift_bits) == (16, "scale_shift", 16, 6)
    assert load_config(write(tmp_path, "", "empty.yaml")) == HardwareConfig()
    assert load_config(write(tmp_path, "# nothing here\n", "comments.yaml")) == HardwareConfig()


def test_duplicate_key_last_wins_and_is_located(tmp_path: Path) -> None:
    """YAML's last-wins for a repeated key; an error in it names the line of the value that counts."""
    path = write(tmp_path, "rows: 16\nrows: 0\n")
    with pytest.raises(ConfigError, match=prefix(path, 2) + "rows=0 must be positive"):
        load_config(path)


# =========================================================================== errors with file:line


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    """A misspelt key is named with its line and the closest valid key."""
    path = write(tmp_path, "acc_bits: 32\n# comment\nclock_mhs: 400\n")
    with pytest.raises(ConfigError, match=prefix(path, 3) + re.escape("unknown key 'clock_mhs' (did you mean 'clock_mhz'?)")):
        load_config(path)


def test_unknown_key_without_close_match_lists_keys(tmp_path: Path) -> None:
    """A key resembling nothing lists the valid keys instead of guessing."""
    path = write(tmp_path, "rows: 16\nzzzzzz: 1\n")
    with pytest.raises(ConfigError, match=prefix(path, 2) + r"unknown key 'zzzzzz' \(valid keys: acc_bits, .*pool_latency\)"):
        load_config(path)


@pytest.mark.parametrize(("text", "line", "msg"), [
    ("acc_bits: 32\nrows: sixteen\n", 2, "'rows' must be an integer, got 'sixteen'"),
    ("rows: 16.0\n", 1, "'rows' must be an integer, got 16.0"),
    ("\n\nrows: true\n", 3, "'rows' must be an integer, got True"),
    ("activation_lut: 1\n", 1, "'activation_lut' must be true or false, got 1"),
    ("cols: 16\nclock_mhz: fast\n", 2, "'clock_mhz' must be a number, got 'fast'"),
    ("rows: [16, 16]\n", 1, "'rows' must be an integer, got [16, 16]"),
])
def test_wrong_type(tmp_path: Path, text: str, line: int, msg: str) -> None:
    """A value of the wrong type names the key, what was expected and what was given (bools are
    not integers, floats are not integers, integers are numbers)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=prefix(path, line) + re.escape(msg)):
        load_config(path)


@pytest.mark.parametrize(("text", "line", "msg"), [
    ("requant: tflite\n", 1, "'requant' must be one of gemmlowp, single_round, scale_shift, got 'tflite'"),
    ("rows: 16\nrounding: nearest_even\n", 2, "'rounding' must be one of half_away, half_up, truncate, got 'nearest_even'"),
    ("dataflow: row_stationary\n", 1, "'dataflow' must be one of weight_stationary, output_stationary"),
    ("acc_overflow: clip\n", 1, "'acc_overflow' must be one of saturate, wrap, got 'clip'"),
])
def test_bad_enum_lists_choices(tmp_path: Path, text: str, line: int, msg: str) -> None:
    """A value outside a ``Literal`` field's choices lists every valid choice."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=prefix(path, line) + re.escape(msg)):
        load_config(path)


@pytest.mark.parametrize(("text", "line", "msg"), [
    ("rows: 16\ncols: 16\n\nacc_bits: 80\n", 4, "acc_bits=80 is outside 8..32"),
    ("multiplier_bits: 33\n", 1, "multiplier_bits=33 is outside 2..32"),
    ("shortcut_left_shift: -1\n", 1, "shortcut_left_shift=-1 is outside 0..24"),
    ("leaky_bits: 0\n", 1, "leaky_bits=0 is outside 1..16"),
    ("rows: 0\n", 1, "rows=0 must be positive"),
    ("dram_bytes_per_cycle: -2.5\n", 1, "dram_bytes_per_cycle=-2.5 must be positive"),
    ("requant_latency: -1\n", 1, "requant_latency=-1 must not be negative"),
    ("requant: single_round\nrounding: truncate\n", 2, "single_round has one built-in half-up rounding"),
])
def test_out_of_range(tmp_path: Path, text: str, line: int, msg: str) -> None:
    """Values of the right type but outside their valid range, located at their own line
    (including the cross-field rule single_round + truncate, located at ``rounding``)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=prefix(path, line) + re.escape(msg)):
        load_config(path)


@pytest.mark.parametrize(("text", "line", "column", "problem"), [
    ("acc_bits: 32\n  rows: 3\n", 2, 7, "mapping values are not allowed here"),
    ("acc_bits: 32\nrows: 16\nrequant: 'gemmlowp\n", 4, 1, "found unexpected end of stream"),
    ("rows: 16\n\tcols: 16\n", 2, 1, "found character '\\t' that cannot start any token"),
])
def test_invalid_yaml_syntax(tmp_path: Path, text: str, line: int, column: int, problem: str) -> None:
    """A YAML syntax error gives the line and column of the problem and the parser's reason."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=prefix(path, line) + re.escape(f"invalid YAML, column {column}: {problem}")):
        load_config(path)


@pytest.mark.parametrize(("text", "line"), [
    ("- acc_bits: 32\n- rows: 16\n", 1),
    ("just some text\n", 1),
    ("# header\n\n- 1\n", 3),
])
def test_non_mapping_top_level(tmp_path: Path, text: str, line: int) -> None:
    """A list or a scalar instead of ``key: value`` lines is reported where the document starts."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=prefix(path, line) + "expected a mapping of 'key: value' lines"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    """A path that does not exist (or is a directory) is a ``FileMissingError`` naming it — a user
    error like ``ConfigError`` (exit code 2), not a Python ``FileNotFoundError``."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileMissingError, match="^" + re.escape(f"{missing}: hardware config not found")):
        load_config(missing)
    with pytest.raises(FileMissingError, match="hardware config not found"):
        load_config(tmp_path)
    assert issubclass(ConfigError, UserInputError) and FileMissingError.exit_code == 2


def test_config_from_mapping_without_lines() -> None:
    """Inline mappings (scenarios) use the same validation; without line numbers the prefix is the
    source name alone; ``base`` supplies the values not given."""
    with pytest.raises(ConfigError, match=r"^scenario\.yaml: unknown key 'row' \(did you mean 'rows'\?\)"):
        config_from_mapping({"row": 8}, "scenario.yaml")
    base = HardwareConfig(rows=8)
    assert config_from_mapping({"cols": 4}, base=base) == HardwareConfig(rows=8, cols=4)


# =========================================================================== bugs (fail until fixed)


@pytest.mark.parametrize("text", [
    "acc_bits: 32\nrows: !!int sixteen\n",
    "acc_bits: 32\nrows: !!python/name:os.system\n",
])
def test_bad_tag_is_config_error(tmp_path: Path, text: str) -> None:
    """BUG: ``yaml.compose`` accepts explicit tags, then ``yaml.safe_load`` raises a raw
    ``ValueError`` (``!!int sixteen``) or ``yaml.constructor.ConstructorError``
    (``!!python/name:...``) that escapes ``load_config`` — a traceback instead of a
    ``path:line:`` message.  Expected: ``ConfigError`` located at line 2."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=prefix(path, 2)):
        load_config(path)


@pytest.mark.parametrize("text", ["clock_mhz: .nan\n", "dram_bytes_per_cycle: .inf\n", "clock_mhz: -.inf\n"])
def test_non_finite_float_is_out_of_range(tmp_path: Path, text: str) -> None:
    """BUG (``.nan`` and ``.inf``): ``_problems`` checks ``v <= 0``, which is False for NaN, and
    never rejects infinity, so a NaN clock or an infinite bandwidth loads and later poisons every
    latency/fps figure.  Expected: ``ConfigError`` at line 1 naming the key."""
    path = write(tmp_path, text)
    key = text.split(":")[0]
    with pytest.raises(ConfigError, match=prefix(path, 1) + ".*" + key):
        load_config(path)


def test_non_string_keys_are_located(tmp_path: Path) -> None:
    """BUG: line numbers are looked up by the YAML node's *string* value while the loaded mapping
    has an int key, so ``16: rows`` loses its line (message is ``path: unknown key '16'``); a
    sequence key (``? [a, b]``) crashes with ``TypeError: unhashable type: 'list'``.
    Expected: both are ``ConfigError`` at their line."""
    path = write(tmp_path, "acc_bits: 32\n16: rows\n")
    with pytest.raises(ConfigError, match=prefix(path, 2) + "unknown key '16'"):
        load_config(path)
    path = write(tmp_path, "acc_bits: 32\n? [a, b]\n: 3\n", "seqkey.yaml")
    with pytest.raises(ConfigError, match=prefix(path, 2)):
        load_config(path)


@pytest.mark.parametrize("value,ok", [(0, True), (0.5, True), (0.25, True), (1, True), (2, True), (4.0, True),
                                      (0.3, False), (2.5, False), (1e-320, False), (1 / 65, False), (65, False)])
def test_passes_are_whole_passes_or_a_packing(value: float, ok: bool) -> None:
    """A ``passes_w*a*`` entry is 0 (unsupported), a whole number of passes, or 1/n (n ≤ 64
    filters packed per PE); anything else is refused naming the field (a denormal once reached
    the cycle model as an infinite packing)."""
    if ok:
        hw = HardwareConfig(passes_w16a16=value)
        assert hw.passes(16, 16) == value and ("w16a16" in hw.supported_pairs()) == (value > 0)
    else:
        with pytest.raises(UserInputError, match="passes_w16a16="):
            HardwareConfig(passes_w16a16=value)


def test_w8a8_is_always_one_pass_and_unknown_pairs_unsupported() -> None:
    hw = HardwareConfig()
    assert hw.passes(8, 8) == 1.0 and hw.passes(4, 8) == 0.5 and hw.passes(16, 16) == 2.0
    assert hw.passes(4, 4) == 0.0 and hw.supported_pairs()[0] == "w8a8"
