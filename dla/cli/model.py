"""``dla info``, ``gen-weights``, ``quantize``, ``graph``, ``cycles``: look at a model, make one, quantize it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from dla.cli.common import (UserError, darknet_option, granularity_option, hardware, hw_option, load_cfg_weights,
                            model_args, quiet_option, spec_from_options, warn)
from golden.genweights import MAX_SYNTHETIC_IMAGES
from golden.network import parse_network
from dla.catalog import resolve_cfg


@click.command("info")
@click.argument("model", nargs=-1, required=True, metavar="CFG [WEIGHTS] | MODEL.qnet")
@darknet_option
@quiet_option
def info_cmd(model: tuple[str, ...], darknet: str, quiet: bool) -> None:
    """Print the layer table (and check WEIGHTS against the cfg); for a .qnet, also its scales."""
    from dla.info import layer_table, quant_table

    m, _ = model_args(model, False, quiet, 0, darknet)
    click.echo(f"darknet: {m.net.darknet.value} (detector input: "
               f"{'letterbox' if m.net.letter_box else 'stretch'})")
    for row in layer_table(m.net, m.qnet):
        click.echo(row)
    if m.qnet is not None:
        for row in quant_table(m.qnet):
            click.echo(row)
    elif len(model) == 2:
        major, minor, rev, seen = m.net.weights_header or (0, 0, 0, 0)
        click.echo(f"weights: {model[1]} (version {major}.{minor}.{rev}, seen {seen:,}) match the cfg")


@click.command("gen-weights")
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
    warn(net, quiet)
    random_weights(net, seed)
    write_bytes_atomic(output, weights_bytes(net))
    if not quiet:
        click.echo(f"wrote {output}: {net.n_params:,} parameters, seed {seed}")


@click.command("quantize")
@click.argument("cfg")
@click.argument("weights", type=click.Path(dir_okay=False), required=False)
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
@click.option("--cle", is_flag=True, help="Cross-layer equalization of the float weights first (docs/quantization.md).")
@click.option("--bias-correction", is_flag=True,
              help="Correct each layer's integer bias by its mean output shift, where that lowers its error.")
@click.option("--adaround", is_flag=True,
              help="Adaptive rounding of the weights, where that lowers the error (needs the 'train' extra).")
@hw_option
@click.option("--no-cache", is_flag=True, help="Recompute calibration statistics even if cached.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output MODEL.qnet directory.")
@darknet_option
@quiet_option
def quantize_cmd(cfg: str, weights: str | None, calib: str | None, calib_synthetic: int | None, activations: str,
                 weights_alg: str, granularity: str, percentile: float, spec_file: str | None, cle: bool,
                 bias_correction: bool, adaround: bool, hw: str | None, no_cache: bool, output: str, darknet: str,
                 quiet: bool) -> None:
    """Calibrate CFG+WEIGHTS (or a shipped trained model by name alone: shapes-yolo) and write the
    quantized model (MODEL.qnet: model.json + weights.npz).

    Every command that takes CFG WEIGHTS also takes the .qnet.  --cle, --bias-correction and
    --adaround refine the result (docs/quantization.md, "Post-training refinements").

    \b
    Examples:
      dla quantize yolov3-tiny yolov3-tiny.weights --calib photos/ -o m.qnet
      dla quantize yolov3-tiny yolov3-tiny.weights --calib photos/ --activations auto \\
          --granularity per-channel --spec spec.yaml -o m.qnet
      dla quantize shapes-yolo --calib shapes/train --cle --bias-correction -o m.qnet
      dla infer m.qnet dog.jpg --mode int
    """
    from dla.calibration import resolve_images
    from dla.info import quant_table
    from dla.qnet_file import save_qnet
    from dla.refine import refine_with_report
    from quant.refine import check_refinements
    from quant.refine.adaround import require_torch

    if not output.endswith(".qnet"):
        raise UserError(f"{output}: the output must be named *.qnet")
    from dla.catalog import is_trained_name

    if weights is None and str(cfg).endswith(".qnet"):  # --help's "also takes the .qnet" means its output
        raise UserError(f"{cfg}: a .qnet is already quantized; dla quantize reads the float model: CFG WEIGHTS "
                        "(or a shipped trained model: shapes-yolo, shapes-cls); to search a .qnet's float "
                        "network again use 'dla tune MODEL.qnet'")
    if weights is None and not is_trained_name(cfg):  # only a shipped trained model brings its weights
        raise UserError(f"{cfg}: expected CFG WEIGHTS (or the name of a shipped trained model alone: "
                        "shapes-yolo, shapes-cls)")
    refinements = check_refinements(n for n, on in (("cle", cle), ("bias_correction", bias_correction),
                                                    ("adaround", adaround)) if on)
    if adaround:
        require_torch()  # before any work
    spec = spec_from_options(activations, weights_alg, granularity, percentile, spec_file)
    hwc = hardware(hw)
    net = load_cfg_weights(cfg, weights, quiet, darknet)
    if spec_file:  # an override naming no layer of this network would silently change nothing
        from dla.eval.precision import NamedPrecision

        NamedPrecision("spec", spec_file, spec.input_bits, spec.overrides).check_network(net)
    images = resolve_images(calib, calib_synthetic)
    total = images if isinstance(images, int) else len(images)
    with tqdm(total=total, desc="calibrating", unit="img", disable=quiet, leave=False, file=sys.stderr) as bar, \
            tqdm(total=len(net.layers), desc="refining", unit="layer", disable=quiet or not refinements,
                 leave=False, file=sys.stderr) as layers:
        qnet, report = refine_with_report(net, images, spec, refinements, hwc, on_image=lambda n: bar.update(),
                                          use_cache=not no_cache, on_layer=lambda done, n: layers.update())
    from dla.engine import Engine

    Engine(qnet.net, qnet, hwc).plans()  # refuse a model the configured DLA cannot run, before writing
    for row in quant_table(qnet):
        click.echo(row)
    for line in report.lines():
        click.echo(line)
    save_qnet(qnet, hwc, output)
    src = "cached statistics" if report.statistics_cached else f"{qnet.calibration_images} calibration image(s)"
    extra = f"; refinements: {', '.join(refinements)}" if refinements else ""
    click.echo(f"wrote {output} ({src}; activations {spec.activations}, weights {spec.weights}, "
               f"{spec.granularity}{extra})")


@click.command("graph")
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
    m, _ = model_args(model, False, quiet, 0)
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


@click.command("cycles")
@click.argument("model", nargs=-1, required=True, metavar="CFG [WEIGHTS] | MODEL.qnet")
@hw_option
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Per-layer table as CSV.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Totals and per-layer table as JSON.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False),
              help="Write cycles.png, utilization.png and roofline.png into DIR.")
@quiet_option
def cycles_cmd(model: tuple[str, ...], hw: str | None, csv_out: str | None, json_out: str | None,
               plot_dir: str | None, quiet: bool) -> None:
    """Cycle model of the MAC array: per-layer cycles, stalls, utilization, DRAM traffic; totals and fps.

    A MODEL.qnet runs at its layers' operand widths (weights, activations, host); a cfg at int8."""
    from dla.cycles import network_cycles
    from dla.cycles.report import cycle_lines, cycle_plots, cycles_csv, cycles_json
    from dla.fileio import write_bytes_atomic, write_json_atomic

    m, _ = model_args(model, False, quiet, 0)
    hwc = hardware(hw) if hw else m.hw
    nc = network_cycles(m.net, hwc, m.qnet.precisions() if m.qnet is not None else None)
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


def register(group: click.Group) -> None:
    """Add this family's commands to the main ``dla`` group."""
    group.add_command(info_cmd)
    group.add_command(gen_weights_cmd)
    group.add_command(quantize_cmd)
    group.add_command(graph_cmd)
    group.add_command(cycles_cmd)
