"""Simulation-based calibration (SBC) of a model spec: prior draw -> survey -> fit -> ranks.

SBC (Talts et al. 2018; Modrák et al. 2023) checks the whole inference
pipeline: if parameters are drawn from the prior, data from the model given
them, and the model is then fitted to those data, the rank of each true value
among the posterior draws is uniform. Any systematic departure (a sampler that
misses part of the posterior, a prior and likelihood that disagree with what the
code does) shows as a non-uniform rank distribution.

One simulation, as a sweep task runs it (:mod:`pas_bayes.sweep.task`):

1. :func:`prior_survey` makes a synthetic survey with the generator (its
   geography, demographics and driver items: the design), builds the spec's
   own model on it, draws one set of parameters and one outcome per respondent
   from the model's prior predictive, and writes the survey back with the
   outcome answers replaced (in the file's own labels), plus the parameter
   draw (``prior_draw.zarr``). Respondents the reader excludes keep their
   original answers and stay excluded. Re-reading the file gives exactly the
   drawn outcome (checked), so ``pas-bayes fit`` on it alone reproduces the task.
2. The task fits the file like any other.
3. :func:`sbc_ranks` ranks each true value among ``n_ranks - 1`` posterior draws
   taken at even intervals (thinning: ranks assume draws that are close to
   independent), for London effects, group SDs, a few borough slopes, and the
   log-likelihood of the data (Modrák et al.'s data-dependent test quantity).

Across simulations, :func:`sbc_summary` tests each quantity's ranks for
uniformity against a simultaneous 99% ECDF band (Säilynoja et al. 2022, computed
with ``arviz_stats.ecdf_utils.ecdf_pit``) and :func:`pas_bayes.plots.sbc_ecdf`
draws the ECDF differences with their bands.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pas_bayes.atomic import atomic_write_text
from pas_bayes.errors import SpecError
from pas_bayes.spec import ModelSpec

#: Borough slopes ranked in every simulation (three boroughs of different size and mix).
SBC_BOROUGHS = ("Croydon", "Hackney", "Sutton")
#: Rank out of this many: 99 thinned posterior draws give ranks 0..99.
N_RANKS = 100
#: Simultaneous bands of the uniformity check: outside the 99% band fails.
BAND_PROB = 0.99


def _ranked_variables(spec: ModelSpec) -> list[str]:
    names = ["intercept", "beta", "sd_borough_intercept", "sd_borough_slope", "sd_ward_intercept"]
    if spec.ward_slopes:
        names.append("sd_ward_slope")
    names += [f"sd_{g}" for g in spec.demographics]
    return names


def flat_quantities(ds: xr.Dataset, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The ranked quantities of a posterior (or one prior draw) as ``name -> (samples,)`` arrays.

    Names are ``var`` or ``var[coord]`` (``beta[engagement]``,
    ``borough_slope[Croydon, visibility]``); samples are chain x draw, flattened.
    """
    out: dict[str, np.ndarray] = {}
    for var in _ranked_variables(spec):
        da = ds[var]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        flat = da.stack(sample=("chain", "draw")).transpose(*extra, "sample")
        if not extra:
            out[var] = np.asarray(flat.values, dtype=float)
            continue
        for coord in flat[extra[0]].values:
            out[f"{var}[{coord}]"] = np.asarray(flat.sel({extra[0]: coord}).values, dtype=float)
    slopes = ds["borough_slope"].stack(sample=("chain", "draw"))
    for borough in SBC_BOROUGHS:
        if borough in slopes["borough"].values:
            for driver in slopes["driver"].values:
                out[f"borough_slope[{borough}, {driver}]"] = np.asarray(
                    slopes.sel(borough=borough, driver=driver).values, dtype=float)
    return out


def _outcome_labels(spec: ModelSpec) -> tuple[str, str]:
    """The labels written for a drawn 1 and a drawn 0: the lowest positive and the highest negative answer."""
    answers, first_positive = spec.codebook().answer_order(spec.outcome)
    return answers[first_positive], answers[first_positive - 1]


