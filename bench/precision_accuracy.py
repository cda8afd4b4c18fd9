"""Operand widths on the real YOLOv3-tiny: what each choice keeps of FLOAT's detections and what it costs on the DLA.

For each configuration — all w8a8; the operand-width specs of ``harness.mixed_precision_specs``
(int16 heads, int16 first layer, w4a8 except first and last, and the three together); the
heads on the host; HYBRID (the all-int8 quantization in HYBRID mode) — the published
``yolov3-tiny.weights`` with pjreddie's cfg run over the shared photos; detections at
threshold 0.5, NMS 0.45 are matched to FLOAT's (``dla.compare.match_detections``: same class,
IoU >= 0.5).  Printed as a markdown table: FLOAT detections, the configuration's detections,
matched (kept), mean |Δprob| over the matches (mean over the photos with a match of each
photo's mean, as in ``tests/dla/test_engine.py::test_real_yolov3_tiny_int_and_hybrid_detections``),
and the cycle model's cost at the configuration's widths (``dla.cycles.network_cycles``):
total cycles (and × all-w8a8), weight bytes, DRAM bytes.  Calibration: ``max`` with
per-channel weight scales over the same photos (docs/accuracy.md, "The real YOLOv3-tiny").

``--write-specs DIR [--model NAME]`` instead writes the configurations as ``dla eval
--precision`` spec files for any model (e.g. ``shapes-yolo``) and prints the options to pass.

Run from the checkout: python3 bench/precision_accuracy.py [--help]
Needs ../shared (set DLA_SHARED to its location): models/yolov3-tiny.weights,
darknet-cfg/pjreddie/{yolov3-tiny.cfg,coco.names}, images/.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from harness import head_layers, mixed_precision_specs, run_main
from golden.errors import FileMissingError, UserInputError
from golden.network import Network

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DLA_SHARED", ROOT.parent / "shared"))
BASELINE = "all w8a8"
HYBRID = "HYBRID"


def configurations(net: Network) -> dict[str, dict]:
    """Name → quantization-spec widths (``input_bits``/``overrides``) of every configuration on
    the INT engine, all w8a8 first ({}); HYBRID is a mode, not a spec, and is not listed."""
    return {BASELINE: {}, **mixed_precision_specs(net),
            "heads on host": {"overrides": [{"layers": head_layers(net), "host": True}]}}


def slug(name: str) -> str:
    """A configuration's file/option name: ``"int16 heads"`` → ``int16-heads``."""
    return "-".join(name.replace("(", "").replace(")", "").split())


def write_specs(model: str, out: Path) -> None:
    """Every configuration but all w8a8 (``dla eval`` runs it as ``all-int8``) as a YAML file in
    ``out``, and the ``--precision`` options naming them."""
    import yaml

    from dla.resolve import resolve_model

    net = resolve_model(model).net
    out.mkdir(parents=True, exist_ok=True)
    opts = []
    for name, spec in configurations(net).items():
        if name == BASELINE:
            continue
        path = out / f"{slug(name)}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        opts.append(f"--precision {slug(name)}={path}")
    print(" ".join(opts))


@dataclass
class Row:
    name: str
    float_dets: int
    dets: int
    matched: int
    mean_abs_dprob: float | None
    total_cycles: int
    weight_bytes: int
    dram_bytes: int


