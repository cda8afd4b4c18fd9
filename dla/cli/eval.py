"""``dla data shapes``, ``dla train``, ``dla eval``: data sets, training and accuracy of trained models.

Registered into the main group by ``dla.cli``.  Each command parses its
options and calls one library function; user mistakes raise ``UserInputError`` subclasses,
which the group turns into one ``Error: ...`` line.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from golden.errors import UserInputError
from golden.forks import FORK_CHOICES
from golden.genweights import MAX_SYNTHETIC_IMAGES


@click.group("data")
def data_group() -> None:
    """Generate the project's labelled data sets."""


@data_group.command("shapes")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Output folder (names, train/, val/); an earlier shapes folder there is replaced.")
@click.option("--n", "n", default=5000, show_default=True, type=click.IntRange(1), help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="Data set seed (image i is the same for any --n).")
@click.option("--size", default=64, show_default=True, type=click.IntRange(32, 1024), help="Image side in pixels.")
@click.option("--kind", type=click.Choice(["detect", "classify"]), default="detect", show_default=True,
              help="detect: 1-4 shapes per image; classify: exactly one, at least a quarter of the side.")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1),
              help="Share of images in val/ (the held-out split).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def shapes_cmd(output: str, n: int, seed: int, size: int, kind: str, val_fraction: float, quiet: bool) -> None:
    """Coloured shapes (circle, square, triangle, cross, star) on varied backgrounds, with
    Darknet/YOLO labels (one .txt per image) and COCO instances.json per split."""
    from dla.datasets.shapes import write_shapes

    with tqdm(total=n, desc="drawing", unit="img", disable=quiet, leave=False, file=sys.stderr) as bar:
        counts = write_shapes(output, n, seed, size, kind, val_fraction, on_image=bar.update)
    if not quiet:
        click.echo(f"wrote {output}: {counts['train']} train, {counts['val']} val images ({kind}, {size}x{size}, "
                   f"seed {seed})")


