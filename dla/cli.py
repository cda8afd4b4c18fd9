"""The ``dla`` command: a thin layer over the library.

Every command parses its options, calls one library function and prints.  User
mistakes (``golden.errors.UserInputError``) become one ``Error: ...`` line on stderr
and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from dla import __version__
from dla.errors import DlaError
from dla.models import DEFAULT_IMAGE, DEFAULT_MODEL, default_names, read_names, resolve_cfg
from golden.forks import FORK_CHOICES
from golden.genweights import MAX_SYNTHETIC_IMAGES
from golden.network import Network, load_network, parse_network


class UserError(click.ClickException):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DlaGroup(click.Group):
    """Turns the project's user errors into click errors (one line, non-zero exit)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DlaError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise UserError("interrupted", 130) from None
        except OSError as exc:  # the file system refused (name too long, permission, disk full)
            raise UserError(os_error_message(exc)) from None
        except MemoryError:  # the bounds in golden.network should make this unreachable
            raise UserError("out of memory: the inputs are too large for this machine "
                            "(see docs/security.md, 'Limits')") from None


def os_error_message(exc: OSError) -> str:
    """``path: reason`` for an ``OSError`` that escaped a library call (no traceback)."""
    name = exc.filename if exc.filename is not None else ""
    shown = str(name) if len(str(name)) <= 120 else f"{str(name)[:60]}...({len(str(name))} characters)"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{shown}: {reason}" if shown else reason


def _warn(net: Network, quiet: bool) -> None:
    if not quiet:
        for w in net.warnings:
            click.echo(f"warning: {w}", err=True)


_IMAGE_MAGIC = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image"}


def _not_an_image(weights: str) -> None:
    """Reject an image given where WEIGHTS belong (e.g. ``dla infer CFG dog.jpg dog.jpg``).

    Why: the weights reader would otherwise report a size mismatch deep inside some layer,
    which does not tell the user they swapped or repeated an argument.
    """
    try:
        with open(weights, "rb") as f:
            head = f.read(4)
    except OSError:
        return  # the weights loader reports missing/unreadable files in its own words
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise UserError(f"{weights}: this is {what}, not Darknet .weights (arguments are CFG WEIGHTS IMAGE)")


def _load(cfg: str, weights: str | None, quiet: bool, darknet: str = "auto") -> Network:
    if weights is not None:
        _not_an_image(weights)
    net = load_network(resolve_cfg(cfg), weights, darknet)
    _warn(net, quiet)
    return net


def _progress(net: Network, quiet: bool, desc: str) -> tqdm:
    return tqdm(total=len(net.layers), desc=desc, unit="layer", disable=quiet, leave=False, file=sys.stderr)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar and no warnings.")
hw_option = click.option("--hw", type=click.Path(dir_okay=False),
                         help="Hardware config YAML (default: the built-in default, scenarios/hw/default.yaml).")
calib_option = click.option("--calib", type=click.Path(),
                            help="Calibration images: a folder or a list file (default: the input image).")
darknet_option = click.option(
    "--darknet", type=click.Choice(FORK_CHOICES), default="auto", show_default=True,
    help="Whose Darknet to reproduce: pjreddie (BN ÷ (√var + 1e-6), letterbox) or alexeyab (BN folded "
         "with √(var + 1e-5), stretch unless [net] letter_box=1); auto = alexeyab iff the cfg uses an "
         "AlexeyAB-only feature.  A .qnet keeps the fork it was quantized for.")
granularity_option = click.option("--granularity", type=click.Choice(["per-tensor", "per-channel"]),
                                  default="per-tensor", show_default=True, help="Weight scales.")


def _hw(path: str | None):
    from dla.config import HardwareConfig, load_config

    return load_config(path) if path else HardwareConfig()


def _spec(activations: str, weights: str, granularity: str, percentile: float, spec_file: str | None):
    """The quantization spec from options, or from a YAML/JSON file (options then ignored)."""
    from quant.spec import QuantSpec

    if spec_file:
        from dla.yamlsafe import load_yaml_safely

        data = load_yaml_safely(spec_file, "spec file") or {}
        if not isinstance(data, dict):
            raise UserError(f"{spec_file}: expected a mapping (activations:, weights:, granularity:, overrides:)")
        return QuantSpec.from_dict(data)
    return QuantSpec(activations, weights, granularity.replace("-", "_"), percentile)


