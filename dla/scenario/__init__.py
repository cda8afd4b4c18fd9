"""Scenarios: one YAML file describes a study; ``run_to_dir`` runs it and writes its reports.

Data flows one way: ``load`` (YAML → validated ``Scenario`` with line numbers) → ``build``
(network, hardware, inputs, quantized variants) → ``runner`` (every mode, cycles, STEP/CROSS,
RTL, checks → ``summary``) → ``outputs`` (report.html, layers.csv, summary.json, junit.xml).
``regress`` runs many on Dask.  The format is ``schema.Scenario`` (docs/scenarios.md).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from dla.scenario.load import LoadedScenario, ScenarioError, expand_matrix, load_scenario, scenario_from_mapping
from dla.scenario.runner import ScenarioResult, run_scenario
from dla.scenario.schema import Scenario


def run_to_dir(scenario: str | Path | LoadedScenario, out_dir: str | Path,
               progress: Callable[[str], None] | None = None) -> ScenarioResult:
    """Run a scenario (path, shipped name or loaded) and write its reports into ``out_dir``.

    Nothing is left in ``out_dir`` if the run fails; an earlier report there is replaced."""
    from dla.fileio import atomic_dir
    from dla.scenario.outputs import write_outputs

    ls = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    with atomic_dir(out_dir, replace_if="summary.json") as tmp:
        with tempfile.TemporaryDirectory(prefix="dla-scenario-") as work:
            result = run_scenario(ls, Path(work), progress)
            if progress:
                progress("writing reports")
            write_outputs(result, tmp)  # in the work folder's lifetime: it copies tune's outputs from there
    return result


__all__ = ["LoadedScenario", "Scenario", "ScenarioError", "ScenarioResult", "expand_matrix", "load_scenario",
           "run_scenario", "run_to_dir", "scenario_from_mapping"]
