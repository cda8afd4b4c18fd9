"""The long work of the workbench, as it runs inside a job worker process.

Each task takes plain data (paths, options), writes its outputs into ``out_dir`` and reports
through ``report(percent, message)``; it returns a JSON-able result naming its outputs and
which of them become the user's files (``keep``).  Only library calls happen here: the
same functions as ``dla compare`` and ``dla quantize``.
"""
from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from golden.errors import UserInputError

Report = Callable[[int, str], None]


def _spec(opts: dict[str, Any]):
    """A ``QuantSpec`` from the form: global algorithms plus per-layer overrides."""
    from quant.spec import Override, QuantSpec

    overrides = []
    for o in opts.get("overrides") or []:
        layers = tuple(int(v) for v in o.get("layers") or ())
        types = tuple(str(v) for v in o.get("types") or ())
        if not layers and not types:
            raise UserInputError("an override needs layers (indices) or types")
        overrides.append(Override(layers=layers, types=types, activations=o.get("activations") or None,
                                  weights=o.get("weights") or None, granularity=o.get("granularity") or None))
    return QuantSpec(activations=opts.get("activations", "max"), weights=opts.get("weights", "max"),
                     granularity=opts.get("granularity", "per_channel"),
                     percentile=float(opts.get("percentile", 99.99)), overrides=tuple(overrides))


def _calib_images(opts: dict[str, Any], image: str | None) -> list[Path] | int:
    source = opts.get("calib", "synthetic")
    if source == "image":
        if not image:
            raise UserInputError("calibration on the image needs an image")
        return [Path(image)]
    n = int(opts.get("calib_n", 2))
    if not 1 <= n <= 64:
        raise UserInputError("synthetic calibration images: 1 to 64")
    return n