def _engine(model: "Model", image: str, calib: str | None, granularity: str, hw_path: str | None, quiet: bool,
            spec=None, synthetic: int | None = None):
    """The INT/HYBRID engine: from the .qnet as it is, or by calibrating (progress bar per image)."""
    from dla.calibration import calibrate, resolve_images
    from dla.engine import Engine

    if model.qnet is not None:
        if calib or synthetic:
            raise UserError("a .qnet is already calibrated: --calib/--calib-synthetic do not apply "
                            "(re-quantize with 'dla quantize' instead)")
        engine = Engine(model.net, model.qnet, _hw(hw_path) if hw_path else model.hw)
    else:
        hw = _hw(hw_path)
        images = resolve_images(calib, synthetic, default=Path(image) if image else None)
        total = images if isinstance(images, int) else len(images)
        with tqdm(total=total, desc="calibrating", unit="img", disable=quiet, leave=False, file=sys.stderr) as bar:
            qnet = calibrate(model.net, images, granularity.replace("-", "_"), hw,  # type: ignore[arg-type]
                             on_image=lambda n: bar.update(), spec=spec)
        engine = Engine(model.net, qnet, hw)
    engine.plans()  # fail early (e.g. an activation the DLA cannot run) — before any output is written
    return engine


class Model:
    """What the positional model arguments name: CFG [WEIGHTS], or one .qnet."""

    def __init__(self, net: Network, qnet=None, hw=None, source: str = "") -> None:
        self.net, self.qnet, self.hw, self.source = net, qnet, hw, source


def _model(args: tuple[str, ...], needs_weights: bool, quiet: bool, rest: int,
           darknet: str = "auto") -> tuple[Model, list[str]]:
    """Split ``args`` into the model (``CFG WEIGHTS`` or ``MODEL.qnet``) and ``rest`` further arguments.

    ``darknet`` (``--darknet``) picks the fork for a cfg; a .qnet keeps its own, and naming a
    different one is an error (its integers were folded with that fork's batch norm)."""
    from dla.qnet_file import is_qnet, load_qnet

    if args and is_qnet(args[0]) and len(args) == 1 + rest:
        qnet, hw, _ = load_qnet(args[0])
        if darknet != "auto" and darknet != qnet.net.darknet.value:
            raise UserError(f"{args[0]} was quantized for {qnet.net.darknet.value}'s Darknet; "
                            f"--darknet {darknet} contradicts it (re-quantize with 'dla quantize --darknet {darknet}')")
        _warn(qnet.net, quiet)
        return Model(qnet.net, qnet, hw, args[0]), list(args[1:])
    n_model = 2 if needs_weights else len(args) - rest
    if len(args) != n_model + rest or n_model not in (1, 2) or (needs_weights and n_model != 2):
        want = "CFG WEIGHTS" if needs_weights else "CFG [WEIGHTS]"
        extra = " IMAGE" if rest else ""
        raise UserError(f"expected {want}{extra} or MODEL.qnet{extra}, got {len(args)} argument(s): {' '.join(args)}")
    # Every caller's further arguments are IMAGE paths: a mistyped one must fail before the
    # weights load and a progress bar starts, so the user sees only the Error line.
    for image in args[n_model:]:
        try:
            found = Path(image).is_file()
        except OSError as exc:  # e.g. a name longer than the file system allows
            shown = image if len(image) <= 60 else f"{image[:60]}...({len(image)} characters)"
            raise UserError(f"{shown}: cannot open ({exc.strerror or exc})") from None
        if not found:
            raise UserError(f"{image}: image not found")
    net = _load(args[0], args[1] if n_model == 2 else None, quiet, darknet)
    return Model(net, source=args[0]), list(args[n_model:])


