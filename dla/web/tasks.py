"""The long work of the workbench, as it runs inside a job worker process.

Each task takes plain data (paths, options), writes its outputs into ``out_dir`` and reports
through ``report(percent, message)``; it returns a JSON-able result naming its outputs and
which of them become the user's files (``keep``).  Only library calls happen here: the
scenario runner as ``dla run`` (the Run page) and the functions of ``dla quantize``.
"""
from __future__ import annotations

import json
import math
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from golden.errors import UserInputError

Report = Callable[[int, str], None]


def form_spec(opts: dict[str, Any]):
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


def _calib_images(opts: dict[str, Any], image: str | None, chosen: list[dict[str, str]] | None = None) -> list[Path] | int:
    """What to calibrate on: N synthetic images, the run's image, or the user's photos
    (``chosen``: ``{"path", "name"}`` each, resolved and checked by the route)."""
    source = opts.get("calib", "synthetic")
    if source == "images":
        if not chosen:
            raise UserInputError("calibration on your photos: choose at least one image")
        return [Path(f["path"]) for f in chosen]
    if source == "image":
        if not image:
            raise UserInputError("calibration on the image needs an image")
        return [Path(image)]
    n = int(opts.get("calib_n", 2))
    if not 1 <= n <= 64:
        raise UserInputError("synthetic calibration images: 1 to 64")
    return n


def _engine(model, opts: dict[str, Any], image: str | None, report: Report, lo: int, hi: int,
            chosen: list[dict[str, str]] | None = None):
    """The INT engine of ``model`` calibrated as the form asks (``dla.resolve.make_engine``),
    progress reported between ``lo`` and ``hi`` percent."""
    from dla.resolve import make_engine

    images = _calib_images(opts, image, chosen)
    total = images if isinstance(images, int) else len(images)
    report(lo, f"calibrating on {total} image(s)")
    spec = form_spec(opts)
    return make_engine(model, calib=images if isinstance(images, list) else None,
                       synthetic=images if isinstance(images, int) else None, granularity=spec.granularity,
                       spec=spec, on_image=lambda k: report(lo + (hi - lo) * k // max(total, 1),
                                                            f"calibrated {k}/{total}"))


def _names(net) -> list[str] | None:
    from dla.catalog import default_names

    classes = max((h.classes for h in net.heads), default=0) or net.layers[net.output_index].out_shape[0]
    return default_names(classes)


#: ``run_to_dir``'s stage messages → the job's percent (the stages come in this order).
RUN_STAGES = (("building", 5), ("FLOAT", 35), ("HYBRID", 50), ("INT", 60), ("cycle model", 70),
              ("checks", 75), ("writing reports", 80))


def _link(folder: Path, name: str, target: str) -> str:
    """``folder/name`` → ``target``: the scenario names the user's files by their names (the
    report shows "tiny.cfg", "dog.jpg"), never by their ids on disk."""
    folder.mkdir(exist_ok=True)
    (folder / name).symlink_to(Path(target).resolve())
    return f"{folder.name}/{name}"


def run_scenario_mapping(params: dict[str, Any], inputs: Path) -> dict[str, Any]:
    """The Run form as a scenario (docs/scenarios.md): the model, the image, the modes, the
    quantization spec and calibration, optional SQNR checks, and the HTML report."""
    from dla.web.modelref import ModelRef

    ref = ModelRef(**params["model"])
    if ref.kind == "qnet":
        model: dict[str, Any] = {"qnet": _link(inputs, ref.name, ref.path)}
    else:
        model = {"cfg": _link(inputs, ref.name, ref.path)}
        if ref.weights:
            model["weights"] = _link(inputs, params.get("weights_name") or f"{Path(ref.name).stem}.weights",
                                     ref.weights)
        else:
            model["seed"] = ref.seed
    model["darknet"] = ref.darknet
    image = _link(inputs, params.get("image_name") or "image.png", params["image"])
    modes = ["float", *[m for m in params.get("modes", ["int"]) if m != "float"]]
    q = params.get("quant", {})
    chosen = [{"path": _link(inputs / "calib", f["name"], f["path"]), "name": f["name"]}
              for f in params.get("calib_images") or []]
    calib = _calib_images(q, image, [{"path": f"{inputs.name}/{f['path']}", "name": f["name"]} for f in chosen])
    overrides = [{k: v for k, v in o.items() if v not in (None, "", [])} for o in q.get("overrides") or []]
    data: dict[str, Any] = {
        "name": f"run-{Path(ref.name).stem if ref.kind == 'cfg' else ref.name.removesuffix('.qnet')}",
        "description": f"the workbench's Run page: {ref.name} on {params.get('image_name')}",
        "model": model, "images": [image], "modes": modes,
        "quant": {"activations": q.get("activations", "max"), "weights": q.get("weights", "max"),
                  "granularity": q.get("granularity", "per_channel"), "percentile": float(q.get("percentile", 99.99)),
                  "overrides": overrides,
                  "calib": {"synthetic": calib} if isinstance(calib, int) else {"images": [str(p) for p in calib]}},
        "cycles": True,
        "checks": [{"sqnr": {"mode": m, "layer": "final", "min_db": float(params["min_sqnr_db"])}}
                   for m in modes[1:]] if params.get("min_sqnr_db") is not None else [],
        "report": {"html": True, "csv": True, "junit": False},
    }
    return data


