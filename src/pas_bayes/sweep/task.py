"""What a worker does with one task: fit, write the run folder, return its path and a small result.

Nothing large travels through the scheduler: the posterior stays in the run
folder, and the task returns a dict of a few numbers. The layout of a sweep
folder::

    runs/<task>/        the run folder (see :mod:`pas_bayes.fit`)
    data/<task>/        the simulated survey and its truth (simulation sweeps), or, for
                        calibration, the survey drawn from the prior and that draw
    effects/<task>.csv  the run's tidy driver effects, with the task's columns
    recovery/<task>.csv simulation sweeps: every parameter's estimate beside its truth
    runs/<task>/sbc_ranks.json  calibration sweeps: the ranks of the true values
    results/<task>.json the task's result: written last, so it marks the task done
    failures/<task>.json why the task's last attempt failed (removed when it succeeds)

PyTensor compiles to a cache directory that is not safe to share between
processes, so each worker process uses its own (:func:`use_own_compiledir`,
called by :class:`OwnCompiledir` when the worker starts, before anything
imports PyTensor).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pas_bayes.atomic import atomic_write_text
from pas_bayes.sweep.spec import SweepTask

try:  # a worker plugin when dask is there; the task code itself does not need it
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - dask is a dependency
    WorkerPlugin = object  # type: ignore[assignment,misc]


def _base_compiledir() -> Path:
    return Path(os.environ.get("PAS_BAYES_COMPILEDIR_ROOT", Path.home() / ".pytensor" / "pas_bayes_workers"))


def use_own_compiledir(worker_name: str) -> str:
    """Point PyTensor at a compile directory of this worker alone.

    Must run before PyTensor is imported in this process; when it already was, the
    directory in use is returned unchanged (and the task records it).

    Returns
    -------
    str
        The compile directory PyTensor will use (or uses).
    """
    if "pytensor" in sys.modules:
        import pytensor

        return str(pytensor.config.compiledir)
    path = _base_compiledir() / re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{os.uname().nodename}-{worker_name}")
    path.mkdir(parents=True, exist_ok=True)
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("compiledir=")]
    os.environ["PYTENSOR_FLAGS"] = ",".join([*flags, f"compiledir={path}"])
    return str(path)


class OwnCompiledir(WorkerPlugin):
    """Dask worker plugin: give each worker process its own PyTensor compile directory."""

    name = "pas-bayes-own-compiledir"

    def setup(self, worker: Any) -> None:
        """Called in the worker process when it starts (and when it restarts)."""
        use_own_compiledir(str(worker.name))


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"


def _diagnostics_summary(report: Any) -> dict[str, Any]:
    checks = {c.name: c for c in report.checks}

    def value(name: str) -> float | None:
        c = checks.get(name)
        return None if c is None else float(c.value)

    return {
        "passed": bool(report.passed),
        "failing": [f"{c.name} {c.value:.4g} (needs {c.threshold})" for c in report.checks
                    if not c.passed and c.blocking],
        "warnings": [f"{c.name} {c.value:.4g} (needs {c.threshold})" for c in report.checks
                     if not c.passed and not c.blocking],
        "checks": {name: value(name) for name in checks},
    }


def run_task(task: SweepTask, out_dir: str, cores: int | None = None) -> dict[str, Any]:
    """Fit one task into ``out_dir`` and return its result (also written to ``results/<task>.json``).

    A run folder already there from an earlier attempt (a worker lost after the fit
    but before the result was written) is used, not fitted again.

    Parameters
    ----------
    task
        The task.
    out_dir
        The sweep folder.
    cores
        Threads for the chains (None: the spec's).

    Returns
    -------
    dict
        task id, key, run folder, effects file, diagnostics summary, timings, worker,
        compile directory.
    """
    from pas_bayes.memory import one_block_at_a_time

    # A fit reads its own large posterior arrays (dask arrays) in this process: inside a
    # Dask worker they would otherwise be sent to the cluster's scheduler, which a task
    # has no client for.
    with one_block_at_a_time():
        return _run_task_here(task, out_dir, cores)


def _run_task_here(task: SweepTask, out_dir: str, cores: int | None) -> dict[str, Any]:
    worker = _worker_name()
    compiledir = use_own_compiledir(worker)
    # Imported here, after the compile directory is set.
    from pas_bayes.diagnostics import diagnose
    from pas_bayes.effects import driver_effects
    from pas_bayes.fit import fit_run, load_run
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    # A sweep's progress lines say what each fit did; PyMC's per-fit chatter would drown them.
    logging.getLogger("pymc").setLevel(logging.WARNING)
    out = Path(out_dir)
    run_dir = out / "runs" / task.task_id
    started = time.time()
    spec = load_spec(task.spec_path).with_sampler(**task.sampler, seed=task.seed, cores=cores)
    if task.simulation is not None:
        data_path = _simulate(task, out / "data" / task.task_id, spec)
    else:
        data_path = Path(task.data_path or "")
    reused = (run_dir / "provenance.json").is_file()
    if not reused:
        survey = read_survey(data_path, spec)
        if task.data_sha256 is not None and survey.sha256 != task.data_sha256:
            raise RuntimeError(f"{data_path} changed since the sweep started (SHA-256 {survey.sha256[:12]} "
                               f"vs {task.data_sha256[:12]}). What to do: rerun the sweep")
        fit_run(spec, survey, run_dir, progressbar=False, loo=task.loo,
                command=["pas-bayes", "sweep", f"task {task.task_id}"])
    run = load_run(run_dir)
    if run.provenance.get("spec_sha256") != spec.digest() and _without_cores(run.spec) != _without_cores(spec):
        raise RuntimeError(f"{run_dir} holds a different fit than task {task.task_id}. What to do: move it "
                           "away and rerun the sweep")
    effects = driver_effects(run.idata, probability_scale=task.probability_scale)
    effects.insert(0, "task", task.task_id)
    for i, (column, value) in enumerate([("spec", task.spec_name), ("outcome", task.outcome),
                                         ("data", task.data_label), ("seed_index", task.seed_index),
                                         ("seed", task.seed)], start=1):
        effects.insert(i, column, value)
    effects_path = out / "effects" / f"{task.task_id}.csv"
    atomic_write_text(effects_path, effects.to_csv(index=False, float_format="%.6g"), force=True)
    report = diagnose(run.idata, run.provenance.get("loo"), run.per_parameter)
    extra: dict[str, Any] = {}
    sim = task.simulation or {}
    if sim.get("truth_from") == "prior":
        import xarray as xr

        from pas_bayes.calibration import sbc_ranks, write_ranks

        prior_draw = xr.open_zarr(data_path.parent / "prior_draw.zarr", consolidated=False, chunks=None).load()
        extra["sbc_ranks"] = str(write_ranks(run_dir, sbc_ranks(run.idata, prior_draw, spec)))
    elif task.simulation is not None:
        from pas_bayes.recovery import parameter_recovery

        truth = json.loads((data_path.parent / "truth.json").read_text())
        table = parameter_recovery(run.idata, truth, task.outcome)
        table.insert(0, "task", task.task_id)
        recovery_path = out / "recovery" / f"{task.task_id}.csv"
        atomic_write_text(recovery_path, table.to_csv(index=False, float_format="%.6g"), force=True)
        extra["recovery"] = str(recovery_path)
    result = {
        "task": task.task_id, "key": task.key, "run": str(run_dir), "effects": str(effects_path),
        "data_file": str(data_path), "data_sha256": run.provenance.get("data_sha256"),
        "rows_modelled": run.provenance.get("rows_modelled"), "seed": task.seed,
        "sampling_seconds": run.provenance.get("sampling_seconds"),
        "task_seconds": round(time.time() - started, 2), "reused_run_folder": reused,
        "diagnostics": _diagnostics_summary(report), "worker": worker, "pid": os.getpid(),
        "compiledir": compiledir, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra,
    }
    atomic_write_text(out / "results" / f"{task.task_id}.json", json.dumps(result, indent=1) + "\n", force=True)
    failure = out / "failures" / f"{task.task_id}.json"
    failure.unlink(missing_ok=True)
    return result


def _without_cores(spec: Any) -> dict[str, Any]:
    table = spec.to_dict()
    table["sampler"].pop("cores", None)
    return table


def _simulate(task: SweepTask, folder: Path, spec: Any) -> Path:
    from pas_bayes.simulate import settings_from_record, simulate_survey, survey_filename, write_simulation

    sim = task.simulation or {}
    settings = settings_from_record(sim)
    path = folder / survey_filename(settings)
    if sim.get("truth_from") == "prior":
        from pas_bayes.calibration import prior_survey

        if path.is_file() and (folder / "sbc_simulation.json").is_file():
            return path  # the same seeds make the same draw: an earlier attempt's is as good
        return prior_survey(spec, settings, folder, seed=int(sim["prior_seed"]))
    if path.is_file() and (folder / "truth_effects.csv").is_file():
        return path  # the same seed makes the same survey: an earlier attempt's is as good
    return write_simulation(simulate_survey(settings), folder, settings, force=True)


def failure_record(task: SweepTask, error: BaseException) -> dict[str, Any]:
    """What a failed task's ``failures/<task>.json`` holds: the error and where it came from."""
    return {
        "task": task.task_id, "key": task.key, "error": type(error).__name__, "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
