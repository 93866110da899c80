"""nutpie vs PyMC's own NUTS on the same survey, model and seed, side by side.

Writes ``benchmarks/results/sampler_speed.csv`` and ``.md``: wall time (compile
+ sample), sampling time, minimum bulk ESS over every parameter, ESS per
second of sampling, and each sampler's ratio to nutpie. Nothing here asserts a
time; the table is the result.

    .venv/bin/python benchmarks/sampler_speed.py [--per-borough 150] [--draws 500] [--tune 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from results_table import markdown_table

from pas_bayes.diagnostics import parameter_diagnostics
from pas_bayes.fit import sample_posterior
from pas_bayes.model import build_model
from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation
from pas_bayes.spec import load_spec
from pas_bayes.survey import read_survey

ROOT = Path(__file__).resolve().parents[1]



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-borough", type=int, default=150)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    settings = SimulationSettings(seed=args.seed, per_borough=args.per_borough)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_simulation(simulate_survey(settings), tmp, settings)
        base = load_spec(ROOT / "models" / "confidence.toml")
        survey = read_survey(path, base)
    rows = []
    for sampler in ("nutpie", "pymc"):
        spec = base.with_sampler(name=sampler, draws=args.draws, tune=args.tune, chains=4, cores=2,
                                 seed=args.seed)
        clock = time.perf_counter()
        idata = sample_posterior(build_model(spec, survey.frame), spec, progressbar=False)
        wall = time.perf_counter() - clock
        sampling = float(idata["posterior"].attrs.get("sampling_time", float("nan")))
        per = parameter_diagnostics(idata)
        rows.append({"sampler": sampler, "respondents": len(survey.frame), "draws": args.draws,
                     "tune": args.tune, "chains": 4, "wall_s": round(wall, 1),
                     "sampling_s": round(sampling, 1), "min_ess_bulk": round(per["ess_bulk"].min()),
                     "max_r_hat": round(per["r_hat"].max(), 4),
                     "divergences": int(idata["sample_stats"]["diverging"].sum())})
    table = pd.DataFrame(rows)
    table["min_ess_per_sampling_s"] = (table["min_ess_bulk"] / table["sampling_s"]).round(2)
    ref = table.set_index("sampler").loc["nutpie"]
    table["wall_ratio_to_nutpie"] = (table["wall_s"] / ref["wall_s"]).round(2)
    table["ess_per_s_ratio_to_nutpie"] = (table["min_ess_per_sampling_s"] / ref["min_ess_per_sampling_s"]).round(2)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sampler_speed.csv", index=False)
    (out / "sampler_speed.md").write_text(
        f"# Sampler speed (`python benchmarks/sampler_speed.py --per-borough {args.per_borough} "
        f"--draws {args.draws} --tune {args.tune}`)\n\n" + markdown_table(table) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