def _quantize(loaded, opts: dict[str, Any], image: str | None, report: Report, lo: int, hi: int):
    from dla.calibration import calibrate

    images = _calib_images(opts, image)
    total = images if isinstance(images, int) else len(images)
    report(lo, f"calibrating on {total} image(s)")
    spec = _spec(opts)
    return calibrate(loaded.net, images, spec.granularity, loaded.hw,
                     on_image=lambda k: report(lo + (hi - lo) * k // max(total, 1), f"calibrated {k}/{total}"),
                     spec=spec)


def _names(net) -> list[str] | None:
    from dla.models import default_names

    classes = max((h.classes for h in net.heads), default=0) or net.layers[net.output_index].out_shape[0]
    return default_names(classes)


def _zip(out_dir: Path, names: list[str], target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in names:
            p = out_dir / n
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    zf.write(f, f"{n}/{f.relative_to(p)}")
            elif p.exists():
                zf.write(p, n)


def run_modes(params: dict[str, Any], out_dir: Path, report: Report) -> dict[str, Any]:
    """FLOAT (the reference) and HYBRID/INT on one image: detections, per-layer metrics, report."""
    from dla.compare import compare_modes
    from dla.engine import Engine, Mode
    from dla.qnet_file import save_qnet
    from dla.report_text import comparison_csv, comparison_json
    from dla.web.modelref import ModelRef, load, stem
    from golden.draw import draw_detections
    from golden.image import load_image, prepare_input

    ref = ModelRef(**params["model"])
    modes = tuple(Mode(m) for m in ["float", *[m for m in params.get("modes", ["int"]) if m != "float"]])
    report(2, "loading the model")
    loaded = load(ref)
    qnet, kept = loaded.qnet, []
    if qnet is None and len(modes) > 1:
        qnet = _quantize(loaded, params.get("quant", {}), params["image"], report, 10, 50)
        qname = f"{stem(ref.name)}-calibrated.qnet"
        save_qnet(qnet, loaded.hw, out_dir / qname)
        kept.append(qname)
    report(55, "running " + ", ".join(m.value.upper() for m in modes))
    engine = Engine(loaded.net, qnet, loaded.hw)
    im = load_image(params["image"])
    x = prepare_input(im, loaded.net.input_shape, letterbox=loaded.net.letter_box)
    cmp = compare_modes(engine, x, (im.shape[2], im.shape[1]), _names(loaded.net), modes=modes)
    report(85, "writing the results")
    files = []
    for m, dets in cmp.detections.items():
        draw_detections(params["image"], dets).save(out_dir / f"detections-{m.value}.png")
        files.append(f"detections-{m.value}.png")
    (out_dir / "compare.csv").write_text(comparison_csv(cmp))
    summary = comparison_json(cmp)
    summary["model"], summary["image"] = ref.name, params.get("image_name")
    (out_dir / "compare.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    files += ["compare.csv", "compare.json"]
    report_name = f"run-{stem(ref.name)}-report.zip"
    _zip(out_dir, files + kept, out_dir / report_name)
    kept.append(report_name)
    report(100, "done")
    return {"files": files + kept, "keep": kept, "modes": [m.value for m in modes], "layers": summary["layers"],
            "detections": summary["detections"], "top5": summary["top5"], "agreement": summary["agreement"],
            "seconds": summary["seconds"], "report": report_name,
            "qnet": kept[0] if kept and kept[0].endswith(".qnet") else None}


def quantize_model(params: dict[str, Any], out_dir: Path, report: Report) -> dict[str, Any]:
    """Calibrate with the chosen spec, save the .qnet, and measure per-layer SQNR on one input."""
    from dla.calibration import synthetic_inputs
    from dla.compare import compare_modes
    from dla.engine import Engine, Mode
    from dla.qnet_file import save_qnet
    from dla.web.modelref import ModelRef, load, stem
    from golden.image import load_image, prepare_input

    ref = ModelRef(**params["model"])
    if ref.kind != "cfg":
        raise UserInputError("quantize a cfg model (a .qnet is already quantized)")
    report(2, "loading the model")
    loaded = load(ref)
    qnet = _quantize(loaded, params.get("quant", {}), params.get("image"), report, 5, 70)
    engine = Engine(loaded.net, qnet, loaded.hw)
    engine.plans()  # refuse a model the DLA cannot run before writing anything
    report(75, "measuring per-layer SQNR")
    if params.get("image"):
        im = load_image(params["image"])
        x, size = prepare_input(im, loaded.net.input_shape, letterbox=loaded.net.letter_box), (im.shape[2], im.shape[1])
    else:
        x = next(iter(synthetic_inputs(loaded.net, 1)))
        size = (x.shape[2], x.shape[1])
    cmp = compare_modes(engine, x, size, _names(loaded.net), modes=(Mode.FLOAT, Mode.INT))
    name = params.get("output") or f"{stem(ref.name)}.qnet"
    if not name.endswith(".qnet"):
        name += ".qnet"
    save_qnet(qnet, loaded.hw, out_dir / name)
    rows = []
    for r in cmp.rows:
        t = r.spec.index
        m = r.metrics[Mode.INT]
        rows.append({"index": t, "type": r.spec.kind.value, "algorithm": qnet.algorithms.get(t, "max"),
                     "threshold": qnet.thresholds.get(t, 0.0), "scale": qnet.scales[t],
                     "weights": (f"{qnet.layers[t].w_algorithm}/{qnet.layers[t].granularity}"
                                 if t in qnet.layers else ""),
                     "int_sqnr_db": m.sqnr_db if math.isfinite(m.sqnr_db) else str(m.sqnr_db), "saturated_pct": r.saturated_pct})
    (out_dir / "sqnr.json").write_text(json.dumps(rows, indent=1) + "\n")
    report(100, "done")
    return {"files": [name, "sqnr.json"], "keep": [name], "qnet": name, "layers": rows}


TASKS: dict[str, Callable[[dict[str, Any], Path, Report], dict[str, Any]]] = {
    "run": run_modes, "quantize": quantize_model}


def worker_main(kind: str, params: dict[str, Any], out_dir: str, conn: Any) -> None:
    """Entry point of a job process: messages ``("progress", pct, msg)``, then ``("done", result)``
    or ``("error", message)``.  A crash without a message is seen by the runner as an exit code."""
    import traceback

    def report(pct: int, msg: str) -> None:
        conn.send(("progress", int(pct), msg))

    try:
        result = TASKS[kind](params, Path(out_dir), report)
        conn.send(("done", result))
    except UserInputError as exc:
        conn.send(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - any failure must reach the user as a message
        traceback.print_exc()
        conn.send(("error", f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()
