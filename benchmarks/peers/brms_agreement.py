"""Agreement with brms (and lme4): the same model, priors and synthetic survey, fitted by both.

1. Makes a synthetic survey the project has never seen (``--seed``, ``--per-borough``).
2. Reads it with pas_bayes and fits ``models/confidence.toml`` (nutpie).
3. Writes the tidy frame pas_bayes modelled, drivers centred at their means (pas_bayes
   centres them inside the model; brms's group-level slopes do not, so centring the
   data makes both models one and the same), and fits it in R with brms (Stan NUTS,
   formula and priors written out in ``benchmarks/peers/brms_fit.R``) and with
   ``lme4::glmer`` (maximum likelihood, for reference).
4. Compares the posterior mean and SD of every London effect and group SD.
   Two posteriors of the same model differ only by Monte Carlo error, so the
   difference of the means is judged against ``sqrt(mcse_a^2 + mcse_b^2)`` (z-score,
   ``agree`` when ``|z| < 3``) and likewise the SDs (MCSE of the SD).

R, brms, rstan, lme4 and the Boost headers come from Debian's packages; when Rscript or
brms is missing the script installs them with apt-get (root needed).

The demographic SDs are listed but not judged: pas_bayes's demographic effects are
zero-sum (``ZeroSumNormal``), brms's are independent normals, so the SD parameters mean
slightly different things (and the intercept absorbs the mean of brms's levels).

    .venv/bin/python benchmarks/peers/brms_agreement.py [--seed 4242] [--per-borough 40]

Writes ``benchmarks/results/brms_agreement.csv``, ``.md`` and ``glmer_estimates.csv``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import mcse

from pas_bayes.diagnostics import parameter_diagnostics
from pas_bayes.fit import sample_posterior
from pas_bayes.model import build_model
from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation
from pas_bayes.spec import load_spec
from pas_bayes.survey import read_survey

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from results_table import markdown_table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEBIAN_PACKAGES = ["r-base-core", "r-cran-brms", "r-cran-rstan", "r-cran-lme4", "libboost-dev"]
NOT_JUDGED = {"intercept", "sd_ethnicity", "sd_age", "sd_sex"}


def ensure_r() -> None:
    """Install R, brms, rstan, lme4 and Boost from Debian's packages when they are missing."""
    have = shutil.which("Rscript") and subprocess.run(
        ["Rscript", "-e", "library(brms); library(lme4)"], capture_output=True).returncode == 0
    if have and Path("/usr/include/boost").is_dir():
        return
    if shutil.which("apt-get") is None:
        raise SystemExit("brms is not installed and apt-get is not here: install R with brms, rstan and lme4")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *DEBIAN_PACKAGES], check=True,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def _flat_posterior(idata: xr.DataTree) -> dict[str, xr.DataArray]:
    """The compared pas_bayes parameters as (chain, draw) arrays, named as brms_fit.R names them."""
    post = idata["posterior"].to_dataset()
    out = {"intercept": post["intercept"], "sd_borough_intercept": post["sd_borough_intercept"],
           "sd_ward_intercept": post["sd_ward_intercept"]}
    for d in post["beta"]["driver"].values:
        out[f"beta[{d}]"] = post["beta"].sel(driver=d)
        out[f"sd_borough_slope[{d}]"] = post["sd_borough_slope"].sel(driver=d)
    for d in post["sd_ward_slope"]["ward_driver"].values:
        out[f"sd_ward_slope[{d}]"] = post["sd_ward_slope"].sel(ward_driver=d)
    for g in ("ethnicity", "age", "sex"):
        out[f"sd_{g}"] = post[f"sd_{g}"]
    return {k: v.drop_vars([c for c in v.coords if c not in ("chain", "draw")]) for k, v in out.items()}


def _glmer_name(name: str) -> str:
    """lme4's ``borough.3 security`` (one term per slope under ``||``) -> ``sd_borough_slope[security]``."""
    if " " not in name:
        return name
    group, term = name.split(" ", 1)
    level = {"borough": "borough", "ward_in_borough": "ward"}.get(group.split(".")[0])
    if level is None:
        return f"sd_{group.split('.')[0]}"
    return f"sd_{level}_intercept" if term == "(Intercept)" else f"sd_{level}_slope[{term}]"


def _moments(draws: dict[str, xr.DataArray]) -> pd.DataFrame:
    ds = xr.Dataset(draws)
    m_mean, m_sd = mcse(ds, method="mean"), mcse(ds, method="sd")
    return pd.DataFrame({"parameter": list(draws),
                         "mean": [float(ds[k].mean()) for k in draws], "sd": [float(ds[k].std()) for k in draws],
                         "mcse_mean": [float(m_mean[k]) for k in draws], "mcse_sd": [float(m_sd[k]) for k in draws]})



