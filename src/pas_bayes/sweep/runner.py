"""Run a sweep on Dask: a local cluster on this machine, or an existing one by its address.

One Dask task is one fit (:func:`pas_bayes.sweep.task.run_task`). The runner
works out which tasks are already finished (their ``results/<task>.json`` holds
the same key and their run folder is there), submits the rest, shows
done / running / waiting / failed as they go, records failures without
stopping the others, appends every event to ``sweep_log.jsonl``, and finally
writes the combined summary (:mod:`pas_bayes.sweep.summary`).

A worker that dies mid-fit (killed, out of memory) loses only its current fit:
Dask gives the task to another worker, and the run folder, written atomically,
is never half there.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pas_bayes.atomic import atomic_write_text
from pas_bayes.sweep.spec import SweepSpec, SweepTask, expand_tasks
from pas_bayes.sweep.task import OwnCompiledir, failure_record, run_task


@dataclass
class SweepOutcome:
    """What a sweep did this time."""

    tasks: list[SweepTask]
    skipped: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def finished(self) -> bool:
        """True when every task of the sweep has a result."""
        return not self.failed and len(self.skipped) + len(self.completed) == len(self.tasks)


def is_done(out: Path, task: SweepTask) -> bool:
    """A task is done when its result file records the same key and its run folder exists."""
    result = out / "results" / f"{task.task_id}.json"
    if not result.is_file() or not (out / "runs" / task.task_id / "provenance.json").is_file():
        return False
    try:
        return json.loads(result.read_text()).get("key") == task.key
    except json.JSONDecodeError:
        return False


def _log(out: Path, event: str, **fields: Any) -> None:
    # Appended line by line by this process only; a crash loses at most the last line.
    with open(out / "sweep_log.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": event, **fields}) + "\n")


@contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new local cluster.

    The local cluster listens on the loopback interface only, runs one fit at a time
    per worker process, and lets workers start child processes (PyMC's own sampler
    does). It is closed on exit; an existing cluster is left running.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    n = workers or max(1, (os.cpu_count() or 2) // 2)
    with (dask.config.set({"distributed.worker.daemon": False}),
          LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                       dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster,
          Client(cluster) as client):
        yield client


def _executing_on(dask_worker: Any) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def _executing(client: Any) -> set[str]:
    """Keys executing now on any worker (not merely queued there)."""
    try:
        return {key for keys in client.run(_executing_on).values() for key in keys}
    except Exception:  # a worker dying mid-call: count nothing this time rather than fail the sweep
        return set()


def _cores_per_fit(sweep: SweepSpec, scheduler: str | None, workers: int | None) -> int | None:
    if "cores" in sweep.sampler:
        return int(sweep.sampler["cores"])
    if scheduler:
        return None  # the spec's own; see the README on sizing remote workers
    n = workers or max(1, (os.cpu_count() or 2) // 2)
    return max(1, (os.cpu_count() or 2) // n)


def write_manifest(out: Path, sweep: SweepSpec, tasks: list[SweepTask]) -> None:
    """``sweep.json`` (the sweep spec and every task with the command that reruns it alone)."""
    record = {"sweep": sweep.to_dict(),
              "tasks": [{**t.record(), "run": f"runs/{t.task_id}",
                         "rerun_alone": t.fit_command(out / "single" / t.task_id)} for t in tasks]}
    atomic_write_text(out / "sweep.json", json.dumps(record, indent=1) + "\n", force=True)


def run_sweep(sweep: SweepSpec, out: str | Path, *, scheduler: str | None = None, workers: int | None = None,
              progress: Callable[[str], None] | None = print, progress_every: float = 30.0,
              summarise: bool = True) -> SweepOutcome:
    """Run every unfinished task of ``sweep`` into ``out`` and write the combined summary.

    Parameters
    ----------
    sweep
        The sweep spec.
    out
        The sweep folder; rerunning into it resumes.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); None: a local cluster.
    workers
        Worker processes of the local cluster (default: half the cores, at least 1).
    progress
        Where status lines go (None: nowhere).
    progress_every
        Seconds between status lines while nothing finishes.
    summarise
        Write ``summary/`` at the end.

    Returns
    -------
    SweepOutcome
        Tasks skipped (already done), completed now, and failed with why.
    """
    from distributed import wait

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    clock = time.perf_counter()
    tasks = expand_tasks(sweep)
    write_manifest(out, sweep, tasks)
    outcome = SweepOutcome(tasks=tasks)
    todo: list[SweepTask] = []
    for task in tasks:
        if is_done(out, task):
            outcome.skipped.append(task.task_id)
        else:
            todo.append(task)
    say(f"Sweep {sweep.name!r}: {len(tasks)} fits; {len(outcome.skipped)} already done (skipped), "
        f"{len(todo)} to run")
    _log(out, "start", tasks=len(tasks), skipped=len(outcome.skipped), to_run=len(todo))
    if todo:
        cores = _cores_per_fit(sweep, scheduler, workers)
        with dask_client(scheduler, workers) as client:
            client.register_plugin(OwnCompiledir())
            futures = {client.submit(run_task, task, str(out.resolve()), cores, key=f"pas-bayes-fit-{task.key}",
                                     pure=False): task for task in todo}
            say(f"Running on {len(client.scheduler_info().get('workers', {}))} Dask workers "
                f"({scheduler or 'local cluster on 127.0.0.1'}), {cores or 'spec'} cores a fit")
            pending = set(futures)
            while pending:
                try:
                    finished, pending = wait(pending, timeout=progress_every, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    finished = set()
                for future in finished:
                    task = futures[future]
                    if future.status == "finished":
                        result = future.result()
                        outcome.completed.append(task.task_id)
                        _log(out, "done", task=task.task_id, worker=result["worker"],
                             seconds=result["task_seconds"], diagnostics_passed=result["diagnostics"]["passed"])
                        verdict = ("diagnostics pass" if result["diagnostics"]["passed"] else
                                   "diagnostics FAIL: " + "; ".join(result["diagnostics"]["failing"]))
                        say(f"  done   {task.task_id} on worker {result['worker']} "
                            f"({result['task_seconds']:.0f} s; {verdict})")
                    else:
                        error = future.exception()
                        record = failure_record(task, error)
                        atomic_write_text(out / "failures" / f"{task.task_id}.json",
                                          json.dumps(record, indent=1) + "\n", force=True)
                        outcome.failed[task.task_id] = f"{record['error']}: {record['message']}"
                        _log(out, "failed", task=task.task_id, error=record["error"], message=record["message"])
                        say(f"  FAILED {task.task_id}: {record['error']}: {record['message']}")
                running = sum(1 for f in pending if f.key in _executing(client))
                say(f"  [{time.strftime('%H:%M:%S')}] done {len(outcome.completed) + len(outcome.skipped)}"
                    f"/{len(tasks)} | running {running} | waiting {len(pending) - running} | "
                    f"failed {len(outcome.failed)}")
    outcome.wall_seconds = time.perf_counter() - clock
    _log(out, "end", completed=len(outcome.completed), failed=len(outcome.failed),
         wall_seconds=round(outcome.wall_seconds, 1))
    if summarise:
        from pas_bayes.sweep.summary import write_summary

        write_summary(out, tasks, failed=outcome.failed)
    return outcome
