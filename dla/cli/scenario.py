"""``dla run``, ``dla regress``, ``dla scenarios``: the CLI over ``dla.scenario``.

Exit codes: 0 = every check passed; 1 = a check failed or a scenario errored (the reports are
written and say which); 2 = a user mistake (bad YAML, missing file...: one ``Error:`` line,
nothing written).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm


def _stages(ls) -> int:
    s = ls.scenario
    n_inputs = len(s.images) if isinstance(s.images, list) else s.images.synthetic
    n_variants = 1 if s.model.qnet else len(s.quant.variants())
    return (2 + n_inputs * (1 + n_variants * len(s.quantized_modes())) + int(s.cycles) + int(bool(s.step or s.cross))
            + len(s.rtl) + int(s.tune is not None) + 1)


@click.command("run")
@click.argument("scenario")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Report directory (default: ./<scenario name>-report).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and only the checks' lines.")
def run_cmd(scenario: str, out_dir: str | None, quiet: bool) -> None:
    """Run SCENARIO (a YAML file, or a shipped name: see `dla scenarios`) and write its reports:
    report.html (self-contained), layers.csv, summary.json, junit.xml, plots/.

    Exit code 1 if a check fails (the reports say which), 2 for a mistake in the scenario."""
    from dla.scenario import load_scenario

    ls = load_scenario(scenario)
    run_and_print(ls, Path(out_dir or f"{ls.name}-report"), quiet)


def run_and_print(ls, out: Path, quiet: bool) -> None:
    """Run ``ls`` into ``out`` with a progress bar; print the summary; exit 1 if a check failed."""
    from dla.scenario import run_to_dir
    from dla.scenario.text import summary_lines

    with tqdm(total=_stages(ls), desc=ls.name, unit="step", disable=quiet, leave=False, file=sys.stderr) as bar:
        def progress(msg: str) -> None:
            bar.set_postfix_str(msg)
            bar.update()

        result = run_to_dir(ls, out, progress)
    s = result.summary
    lines = summary_lines(s)
    for line in lines if not quiet else [x for x in lines if x.startswith(("PASS", "FAIL"))]:
        click.echo(line)
    n_fail = sum(not c["passed"] for c in s["checks"])
    click.echo(f"{ls.name}: {len(s['checks']) - n_fail}/{len(s['checks'])} checks passed in {result.seconds['total']:.1f} s; "
               f"reports in {out}/ (report.html, layers.csv, summary.json, junit.xml)")
    if n_fail:
        sys.exit(1)


@click.command("regress")
@click.argument("paths", nargs=-1, required=True)
@click.option("-j", "--jobs", "workers", default=2, show_default=True, type=click.IntRange(1),
              help="Worker processes of the local Dask cluster.")
@click.option("--scheduler", help="Address of an existing Dask scheduler (e.g. tcp://host:8786) instead of a local "
                                  "cluster; the output directory must be on a file system its workers share.")
@click.option("-o", "--output", "out_dir", default="regress-out", show_default=True, type=click.Path(file_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def regress_cmd(paths: tuple[str, ...], workers: int, scheduler: str | None, out_dir: str, quiet: bool) -> None:
    """Run many scenarios in parallel on Dask: PATHS are scenario files, folders (their *.yaml),
    globs or shipped names; a scenario with `matrix:` runs once per combination.

    Writes OUT/<scenario>/ (each report), OUT/index.html, OUT/junit.xml (all suites),
    OUT/regress.json.  A scenario that raises or kills its worker is an error for that
    scenario only.  Exit code 1 if any scenario failed or errored."""
    from dla.scenario.regress import collect, run_campaign

    jobs = collect(list(paths))
    with tqdm(total=len(jobs), desc="scenarios", unit="scn", disable=quiet, file=sys.stderr) as bar:
        def done(row: dict) -> None:
            bar.set_postfix_str(f"{row['id']}: {row['status']}")
            bar.update()

        rows = run_campaign(jobs, out_dir, workers, scheduler, done)
    for r in rows:
        click.echo(f"{r['status'].upper():5}  {r['id']:<40} {r['seconds']:6.1f} s  "
                   f"{r['checks'] - r['failed']}/{r['checks']} checks" + (f"  {r['message'].splitlines()[0]}"
                                                                         if r["status"] != "pass" else ""))
    bad = [r for r in rows if r["status"] != "pass"]
    click.echo(f"{len(rows) - len(bad)}/{len(rows)} scenarios passed; {out_dir}/index.html, {out_dir}/junit.xml")
    if bad:
        sys.exit(1)


@click.command("scenarios")
@click.option("--schema", is_flag=True, help="Print the JSON Schema of the scenario format instead.")
def scenarios_cmd(schema: bool) -> None:
    """List the shipped scenarios (usable by name in `dla run` / `dla regress`)."""
    from dla.scenario.load import SCENARIO_DIR, load_scenario, shipped_scenarios
    from dla.scenario.schema import Scenario

    if schema:
        click.echo(json.dumps(Scenario.model_json_schema(by_alias=True), indent=1))
        return
    for name in shipped_scenarios():
        ls = load_scenario(SCENARIO_DIR / f"{name}.yaml", allow_matrix=True)
        click.echo(f"{name:<22} {ls.scenario.description.splitlines()[0] if ls.scenario.description else ''}")


def register(group: click.Group) -> None:
    for cmd in (run_cmd, regress_cmd, scenarios_cmd):
        group.add_command(cmd)
