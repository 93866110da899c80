"""Run (or resume) the validation sweeps and write their results tables.

    .venv/bin/python validation/summarise.py            # run every sweep not yet finished, then summarise
    .venv/bin/python validation/summarise.py --no-run   # only summarise what the sweep folders hold

Each sweep is an ordinary ``pas-bayes sweep`` (resumable: a rerun fits only what is
missing) into ``validation/runs/<name>/``. The tables go to ``validation/results/``:

* ``recovery_scenarios.csv`` / ``.md``: one row per recovery scenario: coverage of
  50% and 90% intervals for London effects, borough slopes and SDs, the
  correlation of estimated and true borough slopes, the false-positive rate of
  "this borough differs from London" claims where the truth has no difference, the
  share of real differences found, and how many fits had clean diagnostics;
* ``recovery_<scenario>_scorecard.csv``: the full scorecard of each scenario;
* ``sbc_summary.csv`` / ``.md`` and ``sbc_ecdf.png``: simulation-based calibration.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pas_bayes.sweep import expand_tasks, load_sweep_spec, run_sweep, write_summary

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))
from results_table import markdown_table  # noqa: E402

RESULTS = HERE / "results"
SCENARIOS = ("equal", "strong_one", "strong_one_400", "few_named", "null_driver", "ordinal")


def _md(table: pd.DataFrame) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "-" if np.isnan(v) else f"{v:.3g}"
        return str(v)

    return markdown_table(table, fmt) + "\n"


def _pick(card: pd.DataFrame, kind: str, driver: str, column: str) -> float:
    rows = card[(card["kind"] == kind) & (card["driver"] == driver)]
    return float(rows[column].iloc[0]) if len(rows) and column in rows else float("nan")


def scenario_row(name: str, folder: Path) -> dict[str, object]:
    """The headline numbers of one recovery scenario's sweep folder."""
    summary = folder / "summary"
    card = pd.read_csv(summary / "recovery_scorecard.csv", keep_default_na=False, na_values=["", "NaN", "nan"])
    runs = pd.read_csv(summary / "runs.csv")
    params = pd.read_csv(summary / "recovery_parameters.csv", keep_default_na=False, na_values=["NaN", "nan"])
    dev = params[params["kind"] == "borough_deviation"]
    spec = load_sweep_spec(HERE / f"sweep_recovery_{name}.toml")
    done = runs[runs["status"] == "done"]
    return {
        "scenario": name,
        "fits": len(done),
        "clean_diagnostics": int((done["diagnostics"] == "pass").sum()),
        "respondents_per_borough": spec.simulations["per_borough"],
        "london_cov50": _pick(card, "london_effect", "all", "coverage50"),
        "london_cov90": _pick(card, "london_effect", "all", "coverage90"),
        "borough_slope_cov50": _pick(card, "borough_slope", "all", "coverage50"),
        "borough_slope_cov90": _pick(card, "borough_slope", "all", "coverage90"),
        "sd_cov50": _pick(card, "sd", "all", "coverage50"),
        "sd_cov90": _pick(card, "sd", "all", "coverage90"),
        "sd_at_zero_mean_q95": _pick(card, "sd", "all", "boundary_mean_q95"),
        "slope_corr_visibility": _pick(card, "borough_slope", "visibility", "slope_correlation"),
        "slope_corr_engagement": _pick(card, "borough_slope", "engagement", "slope_correlation"),
        "null_deviations": int((dev["truth"] == 0).sum()),
        "false_positive_rate": _pick(card, "borough_deviation", "all", "false_positive_rate"),
        "real_deviations": int((dev["truth"] != 0).sum()),
        "detected": _pick(card, "borough_deviation", "all", "detected"),
        "auc_real_vs_null": _pick(card, "borough_deviation", "all", "auc_positive_vs_null"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="summarise only; fit nothing")
    parser.add_argument("--workers", type=int, default=1, help="Dask workers of the local cluster")
    parser.add_argument("--only", nargs="*", help="sweep names to run (default: all)")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    sweeps = [f"recovery_{s}" for s in SCENARIOS] + ["sbc"]
    if not args.no_run:
        for name in args.only or sweeps:
            run_sweep(load_sweep_spec(HERE / f"sweep_{name}.toml"), HERE / "runs" / name, workers=args.workers)

    for name in sweeps:  # the summaries again, from the finished fits, with this version's code
        folder = HERE / "runs" / name
        if (folder / "results").is_dir():
            write_summary(folder, expand_tasks(load_sweep_spec(HERE / f"sweep_{name}.toml")))
    rows = []
    for s in SCENARIOS:
        folder = HERE / "runs" / f"recovery_{s}"
        if not (folder / "summary" / "recovery_scorecard.csv").is_file():
            print(f"recovery_{s}: no results yet in {folder}", file=sys.stderr)
            continue
        rows.append(scenario_row(s, folder))
        shutil.copyfile(folder / "summary" / "recovery_scorecard.csv", RESULTS / f"recovery_{s}_scorecard.csv")
    if rows:
        table = pd.DataFrame(rows)
        table.to_csv(RESULTS / "recovery_scenarios.csv", index=False, float_format="%.4g")
        (RESULTS / "recovery_scenarios.md").write_text(_md(table))
        print(_md(table))
    sbc = HERE / "runs" / "sbc" / "summary"
    if (sbc / "sbc_summary.csv").is_file():
        summary = pd.read_csv(sbc / "sbc_summary.csv")
        runs = pd.read_csv(sbc / "runs.csv")
        done = runs[runs["status"] == "done"]
        summary.to_csv(RESULTS / "sbc_summary.csv", index=False, float_format="%.4g")
        head = (f"{len(done)} simulations; {int((done['diagnostics'] == 'pass').sum())} with every diagnostic clean; "
                f"median max R-hat {done['max_r_hat'].median():.3f}, median min bulk ESS "
                f"{done['min_ess_bulk'].median():.0f}, divergent transitions in {int((done['divergences'] > 0).sum())}"
                f" fits\n\n")
        (RESULTS / "sbc_summary.md").write_text(head + _md(summary))
        for name in ("sbc_ecdf.png", "sbc_ecdf.csv", "sbc_ranks.csv"):
            shutil.copyfile(sbc / name, RESULTS / name)
        done.to_csv(RESULTS / "sbc_runs.csv", index=False)
        print(head + _md(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