def _layer_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """summary.json's rows (one per variant × mode × layer) as one row per layer with
    ``<mode>_<metric>`` columns: the page's table, the numbers exactly as the report's."""
    rows: dict[int, dict[str, Any]] = {}
    for r in summary["layers"]:
        row = rows.setdefault(r["index"], {"index": r["index"], "type": r["type"], "shape": r["shape"],
                                           "precision": r["precision"]["label"]})
        for k in ("sqnr_db", "max_abs", "mean_abs", "cosine", "saturated_pct", "overflow", "scale"):
            row[f"{r['mode']}_{k}"] = r[k]
    return [rows[i] for i in sorted(rows)]


def run_modes(params: dict[str, Any], out_dir: Path, report: Report) -> dict[str, Any]:
    """The Run page's job: the form as a scenario run by ``dla.scenario.run_to_dir`` (the same
    engine, calibration and report as ``dla run``).  Its self-contained report.html, its
    layers.csv and summary.json, the detections of each mode drawn on the photo, a zip of it
    all, and the calibrated .qnet (in the user's files only with ``save_qnet``; the report always)."""
    import os

    from dla.qnet_file import save_qnet
    from dla.scenario import ScenarioError, run_to_dir, scenario_from_mapping
    from dla.web.modelref import ModelRef, stem
    from golden.draw import draw_detections

    ref = ModelRef(**params["model"])
    report(2, "preparing the scenario")
    # The job process is ours alone: working in the job's folder keeps every path in the
    # scenario (and so in the report and its messages) relative: no server path reaches the user.
    os.chdir(out_dir)
    data = run_scenario_mapping(params, Path("inputs"))

    def progress(msg: str) -> None:
        pct = next((p for prefix, p in RUN_STAGES if msg.startswith(prefix)), None)
        if pct is not None:
            report(pct, msg)

    try:
        ls = scenario_from_mapping(data, path=Path("run.yaml"))
        result = run_to_dir(ls, Path("scenario"), progress)
    except ScenarioError as exc:  # "run.yaml: model: ..." names a file the user never wrote
        raise UserInputError(str(exc).removeprefix("run.yaml: ")) from None
    summary, built = result.summary, result.built
    report(85, "drawing the detections")
    inp, modes = built.inputs[0], list(summary["modes"])
    variant = built.variants[0].name if built.variants else ""
    pictures = []
    if built.net.is_detector:
        for m in modes:
            dets = result.detections.get((inp.name, "" if m == "float" else variant, m), [])
            draw_detections(inp.path, dets).save(f"detections-{m}.png")
            pictures.append(f"detections-{m}.png")
    base = f"run-{stem(ref.name)}"
    html, zip_name = f"{base}-report.html", f"{base}.zip"
    shutil.copyfile("scenario/report.html", html)
    for name in ("layers.csv", "summary.json"):
        shutil.copyfile(f"scenario/{name}", name)
    qname = None
    if ref.kind == "cfg" and built.variants:
        qname = f"{stem(ref.name)}-calibrated.qnet"
        save_qnet(built.variants[0].qnet, built.hw, Path(qname))
    files = [html, "layers.csv", "summary.json", *pictures]
    with zipfile.ZipFile(zip_name, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in files:
            zf.write(name, name)
        for f in sorted(Path("scenario/plots").glob("*")):
            zf.write(f, f"plots/{f.name}")
        if qname:
            for f in sorted(Path(qname).rglob("*")):
                zf.write(f, str(f))
    outputs = {o["mode"]: o for o in summary["outputs"] if o["image"] == inp.name}
    report(100, "done")
    # the calibrated .qnet (tens of MB for a real network) stays in the job's outputs, downloadable
    # as a zip; it joins the user's files only when asked (the form's checkbox or the Save button)
    keep_qnet = bool(qname and params.get("save_qnet"))
    return {"files": [*files, zip_name, *([qname] if qname else [])], "keep": [html],
            "keep_if_room": [qname] if keep_qnet else [],  # no room: the run stays done, the .qnet downloadable
            "random_weights": ref.kind == "cfg" and not ref.weights,
            "modes": modes, "layers": _layer_table(summary),
            "detections": {m: o["detections"] for m, o in outputs.items() if o.get("detections") is not None},
            "top5": {m: o["top5"] for m, o in outputs.items() if o.get("top5") is not None},
            "agreement": {m: o["agreement"] for m, o in outputs.items() if "agreement" in o},
            "checks": summary["checks"], "passed": summary["passed"], "seconds": result.seconds,
            "report": html, "zip": zip_name, "qnet": qname}


def quantize_model(params: dict[str, Any], out_dir: Path, report: Report) -> dict[str, Any]:
    """Calibrate with the chosen spec, save the .qnet, and measure per-layer SQNR on one input."""
    from dla.calibration import synthetic_inputs
    from dla.compare import compare_modes
    from dla.engine import Mode
    from dla.qnet_file import save_qnet
    from dla.web.modelref import ModelRef, load, stem
    from golden.image import load_image, prepare_input

    ref = ModelRef(**params["model"])
    if ref.kind != "cfg":
        raise UserInputError("quantize a cfg model (a .qnet is already quantized)")
    report(2, "loading the model")
    loaded = load(ref)
    # the plans are built here: a model the DLA cannot run is refused before anything is written
    engine = _engine(loaded, params.get("quant", {}), params.get("image"), report, 5, 70, params.get("calib_images"))
    qnet = engine.qnet
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
        rows.append({"index": t, "type": r.spec.kind.value, "precision": qnet.precision(r.spec).label,
                     "algorithm": qnet.algorithms.get(t, "max"),
                     "threshold": qnet.thresholds.get(t, 0.0), "scale": qnet.scales[t],
                     "weights": (f"{qnet.layers[t].w_algorithm}/{qnet.layers[t].granularity}"
                                 if t in qnet.layers else ""),
                     "int_sqnr_db": m.sqnr_db if math.isfinite(m.sqnr_db) else str(m.sqnr_db), "saturated_pct": r.saturated_pct})
    (out_dir / "sqnr.json").write_text(json.dumps(rows, indent=1) + "\n")
    report(100, "done")
    return {"files": [name, "sqnr.json"], "keep": [name], "qnet": name, "layers": rows}


TASKS: dict[str, Callable[[dict[str, Any], Path, Report], dict[str, Any]]] = {
    "run": run_modes, "quantize": quantize_model}


def _by_name(text: str, params: dict[str, Any]) -> str:
    """``text`` with the user's files named as the user knows them: a task reading a photo by
    its storage path (a calibration photo deleted after the request) names that path."""
    for f in params.get("calib_images") or []:
        text = text.replace(f["path"], f["name"])
    if params.get("image"):
        text = text.replace(params["image"], params.get("image_name") or "the image")
    return text


def worker_main(kind: str, params: dict[str, Any], out_dir: str, conn: Any, max_memory: int | None = None) -> None:
    """Entry point of a job process: messages ``("progress", pct, msg)``, then ``("done", result)``
    or ``("error", message)``.  A crash without a message is seen by the runner as an exit code.
    ``max_memory``: the process's memory limit (``dla.web.limits.confine``)."""
    import traceback

    from dla.web.limits import confine, memory_message

    confine(max_memory)

    def report(pct: int, msg: str) -> None:
        conn.send(("progress", int(pct), msg))

    try:
        result = TASKS[kind](params, Path(out_dir), report)
        conn.send(("done", result))
    except UserInputError as exc:
        conn.send(("error", _by_name(str(exc), params)))
    except MemoryError:
        conn.send(("error", memory_message(max_memory, "this job")))
    except Exception as exc:  # noqa: BLE001 - any failure must reach the user as a message
        traceback.print_exc()
        conn.send(("error", f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()
