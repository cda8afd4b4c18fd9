"""``dla rtl check`` and ``dla rtl run``: the Verilog core against the hardware config and the INT kernel."""
from __future__ import annotations

from pathlib import Path

import click

from dla.cli.common import (UserError, calib_option, darknet_option, engine_for, granularity_option, hardware,
                            hw_option, model_args, quiet_option)
from golden.genweights import MAX_SYNTHETIC_IMAGES
from dla.catalog import DEFAULT_IMAGE


@click.group("rtl")
def rtl_group() -> None:
    """The Verilog core: check its interface against the config, run layers on it (cocotb + Icarus)."""


@rtl_group.command("check")
@hw_option
@click.option("--rtl", "rtl_file", type=click.Path(dir_okay=False), help="Verilog file (default: the shipped core).")
@click.option("--module", help="Module name (default: the first in the file).")
def rtl_check_cmd(hw: str | None, rtl_file: str | None, module: str | None) -> None:
    """Check that the RTL's parameters agree with the hardware config, that it runs the operand
    pairs the config says at the config's cost (passes_w*a*), and that it has every port.

    Prints one line per operand pair (RTL vs config); every disagreement (a parameter, a pair
    both run at different costs, a port) is one line of the error (exit 2).  A pair the config
    runs that the core has no mode for is a note: nothing disagrees, but `dla rtl run` refuses
    such layers."""
    from rtl_bridge.introspect import CORE, check_against, missing_pairs, read_interface, rtl_pairs
    from rtl_bridge.sim import require_rtl_tools

    require_rtl_tools("dla rtl check", simulator=False, cocotb=False, pyverilog=True)
    iface = read_interface(rtl_file or CORE, module)
    cfg = hardware(hw)
    click.echo(f"module {iface.module}: parameters " +
               ", ".join(f"{k}={'(expr)' if v is None else v}" for k, v in iface.parameters.items()))
    click.echo(f"{len(iface.ports)} ports: " + ", ".join(f"{d} {n}" for n, d in iface.ports.items()))
    pairs = rtl_pairs(iface)
    click.echo("operand pairs (passes per MAC relative to w8a8; 0 = not run):")
    for pair in dict.fromkeys(list(pairs) + cfg.supported_pairs()):
        wb, ab = (int(v) for v in pair[1:].split("a"))
        got = pairs.get(pair)
        rtl = "0" if got is None else "(expr)" if got.passes is None else f"{got.passes:g}"
        click.echo(f"  {pair:7s} RTL {rtl:6s} config {cfg.passes(wb, ab):g}")
    for note in missing_pairs(iface, cfg):
        click.echo(f"note: {note}")
    problems = check_against(iface, cfg)
    if problems:
        raise UserError("the RTL does not match the hardware config:\n" + "\n".join(f"  {p}" for p in problems))
    click.echo("RTL parameters and operand pairs match the hardware config; every port the adapter needs is there")


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
    mdl, _ = model_args(model, True, quiet, 0, darknet)
    if not 0 <= layer < len(mdl.net.layers):
        raise UserError(f"--layer {layer}: {mdl.net.name} has layers 0..{len(mdl.net.layers) - 1}")
    if not isinstance(mdl.net.layers[layer], ConvSpec):
        raise UserError(f"--layer {layer} is a {mdl.net.layers[layer].kind.value} layer; the RTL core runs "
                        "convolutions only")
    if vcd and not Path(vcd).resolve().parent.is_dir():
        raise UserError(f"{vcd}: directory {Path(vcd).parent} does not exist")
    engine = engine_for(mdl, image, calib, granularity, hw, quiet, synthetic=calib_synthetic)
    x = prepare_input(load_image(image), mdl.net.input_shape, letterbox=mdl.net.letter_box)
    run = run_layer(engine, x, layer, max_tiles, vcd)
    h = run.hw
    first = run.tiles[0].tile
    how = {1: "", 2: ", 2 digit passes per fold"}[first.passes] + (", 2 filters per PE" if first.pair == "w4a8" else "")
    click.echo(f"layer {layer} on a {h.rows}x{h.cols} core at {first.pair}{how}, int{first.out_bits} outputs: "
               f"{len(run.tiles)} of {run.total_tiles} tiles")
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


def register(group: click.Group) -> None:
    """Add this family's commands to the main ``dla`` group."""
    group.add_command(rtl_group)
