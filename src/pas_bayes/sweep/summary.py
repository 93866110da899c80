"""The combined results of a sweep: one table of every run, one of every effect, one lazy dataset.

``summary/`` in the sweep folder holds::

    runs.csv                      one row per task: status, diagnostics, timings, worker, error
    effects.csv                   every run's tidy driver effects, with task, spec, data, seed columns
    london_effects_by_run.png/.csv the London effects of every run side by side
    recovery.csv                  simulation sweeps: each effect beside its true value
    recovery_coverage.csv         ... and how often the 90% intervals cover it, by level and driver
    recovery_parameters.csv       simulation sweeps: every parameter (SDs and deviations too) beside its truth
    recovery_scorecard.csv        ... 50%/90% coverage, borough-slope correlation, false-positive claims
    sbc_ranks.csv                 calibration sweeps: the rank of every true value in every simulation
    sbc_summary.csv               ... each quantity's rank mean/SD and its uniformity verdict
    sbc_ecdf.png/.csv             ... the ECDF differences with simultaneous bands

:func:`open_sweep` opens the posteriors of every finished run as one xarray
dataset along a ``run`` dimension, lazily (dask arrays over the zarr stores),
so a sweep of hundreds of runs is browsed without loading it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pas_bayes.atomic import atomic_write_text
from pas_bayes.sweep.spec import SweepTask

RUN_COLUMNS = ("task", "spec", "outcome", "data", "seed_index", "seed", "status", "diagnostics", "failing_checks",
               "max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences", "sampling_seconds", "task_seconds",
               "worker", "run", "error")


def runs_table(out: str | Path, tasks: list[SweepTask], failed: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per task: ``done``, ``failed`` (with the error) or ``not run``, and its diagnostics.

    Parameters
    ----------
    out
        The sweep folder.
    tasks
        The sweep's tasks.
    failed
        Errors of this invocation's failed tasks (otherwise read from ``failures/``).
    """
    out = Path(out)
    failed = failed or {}
    rows = []
    for task in tasks:
        row = {"task": task.task_id, "spec": task.spec_name, "outcome": task.outcome, "data": task.data_label,
               "seed_index": task.seed_index, "seed": task.seed, "run": f"runs/{task.task_id}"}
        result_file = out / "results" / f"{task.task_id}.json"
        failure_file = out / "failures" / f"{task.task_id}.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else None
        if result is not None and result.get("key") == task.key:
            checks = result["diagnostics"]["checks"]
            row.update(status="done", diagnostics="pass" if result["diagnostics"]["passed"] else "FAIL",
                       failing_checks="; ".join(result["diagnostics"]["failing"]),
                       max_r_hat=checks.get("R-hat (max)"), min_ess_bulk=checks.get("bulk ESS (min)"),
                       min_ess_tail=checks.get("tail ESS (min)"), divergences=checks.get("divergent transitions"),
                       sampling_seconds=result.get("sampling_seconds"), task_seconds=result.get("task_seconds"),
                       worker=result.get("worker"))
        elif task.task_id in failed or failure_file.is_file():
            error = failed.get(task.task_id)
            if error is None:
                record = json.loads(failure_file.read_text())
                error = f"{record['error']}: {record['message']}"
            row.update(status="failed", error=error)
        else:
            row.update(status="not run")
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=list(RUN_COLUMNS))