def prior_survey(spec: ModelSpec, settings: Any, folder: str | Path, seed: int) -> Path:
    """Write one SBC simulation: a survey whose outcome is drawn from the spec's prior predictive.

    Parameters
    ----------
    spec
        The model spec to calibrate (binary family).
    settings
        :class:`pas_bayes.simulate.SimulationSettings` of the design survey.
    folder
        Where the survey CSV, ``prior_draw.zarr`` and ``sbc_simulation.json`` go.
    seed
        Seed of the prior draw.

    Returns
    -------
    pathlib.Path
        The survey file.

    Raises
    ------
    SpecError
        For a cumulative or weighted spec (SBC here draws a yes/no outcome from an
        unweighted likelihood).
    """
    import pymc as pm

    from pas_bayes.model import build_model
    from pas_bayes.simulate import simulate_survey, survey_filename
    from pas_bayes.survey import read_survey

    if spec.family != "bernoulli" or spec.weights != "none":
        raise SpecError(f"{spec.source}: simulation-based calibration draws a yes/no outcome from an unweighted "
                        f"likelihood; this spec has family = {spec.family!r}, weights = {spec.weights!r}. "
                        "What to do: calibrate a binary, unweighted spec")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / survey_filename(settings)
    survey_table = simulate_survey(settings).survey
    design_path = folder / "design.csv"
    atomic_write_text(design_path, survey_table.to_csv(index=False, lineterminator="\n"), force=True)
    design = read_survey(design_path, spec)
    model = build_model(spec, design.frame)
    prior = pm.sample_prior_predictive(draws=1, model=model, random_seed=seed)
    y = np.asarray(prior["prior_predictive"][spec.outcome].values, dtype=int).ravel()

    item = spec.codebook().outcomes[spec.outcome].item
    yes, no = _outcome_labels(spec)
    table = survey_table.copy()
    rows = design.frame["row"].to_numpy() - 1  # data rows are 1-based
    table[item] = table[item].astype(object)
    table.loc[table.index[rows], item] = np.where(y == 1, yes, no)
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"), force=True)
    design_path.unlink()

    check = read_survey(path, spec)
    if not (np.array_equal(check.frame["row"], design.frame["row"])
            and np.array_equal(check.frame[spec.outcome].to_numpy(dtype=int), y)):
        raise RuntimeError(f"{path}: re-reading the SBC survey does not give the drawn outcome; the outcome "
                           f"labels {yes!r}/{no!r} are not read as positive/negative")
    draw = prior["prior"].to_dataset()
    draw.to_zarr(folder / "prior_draw.zarr", mode="w", consolidated=False)
    record = {"format": "pas_bayes.sbc_simulation/1", "prior_seed": int(seed), "rows_modelled": int(y.size),
              "positive_share": float(y.mean()), "design": {"seed": settings.seed,
                                                             "per_borough": settings.per_borough}}
    atomic_write_text(folder / "sbc_simulation.json", json.dumps(record, indent=1) + "\n", force=True)
    return path


def _thin(n: int, n_keep: int) -> np.ndarray:
    """``n_keep`` indices spread evenly over ``n`` draws."""
    if n < n_keep:
        raise ValueError(f"{n} posterior draws cannot give {n_keep} ranked draws; sample at least {n_keep}")
    return np.linspace(0, n - 1, n_keep).round().astype(int)


def _log_likelihood_total(idata: xr.DataTree) -> np.ndarray:
    from pas_bayes.comparison import pointwise_log_likelihood

    return pointwise_log_likelihood(idata).sum("obs").values.ravel()


def sbc_ranks(idata: xr.DataTree, prior_draw: xr.Dataset, spec: ModelSpec, *,
              n_ranks: int = N_RANKS) -> dict[str, int]:
    """Rank of each true value among ``n_ranks - 1`` thinned posterior draws (0 .. ``n_ranks - 1``).

    The log-likelihood of the data is ranked as ``log_likelihood``: the true
    parameters' value among the posterior draws' values. Ties (a rank computed
    on equal values) are broken at random with a seed taken from the data, so
    the same fit always gives the same ranks.
    """
    posterior = idata["posterior"].to_dataset()
    stacked = posterior.stack(sample=("chain", "draw"))
    keep = _thin(stacked.sizes["sample"], n_ranks - 1)
    # Only the ranked draws: the log-likelihood of every respondent is computed for 99
    # draws, not for the thousands the fit has.
    thinned = (stacked.isel(sample=keep).drop_vars(["sample", "chain", "draw"]).rename(sample="draw")
               .expand_dims(chain=1).transpose("chain", "draw", ...))
    post = flat_quantities(thinned, spec)
    truth = flat_quantities(prior_draw, spec)
    thinned_tree, truth_tree = idata.copy(), idata.copy()
    thinned_tree["posterior"] = xr.DataTree(thinned)
    truth_tree["posterior"] = xr.DataTree(prior_draw)
    post["log_likelihood"] = _log_likelihood_total(thinned_tree)
    truth["log_likelihood"] = _log_likelihood_total(truth_tree)
    observed = np.asarray(idata["observed_data"][spec.outcome].values)
    rng = np.random.default_rng(int(observed.sum()) * 7919 + observed.size)
    ranks = {}
    for name, kept in post.items():
        true = float(truth[name][0])
        ranks[name] = int((kept < true).sum() + rng.integers(0, (kept == true).sum() + 1))
    return ranks


