"""Prior predictive check: what "good job" rates do the priors allow, before seeing any answer?

The model is built on the survey's respondents (their boroughs, wards, drivers
and demographics as observed), parameters are drawn from the priors only, and
an answer is drawn for every respondent from each parameter draw
(``pymc.sample_prior_predictive``). The share of positive answers per borough
and for London, over the draws, is what the priors say before the data speak.
Sensible priors give wide but plausible ranges; priors that put many boroughs
at under 5% or over 95% are too wide on the log-odds scale (Gabry et al. 2019).

The answers themselves are never used: the check is of the priors, not a fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pymc as pm

from pas_bayes.model import build_model, model_coords
from pas_bayes.predictions import group_means
from pas_bayes.spec import ModelSpec

#: A borough rate under 5% or over 95% is implausible for any PAS measure.
EXTREME = (5.0, 95.0)


def prior_rates(spec: ModelSpec, frame: pd.DataFrame, *, draws: int = 500, seed: int = 0) -> pd.DataFrame:
    """Prior predictive share (%) of positive answers per borough and for London.

    Parameters
    ----------
    spec
        The model and its priors. Survey weights do not change the priors and are ignored here.
    frame
        The survey's tidy frame (only its design is used, never its answers).
    draws
        Prior draws.
    seed
        Random seed of the draws.

    Returns
    -------
    pandas.DataFrame
        ``place`` (London first, then boroughs), ``respondents``, ``mean``,
        ``q05``, ``q25``, ``q50``, ``q75``, ``q95`` and ``share_extreme`` (share of
        draws with a rate under 5% or over 95%).
    """
    spec = replace(spec, weights="none")
    model = build_model(spec, frame)
    with model:
        prior = pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=[spec.outcome])
    y = np.asarray(prior["prior_predictive"][spec.outcome].values).reshape(draws, -1).astype(float)
    if spec.family == "cumulative":
        _, positive_from = spec.codebook().answer_order(spec.outcome)
        y = (y >= positive_from).astype(float)
    boroughs = model_coords(spec, frame)["borough"]
    index = frame["borough"].map({b: i for i, b in enumerate(boroughs)}).to_numpy()
    rates = np.column_stack([y.mean(axis=1), group_means(y, index, len(boroughs))]) * 100.0
    q = np.quantile(rates, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    extreme = ((rates < EXTREME[0]) | (rates > EXTREME[1])).mean(axis=0)
    return pd.DataFrame({
        "place": ["London", *boroughs],
        "respondents": [len(frame), *np.bincount(index, minlength=len(boroughs))],
        "mean": rates.mean(axis=0), "q05": q[0], "q25": q[1], "q50": q[2], "q75": q[3], "q95": q[4],
        "share_extreme": extreme,
    })


def prior_verdict(rates: pd.DataFrame) -> str:
    """One sentence on whether the priors are sensible, from :func:`prior_rates`'s table."""
    boroughs = rates[rates["place"] != "London"]
    share = float(boroughs["share_extreme"].mean())
    span = f"{boroughs['q05'].median():.0f}% to {boroughs['q95'].median():.0f}%"
    if share > 0.2:
        return (f"The priors are too wide: {100 * share:.0f}% of prior borough rates are under 5% or over "
                f"95% (a typical borough's 90% prior range is {span}); tighten the intercept and SD priors")
    return (f"The priors allow a typical borough anywhere from {span} (90% of draws) and rarely an extreme "
            f"rate ({100 * share:.0f}% of draws under 5% or over 95%): wide but plausible")
