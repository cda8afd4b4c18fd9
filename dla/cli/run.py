"""``dla infer``, ``compare``, ``step``, ``demo``: run an image through the model in FLOAT, HYBRID or INT."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from dla.cli.common import (UserError, calib_option, class_names, darknet_option, engine_for, granularity_option,
                            hw_option, model_args, quiet_option, run_and_report)


@click.command("infer")
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
    model, (image,) = model_args(args, True, quiet, 1, darknet)
    engine = engine_for(model, image, calib, granularity, hw, quiet) if mode != "float" else None
    run_and_report(model.net, image, mode, names, thresh, nms, dump, out_png, json_out, quiet, engine=engine,
                   shipped_names=model.names)


@click.command("compare")
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

    model, (image,) = model_args(args, True, quiet, 1, darknet)
    net = model.net
    engine = engine_for(model, image, calib, granularity, hw, quiet)
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
    cmp = compare_modes(engine, x, (im.shape[2], im.shape[1]), class_names(net, names, model.names), thresh)
    for line in comparison_lines(cmp):
        click.echo(line)
    if csv_out:
        write_bytes_atomic(csv_out, comparison_csv(cmp).encode())
        click.echo(f"csv: {csv_out}")
    if json_out:
        write_json_atomic(json_out, comparison_json(cmp))
        click.echo(f"json: {json_out}")


@click.command("step")
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
    from dla.resolve import make_engine
    from dla.session import Session
    from dla.debugger.repl import run_repl

    model, (image,) = model_args(args, True, quiet, 1, darknet)
    if mode != "float" or calib:
        source = engine_for(model, image, calib, granularity, hw, quiet)
    else:  # FLOAT: the .qnet if given (to cross to INT), never calibrated
        source = make_engine(model, hw=hw, calibrate_now=False)
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


@click.command("demo")
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

    With --model/--weights the checks are adapted to that model (dla/scenario/demo.py) and every check
    left out is named.  Writes OUT/report.html (self-contained, plots embedded), OUT/layers.csv,
    OUT/summary.json, OUT/junit.xml and OUT/plots/.  `dla run SCENARIO` runs any other study."""
    from dla.cli.scenario import run_and_print
    from dla.scenario.demo import demo_plan
    from dla.scenario.load import scenario_from_mapping

    plan = demo_plan(model, image, weights, seed)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    run_and_print(scenario_from_mapping(plan.data, plan.path, plan.lines), Path(out_dir), quiet)


def register(group: click.Group) -> None:
    """Add this family's commands to the main ``dla`` group."""
    group.add_command(infer_cmd)
    group.add_command(compare_cmd)
    group.add_command(step_cmd)
    group.add_command(demo_cmd)