@click.group(cls=DlaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dla")
def cli() -> None:
    """Bit-accurate simulation of an int8 DLA running Darknet networks.

    MODEL arguments take a .cfg path or the name of a shipped cfg
    (yolov3-tiny, yolov3, yolov2, yolov2-tiny, yolov4-tiny, darknet, ...).
    """


@cli.command("info")
@click.argument("model", nargs=-1, required=True, metavar="CFG [WEIGHTS] | MODEL.qnet")
@darknet_option
@quiet_option
def info_cmd(model: tuple[str, ...], darknet: str, quiet: bool) -> None:
    """Print the layer table (and check WEIGHTS against the cfg); for a .qnet, also its scales."""
    from dla.info import layer_table, quant_table

    m, _ = _model(model, False, quiet, 0, darknet)
    click.echo(f"darknet: {m.net.darknet.value} (detector input: "
               f"{'letterbox' if m.net.letter_box else 'stretch'})")
    for row in layer_table(m.net):
        click.echo(row)
    if m.qnet is not None:
        for row in quant_table(m.qnet):
            click.echo(row)
    elif len(model) == 2:
        major, minor, rev, seen = m.net.weights_header or (0, 0, 0, 0)
        click.echo(f"weights: {model[1]} (version {major}.{minor}.{rev}, seen {seen:,}) match the cfg")


@cli.command("gen-weights")
@click.argument("cfg")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same bytes).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output .weights file.")
@quiet_option
def gen_weights_cmd(cfg: str, seed: int, output: str, quiet: bool) -> None:
    """Write realistic random weights for CFG (He-scaled, BN statistics measured on a synthetic image)."""
    from golden.genweights import random_weights
    from golden.weights import weights_bytes
    from dla.fileio import write_bytes_atomic

    net = parse_network(resolve_cfg(cfg))
    _warn(net, quiet)
    random_weights(net, seed)
    write_bytes_atomic(output, weights_bytes(net))
    if not quiet:
        click.echo(f"wrote {output}: {net.n_params:,} parameters, seed {seed}")


def _names(net: Network, names: str | None) -> list[str] | None:
    if names:
        return read_names(names)
    classes = max((h.classes for h in net.heads), default=0) or net.layers[net.output_index].out_shape[0]
    return default_names(classes)


def _run_and_report(net: Network, image: str, mode: str, names: str | None, thresh: float, nms: float,
                    dump: str | None, out_png: str | None, json_out: str | None, quiet: bool,
                    announce: bool = True, engine=None):
    from dla.dump import write_dump
    from dla.fileio import write_bytes_atomic, write_json_atomic
    from dla.infer import infer
    from golden.draw import draw_detections

    for target in (out_png, json_out):  # fail before the run, not after it
        if target and not Path(target).resolve().parent.is_dir():
            raise UserError(f"{target}: directory {Path(target).parent} does not exist")
    with _progress(net, quiet, f"{net.name} [{mode}]") as bar:
        res = infer(net, image, mode, _names(net, names), thresh, nms, keep_all=dump is not None,
                    on_layer=lambda spec, out: bar.update(), engine=engine)
    click.echo(f"{net.name} on {Path(image).name} ({res.image_size[0]}x{res.image_size[1]}), mode {mode}: "
               f"{res.seconds * 1e3:.0f} ms")
    for line in res.summary_lines():
        click.echo("  " + line)
    if dump:
        write_dump(dump, net, res.raw or res.outputs, mode, scales=res.scales, meta={"image": str(image)})
        if announce:
            click.echo(f"dump: {dump}/manifest.json ({len(net.layers)} layers)")
    if out_png:
        import io

        buf = io.BytesIO()
        draw_detections(image, res.detections).save(buf, format="PNG")
        write_bytes_atomic(out_png, buf.getvalue())
        if announce:
            click.echo(f"image: {out_png}")
    if json_out:
        payload = ([d.to_json() for d in res.detections] if net.is_detector
                   else [{"class": n, "prob": round(p, 6)} for n, p in res.top])
        write_json_atomic(json_out, payload)
        if announce:
            click.echo(f"json: {json_out}")
    return res


@cli.command("infer")
@click.argument("args", nargs=-1, required=True, metavar="CFG WEIGHTS IMAGE | MODEL.qnet IMAGE")
@click.option("--mode", type=click.Choice(["float", "hybrid", "int"]), default="float", show_default=True,
              help="float: golden engine; hybrid: convs on the int8 MAC array, the rest float; int: all integer.")
@hw_option
@calib_option
@granularity_option
@click.option("--dump", type=click.Path(file_okay=False), help="Write every layer output to DIR (manifest.json + NNN.npy).")
@click.option("-o", "--output", "out_png", type=click.Path(dir_okay=False), help="Draw the detections into this PNG.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write detections (or top-5) as JSON.")
@click.option("--names", type=click.Path(dir_okay=False), help="Class names file (default: COCO for 80 classes, VOC for 20).")
@click.option("--thresh", default=0.5, show_default=True, help="Detection threshold (Darknet's -thresh).")
@click.option("--nms", default=0.45, show_default=True, help="NMS IoU threshold (0 disables NMS).")
@darknet_option
@quiet_option
def infer_cmd(args: tuple[str, ...], mode: str, hw: str | None, calib: str | None, granularity: str,
              dump: str | None, out_png: str | None, json_out: str | None, names: str | None, thresh: float,
              nms: float, darknet: str, quiet: bool) -> None:
    """Run IMAGE through the model; print detections (or the top-5 classes).

    HYBRID and INT use the scales of a .qnet, or calibrate first (max |x| over --calib,
    default: IMAGE itself; 'dla quantize' offers every algorithm).
    """
    model, (image,) = _model(args, True, quiet, 1, darknet)
    engine = _engine(model, image, calib, granularity, hw, quiet) if mode != "float" else None
    _run_and_report(model.net, image, mode, names, thresh, nms, dump, out_png, json_out, quiet, engine=engine)


