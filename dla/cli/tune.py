"""``dla tune``: the cheapest configuration on the DLA that meets an accuracy budget.

Registered into the main group by ``dla.cli``; parses the options and calls
``dla.tune.tune`` (method and formats: docs/tune.md).  Exit codes: 0 budget met, 2 a user
mistake (nothing written), 3 budget not met (outputs written, shortfall printed), 130 Ctrl-C
(``OUT/cache`` kept: the next run resumes).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from dla.cli.common import UserError
from golden.errors import UserInputError
from golden.forks import FORK_CHOICES


def parse_max_drop(value: str) -> tuple[str, float]:
    """``METRIC=VALUE`` → ``(metric, value)``; the metric is checked against the model later."""
    from dla.tune.task import CHOICES

    name, sep, number = value.partition("=")
    name, number = name.strip(), number.strip()
    if not sep or not name or not number:
        raise UserInputError(f"--max-drop {value!r}: expected METRIC=VALUE, e.g. map50_95=0.01 "
                             f"(metrics: {', '.join(CHOICES)})")
    if name not in CHOICES:
        raise UserInputError(f"--max-drop {value!r}: unknown metric '{name}' (valid: {', '.join(CHOICES)})")
    try:
        drop = float(number)
    except ValueError:
        raise UserInputError(f"--max-drop {value!r}: '{number}' is not a number") from None
    if not drop >= 0 or drop == float("inf"):
        raise UserInputError(f"--max-drop {value!r}: the budget must be a finite number ≥ 0")
    return name, drop


@click.command("tune", context_settings={"max_content_width": 110})
@click.argument("model", nargs=-1, required=True, metavar="CFG WEIGHTS | MODEL.qnet | SHIPPED-NAME")
@click.option("--data", required=True, type=click.Path(), help="Scored images: a labelled folder (YOLO/COCO, as "
              "'dla eval'; a folder with val/ uses val/) or plain images, scored against FLOAT's own detections "
              "('agreement mAP').")
@click.option("--calib", type=click.Path(), help="Calibration images (folder or list file). Default: DATA/train if "
              "it exists, else the scored images.")
@click.option("--calib-images", default=64, show_default=True, type=click.IntRange(1),
              help="Use at most the first N calibration images (name order).")
@click.option("--max-drop", "max_drop", required=True, metavar="METRIC=VALUE",
              help="The budget: map50, map50_95 or top1 at most VALUE below FLOAT's; sqnr: the output SQNR at most "
              "VALUE dB below the all-int8 baseline's.")
@click.option("--cost", type=click.Choice(["cycles", "latency", "dram", "weights"]), default="cycles",
              show_default=True, help="What to minimise (cycle model per image).")
@click.option("--space", "space_file", type=click.Path(dir_okay=False), help="Search space YAML (docs/tune.md; "
              "default: int8/int4 weights and int8/int16 outputs per conv layer).")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1),
              help="Worker processes (1: in this process; N: a local Dask cluster).")
@click.option("--scheduler", help="Address of a running Dask scheduler (instead of -j).")
@click.option("--limit", type=click.IntRange(1), help="Score only the first N images (name order).")
@click.option("--hw", type=click.Path(dir_okay=False), help="Hardware config YAML (default: the built-in one, "
              "or the .qnet's).")
@click.option("--darknet", type=click.Choice(FORK_CHOICES), default="auto", show_default=True,
              help="Whose Darknet to reproduce (see 'dla infer --help').")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Output folder: tune.json, tune.csv, best.qnet, report.html, cache/ (re-run to resume).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def tune_cmd(model: tuple[str, ...], data: str, calib: str | None, calib_images: int, max_drop: str, cost: str,
             space_file: str | None, jobs: int, scheduler: str | None, limit: int | None, hw: str | None,
             darknet: str, output: str, quiet: bool) -> None:
    """Find the cheapest configuration (per-layer calibration, weight and activation widths,
    host fallback, refinements) whose accuracy stays within the budget, measuring every
    point with real INT runs.  Exit 0: budget met; 3: not met (outputs written, shortfall
    printed); 2: a mistake in the input (nothing written).

    \b
    Example:
      dla data shapes -o shapes-val --n 400 --seed 1 --val-fraction 0.5
      dla tune shapes-yolo --calib shapes-val/train --data shapes-val \\
          --max-drop map50_95=0.01 --cost cycles -j 2 -o out
      dla eval out/best.qnet --data shapes-val      # reproduces the chosen point's metric
    """
    from dla.cli.eval import _eval_model
    from dla.tune import TuneRequest, tune

    metric, budget = parse_max_drop(max_drop)
    if scheduler and jobs != 1:
        raise UserInputError("give -j N or --scheduler ADDR, not both")
    if space_file and not Path(space_file).is_file():
        raise UserInputError(f"{space_file}: search space file not found")
    resolved = _eval_model(model, hw, darknet)
    req = TuneRequest(model=resolved, data=data, metric=metric, max_drop=budget, cost=cost, calib=calib,
                      space=space_file, workers=jobs, scheduler=scheduler, out_dir=Path(output), limit=limit,
                      calib_images=calib_images, quiet=quiet)
    bar = tqdm(desc="preparing", unit="img", disable=quiet, leave=False, file=sys.stderr, dynamic_ncols=True)

    searching = [False]

    def progress(ev: dict) -> None:
        if "phase" in ev:
            bar.set_description(ev["phase"], refresh=False)
            bar.update()
            return
        if not searching[0]:  # from images (calibration, FLOAT) to measured points
            searching[0] = True
            bar.reset(total=None)
            bar.unit = "pt"
            bar.set_description("points")
        if ev.get("expected"):  # the search's estimate of its total, refined after each phase: the ETA
            bar.total = max(ev["expected"], bar.n + 1)
        best = ev.get("best")
        if best:
            bar.set_postfix_str(f"best {best['id'][:8]} drop {best['drop']:.4f} {'meets' if best['meets'] else 'misses'}"
                                f" cost {best['cost']:,.0f}", refresh=False)
        bar.update()

    with bar:
        try:
            result = tune(req, on_progress=progress)
        except KeyboardInterrupt:  # docs/tune.md: exit 130, OUT/cache/ kept; say so (not a bare "interrupted")
            cache = Path(output) / "cache"
            kept = len(list(cache.glob("*.json"))) if cache.is_dir() else 0
            raise UserError(f"interrupted: {kept} measured point(s) kept in {cache}; run the same command "
                            "again to resume", 130) from None
    result.write(output)
    for line in result.table_lines():
        click.echo(line)
    click.echo(f"wrote {output}/tune.json, tune.csv" + (", best.qnet" if result.qnet is not None else "")
               + (", report.html" if (Path(output) / "report.html").is_file() else ""))
    result.raise_if_not_met()


def register(group: click.Group) -> None:
    group.add_command(tune_cmd)