def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=4242, help="seed of the synthetic survey (unseen by the tests)")
    parser.add_argument("--per-borough", type=int, default=40)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ensure_r()

    settings = SimulationSettings(seed=args.seed, per_borough=args.per_borough)
    spec = load_spec(ROOT / "models" / "confidence.toml").with_sampler(
        draws=args.draws, tune=args.warmup, chains=args.chains, cores=2, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        survey = read_survey(write_simulation(simulate_survey(settings), tmp, settings), spec)
        frame = survey.frame
        drivers = list(spec.drivers)
        tidy = frame[["borough", "ward", *drivers, "ethnicity", "age", "sex"]].copy()
        tidy[drivers] = tidy[drivers] - tidy[drivers].mean()
        tidy["positive"] = frame[spec.outcome].astype(int)
        tidy.to_csv(tmp / "tidy.csv", index=False)

        clock = time.perf_counter()
        idata = sample_posterior(build_model(spec, frame), spec, progressbar=False)
        pb_wall = time.perf_counter() - clock
        pb_diag = parameter_diagnostics(idata)

        clock = time.perf_counter()
        subprocess.run(["Rscript", str(ROOT / "benchmarks" / "peers" / "brms_fit.R"), str(tmp / "tidy.csv"),
                        str(tmp / "r"), str(args.chains), str(args.warmup), str(args.draws), str(args.seed)],
                       check=True)
        r_wall = time.perf_counter() - clock
        brms = pd.read_csv(tmp / "r" / "brms_draws.csv")
        sampler = pd.read_csv(tmp / "r" / "brms_sampler.csv").iloc[0]
        glmer = pd.read_csv(tmp / "r" / "glmer_estimates.csv")
        timing = json.loads((tmp / "r" / "timing.json").read_text())

    n_chain, n_draw = brms["chain"].nunique(), brms["draw"].nunique()
    brms_draws = {c: xr.DataArray(brms.sort_values(["chain", "draw"])[c].to_numpy().reshape(n_chain, n_draw),
                                  dims=("chain", "draw")) for c in brms.columns if c not in ("chain", "draw")}
    a = _moments(_flat_posterior(idata)).set_index("parameter")
    b = _moments(brms_draws).set_index("parameter")
    table = a.add_suffix("_pas_bayes").join(b.add_suffix("_brms"))
    table["z_mean"] = ((table["mean_pas_bayes"] - table["mean_brms"])
                       / np.hypot(table["mcse_mean_pas_bayes"], table["mcse_mean_brms"]))
    table["z_sd"] = (table["sd_pas_bayes"] - table["sd_brms"]) / np.hypot(table["mcse_sd_pas_bayes"],
                                                                         table["mcse_sd_brms"])
    judged = ~table.index.isin(NOT_JUDGED)
    table["verdict"] = np.where(~judged, "not judged (parameterised differently)",
                                np.where((table["z_mean"].abs() < 3) & (table["z_sd"].abs() < 3), "agree", "DIFFER"))
    glmer_fe = glmer.assign(parameter=glmer["parameter"].map(_glmer_name)).set_index("parameter")["estimate"]
    table["glmer_estimate"] = [glmer_fe.get(p, np.nan) for p in table.index]
    table = table.reset_index()

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "brms_agreement.csv", index=False, float_format="%.5g")
    glmer.to_csv(args.out / "glmer_estimates.csv", index=False)
    shown = table[["parameter", "mean_pas_bayes", "mean_brms", "mcse_mean_pas_bayes", "mcse_mean_brms", "z_mean",
                   "sd_pas_bayes", "sd_brms", "z_sd", "verdict", "glmer_estimate"]]
    n_judged, n_agree = int(judged.sum()), int((table["verdict"] == "agree").sum())
    pb_sampling = float(idata["posterior"].attrs.get("sampling_time", float("nan")))
    header = [
        "# pas_bayes vs brms on one synthetic survey",
        "",
        f"Survey: `SimulationSettings(seed={args.seed}, per_borough={args.per_borough})`, {len(frame)} respondents "
        f"modelled, {frame['ward'].nunique()} wards. Model: `models/confidence.toml`; brms formula and priors in "
        f"`benchmarks/peers/brms_fit.R`. {args.chains} chains x ({args.warmup} warm-up + {args.draws} draws) each.",
        "",
        f"Command: `.venv/bin/python benchmarks/peers/brms_agreement.py --seed {args.seed} --per-borough "
        f"{args.per_borough} --chains {args.chains} --warmup {args.warmup} --draws {args.draws}`",
        "",
        f"**{n_agree} of {n_judged} judged parameters agree** (|z| < 3 for both the posterior mean and SD, z = "
        "difference / combined Monte Carlo standard error).",
        "",
        f"- pas_bayes (nutpie): {pb_wall:.0f} s wall, {pb_sampling:.0f} s sampling, min bulk ESS "
        f"{pb_diag['ess_bulk'].min():.0f}, max R-hat {pb_diag['r_hat'].max():.3f}, divergences "
        f"{int(idata['sample_stats']['diverging'].sum())}",
        f"- brms {timing['brms_version']} / rstan {timing['rstan_version']}: {timing['brms_wall_seconds']:.0f} s "
        f"wall (compile included), Stan warm-up {timing['stan_warmup_seconds']:.0f} s + sampling "
        f"{timing['stan_sampling_seconds']:.0f} s (slowest chain), divergences {int(sampler['divergences'])}, "
        f"mean leapfrog steps {sampler['mean_leapfrog']:.0f}",
        f"- lme4 {timing['lme4_version']} glmer: {timing['glmer_seconds']:.0f} s; R in all {r_wall:.0f} s; "
        f"convergence messages: {glmer['note'].dropna().iloc[0] if glmer['note'].notna().any() else 'none'}",
        "",
    ]
    (args.out / "brms_agreement.md").write_text("\n".join(header) + markdown_table(shown, _fmt) + "\n")
    print("\n".join(header))
    print(shown.to_string(index=False))


if __name__ == "__main__":
    main()
