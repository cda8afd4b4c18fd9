"""Regression campaigns: many scenarios in parallel on Dask distributed.

``collect`` turns paths (files, folders — their ``*.yaml`` files, not sub-folders — globs and
shipped names) into jobs, expanding each ``matrix:`` into one job per combination; every
scenario is validated here, before any work starts, so a typo fails the whole campaign at
once with its file and line.  ``run_campaign`` submits one task per job to a
``LocalCluster`` (``-j N`` worker processes, one thread each) or to an existing scheduler,
and writes:

* ``OUT/<job>/`` — each scenario's own reports (``dla run``'s output);
* ``OUT/junit.xml`` — every scenario's test suite, plus one ``<error>`` case for a scenario
  that raised or whose worker died;
* ``OUT/index.html`` — a pass/fail table linking each report; ``OUT/regress.json`` — the same.

A task that raises (a bad file discovered while running, a bug, an RTL simulator missing)
or whose worker process dies is reported as an error *for that scenario*; the others go
on.  Dask's retry of tasks on lost workers is turned off (``allowed-failures: 0``) so that
a scenario that kills its worker is not run again on the next one; a finished scenario is
never run again either (its result is released as soon as it is read, and a task finds its
folder already written — ``finished_row``).  Nothing hidden is left in ``OUT``: the
half-written folder of a scenario whose worker died is removed before ``OUT`` is completed,
on Ctrl-C the cluster is stopped before the temporary folder is removed, and the temporary
folder of a campaign that was killed outright is removed by the next campaign into ``OUT``.
"""
from __future__ import annotations

import glob
import html
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dla.distributed import SCHEDULER_TIMEOUT_S, SchedulerError, dask_client  # noqa: F401 (re-exported)
from dla.fileio import atomic_dir, json_text, write_bytes_atomic
from dla.scenario.junit import error_suite, junit_xml
from dla.scenario.load import LoadedScenario, expand_matrix, find_scenario, load_scenario, shipped_scenarios
from golden.errors import UserInputError

CAMPAIGN_FILES = ("index.html", "junit.xml", "regress.json")


@dataclass
class Job:
    id: str  # unique folder name in the campaign
    scenario: LoadedScenario


