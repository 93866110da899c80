"""How often the benchmark model diverges, over several unseen surveys and sampler settings.

A divergence now and then (one in many thousand draws) shows only when many fits are
counted: one fit says little. For every survey seed and every target acceptance this fits
the benchmark model (``specs/full_year.toml``, pas_bayes's own settings otherwise; no
PSIS-LOO, which does not change the draws) and writes one row: divergences, min bulk and
tail ESS, max R-hat, leapfrog steps a draw, the adapted step size, sampling time and min
bulk ESS per second. A second table adds the fits up per setting (divergences per 10,000
draws, fits with any divergence, with R-hat over 1.01, with bulk or tail ESS under 400, and
fits clean on all three).

    .venv/bin/python benchmarks/divergence_rate.py --size 1y --seeds 8081,8082,8083 \\
        --target-accept 0.8,0.9 --out benchmarks/results/divergence_rate_1y
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results_table import markdown_table
from speed_vs_peers import SPEC, _diagnostics, make_survey


def fit_once(data: Path, work: Path, seed: int, target_accept: float, spec_path: Path,
             retry_target_accept: float | None = None) -> dict[str, float]:
    """One fit of the survey at ``data``: its sampler diagnostics and times.

    ``divergences`` and the other diagnostics are the kept draws'; when the first attempt
    diverged and the fit sampled again (``sampler.retry_target_accept``), ``attempts`` is 2,
    ``first_attempt_divergences`` the first attempt's count and ``sampling_s`` both together.
    """
    from pas_bayes.fit import fit_run, load_run
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    spec = load_spec(spec_path).with_sampler(seed=seed, target_accept=target_accept,
                                             retry_target_accept=retry_target_accept)
    survey = read_survey(data, spec)
    clock = time.perf_counter()
    out = fit_run(spec, survey, work, progressbar=False, loo=False)
    wall = time.perf_counter() - clock
    run = load_run(out)
    attrs = run.idata["posterior"].attrs
    stats = run.idata["sample_stats"]
    row = {"respondents": len(survey.frame), "draws": spec.sampler.draws, "tune": spec.sampler.tune,
           "chains": spec.sampler.chains, "sampling_s": float(attrs["sampling_time"]), "wall_s": wall,
           "step_size": float(stats["step_size"].mean()) if "step_size" in stats.data_vars else float("nan"),
           **_diagnostics(run.idata)}
    attempts = run.provenance["sampler_attempts"]
    row.update({"attempts": len(attempts), "first_attempt_divergences": attempts[0]["divergences"],
                "kept_target_accept": attempts[-1]["target_accept"],
                # More than the spec's chains when the ESS fell just short (sampler.more_chains_below_ess).
                "chains_kept": int(run.idata["posterior"].sizes["chain"])})
    row["min_ess_bulk_per_s"] = row["min_ess_bulk"] / row["sampling_s"]
    row["divergent_at"] = divergent_at(run.idata)
    return row


def divergent_at(idata) -> str:
    """Where each divergent draw sits: the SD furthest into its tail, as its posterior percentile.

    A rare divergence says most about the geometry when it is placed: a ward SD at the
    bottom of its posterior points to the region near zero, a large one to a funnel's neck.
    """
    diverging = idata["sample_stats"]["diverging"]
    hits = np.argwhere(np.asarray(diverging))
    if not len(hits):
        return ""
    post = idata["posterior"]
    sds = [v for v in post.data_vars if v.startswith("sd_")]
    places = []
    for chain, draw in hits:
        worst, worst_pct, worst_value = "", 50.0, float("nan")
        for name in sds:
            values = post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
            values = values.reshape(values.shape[0], -1)
            here = post[name].isel(chain=int(chain), draw=int(draw)).values.ravel()
            labels = ([f"{name}[{c}]" for c in post[name][post[name].dims[-1]].values]
                      if post[name].ndim > 2 else [name])
            for j, label in enumerate(labels):
                pct = 100.0 * float((values[:, j] < here[j]).mean())
                if abs(pct - 50.0) > abs(worst_pct - 50.0):
                    worst, worst_pct, worst_value = label, pct, float(here[j])
        places.append(f"chain {int(chain)} draw {int(draw)}: {worst}={worst_value:.3g} ({worst_pct:.1f}th pct)")
    return "; ".join(places)


def add_up(rows: pd.DataFrame) -> pd.DataFrame:
    """Per target acceptance: fits, draws, divergences per 10,000 draws, fits with any, median ESS/s."""
    out = []
    for ta, group in rows.groupby("target_accept"):
        n_draws = int((group["draws"] * group["chains"]).sum())
        out.append({"target_accept": ta, "fits": len(group), "draws_in_all": n_draws,
                    "divergences": int(group["divergences"].sum()),
                    "divergences_per_10k_draws": 1e4 * group["divergences"].sum() / n_draws,
                    "fits_with_divergences": int((group["divergences"] > 0).sum()),
                    # Fits whose first attempt diverged and were sampled again (their divergences
                    # above are the kept attempt's).
                    "fits_sampled_again": int((group.get("attempts", pd.Series(1, index=group.index)) > 1).sum()),
                    "fits_r_hat_over_1_01": int((group["max_r_hat"] > 1.01).sum()),
                    # Bulk or tail: the fit's own check fails on either.
                    "fits_ess_under_400": int((low_ess := group[["min_ess_bulk", "min_ess_tail"]].min(axis=1)
                                               < 400).sum()),
                    "fits_clean": int(((group["divergences"] == 0) & (group["max_r_hat"] <= 1.01)
                                       & ~low_ess).sum()),
                    "median_min_ess_bulk_per_s": float(group["min_ess_bulk_per_s"].median()),
                    "median_sampling_s": float(group["sampling_s"].median())})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1y", help="1y, 5y or 256k (speed_vs_peers.py's sizes)")
    parser.add_argument("--seeds", default="8081,8082,8083",
                        help="survey seeds, comma-separated (each survey is also fitted with its own seed)")
    parser.add_argument("--target-accept", default="0.8,0.9", help="comma-separated target acceptances")
    parser.add_argument("--spec", default=str(SPEC))
    parser.add_argument("--retry-target-accept", type=float, default=None,
                        help="target acceptance of the second attempt after divergences (default: the "
                        "spec's sampler.retry_target_accept; 0: no retry, as the tables before it)")
    parser.add_argument("--out", default=None, help="table path without suffix (.md and .csv written)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    accepts = [float(t) for t in args.target_accept.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            data = make_survey(args.size, seed, Path(tmp) / f"survey_{seed}")
            for ta in accepts:
                row = {"size": args.size, "survey_seed": seed, "target_accept": ta,
                       **fit_once(data, Path(tmp) / f"run_{seed}_{ta}", seed, ta, Path(args.spec),
                                  args.retry_target_accept)}
                print({k: row[k] for k in ("survey_seed", "target_accept", "attempts", "first_attempt_divergences",
                                           "divergences", "min_ess_bulk", "min_ess_tail", "max_r_hat",
                                           "sampling_s")}, flush=True)
                rows.append(row)
                # Written after every fit: a run stopped part-way keeps the fits it finished.
                if args.out:
                    write_tables(rows, Path(args.out), done=len(rows) == len(seeds) * len(accepts))
    print(add_up(pd.DataFrame(rows)).to_string(index=False))


def write_tables(rows: list[dict], out: Path, *, done: bool) -> None:
    """The fits so far and their per-setting sums, as ``out``.md / .csv / _summary.csv."""
    table = pd.DataFrame(rows).round(4)
    summary = add_up(table).round(3)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    summary.to_csv(out.with_name(out.name + "_summary.csv"), index=False)
    command = "python " + " ".join(["benchmarks/divergence_rate.py", *sys.argv[1:]])
    state = "" if done else "\n\n(Part-way: the fits finished so far.)"
    out.with_suffix(".md").write_text(
        f"# Divergences over unseen surveys (`{command}`){state}\n\n"
        f"{markdown_table(table)}\n\n## Per setting\n\n{markdown_table(summary)}\n")


if __name__ == "__main__":
    main()