def measure(cfg: Path, weights: Path, names_file: Path, images_dir: Path, thresh: float,
            log=print) -> list[Row]:
    """Every configuration over every photo of ``images_dir`` (see the module docstring)."""
    from dla.compare import match_detections
    from dla.config import HardwareConfig
    from dla.cycles import network_cycles
    from dla.engine import Engine, Mode
    from dla.precision import check_precision
    from golden.detect import detect
    from golden.image import load_image, prepare_input
    from golden.network import load_network
    from quant import collect_ranges, quantize
    from quant.spec import QuantSpec

    for p, what in ((cfg, "cfg"), (weights, "weights file"), (names_file, "names file")):
        if not p.is_file():
            raise FileMissingError(p, what)
    photos = sorted(p for p in images_dir.iterdir() if p.suffix in (".jpg", ".png")) if images_dir.is_dir() else []
    if not photos:
        raise UserInputError(f"{images_dir}: no .jpg/.png photos")
    hw = HardwareConfig()
    net = load_network(cfg, weights)
    names = names_file.read_text().split("\n")
    images = {p.name: load_image(p) for p in photos}
    inputs = {k: prepare_input(v, net.input_shape) for k, v in images.items()}
    sizes = {k: (v.shape[2], v.shape[1]) for k, v in images.items()}
    ranges = collect_ranges(net, inputs.values())

    def detections(engine: Engine, mode: Mode) -> dict[str, list]:
        return {k: detect(net, engine.run(x, mode).outputs(), *sizes[k], names, thresh, 0.45) for k, x in inputs.items()}

    ref = detections(Engine(net, None, hw), Mode.FLOAT)
    log(f"{net.name}: {len(photos)} photos, {sum(map(len, ref.values()))} FLOAT detections at {thresh}")
    runs = [(name, spec, Mode.INT) for name, spec in configurations(net).items()] + [(HYBRID, {}, Mode.HYBRID)]
    rows = []
    for name, spec, mode in runs:
        t0 = time.perf_counter()
        qnet = quantize(net, ranges, "per_channel", hw.route_shared_scale,
                        QuantSpec.from_dict({"activations": "max", "granularity": "per_channel", **spec}))
        check_precision(qnet, hw)
        got = detections(Engine(net, qnet, hw), mode)
        agreements = [match_detections(ref[k], got[k]) for k in inputs]
        dprobs = [a.mean_abs_dprob for a in agreements if a.mean_abs_dprob is not None]
        nc = network_cycles(net, hw, qnet.precisions())
        rows.append(Row(name, sum(a.n_ref for a in agreements), sum(a.n_test for a in agreements),
                        sum(a.matched for a in agreements), float(np.mean(dprobs)) if dprobs else None,
                        nc.total_cycles, nc.weight_bytes, nc.dram_bytes))
        log(f"  {name}: {time.perf_counter() - t0:.1f} s")
    return rows


def markdown(rows: list[Row]) -> list[str]:
    base = next(r for r in rows if r.name == BASELINE)
    out = ["| config | FLOAT dets | dets | matched (kept) | mean \\|Δprob\\| | total cycles | × all w8a8 | "
           "weight bytes | DRAM bytes |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = "n/a" if r.mean_abs_dprob is None else f"{r.mean_abs_dprob:.3f}"
        out.append(f"| {r.name} | {r.float_dets} | {r.dets} | {r.matched} | {d} | {r.total_cycles:,} | "
                   f"{r.total_cycles / base.total_cycles:.2f} | {r.weight_bytes:,} | {r.dram_bytes:,} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cfg", type=Path, default=SHARED / "darknet-cfg" / "pjreddie" / "yolov3-tiny.cfg")
    ap.add_argument("--weights", type=Path, default=SHARED / "models" / "yolov3-tiny.weights")
    ap.add_argument("--names", type=Path, default=SHARED / "darknet-cfg" / "pjreddie" / "coco.names")
    ap.add_argument("--images", type=Path, default=SHARED / "images")
    ap.add_argument("--thresh", type=float, default=0.5, help="Detection threshold (default: %(default)s).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="Also write the rows as JSON.")
    ap.add_argument("--write-specs", type=Path, metavar="DIR",
                    help="Write the configurations of --model as dla eval --precision files instead of measuring.")
    ap.add_argument("--model", default="shapes-yolo", help="With --write-specs: a shipped model name or .cfg "
                    "(default: %(default)s).")
    a = ap.parse_args()
    if a.write_specs:
        write_specs(a.model, a.write_specs)
        return
    with threadpool_limits(limits=a.threads):
        rows = measure(a.cfg, a.weights, a.names, a.images, a.thresh)
    print("\n".join(markdown(rows)))
    if a.json:
        a.json.write_text(json.dumps([vars(r) for r in rows], indent=1))


if __name__ == "__main__":
    run_main(main)
