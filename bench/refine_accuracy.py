"""Post-training refinements on the real YOLOv3-tiny: what each keeps of FLOAT's output.

For each refinement set (none, cle, bias_correction, cle+bias_correction, adaround, and all three)
and weight granularity (per-tensor, per-channel), ``dla.refine.refine_with_report`` quantizes the
published ``yolov3-tiny.weights`` (pjreddie's cfg, ``max`` activations) calibrated on the shared
photos, and the INT engine runs the same photos.  Printed as a markdown table:

* **head SQNR** — ``10·log10(Σf² / Σ(q − f)²)`` over both [yolo] heads' outputs of all photos,
  INT (dequantized) vs FLOAT;
* **agreement mAP@0.5 / @0.5:0.95** — INT's detections (threshold 0.005, NMS 0.45) scored
  against FLOAT's own detections at 0.5 as ground truth (``dla.eval.ap``), since the photos have
  no labels: it measures agreement with FLOAT, not accuracy;
* **kept** — FLOAT's detections at 0.5 that INT also finds (same class, IoU ≥ 0.5,
  ``dla.compare.match_detections``);
* **layers kept** — on how many layers bias correction / AdaRound lowered the layer's output
  error and were kept; the refinement time.

Run from the checkout: python3 bench/refine_accuracy.py [--help]
Needs ../shared (set DLA_SHARED to its location): models/yolov3-tiny.weights,
darknet-cfg/pjreddie/yolov3-tiny.cfg, images/.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from harness import run_main
from golden.errors import FileMissingError, UserInputError

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DLA_SHARED", ROOT.parent / "shared"))
SETS = {"none": (), "cle": ("cle",), "bias_correction": ("bias_correction",),
        "cle+bias_correction": ("cle", "bias_correction"), "adaround": ("adaround",),
        "cle+adaround+bias_correction": ("cle", "adaround", "bias_correction")}


def measure(cfg: Path, weights: Path, images_dir: Path, sets: list[str], granularities: list[str],
            log=print) -> list[dict]:
    from dla.compare import match_detections
    from dla.config import HardwareConfig
    from dla.engine import Engine, Mode
    from dla.eval.ap import ImageBoxes, mean_average_precision
    from dla.refine import refine_with_report
    from golden.detect import detect
    from golden.image import load_image, prepare_input
    from golden.network import load_network
    from quant.spec import QuantSpec

    for p, what in ((cfg, "cfg"), (weights, "weights file")):
        if not p.is_file():
            raise FileMissingError(p, what)
    photos = sorted(p for p in images_dir.iterdir() if p.suffix in (".jpg", ".png")) if images_dir.is_dir() else []
    if not photos:
        raise UserInputError(f"{images_dir}: no .jpg/.png photos")
    hw = HardwareConfig()
    net = load_network(cfg, weights)
    images = [load_image(p) for p in photos]
    inputs = [prepare_input(v, net.input_shape) for v in images]
    sizes = [(v.shape[2], v.shape[1]) for v in images]
    heads = [s.index for s in net.heads]
    classes = net.heads[0].classes

    def run(engine: Engine, mode: Mode) -> list[dict[int, np.ndarray]]:
        return [engine.run(x, mode).outputs() for x in inputs]

    ref = run(Engine(net, None, hw), Mode.FLOAT)
    ref_dets = [detect(net, o, w, h, None, 0.5, 0.45) for o, (w, h) in zip(ref, sizes)]
    gts = [ImageBoxes.make([d.box for d in ds], [d.cls for d in ds]) for ds in ref_dets]
    log(f"{net.name}: {len(photos)} photos, {sum(map(len, ref_dets))} FLOAT detections at 0.5")
    rows = []
    for gran in granularities:
        for name in sets:
            t0 = time.perf_counter()
            spec = QuantSpec(activations="max", granularity=gran)
            qnet, report = refine_with_report(net, photos, spec, SETS[name], hw)
            seconds = time.perf_counter() - t0
            out = run(Engine(qnet.net, qnet, hw), Mode.INT)
            sig = sum(float(np.sum(r[h].astype(np.float64) ** 2)) for r in ref for h in heads)
            err = sum(float(np.sum((o[h].astype(np.float64) - r[h]) ** 2)) for o, r in zip(out, ref) for h in heads)
            dets = [detect(net, o, w, h, None, 0.005, 0.45) for o, (w, h) in zip(out, sizes)]
            m = mean_average_precision([ImageBoxes.make([d.box for d in ds], [d.cls for d in ds],
                                                        [d.prob for d in ds]) for ds in dets], gts, classes)
            kept = sum(match_detections(r, detect(net, o, w, h, None, 0.5, 0.45)).matched
                       for r, o, (w, h) in zip(ref_dets, out, sizes))
            row = {"granularity": gran, "refinements": name, "head_sqnr_db": 10 * np.log10(sig / err),
                   "agreement_map50": m.map50, "agreement_map50_95": m.map50_95, "kept": kept,
                   "float_dets": sum(map(len, ref_dets)),
                   "bias_kept": f"{len(report.kept('bias_correction'))}/"
                                f"{sum(r.refinement == 'bias_correction' for r in report.layers)}",
                   "adaround_kept": f"{len(report.kept('adaround'))}/"
                                    f"{sum(r.refinement == 'adaround' for r in report.layers)}",
                   "seconds": seconds}
            rows.append(row)
            log(f"  {gran} {name}: {row['head_sqnr_db']:.2f} dB, agreement mAP {m.map50:.3f}/{m.map50_95:.3f}, "
                f"kept {kept}, {seconds:.0f} s")
    return rows


def markdown(rows: list[dict]) -> list[str]:
    out = ["| weights | refinements | head SQNR dB | agreement mAP@0.5 | agreement mAP@0.5:0.95 | kept | "
           "bias corr. kept | AdaRound kept | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['granularity']} | {r['refinements']} | {r['head_sqnr_db']:.2f} | {r['agreement_map50']:.3f} | "
                   f"{r['agreement_map50_95']:.3f} | {r['kept']}/{r['float_dets']} | {r['bias_kept']} | "
                   f"{r['adaround_kept']} | {r['seconds']:.0f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cfg", type=Path, default=SHARED / "darknet-cfg" / "pjreddie" / "yolov3-tiny.cfg")
    ap.add_argument("--weights", type=Path, default=SHARED / "models" / "yolov3-tiny.weights")
    ap.add_argument("--images", type=Path, default=SHARED / "images")
    ap.add_argument("--sets", default=",".join(SETS), help="Comma list of refinement sets (default: all).")
    ap.add_argument("--granularity", default="per_tensor,per_channel")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="Also write the rows as JSON.")
    a = ap.parse_args()
    sets = a.sets.split(",")
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise UserInputError(f"unknown set(s) {', '.join(unknown)} (valid: {', '.join(SETS)})")
    with threadpool_limits(limits=a.threads):
        rows = measure(a.cfg, a.weights, a.images, sets, a.granularity.split(","))
    print("\n".join(markdown(rows)))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    run_main(main)
