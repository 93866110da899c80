"""Sweeps on Dask: the spec, the seeds, and a real local cluster that loses a worker and a task.

The cluster test starts two worker processes on the loopback interface, injects
a failing task (a stray file where its run folder must go), kills the worker
running a fit mid-run, and checks that every other fit completes exactly once,
that the rerun skips what is done and finishes the failed one, and that a
sweep's fit equals a single fit with the same seed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pas_bayes.cli import main
from pas_bayes.errors import SpecError
from pas_bayes.sweep import expand_tasks, load_sweep_spec, open_sweep, run_sweep
from pas_bayes.sweep.spec import spawned_seeds

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def tiny_data(tmp_path_factory) -> Path:
    from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation

    settings = SimulationSettings(seed=3, per_borough=12)
    return write_simulation(simulate_survey(settings), tmp_path_factory.mktemp("tiny"), settings)


def _sweep_file(folder: Path, data: Path, *, seeds: int = 3, extra: str = "") -> Path:
    return _write(folder / "sweep_tiny.toml", f"""
name = "tiny"
root_seed = 42
seeds = {seeds}
specs = ["{ROOT / 'models' / 'confidence.toml'}"]
data = ["{data}"]
[sampler]
draws = 40
tune = 60
chains = 2
[outputs]
probability_scale = false
{extra}""")


def test_seeds_are_spawned_from_the_root_and_keys_name_what_makes_a_result(tmp_path, tiny_data):
    tasks = expand_tasks(load_sweep_spec(_sweep_file(tmp_path, tiny_data)))
    expected = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(42).spawn(3)]
    assert [t.seed for t in tasks] == expected == [s for (s,) in spawned_seeds(42, 3)]
    assert len({t.task_id for t in tasks}) == len({t.key for t in tasks}) == 3
    # Expanding again gives the same tasks; threads do not change the key, draws do.
    again = expand_tasks(load_sweep_spec(_sweep_file(tmp_path, tiny_data, extra="")))
    assert [t.key for t in again] == [t.key for t in tasks]
    cores = tmp_path / "cores"
    cores.mkdir()
    with_cores = load_sweep_spec(_write(cores / "s.toml", _sweep_file(tmp_path, tiny_data).read_text()
                                        .replace("chains = 2", "chains = 2\ncores = 1")))
    assert [t.key for t in expand_tasks(with_cores)] == [t.key for t in tasks]
    longer = load_sweep_spec(_write(cores / "l.toml", _sweep_file(tmp_path, tiny_data).read_text()
                                    .replace("draws = 40", "draws = 41")))
    assert not {t.key for t in expand_tasks(longer)} & {t.key for t in tasks}
    # A changed data file is a different task.
    with open(tiny_data, "a") as f:
        f.write("\n")
    assert not {t.key for t in expand_tasks(load_sweep_spec(_sweep_file(tmp_path, tiny_data)))} & {
        t.key for t in tasks}


def test_simulation_sweeps_spawn_a_survey_seed_and_a_fit_seed(tmp_path):
    spec = _write(tmp_path / "s.toml", f"""