def _paths(items: list[str]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        p = Path(item)
        found = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else []
        if found:
            out += found
        elif p.is_dir() and item not in shipped_scenarios():
            raise UserInputError(f"{p}: no *.yaml scenario files in this folder")
        elif any(c in item for c in "*?["):
            found = [Path(f) for f in sorted(glob.glob(item)) if Path(f).is_file()]
            if not found:
                raise UserInputError(f"{item}: the pattern matches no file")
            out += found
        else:
            out.append(find_scenario(item))
    return out


def collect(items: list[str]) -> list[Job]:
    """Load and validate every scenario (and expand matrices) before anything runs."""
    jobs: list[Job] = []
    taken = set(CAMPAIGN_FILES)  # job folders sit beside the campaign's own files
    for path in _paths(items):
        for ls in expand_matrix(load_scenario(path, allow_matrix=True)):
            job_id, n = ls.name, 1
            while job_id in taken:
                n += 1
                job_id = f"{ls.name}-{n}"
            taken.add(job_id)
            jobs.append(Job(job_id, ls))
    if not jobs:
        raise UserInputError("no scenarios to run")
    return jobs


def _row(job: Job, out_dir: str | Path, s: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The outcome row of a finished scenario from its summary."""
    return {"id": job.id, "status": "pass" if s["passed"] else "fail", "seconds": seconds,
            "checks": len(s["checks"]), "failed": sum(not c["passed"] for c in s["checks"]),
            "source": str(job.scenario.path), "report": f"{job.id}/report.html"
            if (Path(out_dir) / job.id / "report.html").exists() else None,
            "message": "; ".join(c["message"] for c in s["checks"] if not c["passed"])}


def finished_row(job: Job, out_dir: str | Path) -> dict[str, Any] | None:
    """The row of ``job`` if its reports are already in ``out_dir`` (its folder appears only when
    complete: ``atomic_dir``), else ``None``.  This is what makes a finished scenario never run
    twice: Dask recomputes a task whose result was lost with a dying worker, and the campaign
    loop may see a worker die after the scenario's folder was written."""
    summary = Path(out_dir) / job.id / "summary.json"
    try:
        s = json.loads(summary.read_text())
        took = s.get("seconds")
        total = float(took.get("total", 0.0)) if isinstance(took, dict) else float(took or 0.0)
        return _row(job, out_dir, s, total)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_job(job: Job, out_dir: str) -> dict[str, Any]:
    """One scenario, in a worker: its reports in ``out_dir/<id>``; returns its outcome.
    A scenario whose reports are already there is not run again (see ``finished_row``)."""
    from dla.scenario import run_to_dir

    done = finished_row(job, out_dir)
    if done is not None:
        return done
    t0 = time.perf_counter()
    try:
        result = run_to_dir(job.scenario, Path(out_dir) / job.id)
        return _row(job, out_dir, result.summary, time.perf_counter() - t0)
    except UserInputError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - one scenario's bug must not stop the campaign
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    return {"id": job.id, "status": "error", "seconds": time.perf_counter() - t0, "checks": 0, "failed": 0,
            "source": str(job.scenario.path), "report": None, "message": message}


def _client(workers: int, scheduler: str | None):
    """``dla.distributed.dask_client`` (shared with ``dla tune``)."""
    return dask_client(workers, scheduler)


def index_html(rows: list[dict[str, Any]], seconds: float, workers: str) -> str:
    n = {k: sum(r["status"] == k for r in rows) for k in ("pass", "fail", "error")}
    body = []
    for r in rows:
        link = f'<a href="{html.escape(r["report"])}">report</a>' if r["report"] else "—"
        body.append(f'<tr><td class="l">{html.escape(r["id"])}</td><td class="{r["status"]}">{r["status"]}</td>'
                    f'<td>{r["checks"] - r["failed"]}/{r["checks"]}</td><td>{r["seconds"]:.1f}</td><td>{link}</td>'
                    f'<td class="l"><pre>{html.escape(r["message"])}</pre></td></tr>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dla regression</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 2px 8px; text-align: right; vertical-align: top; }} .l {{ text-align: left; }}
.pass {{ color: #176f2c; }} .fail, .error {{ color: #b00020; font-weight: 600; }} pre {{ margin: 0; white-space: pre-wrap; }}
</style></head><body>
<h1>Regression: {n['pass']} passed, {n['fail']} failed, {n['error']} errors</h1>
<p>{len(rows)} scenarios in {seconds:.1f} s on {html.escape(workers)}.</p>
<table id="scenarios"><tr><th class="l">scenario</th><th>status</th><th>checks passed</th><th>seconds</th><th>report</th>
<th class="l">failures</th></tr>
{''.join(body)}
</table></body></html>
"""


def run_campaign(jobs: list[Job], out_dir: str | Path, workers: int = 2, scheduler: str | None = None,
                 on_done: Callable[[dict[str, Any]], None] | None = None,
                 task: Callable[[Job, str], dict[str, Any]] = run_job) -> list[dict[str, Any]]:
    """Run ``jobs`` on Dask; returns one outcome row per job (in job order).  ``task`` runs one
    job in a worker (default ``run_job``; a wrapper can add set-up or instrumentation)."""
    from dask.distributed import as_completed

    t0 = time.perf_counter()
    remove_stale_parts(out_dir)
    rows: dict[str, dict[str, Any]] = {}
    # the cluster is shut down *inside* atomic_dir, so that on Ctrl-C (or any error) no worker
    # can still be writing into the temporary folder while atomic_dir removes it
    with atomic_dir(out_dir, replace_if="regress.json") as tmp:
        (tmp / OWNER_FILE).write_text(f"{os.getpid()}\n")
        client, cluster = _client(workers, scheduler)
        futures: dict[Any, Job] = {}
        try:
            # at most one scenario per worker thread in flight: a worker that dies then takes
            # down only the scenario it was running (the scheduler would otherwise hand queued
            # scenarios to workers early, and they would be lost with it)
            slots = max(1, sum(client.nthreads().values()))
            pending = list(enumerate(jobs))

            def submit_next() -> Any:
                i, job = pending.pop(0)
                fut = client.submit(task, job, str(tmp), key=f"scenario-{i}-{job.id}", pure=False)
                futures[fut] = job
                return fut

            running = as_completed([submit_next() for _ in range(min(slots, len(pending)))])
            for fut in running:
                job = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker (KilledWorker) or a lost task
                    row = finished_row(job, tmp) or {
                        "id": job.id, "status": "error", "seconds": 0.0, "checks": 0, "failed": 0,
                        "source": str(job.scenario.path), "report": None,
                        "message": f"the worker running this scenario failed: {type(exc).__name__}: {exc}"}
                fut.release()  # forget the result: a later worker death must not make Dask recompute it
                del futures[fut]
                rows[job.id] = row
                if on_done:
                    on_done(row)
                if pending:
                    running.add(submit_next())
        finally:
            if futures:  # interrupted: stop what still runs before the folder is removed
                client.cancel(list(futures))
            client.close()
            if cluster is not None:
                cluster.close()
        _remove_parts(tmp)  # what a dead worker left half-written
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        ordered = [rows[j.id] for j in jobs]
        suites = []
        for row in ordered:
            jpath = tmp / row["id"] / "junit.xml"
            if row["status"] != "error" and jpath.is_file():
                import xml.etree.ElementTree as ET

                suites += list(ET.parse(jpath).getroot())
            else:
                suites.append(error_suite(row["id"], row["message"], row["seconds"]))
        seconds = time.perf_counter() - t0
        where = scheduler or f"a local Dask cluster of {workers} worker process(es)"
        write_bytes_atomic(tmp / "junit.xml", junit_xml(suites))
        write_bytes_atomic(tmp / "index.html", index_html(ordered, seconds, where).encode())
        write_bytes_atomic(tmp / "regress.json", json_text(
            {"seconds": seconds, "workers": where, "scenarios": ordered}).encode())
    return ordered


#: Written into a campaign's temporary folder: the pid of the ``dla regress`` that owns it.
OWNER_FILE = ".campaign.pid"


def _remove_parts(folder: Path) -> None:
    """Remove the hidden ``.*.part`` files and folders (unfinished atomic writes) in ``folder``."""
    for p in folder.glob(".*.part"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(out_dir: str | Path) -> list[Path]:
    """Remove the temporary folders of earlier campaigns into ``out_dir`` that were killed
    (SIGKILL, power loss: no chance to clean up), i.e. whose owner process is gone.  A folder
    of a campaign still running (its pid alive) is left alone."""
    out = Path(out_dir)
    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.glob(f".{out.name[:200]}.*.part"):
        try:
            pid = int((p / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not a campaign folder of ours (or being created right now)
        if not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
