"""The baseline of benchmarks/speed_vs_peers.py: the benchmark model written plainly in PyMC.

What an analyst would write first from the PyMC documentation: the same non-centred
borough and ward intercepts and slopes of all seven drivers, demographic and year
intercepts, the same priors as ``benchmarks/specs/full_year.toml``, PyMC's own
Bernoulli and four separate gathers per respondent. pas_bayes's model differs only in
how the same density is computed (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm

DRIVERS = ("engagement", "effectiveness", "accountability", "security", "crime_problems", "visibility",
           "informed")


def plain_model(frame: pd.DataFrame, drivers: tuple[str, ...] = DRIVERS,
                demographics: tuple[str, ...] = ("ethnicity", "age", "sex"),
                outcome: str = "confidence") -> pm.Model:
    """Build the straightforward model of ``outcome`` on the tidy frame of ``read_survey``."""
    boroughs, b_idx = np.unique(frame["borough"], return_inverse=True)
    wards, w_idx = np.unique(frame["ward"], return_inverse=True)
    coords = {"driver": list(drivers), "borough": list(boroughs), "ward": list(wards)}
    idx = {}
    for g in (*demographics, "financial_year"):
        levels, idx[g] = np.unique(frame[g], return_inverse=True)
        coords[g] = list(levels)
    X = frame[list(drivers)].to_numpy(float)
    X = X - X.mean(axis=0)
    with pm.Model(coords=coords) as model:
        x = pm.Data("X", X, dims=("obs", "driver"))
        bi, wi = pm.Data("borough_idx", b_idx), pm.Data("ward_idx", w_idx)
        a0 = pm.Normal("intercept", 0, 1.5)
        beta = pm.Normal("beta", 0, 1, dims="driver")
        sd_ab = pm.HalfNormal("sd_borough_intercept", 0.5)
        sd_ub = pm.HalfNormal("sd_borough_slope", 0.3, dims="driver")
        sd_aw = pm.HalfNormal("sd_ward_intercept", 0.3)
        sd_uw = pm.HalfNormal("sd_ward_slope", 0.2, dims="driver")
        a_b = pm.Deterministic("borough_intercept", pm.Normal("z_borough_intercept", 0, 1, dims="borough") * sd_ab,
                               dims="borough")
        u_b = pm.Deterministic("borough_slope_dev",
                               pm.Normal("z_borough_slope", 0, 1, dims=("borough", "driver")) * sd_ub,
                               dims=("borough", "driver"))
        a_w = pm.Deterministic("ward_intercept", pm.Normal("z_ward_intercept", 0, 1, dims="ward") * sd_aw, dims="ward")
        u_w = pm.Deterministic("ward_slope_dev", pm.Normal("z_ward_slope", 0, 1, dims=("ward", "driver")) * sd_uw,
                               dims=("ward", "driver"))
        eta = a0 + a_b[bi] + a_w[wi] + (x * (beta + u_b[bi] + u_w[wi])).sum(axis=1)
        groups = list(demographics) + (["financial_year"] if len(coords["financial_year"]) > 1 else [])
        for g in groups:
            sd = pm.HalfNormal(f"sd_{g}", 0.5)
            effect = pm.Deterministic(f"effect_{g}", pm.Normal(f"z_{g}", 0, 1, dims=g) * sd, dims=g)
            eta = eta + effect[pm.Data(f"{g}_idx", idx[g])]
        pm.Bernoulli(outcome, logit_p=eta, observed=frame[outcome].to_numpy(int))
    return model