@cli.command("compare")
@click.argument("args", nargs=-1, required=True, metavar="CFG WEIGHTS IMAGE | MODEL.qnet IMAGE")
@hw_option
@calib_option
@granularity_option
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Write the per-layer table as CSV.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write table + detections as JSON.")
@click.option("--names", type=click.Path(dir_okay=False), help="Class names file.")
@click.option("--thresh", default=0.5, show_default=True)
@click.option("--isolated", is_flag=True,
              help="CROSS at every layer: cumulative vs isolated error, worst layers ranked and flagged.")
@click.option("--flag-below", default=20.0, show_default=True, help="With --isolated: flag isolated SQNR below (dB).")
@darknet_option
@quiet_option
def compare_cmd(args: tuple[str, ...], hw: str | None, calib: str | None, granularity: str,
                csv_out: str | None, json_out: str | None, names: str | None, thresh: float, isolated: bool,
                flag_below: float, darknet: str, quiet: bool) -> None:
    """FLOAT vs HYBRID vs INT on IMAGE: per-layer SQNR/errors and the detections of each mode.

    With --isolated: which layer broke it? Each layer's cumulative error (INT run vs FLOAT run)
    next to its isolated error (CROSS: that layer in FLOAT from the INT run's own input, against
    the INT output — the number `dla step`'s cross gives; docs/debugging.md).
    """
    from dla.compare import compare_modes
    from dla.report_text import comparison_csv, comparison_json, comparison_lines
    from dla.fileio import write_bytes_atomic, write_json_atomic
    from golden.image import load_image, prepare_input

    model, (image,) = _model(args, True, quiet, 1, darknet)
    net = model.net
    engine = _engine(model, image, calib, granularity, hw, quiet)
    im = load_image(image)
    x = prepare_input(im, net.input_shape, letterbox=net.letter_box)
    if isolated:
        from dla.compare import isolated_errors
        from dla.report_text import isolated_lines

        rows = isolated_errors(engine, x, flag_below)
        for line in isolated_lines(rows, flag_below):
            click.echo(line)
        if json_out:
            write_json_atomic(json_out, {"layers": [r.to_dict() for r in rows], "flag_below_db": flag_below})
            click.echo(f"json: {json_out}")
        return
    cmp = compare_modes(engine, x, (im.shape[2], im.shape[1]), _names(net, names), thresh)
    for line in comparison_lines(cmp):
        click.echo(line)
    if csv_out:
        write_bytes_atomic(csv_out, comparison_csv(cmp).encode())
        click.echo(f"csv: {csv_out}")
    if json_out:
        write_json_atomic(json_out, comparison_json(cmp))
        click.echo(f"json: {json_out}")


@cli.command("quantize")
@click.argument("cfg")
@click.argument("weights", type=click.Path(dir_okay=False))
@click.option("--calib", type=click.Path(), help="Calibration images: a folder or a list file.")
@click.option("--calib-synthetic", type=click.IntRange(1, MAX_SYNTHETIC_IMAGES), help="Use N of the project's generated images instead.")
@click.option("--activations", type=click.Choice(["max", "percentile", "mse", "kl", "log2", "auto"]),
              default="max", show_default=True, help="Activation calibration ('auto': best SQNR per tensor).")
@click.option("--weights", "weights_alg", type=click.Choice(["max", "mse"]), default="max", show_default=True,
              help="Weight scale algorithm.")
@granularity_option
@click.option("--percentile", default=99.99, show_default=True, help="For --activations percentile.")
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False),
              help="YAML spec with per-layer overrides (replaces the options above).")
