"""``dla.refine``: the pipeline ``dla quantize`` and ``dla tune`` share, its .qnet round trip, and
the user errors.  The bias correction is checked on a layer with a planted, known bias shift
against an independent tap-by-tap reference of the accumulators."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dla.calibration import collect_statistics, synthetic_inputs
from dla.config import HardwareConfig
from dla.engine import Engine, Mode
from dla.qnet_file import QnetError, load_qnet, save_qnet
from dla.refine import REFINEMENTS, RefineOptions, quantize_refined, refine_with_report
from dla.resolve import resolve_model
from golden.genweights import random_weights
from quant import quantize
from quant.numerics import round_half_away, saturate
from quant.refine import UnknownRefinementError
from quant.refine.adaround import AdaRoundOptions, TorchMissingError
from tests.cli_helpers import fails, ok
from tests.net_helpers import net_from_cfg, net_header

FAST = RefineOptions(adaround=AdaRoundOptions(iterations=20, columns=128), adaround_columns=512)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLA_CACHE", str(tmp_path / "cache"))


def test_the_names() -> None:
    assert REFINEMENTS == ("cle", "bias_correction", "adaround")


def _shifted_net():
    """One 3×3 linear conv, 2 filters, per-tensor weights: weight 0 of each filter is the range
    (127 units), the other 26 sit at 2.49 units, so all of them round *down* by 0.49: the integer
    output is systematically low by about 0.49·Σx units."""
    net = net_from_cfg(net_header(3, 12, 12) + "[convolutional]\nfilters=2\nsize=3\nstride=1\npad=1\n"
                                                 "activation=linear\n")
    random_weights(net, seed=0)
    u = 0.01
    w = np.full((2, 3, 3, 3), 2.49 * u, dtype=np.float32)
    w[:, 0, 0, 0] = 127 * u
    w[1] *= -1
    net.params[0].weights = w
    net.params[0].biases = np.array([0.05, -0.02], dtype=np.float32)
    return net


def _reference_shift(net, qnet, xs: list[np.ndarray]) -> np.ndarray:
    """E[acc_q − acc_ref] per channel, tap by tap over the zero-padded inputs (no im2col, no GEMM)."""
    ql, s_x = qnet.layers[0], qnet.scales[-1]
    total, count = np.zeros(2), 0
    for x in xs:
        xq = np.pad(saturate(round_half_away(x / s_x), 8).astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        xf = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        for c in range(2):
            acc_q = np.full((12, 12), float(ql.b_q[c]))
            acc_f = np.full((12, 12), ql.b_float[c])
            for ci in range(3):
                for ky in range(3):
                    for kx in range(3):
                        acc_q += float(ql.w_q[c, ci, ky, kx]) * xq[ci, ky:ky + 12, kx:kx + 12]
                        acc_f += ql.w_float[c, ci, ky, kx] * xf[ci, ky:ky + 12, kx:kx + 12]
            total[c] += np.sum(acc_q - acc_f / (s_x * ql.w_scale[c]))
        count += 144
    return total / count


def test_bias_correction_removes_a_planted_shift() -> None:
    net = _shifted_net()
    hw = HardwareConfig()
    plain = quantize_refined(net, 8, refinements=())
    fixed, report = refine_with_report(net, 8, refinements=["bias_correction"])
    xs = list(synthetic_inputs(net, 8))
    shift = _reference_shift(net, plain, xs)
    assert shift[0] < -5 and shift[1] > 5  # the planted shift, in accumulator units
    want = saturate(round_half_away(plain.layers[0].b_q - shift), 32)
    assert np.array_equal(fixed.layers[0].b_q, want)
    assert report.kept("bias_correction") == [0]
    assert fixed.refinements == ("bias_correction",)

    def mean_error(q) -> np.ndarray:
        eng = Engine(net, q, hw)
        d = [eng.run(x, Mode.INT).records[0].real.astype(np.float64) - eng.run(x, Mode.FLOAT).records[0].output
             for x in xs]
        return np.mean(d, axis=(0, 2, 3))

    before, after = np.abs(mean_error(plain)), np.abs(mean_error(fixed))
    assert np.all(after < before / 4), (before, after)


def test_without_refinements_it_is_plain_quantization() -> None:
    m = resolve_model("shapes-yolo")
    got = quantize_refined(m.net, 4, refinements=())
    ranges, _ = collect_statistics(m.net, 4)
    want = quantize(m.net, ranges, route_shared_scale=HardwareConfig().route_shared_scale)
    assert got.scales == want.scales and got.refinements == ()
    for i, ql in want.layers.items():
        assert np.array_equal(got.layers[i].w_q, ql.w_q) and np.array_equal(got.layers[i].b_q, ql.b_q)


def test_qnet_round_trip_reproduces_int_outputs_bit_exactly(tmp_path: Path) -> None:
    m = resolve_model("shapes-yolo")
    hw = HardwareConfig()
    qnet, report = refine_with_report(m.net, 6, refinements=list(REFINEMENTS), hw=hw, options=FAST)
    assert qnet.refinements == REFINEMENTS and report.cle_pairs
    assert report.kept("bias_correction") and report.kept("adaround")
    save_qnet(qnet, hw, tmp_path / "m.qnet")
    meta = json.loads((tmp_path / "m.qnet" / "model.json").read_text())
    assert meta["refinements"] == list(REFINEMENTS)
    back, hw2, _ = load_qnet(tmp_path / "m.qnet")
    assert back.refinements == REFINEMENTS
    a, b = Engine(qnet.net, qnet, hw), Engine(back.net, back, hw2)
    for x in synthetic_inputs(m.net, 3):
        ra, rb = a.run(x, Mode.INT), b.run(x, Mode.INT)
        for i, rec in ra.records.items():
            assert np.array_equal(rec.output, rb.records[i].output), i
    # the FLOAT network in the file is the equalized one, and it still computes the original function
    x = next(iter(synthetic_inputs(m.net, 1)))
    out = m.net.output_index
    f0 = Engine(m.net).run(x).records[out].output
    f1 = Engine(back.net).run(x).records[out].output
    np.testing.assert_allclose(f1, f0, rtol=1e-4, atol=1e-4 * float(np.abs(f0).max()))


def test_old_files_read_back_with_no_refinements_and_bad_names_are_refused(tmp_path: Path) -> None:
    m = resolve_model("shapes-yolo")
    qnet = quantize_refined(m.net, 2)
    save_qnet(qnet, HardwareConfig(), tmp_path / "old.qnet")
    meta_path = tmp_path / "old.qnet" / "model.json"
    meta = json.loads(meta_path.read_text())
    assert "refinements" not in meta  # an unrefined file is byte-for-byte what it always was
    assert load_qnet(tmp_path / "old.qnet")[0].refinements == ()
    for bad, needle in ((["magic"], "unknown refinement 'magic'"), ("cle", "must be a list")):
        meta["refinements"] = bad
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(QnetError, match=needle) as exc:
            load_qnet(tmp_path / "old.qnet")
        assert "field 'refinements'" in str(exc.value)
    fails("info", tmp_path / "old.qnet", needle="refinements")


def test_unknown_refinement_is_a_user_error() -> None:
    m = resolve_model("shapes-yolo")
    with pytest.raises(UnknownRefinementError, match="unknown refinement 'equalize' \\(valid: cle, bias_correction"):
        quantize_refined(m.net, 2, refinements=["equalize"])


def test_adaround_without_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    m = resolve_model("shapes-yolo")
    with pytest.raises(TorchMissingError, match="pip install"):
        quantize_refined(m.net, 2, refinements=["adaround"])
    out = tmp_path / "m.qnet"
    fails("quantize", "shapes-yolo", "--calib-synthetic", 2, "--adaround", "-o", out, needle="adaround needs PyTorch")
    assert not out.exists()


def test_quantize_cli_flags(tmp_path: Path) -> None:
    out = tmp_path / "m.qnet"
    res = ok("quantize", "shapes-yolo", "--calib-synthetic", 3, "--cle", "--bias-correction", "-q", "-o", out)
    assert "refinements: cle, bias_correction" in res.output
    assert "cle: 7 pair(s) equalized" in res.output and "bias_correction: kept on" in res.output
    assert load_qnet(out)[0].refinements == ("cle", "bias_correction")
    plain = ok("quantize", "shapes-yolo", "--calib-synthetic", 3, "-q", "-o", tmp_path / "p.qnet")
    assert "refinements" not in plain.output


def test_inputs_as_arrays_and_given_statistics_give_the_same_model() -> None:
    """What ``dla tune`` passes: the calibration inputs as arrays and statistics collected once."""
    m = resolve_model("shapes-yolo")
    xs = list(synthetic_inputs(m.net, 4))
    ranges, _ = collect_statistics(m.net, 4)
    a = quantize_refined(m.net, 4, refinements=["bias_correction"])
    b = quantize_refined(m.net, xs, refinements=["bias_correction"], ranges=ranges)
    assert a.scales == b.scales
    for i, ql in a.layers.items():
        assert np.array_equal(b.layers[i].b_q, ql.b_q) and np.array_equal(b.layers[i].w_q, ql.w_q)
    c = quantize_refined(m.net, xs, refinements=["cle"], ranges=ranges)  # cle: statistics of the new net
    d = quantize_refined(m.net, 4, refinements=["cle"])
    assert c.scales == d.scales
    with pytest.raises(TypeError, match="ranges="):
        quantize_refined(m.net, ranges, None, HardwareConfig(), ["cle"])  # type: ignore[arg-type]


def test_layer_pass_reports_progress() -> None:
    m = resolve_model("shapes-yolo")
    seen: list[tuple[int, int]] = []
    quantize_refined(m.net, 2, refinements=["bias_correction"], on_layer=lambda d, n: seen.append((d, n)))
    n = len(m.net.layers)
    assert seen == [(i, n) for i in range(1, n + 1)]