@click.command("train")
@click.argument("cfg")
@click.argument("data", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output .weights file.")
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(1))
@click.option("--batch", default=32, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-3, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--seed", default=0, show_default=True, help="Seed of initialisation, batch order and flips.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads (results are bit-reproducible for a fixed count).")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N training images (smoke runs).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-epoch log.")
def train_cmd(cfg: str, data: str, output: str, epochs: int, batch: int, lr: float, seed: int, threads: int,
              limit: int | None, quiet: bool) -> None:
    """Train CFG with PyTorch on DATA (train/ and val/, e.g. from 'dla data shapes') and write
    Darknet .weights.  Needs the 'train' extra: pip install -e '.[train]'."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserInputError("training needs PyTorch: pip install -e '.[train]'") from None
    from dla.eval.train import Recipe, train
    from dla.catalog import resolve_cfg

    cfg_path = resolve_cfg(cfg)  # a path, a shipped cfg, or a shipped trained model's cfg
    out = Path(output)
    if not out.parent.exists():
        raise UserInputError(f"{output}: directory {out.parent} does not exist")
    bar = tqdm(desc="training", unit="step", disable=quiet, leave=False, file=sys.stderr)

    def progress(step: int, total: int) -> None:
        bar.total = total
        bar.update(step - bar.n)

    log = (lambda s: None) if quiet else (lambda s: tqdm.write(s, file=sys.stdout))
    with bar:
        train(cfg_path, data, out, Recipe(epochs, batch, lr, seed, threads, limit), log, progress)


def _split(value: str, valid: tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in valid]
    if bad or not items:
        raise UserInputError(f"--{what}: {', '.join(bad) or 'nothing given'} not valid (choose from {', '.join(valid)})")
    return list(dict.fromkeys(items))


def _eval_model(args: tuple[str, ...], hw_path: str | None, darknet: str = "auto"):
    """The ``ResolvedModel`` (``dla.resolve``) of ``CFG WEIGHTS``, ``MODEL.qnet`` or a shipped
    trained-model name; ``darknet`` is the fork for a cfg (a .qnet keeps its own; another
    explicit fork is an error)."""
    from dla.catalog import SHIPPED, is_trained_name
    from dla.qnet_file import is_qnet
    from dla.resolve import ForkMismatchError, load_hardware, resolve_model

    hw = load_hardware(hw_path)
    if len(args) == 1 and (is_trained_name(args[0]) or is_qnet(args[0])):
        try:
            return resolve_model(args[0], darknet=darknet, hw=hw)
        except ForkMismatchError as exc:
            raise UserInputError(f"{exc.name} was quantized for {exc.quantized}'s Darknet; "
                                 f"--darknet {exc.wanted} contradicts it") from None
    if len(args) == 2:
        return resolve_model(args[0], args[1], darknet=darknet, hw=hw)
    raise UserInputError(f"expected CFG WEIGHTS, MODEL.qnet or a shipped model ({', '.join(SHIPPED)}), "
                         f"got {len(args)} argument(s): {' '.join(args)}")


@click.command("eval")
@click.argument("model", nargs=-1, required=True, metavar="CFG WEIGHTS | MODEL.qnet | SHIPPED-NAME")
@click.option("--data", required=True, type=click.Path(),
              help="Labelled folder: YOLO (.png/.jpg + .txt) or COCO (instances*.json); a folder with val/ uses val/.")
@click.option("--modes", default="float,hybrid,int", show_default=True, help="Comma list of float, hybrid, int.")
@click.option("--activations", default="max,percentile,mse,kl,log2", show_default=True,
              help="Comma list of activation calibrations (max, percentile, mse, kl, log2, auto).")
@click.option("--granularity", default="per-tensor,per-channel", show_default=True,
              help="Comma list of weight-scale granularities.")
@click.option("--calib", type=click.Path(), help="Calibration images (folder or list file). Default: up to "
              "64 images of DATA/train if it exists, else of the evaluated images.")
@click.option("--calib-synthetic", type=click.IntRange(1, MAX_SYNTHETIC_IMAGES), help="Calibrate on N of the project's generated images.")
@click.option("--precision", "precision_opts", multiple=True, metavar="NAME=SPEC.yaml",
              help="Operand widths to evaluate (repeatable): SPEC.yaml holds input_bits and overrides with "
              "weight_bits/activation_bits/host only; each name runs with every HYBRID/INT algorithm x granularity, "
              "next to 'all-int8'.")
@click.option("--hw", type=click.Path(dir_okay=False), help="Hardware config YAML (default: the built-in default).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Write the table as CSV.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the table (and per-class AP) as JSON.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), help="Write a bar chart PNG.")
@click.option("--limit", type=click.IntRange(1), help="Evaluate only the first N images (sorted by name).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="BLAS threads during the runs (the wall times are measured with this many).")
@click.option("--darknet", type=click.Choice(FORK_CHOICES), default="auto", show_default=True,
              help="Whose Darknet to reproduce (see 'dla infer --help').")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(model: tuple[str, ...], data: str, modes: str, activations: str, granularity: str, calib: str | None,
             calib_synthetic: int | None, precision_opts: tuple[str, ...], hw: str | None, csv_out: str | None,
             json_out: str | None, plot_out: str | None, limit: int | None, threads: int, darknet: str,
             quiet: bool) -> None:
    """Accuracy in every mode x quantization choice: mAP@0.5 and mAP@0.5:0.95 for detectors,
    top-1/top-5 for classifiers, the wall time per image of each mode, and the cost of each
    quantized variant on the DLA (cycle model: total cycles, weight bytes, DRAM bytes).

    FLOAT runs once; HYBRID and INT run once per activation algorithm x weight granularity
    (x each --precision, and all-int8), all quantized from one pass of calibration
    statistics.  Wall times are the engine's time per image with --threads BLAS threads
    (1 by default: small networks gain nothing from more, and spinning threads on a busy
    machine distort the figure).
    """
    from threadpoolctl import threadpool_limits

    from dla.datasets.labelled import check_classes, load_labelled
    from dla.eval import precision as named_precision
    from dla.eval.evaluate import classes_of, evaluate, make_variants
    from dla.fileio import write_bytes_atomic, write_json_atomic
    from quant import calibration_images
    from quant.spec import ACTIVATION_CHOICES

    mode_list = _split(modes, ("float", "hybrid", "int"), "modes")
    algs = _split(activations, ACTIVATION_CHOICES, "activations")
    grans = [g.replace("-", "_") for g in _split(granularity, ("per-tensor", "per-channel"), "granularity")]
    for target in (csv_out, json_out, plot_out):  # fail before the run, not after it
        if target and not Path(target).resolve().parent.is_dir():
            raise UserInputError(f"{target}: directory {Path(target).parent} does not exist")
    if calib and calib_synthetic:
        raise UserInputError("give --calib or --calib-synthetic, not both")
    if precision_opts and not {"hybrid", "int"} & set(mode_list):
        raise UserInputError("--precision applies to HYBRID and INT: add hybrid or int to --modes")
    precisions = named_precision.load_options(precision_opts)
    resolved = _eval_model(model, hw, darknet)
    net, qnet, hw_cfg, label = resolved.net, resolved.qnet, resolved.hw, resolved.label
    if qnet is not None and (calib or calib_synthetic):
        raise UserInputError("a .qnet is already calibrated: --calib/--calib-synthetic do not apply")
    if qnet is not None and precisions:
        raise UserInputError("a .qnet already has its operand widths: --precision applies when quantizing "
                             "CFG WEIGHTS or a shipped model (or quantize with 'dla quantize --spec')")
    for p in precisions:  # a layer the network lacks: refused before the data set is read
        p.check_network(net)
    dataset = load_labelled(data, limit)
    if not dataset.samples:
        raise UserInputError(f"{data}: no labelled images")
    check_classes(dataset, classes_of(net), label)
    variants = make_variants(mode_list, algs, grans, qnet_given=qnet is not None,
                             precisions=[p.name for p in precisions])
    calib_set, calib_label = None, "none"
    if qnet is not None:
        calib_label = "from the .qnet"
    elif any(v.mode != "float" for v in variants):
        if calib_synthetic:
            calib_set, calib_label = calib_synthetic, f"{calib_synthetic} synthetic images"
        elif calib:
            calib_set, calib_label = calibration_images(calib), str(calib)
        else:
            train = Path(data) / "train"
            src = calibration_images(train) if train.is_dir() else [s.image for s in dataset.samples]
            calib_set = src[:64]
            calib_label = f"{len(calib_set)} images of {train if train.is_dir() else dataset.root}"
    n_calib = 0 if calib_set is None else (calib_set if isinstance(calib_set, int) else len(calib_set))
    total = n_calib + len(variants) * len(dataset.samples)
    with tqdm(total=total, desc="eval", unit="img", disable=quiet, leave=False, file=sys.stderr) as bar:
        def step(phase: str) -> None:
            bar.set_description(phase, refresh=False)
            bar.update()

        with threadpool_limits(limits=threads):
            report = evaluate(net, dataset, variants, calib_set, hw_cfg, qnet, step, label, calib_label, precisions)
    click.echo(f"{label} on {report.images} images of {dataset.root} ({dataset.fmt} labels); "
               f"calibration: {calib_label}; {threads} thread(s)")
    for line in report.table_lines():
        click.echo(line)
    for line in report.timing_lines():
        click.echo(line)
    if csv_out:
        write_bytes_atomic(csv_out, report.to_csv().encode())
        click.echo(f"csv: {csv_out}")
    if json_out:
        write_json_atomic(json_out, report.to_json())
        click.echo(f"json: {json_out}")
    if plot_out:
        write_bytes_atomic(plot_out, report.plot_png())
        click.echo(f"plot: {plot_out}")


def register(group: click.Group) -> None:
    """Add ``data``, ``train`` and ``eval`` to the main ``dla`` group."""
    group.add_command(data_group)
    group.add_command(train_cmd)
    group.add_command(eval_cmd)