@hw_option
@click.option("--no-cache", is_flag=True, help="Recompute calibration statistics even if cached.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output MODEL.qnet directory.")
@darknet_option
@quiet_option
def quantize_cmd(cfg: str, weights: str, calib: str | None, calib_synthetic: int | None, activations: str,
                 weights_alg: str, granularity: str, percentile: float, spec_file: str | None, hw: str | None,
                 no_cache: bool, output: str, darknet: str, quiet: bool) -> None:
    """Calibrate CFG+WEIGHTS and write the quantized model (MODEL.qnet: model.json + weights.npz).

    Every command that takes CFG WEIGHTS also takes the .qnet.

    \b
    Examples:
      dla quantize yolov3-tiny yolov3-tiny.weights --calib photos/ -o m.qnet
      dla quantize yolov3-tiny yolov3-tiny.weights --calib photos/ --activations auto \\
          --granularity per-channel --spec spec.yaml -o m.qnet
      dla infer m.qnet dog.jpg --mode int
    """
    from dla.calibration import collect_statistics, resolve_images
    from dla.info import quant_table
    from dla.qnet_file import save_qnet
    from quant import quantize

    if not output.endswith(".qnet"):
        raise UserError(f"{output}: the output must be named *.qnet")
    spec = _spec(activations, weights_alg, granularity, percentile, spec_file)
    hwc = _hw(hw)
    net = _load(cfg, weights, quiet, darknet)
    images = resolve_images(calib, calib_synthetic)
    total = images if isinstance(images, int) else len(images)
    with tqdm(total=total, desc="calibrating", unit="img", disable=quiet, leave=False, file=sys.stderr) as bar:
        ranges, cached = collect_statistics(net, images, not no_cache, on_image=lambda n: bar.update())
    qnet = quantize(net, ranges, route_shared_scale=hwc.route_shared_scale, spec=spec)
    from dla.engine import Engine

    Engine(net, qnet, hwc).plans()  # refuse a model the configured DLA cannot run, before writing
    for row in quant_table(qnet):
        click.echo(row)
    save_qnet(qnet, hwc, output)
    src = "cached statistics" if cached else f"{ranges.images} calibration image(s)"
    click.echo(f"wrote {output} ({src}; activations {spec.activations}, weights {spec.weights}, "
               f"{spec.granularity})")


@cli.command("graph")
@click.argument("model", nargs=-1, required=True, metavar="CFG [WEIGHTS] | MODEL.qnet")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .svg, .png, .pdf (Graphviz) or .json (nodes and edges).")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "json"]), help="Default: from the suffix.")
@click.option("--color-by", type=click.Choice(["none", "macs", "params"]), default="none", show_default=True)
@click.option("--values", "values_file", type=click.Path(dir_okay=False),
              help="JSON {layer index: value} (or the output of 'dla compare --isolated --json') to colour by.")
@quiet_option
def graph_cmd(model: tuple[str, ...], output: str, fmt: str | None, color_by: str, values_file: str | None,
              quiet: bool) -> None:
    """Draw the network as a graph (index, type, output shape; route and shortcut edges)."""
    from dla.fileio import write_json_atomic
    from dla.graph import graph_data, render, require_dot

    if (fmt or Path(output).suffix.lstrip(".") or "svg") != "json":
        require_dot()  # before any work
    m, _ = _model(model, False, quiet, 0)
    values, name = None, ""
    if color_by != "none":
        values = {s.index: float(s.macs if color_by == "macs" else s.n_params) for s in m.net.layers}
        name = color_by
    if values_file:
        try:
            data = json.loads(Path(values_file).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{values_file}: not a readable JSON file ({exc})") from None
        if isinstance(data, dict) and "layers" in data:  # dla compare --isolated --json
            values = {r["index"]: float(r["isolated"]["sqnr_db"]) for r in data["layers"] if r.get("isolated")}
            name = "isolated SQNR dB"
        elif isinstance(data, dict):
            values = {int(k): float(v) for k, v in data.items()}
            name = Path(values_file).stem
        else:
            raise UserError(f"{values_file}: expected a JSON object {{layer index: value}}")
    fmt = fmt or Path(output).suffix.lstrip(".") or "svg"
    if fmt == "json":
        write_json_atomic(output, graph_data(m.net, values, name))
    else:
        render(m.net, output, values, name, fmt)
    click.echo(f"wrote {output}")


@cli.command("step")
@click.argument("args", nargs=-1, required=True, metavar="CFG WEIGHTS IMAGE | MODEL.qnet IMAGE")
@click.option("--mode", type=click.Choice(["int", "hybrid", "float"]), default="int", show_default=True,
              help="The mode the session runs in (cross compares with the other one).")
@hw_option
@calib_option
@granularity_option
@click.option("--script", type=click.Path(exists=True, dir_okay=False),
              help="Read the commands from FILE instead of the terminal.")
@click.option("--pictures", default="dla-step", show_default=True, type=click.Path(file_okay=False),
              help="Directory where 'show' writes its PNG pictures.")
@click.option("--strict", is_flag=True, help="Exit 1 if any command failed.")
@darknet_option
@quiet_option
def step_cmd(args: tuple[str, ...], mode: str, hw: str | None, calib: str | None, granularity: str,
             script: str | None, pictures: str, strict: bool, darknet: str, quiet: bool) -> None:
    """Debug IMAGE layer by layer: step, look inside, edit weights, re-run, cross to the other mode.

    Commands come one per line from the terminal (or --script FILE); 'help' lists them.
    INT/HYBRID calibrate like 'dla infer' unless given a .qnet; FLOAT can cross to INT
    with a .qnet or --calib.
    """
    from dla.engine import Engine
    from dla.session import Session
    from dla.stepper import run_repl

    model, (image,) = _model(args, True, quiet, 1, darknet)
    if mode != "float" or calib:
        source = _engine(model, image, calib, granularity, hw, quiet)
    elif model.qnet is not None:
        source = Engine(model.net, model.qnet, _hw(hw) if hw else model.hw)
    else:
        source = Engine(model.net, None, _hw(hw))
    session = Session(source, image, mode=mode)
    interactive = script is None and sys.stdin.isatty()
    stream = open(script, encoding="utf-8") if script else sys.stdin
    try:
        failed = run_repl(session, stream, sys.stdout, interactive=interactive, pictures=pictures)
    finally:
        if script:
            stream.close()
    if strict and failed:
        raise UserError(f"{failed} command(s) failed", 1)


@cli.command("cycles")
@click.argument("model", nargs=-1, required=True, metavar="CFG [WEIGHTS] | MODEL.qnet")
@hw_option
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Per-layer table as CSV.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Totals and per-layer table as JSON.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False),
              help="Write cycles.png, utilization.png and roofline.png into DIR.")