name = "sims"
root_seed = 9
specs = ["{ROOT / 'models' / 'confidence.toml'}"]
[simulations]
count = 4
per_borough = 20
""")
    tasks = expand_tasks(load_sweep_spec(spec))
    pairs = spawned_seeds(9, 4, words=2)
    assert [(t.simulation["seed"], t.seed) for t in tasks] == pairs
    assert [t.data_label for t in tasks] == ["sim-0000", "sim-0001", "sim-0002", "sim-0003"]
    assert "pas-bayes simulate --out DATA --seed" in tasks[0].fit_command("x")


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\nroot_seed = 1\nspecs = ["nope.toml"]', "model spec 'nope.toml' not found"),
    ('root_seed = 1\nspecs = ["{spec}"]\ncolour = 1', "unknown keys ['colour']"),
    ('specs = ["{spec}"]', "root_seed = None"),
    ('root_seed = 1\nspecs = ["{spec}"]\n[sampler]\nseed = 3', "the seed comes from root_seed"),
    ('root_seed = 1\nspecs = ["{spec}"]\nseeds = 2\n[simulations]\ncount = 3', "either [simulations] or data"),
    ('root_seed = 1\nspecs = ["{spec}"]\ndata = ["missing.csv"]', "data file 'missing.csv' not found"),
])
def test_bad_sweep_specs_are_refused_with_what_to_do(tmp_path, text, message):
    path = _write(tmp_path / "bad.toml", text.replace("{spec}", str(ROOT / "models" / "confidence.toml")))
    with pytest.raises(SpecError, match=None) as info:
        load_sweep_spec(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_the_bundled_sweep_specs_parse_and_name_existing_files():
    for path in sorted((ROOT / "models").glob("sweep_*.toml")):
        tasks = expand_tasks(load_sweep_spec(path))
        assert tasks, path


def test_by_run_figure_marks_failing_runs_and_states_agreement():
    from pas_bayes.plots.sweep_runs import plot_london_effects_by_run

    rows = []
    for i, top in enumerate(["engagement", "engagement", "visibility"]):
        for driver in ("engagement", "visibility"):
            mean = 1.0 if driver == top else 0.5
            rows.append({"task": f"t{i}", "spec": "confidence", "outcome": "confidence", "data": "d", "seed_index": i,
                         "seed": i, "level": "london", "borough": None, "ward": None, "driver": driver,
                         "scale": "logit", "mean": mean, "sd": 0.1, "q05": mean - 0.2, "q50": mean, "q95": mean + 0.2})
    result = plot_london_effects_by_run(pd.DataFrame(rows), failing={"t2"})
    title = result.figure.axes[0].get_title(loc="left")
    assert "largest London effect in 2 of 3 runs" in title and "1 runs fail diagnostics" in title
    assert len(result.numbers) == 6
    result = plot_london_effects_by_run(pd.DataFrame([r for r in rows if r["task"] != "t0"]))
    assert "do not agree" in result.figure.axes[0].get_title(loc="left")


@pytest.fixture(scope="module")
def cluster():
    import dask
    from distributed import LocalCluster

    with (dask.config.set({"distributed.worker.daemon": False}),
          LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                       dashboard_address="127.0.0.1:0") as local):
        yield local


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "sweep_log.jsonl").read_text().splitlines()]


def test_a_sweep_survives_a_killed_worker_and_a_failing_task_and_resumes(cluster, tmp_path, tiny_data):
    from distributed import Client

    sweep = load_sweep_spec(_sweep_file(tmp_path, tiny_data))
    tasks = expand_tasks(sweep)
    out = tmp_path / "sweep"
    (out / "runs").mkdir(parents=True)
    blocker = out / "runs" / tasks[2].task_id
    blocker.write_text("a stray file where a run folder must go\n")  # the injected failure

    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(
        result=run_sweep(sweep, out, scheduler=cluster.scheduler_address, progress=None, progress_every=2)))
    thread.start()
    killed = None
    # Only to watch and kill: not the default client, whose set-up and restoring of dask's
    # global scheduler would interleave with the sweep's own client in the other thread.
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        deadline = time.time() + 240
        while killed is None and time.time() < deadline and thread.is_alive():
            executing = client.run(lambda dask_worker: [str(t.key) for t in dask_worker.state.executing])
            busy = [address for address, keys in executing.items() if keys]
            if busy:
                time.sleep(3)  # well into the fit
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed = pid
            time.sleep(0.5)
    thread.join(timeout=600)
    assert killed is not None, "no fit was ever seen running"
    result = outcome["result"]
    assert set(result.completed) == {tasks[0].task_id, tasks[1].task_id}
    assert list(result.failed) == [tasks[2].task_id] and "exists" in result.failed[tasks[2].task_id]
    failure = json.loads((out / "failures" / f"{tasks[2].task_id}.json").read_text())
    assert failure["error"] == "RunFolderError" and str(blocker) in failure["message"]
    runs = pd.read_csv(out / "summary" / "runs.csv")
    assert runs.set_index("task")["status"].to_dict() == {tasks[0].task_id: "done", tasks[1].task_id: "done",
                                                          tasks[2].task_id: "failed"}

    # Rerun through the command line on its own local cluster: two skipped, the failed one done.
    blocker.unlink()
    assert main(["sweep", str(_sweep_file(tmp_path, tiny_data)), "--out", str(out), "--workers", "1",
                 "--quiet"]) == 0
    assert not (out / "failures" / f"{tasks[2].task_id}.json").exists()
    starts = [e for e in _events(out) if e["event"] == "start"]
    assert [(s["skipped"], s["to_run"]) for s in starts] == [(0, 3), (2, 1)]
    done = [e["task"] for e in _events(out) if e["event"] == "done"]
    assert sorted(done) == sorted(t.task_id for t in tasks)  # each fit completed exactly once
    again = run_sweep(sweep, out, progress=None)
    assert again.finished and len(again.skipped) == 3 and not again.completed

    # The combined results: one table of every run's effects, one lazy dataset.
    effects = pd.read_csv(out / "summary" / "effects.csv")
    assert set(effects["task"]) == {t.task_id for t in tasks}
    assert (out / "summary" / "london_effects_by_run.png").is_file()
    data = open_sweep(out, var_names=["beta", "intercept"])
    assert data.sizes["run"] == 3 and data["beta"].chunks is not None  # dask-backed, not loaded
    assert set(data["seed"].values) == {t.seed for t in tasks}

    # Each worker process compiled into a directory of its own.
    results = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    dirs = {r["worker"]: r["compiledir"] for r in results}
    assert len(set(dirs.values())) == len(dirs)
    assert all("pas_bayes_workers" in d for d in dirs.values())

    # A sweep's fit equals a single fit of the same spec, data and seed.
    from pas_bayes.fit import fit_run, load_run
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    spec = load_spec(ROOT / "models" / "confidence.toml").with_sampler(draws=40, tune=60, chains=2,
                                                                          seed=tasks[0].seed)
    single = fit_run(spec, read_survey(tiny_data, spec), tmp_path / "single", progressbar=False, loo=False)
    a = load_run(single).idata.posterior["beta"].values
    b = load_run(out / "runs" / tasks[0].task_id).idata.posterior["beta"].values
    np.testing.assert_array_equal(a, b)


def test_importing_the_sweep_package_leaves_pytensor_unimported():
    """A worker unpickles sweep tasks before its compile directory is set: PyTensor must wait."""
    import subprocess
    import sys

    code = "import sys, pas_bayes.sweep; sys.exit(1 if 'pytensor' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