def effects_table(out: str | Path, tasks: list[SweepTask]) -> pd.DataFrame:
    """Every finished run's tidy effects in one table (see :func:`pas_bayes.effects.driver_effects`)."""
    out = Path(out)
    frames = [pd.read_csv(f, dtype={"borough": str, "ward": str}, keep_default_na=False, na_values=[""])
              for t in tasks if (f := out / "effects" / f"{t.task_id}.csv").is_file()
              and (out / "results" / f"{t.task_id}.json").is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def recovery_table(out: str | Path, tasks: list[SweepTask], effects: pd.DataFrame) -> pd.DataFrame:
    """Simulation sweeps: every log-odds estimate beside its true value, and whether its 90% interval covers it."""
    out = Path(out)
    frames = []
    for task in tasks:
        truth_file = out / "data" / task.task_id / "truth_effects.csv"
        if task.simulation is None or not truth_file.is_file() or effects.empty:
            continue
        truth = pd.read_csv(truth_file, dtype={"borough": str, "ward": str}, keep_default_na=False, na_values=[""])
        truth = truth[(truth["outcome"] == task.outcome) & (truth["scale"] == "logit")]
        est = effects[(effects["task"] == task.task_id) & (effects["scale"] == "logit")]
        keys = ["level", "borough", "ward", "driver"]
        merged = est.merge(truth[[*keys, "value"]].rename(columns={"value": "truth"}), on=keys, how="inner")
        frames.append(merged)
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    table["error"] = table["mean"] - table["truth"]
    table["covered90"] = (table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"])
    return table


def recovery_coverage(recovery: pd.DataFrame) -> pd.DataFrame:
    """Share of 90% intervals covering the truth, mean error and RMSE, by level and driver."""
    if recovery.empty:
        return pd.DataFrame()
    return (recovery.groupby(["level", "driver"], sort=False)
            .agg(estimates=("truth", "size"), runs=("task", "nunique"), coverage90=("covered90", "mean"),
                 mean_error=("error", "mean"), rmse=("error", lambda e: float(np.sqrt(np.mean(e ** 2)))))
            .reset_index())


def write_summary(out: str | Path, tasks: list[SweepTask], *, failed: dict[str, str] | None = None) -> Path:
    """Write ``summary/`` (tables and the by-run figure) from whatever runs are finished.

    Rewritten on every sweep invocation: it describes the folder as it is now.
    """
    from pas_bayes.plots.sweep_runs import plot_london_effects_by_run

    folder = Path(out) / "summary"
    folder.mkdir(parents=True, exist_ok=True)
    runs = runs_table(out, tasks, failed)
    atomic_write_text(folder / "runs.csv", runs.to_csv(index=False, float_format="%.6g"), force=True)
    effects = effects_table(out, tasks)
    atomic_write_text(folder / "effects.csv", effects.to_csv(index=False, float_format="%.6g"), force=True)
    if not effects.empty:
        failing = set(runs.loc[runs["diagnostics"] == "FAIL", "task"])
        plot_london_effects_by_run(effects, failing).save(folder / "london_effects_by_run.png", force=True)
    recovery = recovery_table(out, tasks, effects)
    if not recovery.empty:
        atomic_write_text(folder / "recovery.csv", recovery.to_csv(index=False, float_format="%.6g"), force=True)
        atomic_write_text(folder / "recovery_coverage.csv",
                          recovery_coverage(recovery).to_csv(index=False, float_format="%.4g"), force=True)
    parameters = parameter_table(out, tasks)
    if not parameters.empty:
        from pas_bayes.recovery import recovery_scorecard

        atomic_write_text(folder / "recovery_parameters.csv", parameters.to_csv(index=False, float_format="%.6g"),
                          force=True)
        atomic_write_text(folder / "recovery_scorecard.csv",
                          recovery_scorecard(parameters).to_csv(index=False, float_format="%.4g"), force=True)
    ranks = sbc_rank_table(out, tasks)
    if not ranks.empty:
        from pas_bayes.calibration import sbc_summary
        from pas_bayes.plots.sbc_ecdf import plot_sbc_ecdf

        summary = sbc_summary(ranks)
        atomic_write_text(folder / "sbc_ranks.csv", ranks.to_csv(index=False), force=True)
        atomic_write_text(folder / "sbc_summary.csv", summary.to_csv(index=False, float_format="%.4g"), force=True)
        plot_sbc_ecdf(ranks, summary).save(folder / "sbc_ecdf.png", force=True)
    return folder


def _finished(out: Path, task: SweepTask) -> dict | None:
    result_file = out / "results" / f"{task.task_id}.json"
    if not result_file.is_file():
        return None
    result = json.loads(result_file.read_text())
    return result if result.get("key") == task.key else None


def parameter_table(out: str | Path, tasks: list[SweepTask]) -> pd.DataFrame:
    """Simulation sweeps: every finished fit's parameter recovery rows (:mod:`pas_bayes.recovery`)."""
    out = Path(out)
    # Read from the sweep's own layout, not the paths in the results: the folder may have moved.
    paths = [out / "recovery" / f"{t.task_id}.csv" for t in tasks if _finished(out, t) is not None]
    frames = [pd.read_csv(p, dtype={"borough": str, "driver": str}, keep_default_na=False, na_values=["NaN", "nan"])
              for p in paths if p.is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sbc_rank_table(out: str | Path, tasks: list[SweepTask]) -> pd.DataFrame:
    """Calibration sweeps: the ranks of every finished simulation (:func:`pas_bayes.calibration.rank_table`)."""
    from pas_bayes.calibration import rank_table

    out = Path(out)
    records = []
    for t in tasks:
        result = _finished(out, t)
        path = out / "runs" / t.task_id / "sbc_ranks.json"
        if result is not None and path.is_file():
            record = json.loads(path.read_text())
            records.append({"task": t.task_id, **record})
    return rank_table(records) if records else pd.DataFrame()


def open_sweep(out: str | Path, *, group: str = "posterior", var_names: list[str] | None = None) -> xr.Dataset:
    """The posteriors of every finished run of a sweep as one lazily loaded dataset.

    Parameters
    ----------
    out
        The sweep folder.
    group
        DataTree group to open (``posterior``, ``sample_stats``, ...).
    var_names
        Variables to keep (default: those every run has).

    Returns
    -------
    xarray.Dataset
        Dask-backed, with a ``run`` dimension whose coordinate is the task id and
        ``spec``, ``data``, ``seed`` coordinates along it. Runs of different
        lengths are padded with NaN along ``draw``.
    """
    # Imported here: pas_bayes.model imports PyTensor, which a Dask worker must not import
    # before its own compile directory is set (pas_bayes.sweep.task.use_own_compiledir).
    from pas_bayes.model import with_ward_effects

    out = Path(out)
    manifest = json.loads((out / "sweep.json").read_text())
    datasets, tasks = [], []
    for task in manifest["tasks"]:
        if not (out / "results" / f"{task['task_id']}.json").is_file():
            continue
        store = out / "runs" / task["task_id"] / "posterior.zarr"
        ds = xr.open_zarr(store, group=group, chunks={}, consolidated=False)
        datasets.append(with_ward_effects(ds) if group == "posterior" else ds)
        tasks.append(task)
    if not datasets:
        raise FileNotFoundError(f"{out}: no finished runs yet. What to do: run `pas-bayes sweep` into it first")
    common = set.intersection(*(set(ds.data_vars) for ds in datasets))
    keep = [v for v in (var_names or sorted(common))]
    missing = sorted(set(keep) - common)
    if missing:
        raise KeyError(f"{out}: {missing} are not in every run (variables in all runs: {sorted(common)})")
    combined = xr.concat([ds[keep] for ds in datasets], dim="run", join="outer", coords="minimal",
                         compat="override", combine_attrs="drop")
    return combined.assign_coords(run=[t["task_id"] for t in tasks],
                                  spec=("run", [t["spec_name"] for t in tasks]),
                                  data=("run", [Path(t["data_path"]).stem if t["data_path"] else
                                                f"sim-{t['seed_index']:04d}" for t in tasks]),
                                  seed=("run", [t["seed"] for t in tasks]))