@quiet_option
def cycles_cmd(model: tuple[str, ...], hw: str | None, csv_out: str | None, json_out: str | None,
               plot_dir: str | None, quiet: bool) -> None:
    """Cycle model of the MAC array: per-layer cycles, stalls, utilization, DRAM traffic; totals and fps."""
    from dla.cycles import network_cycles
    from dla.cycles.report import cycle_lines, cycle_plots, cycles_csv, cycles_json
    from dla.fileio import write_bytes_atomic, write_json_atomic

    m, _ = _model(model, False, quiet, 0)
    hwc = _hw(hw) if hw else (m.hw or _hw(None))
    nc = network_cycles(m.net, hwc)
    for line in cycle_lines(nc):
        click.echo(line)
    if csv_out:
        write_bytes_atomic(csv_out, cycles_csv(nc).encode())
        click.echo(f"csv: {csv_out}")
    if json_out:
        write_json_atomic(json_out, cycles_json(nc))
        click.echo(f"json: {json_out}")
    if plot_dir:
        for p in cycle_plots(nc, plot_dir):
            click.echo(f"plot: {p}")


@cli.group("rtl")
def rtl_group() -> None:
    """The Verilog core: check its interface against the config, run layers on it (cocotb + Icarus)."""


@rtl_group.command("check")
@hw_option
@click.option("--rtl", "rtl_file", type=click.Path(dir_okay=False), help="Verilog file (default: the shipped core).")
@click.option("--module", help="Module name (default: the first in the file).")
def rtl_check_cmd(hw: str | None, rtl_file: str | None, module: str | None) -> None:
    """Check that the RTL's parameters agree with the hardware config and that it has every port."""
    from rtl_bridge.introspect import CORE, check_against, read_interface
    from rtl_bridge.sim import require_rtl_tools

    require_rtl_tools("dla rtl check", simulator=False, cocotb=False, pyverilog=True)
    iface = read_interface(rtl_file or CORE, module)
    click.echo(f"module {iface.module}: parameters " +
               ", ".join(f"{k}={'(expr)' if v is None else v}" for k, v in iface.parameters.items()))
    click.echo(f"{len(iface.ports)} ports: " + ", ".join(f"{d} {n}" for n, d in iface.ports.items()))
    problems = check_against(iface, _hw(hw))
    if problems:
        raise UserError("RTL does not match: " + "; ".join(problems))
    click.echo("RTL parameters match the hardware config; every port the adapter needs is there")


@rtl_group.command("run")
@click.argument("model", nargs=-1, required=True, metavar="CFG WEIGHTS | MODEL.qnet")
@click.option("--layer", "layer", type=int, required=True, help="Index of the conv layer to run on the RTL core.")
@click.option("--tiles", "max_tiles", type=click.IntRange(1), help="Run only the layer's first K tiles.")
@click.option("--image", default=str(DEFAULT_IMAGE), show_default=True, type=click.Path(dir_okay=False),
              help="Input image (the layer's input is the INT engine's, up to the layer before).")
