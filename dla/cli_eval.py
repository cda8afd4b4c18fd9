"""``dla data shapes``, ``dla train``, ``dla eval``: data sets, training and accuracy of trained models.

Registered into the main group by ``dla.cli`` (``EXTENSIONS``).  Each command parses its
options and calls one library function; user mistakes raise ``UserInputError`` subclasses,
which the group turns into one ``Error: ...`` line.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from golden.errors import UserInputError


@click.group("data")
def data_group() -> None:
    """Generate the project's labelled data sets."""


@data_group.command("shapes")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Output folder (names, train/, val/); an earlier shapes folder there is replaced.")
@click.option("--n", "n", default=5000, show_default=True, type=click.IntRange(1), help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="Data set seed (image i is the same for any --n).")
@click.option("--size", default=96, show_default=True, type=click.IntRange(32, 1024), help="Image side in pixels.")
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
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1),
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
    from dla.models import resolve_cfg

    cfg_path = _shipped_cfg(cfg) or resolve_cfg(cfg)
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


def _shipped_cfg(name: str) -> Path | None:
    from dla.shipped_models import SHIPPED, shipped_model

    return shipped_model(name).cfg if name in SHIPPED else None


def register(group: click.Group) -> None:
    """Add ``data``, ``train`` and ``eval`` to the main ``dla`` group."""
    group.add_command(data_group)
    group.add_command(train_cmd)
    if "eval_cmd" in globals():
        group.add_command(globals()["eval_cmd"])
