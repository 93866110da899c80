"""Sweep speed-up: the same fits with 1 and with more local Dask workers, side by side in one run.

Writes ``benchmarks/results/sweep_speedup.csv`` and ``.md``: for each number of
workers, the wall time of the whole sweep, the summed time of its fits, the
speed-up over one worker, and whether every fit's draws equal those of the
one-worker sweep (they should: a fit's seed does not depend on where it runs).
Nothing here asserts a time; the table is the result.

    .venv/bin/python benchmarks/sweep_speedup.py [--fits 4] [--per-borough 100] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from results_table import markdown_table

from pas_bayes.fit import load_run
from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation
from pas_bayes.sweep import expand_tasks, load_sweep_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=4)
    parser.add_argument("--per-borough", type=int, default=100)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        settings = SimulationSettings(seed=31, per_borough=args.per_borough)
        data = write_simulation(simulate_survey(settings), tmp / "data", settings)
        spec_file = tmp / "sweep_bench.toml"
        spec_file.write_text(f"""name = "bench"
root_seed = 7
seeds = {args.fits}
specs = ["{ROOT / 'models' / 'confidence.toml'}"]
data = ["{data}"]
[sampler]
draws = {args.draws}
tune = {args.tune}
chains = {args.chains}
[outputs]
probability_scale = false
""")
        survey_rows = len(pd.read_csv(data))
        sweep = load_sweep_spec(spec_file)
        tasks = expand_tasks(sweep)
        for workers in args.workers:
            out = tmp / f"workers{workers}"
            outcome = run_sweep(sweep, out, workers=workers, progress=None)
            runs = pd.read_csv(out / "summary" / "runs.csv")
            draws = {t.task_id: load_run(out / "runs" / t.task_id).idata.posterior["beta"].values for t in tasks}
            if first is None:
                first = (outcome.wall_seconds, draws)
            same = all(np.array_equal(draws[k], first[1][k]) for k in draws)
            rows.append({
                "workers": workers, "cores_per_fit": max(1, (os.cpu_count() or 2) // workers),
                "fits": len(tasks), "survey_rows": survey_rows,
                "wall_s": round(outcome.wall_seconds, 1), "sum_of_fit_s": round(float(runs["task_seconds"].sum()), 1),
                "sampling_s_sum": round(float(runs["sampling_seconds"].sum()), 1),
                "speedup_vs_first": round(first[0] / outcome.wall_seconds, 2),
                "draws_equal_to_first": same, "failed": len(outcome.failed),
                "diagnostics_pass": int((runs["diagnostics"] == "pass").sum()),
            })
    table = pd.DataFrame(rows)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    table.to_csv(results / "sweep_speedup.csv", index=False)
    note = (f"{args.fits} fits of models/confidence.toml on one synthetic survey ({args.per_borough} a borough), "
            f"{args.chains} chains x ({args.tune} + {args.draws}), os.cpu_count() = {os.cpu_count()}.\n\n"
            "Command: `.venv/bin/python benchmarks/sweep_speedup.py "
            f"--fits {args.fits} --per-borough {args.per_borough} --workers {' '.join(map(str, args.workers))}`\n\n")
    (results / "sweep_speedup.md").write_text(note + markdown_table(table) + "\n")
    print(markdown_table(table))


if __name__ == "__main__":
    main()