def write_ranks(run_dir: str | Path, ranks: dict[str, int], n_ranks: int = N_RANKS) -> Path:
    """``sbc_ranks.json`` in the run folder."""
    path = Path(run_dir) / "sbc_ranks.json"
    atomic_write_text(path, json.dumps({"format": "pas_bayes.sbc_ranks/1", "n_ranks": n_ranks, "ranks": ranks},
                                       indent=1) + "\n", force=True)
    return path


def rank_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Tidy ranks: one row per simulation and quantity (``task``, ``quantity``, ``rank``, ``n_ranks``)."""
    rows = [{"task": r["task"], "quantity": q, "rank": rank, "n_ranks": r["n_ranks"]}
            for r in records for q, rank in r["ranks"].items()]
    return pd.DataFrame(rows, columns=["task", "quantity", "rank", "n_ranks"])


def pit_values(ranks: np.ndarray, n_ranks: int, seed: int = 0) -> np.ndarray:
    """Ranks 0..n_ranks-1 -> values in (0, 1), uniform when the ranks are (jittered within their bin)."""
    u = np.random.default_rng(seed).uniform(size=len(ranks))
    return (np.asarray(ranks, dtype=float) + u) / n_ranks


@lru_cache(maxsize=8)
def ecdf_band(n_sims: int, prob: float = BAND_PROB, seed: int = 214) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation points and the simultaneous ``prob`` band of a uniform sample's ECDF (n_sims values).

    Cached: every quantity of a calibration run has the same number of simulations, and
    the band (a Monte Carlo computation) depends on nothing else.
    """
    from arviz_stats.ecdf_utils import ecdf_pit

    x, _, lower, upper = ecdf_pit(np.linspace(0, 1, n_sims), prob, 2000, rng=np.random.default_rng(seed))
    return x, lower, upper


def sbc_summary(ranks: pd.DataFrame, prob: float = BAND_PROB) -> pd.DataFrame:
    """Per quantity: simulations, mean and SD of the scaled rank, whether its ECDF stays in the band.

    Columns ``quantity, simulations, mean_rank, sd_rank, max_ecdf_gap, outside_band, verdict``:
    the scaled rank of a calibrated quantity has mean 0.5 and SD 0.289 (uniform); a
    posterior that is too narrow gives a U shape (SD above 0.289), too wide a hump (below),
    biased a mean away from 0.5. ``verdict`` is ``pass`` when the ECDF stays inside its
    simultaneous ``prob`` band, else ``FAIL``.
    """
    rows = []
    for i, (name, group) in enumerate(ranks.groupby("quantity", sort=False)):
        n_ranks = int(group["n_ranks"].iloc[0])
        pit = np.sort(pit_values(group["rank"].to_numpy(), n_ranks, seed=i))
        x, lower, upper = ecdf_band(len(pit), prob)
        ecdf = np.searchsorted(pit, x, side="right") / len(pit)
        outside = bool(((ecdf < lower - 1e-12) | (ecdf > upper + 1e-12)).any())
        scaled = (group["rank"].to_numpy() + 0.5) / n_ranks
        rows.append({"quantity": name, "simulations": len(group), "mean_rank": scaled.mean(),
                     "sd_rank": scaled.std(ddof=1) if len(group) > 1 else np.nan,
                     "max_ecdf_gap": float(np.abs(ecdf - x).max()), "outside_band": outside,
                     "verdict": "FAIL" if outside else "pass"})
    return pd.DataFrame(rows)