@hw_option
@calib_option
@click.option("--calib-synthetic", type=click.IntRange(1, MAX_SYNTHETIC_IMAGES), help="Calibrate on N of the project's generated images.")
@granularity_option
@click.option("--vcd", type=click.Path(dir_okay=False), help="Write a VCD of the core's signals to this file.")
@darknet_option
@quiet_option
def rtl_run_cmd(model: tuple[str, ...], layer: int, max_tiles: int | None, image: str, hw: str | None,
                calib: str | None, calib_synthetic: int | None, granularity: str, vcd: str | None,
                darknet: str, quiet: bool) -> None:
    """Run conv layer N (or its first K tiles) through the Verilog core under cocotb + Icarus.

    Prints per tile the RTL's cycles against the cycle model's (dla.cycles.tile_cycles) and
    whether its outputs equal the INT kernel's (else the first mismatches at (c, y, x));
    exits with 1 on any mismatch.  Quantizes first if MODEL is not a .qnet.
    """
    from golden.image import load_image, prepare_input
    from golden.layers import ConvSpec
    from rtl_bridge.bench_core import run_layer
    from rtl_bridge.sim import require_rtl_tools

    require_rtl_tools("dla rtl run")  # before quantizing and calibrating, which take seconds
    mdl, _ = _model(model, True, quiet, 0, darknet)
    if not 0 <= layer < len(mdl.net.layers):
        raise UserError(f"--layer {layer}: {mdl.net.name} has layers 0..{len(mdl.net.layers) - 1}")
    if not isinstance(mdl.net.layers[layer], ConvSpec):
        raise UserError(f"--layer {layer} is a {mdl.net.layers[layer].kind.value} layer; the RTL core runs "
                        "convolutions only")
    if vcd and not Path(vcd).resolve().parent.is_dir():
        raise UserError(f"{vcd}: directory {Path(vcd).parent} does not exist")
    engine = _engine(mdl, image, calib, granularity, hw, quiet, synthetic=calib_synthetic)
    x = prepare_input(load_image(image), mdl.net.input_shape, letterbox=mdl.net.letter_box)
    run = run_layer(engine, x, layer, max_tiles, vcd)
    h = run.hw
    click.echo(f"layer {layer} on a {h.rows}x{h.cols} core: {len(run.tiles)} of {run.total_tiles} tiles")
    for i, r in enumerate(run.tiles):
        t = r.tile
        eq = "outputs equal INT" if r.n_mismatches == 0 else f"{r.n_mismatches} outputs differ"
        cyc = "=" if r.rtl_cycles == r.model_cycles else "!="
        spec = mdl.net.layers[layer]
        c0 = t.group * (spec.filters // spec.groups) + t.filter0
        click.echo(f"  tile {i}: filters {c0}"
                   f"+{t.cols_used} pixels {t.pixel0}+{t.pixels} folds {t.folds}: RTL {r.rtl_cycles} cycles "
                   f"{cyc} model {r.model_cycles}; {eq}")
        for c, y, xx, got, want in r.mismatches:
            click.echo(f"    mismatch at (c={c}, y={y}, x={xx}): RTL {got}, INT {want}")
    click.echo(f"RTL: {run.macs} MACs in {run.sim_seconds:.2f} s of simulation "
               f"({run.macs_per_second:,.0f} MACs/s; {run.wall_seconds:.2f} s with the build)")
    if vcd:
        click.echo(f"vcd: {vcd}")
    if not run.ok:
        raise UserError(f"layer {layer}: the RTL differs from the INT kernel or the cycle model", 1)
    click.echo("all tiles: outputs equal the INT kernel; RTL cycles equal the cycle model")


@cli.command("demo")
@click.option("-o", "--output", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the demo's report.")
@click.option("--model", help="Shipped cfg name or a .cfg path instead of the demo's model (seeded weights "
                              "unless --weights).")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Darknet .weights for --model (or for the demo's own cfg): real weights instead of seeded ones.")
@click.option("--image", type=click.Path(dir_okay=False), help="An image instead of the demo's shipped ones.")
@click.option("--seed", type=int, help="Seed of the generated weights (with --model).")
@quiet_option
def demo_cmd(out_dir: str, model: str | None, weights: str | None, image: str | None, seed: int | None,
             quiet: bool) -> None:
    """Run the built-in default: the shipped `demo` scenario (scenarios/demo.yaml) — a shipped
    network on shipped images in FLOAT, HYBRID and INT on the default DLA, its cycle model, a
    STEP/CROSS look at one layer and the checks — and write its full report.

    With --model/--weights the checks are adapted to that model (dla/demo.py) and every check
    left out is named.  Writes OUT/report.html (self-contained, plots embedded), OUT/layers.csv,
    OUT/summary.json, OUT/junit.xml and OUT/plots/.  `dla run SCENARIO` runs any other study."""
    from dla.cli_scenario import run_and_print
    from dla.demo import demo_plan
    from dla.scenario.load import scenario_from_mapping

    plan = demo_plan(model, image, weights, seed)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    run_and_print(scenario_from_mapping(plan.data, plan.path, plan.lines), Path(out_dir), quiet)


@cli.group("bench")
def bench_group() -> None:
    """Benchmarks: figures and ratios to a peer measured in the same process."""


@bench_group.command("float")
@click.option("--model", default="yolov3-tiny", show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False), help="Real weights (default: seeded random).")
@click.option("--repeats", default=7, show_default=True)
@click.option("--threads", default="2,1", show_default=True, help="Comma-separated thread counts.")
def bench_float_cmd(model: str, weights: str | None, repeats: int, threads: str) -> None:
    """Golden FLOAT engine vs OpenCV DNN (needs opencv-python-headless<5)."""
    from dla.bench import bench_float

    try:
        import cv2  # noqa: F401
    except ImportError:
        raise UserError("the float benchmark needs OpenCV: pip install 'opencv-python-headless<5'") from None
    bench_float(resolve_cfg(model), weights, tuple(int(t) for t in threads.split(",")), repeats)


@bench_group.command("int")
@click.option("--model", default="yolov3-tiny", show_default=True)
@click.option("--repeats", default=7, show_default=True)
@click.option("--threads", default=2, show_default=True)
def bench_int_cmd(model: str, repeats: int, threads: int) -> None:
    """INT forward vs golden FLOAT and OpenCV; conv stack vs onnxruntime QLinearConv (s8s8 and u8s8)."""
    from dla.bench import bench_int

    try:
        import cv2  # noqa: F401
    except ImportError:
        raise UserError("the INT benchmark needs OpenCV: pip install 'opencv-python-headless<5'") from None
    bench_int(resolve_cfg(model), threads, repeats)


@bench_group.command("calib")
@click.option("--model", default="yolov3-tiny", show_default=True)
@click.option("--counts", default="50,100", show_default=True, help="Image counts at which to report.")
def bench_calib_cmd(model: str, counts: str) -> None:
    """Calibration statistics over synthetic images: time per image and peak RSS (must stay flat)."""
    from dla.bench import bench_calibration

    bench_calibration(resolve_cfg(model), tuple(int(c) for c in counts.split(",")))


@bench_group.command("step")
@click.option("--model", default="yolov3-tiny", show_default=True)
def bench_step_cmd(model: str) -> None:
    """Session.step() through all layers in INT mode: per-layer latency (median and max)."""
    from dla.bench import bench_step

    bench_step(resolve_cfg(model))


@bench_group.command("cycles")
@click.option("--model", default="yolov3", show_default=True)
def bench_cycles_cmd(model: str) -> None:
    """Wall time of the cycle model of a whole network (target: yolov3 under 1 s)."""
    from dla.bench import bench_cycles

    bench_cycles(resolve_cfg(model))


@bench_group.command("regress")
@click.option("--model", default="yolov3-tiny", show_default=True)
@click.option("-n", "--scenarios", default=8, show_default=True, type=click.IntRange(2))
@click.option("-j", "--jobs", "workers", default=2, show_default=True, type=click.IntRange(2))
def bench_regress_cmd(model: str, scenarios: int, workers: int) -> None:
    """`dla regress` over N small scenarios: -j 1 against -j J wall time, as a speed-up."""
    from dla.bench import bench_regress

    resolve_cfg(model)
    bench_regress(scenarios, workers, model)


# Command families that live in their own modules (each has ``register(group)``): scenarios and
# regressions, evaluation of trained models, the web workbench, the machine check (doctor).  Listed here, imported only if
# present, so each family stays a small module of its own.
EXTENSIONS = ("dla.cli_scenario", "dla.cli_eval", "dla.cli_web", "dla.cli_doctor")


def _register_extensions() -> None:
    import importlib
    import importlib.util

    for name in EXTENSIONS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(cli)


_register_extensions()


def main() -> None:
    cli(prog_name="dla")


if __name__ == "__main__":
    main()
