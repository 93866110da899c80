"""ModelSpec + tidy survey frame -> a PyMC model with labelled dimensions.

The model (binary outcome y, respondent i in ward w within borough b, drivers x):

    logit P(y_i = 1) = alpha + a_b + a_w
                       + sum_d x_id (beta_d + u_bd + v_wd)
                       + sum_g e_g[level of i in g]

* ``alpha``, ``beta_d``: London intercept (for a resident at the London mean of
  every driver: drivers enter centred) and driver effects (log-odds per SD of a
  composite driver, or yes vs no for a binary one);
* ``a_b ~ N(0, sd_borough_intercept)``, ``u_bd ~ N(0, sd_borough_slope_d)``:
  borough varying intercepts and driver slopes;
* ``a_w ~ N(0, sd_ward_intercept)``, ``v_wd ~ N(0, sd_ward_slope_d)``: ward
  (within borough) varying intercepts, and slopes for the spec's
  ``ward_slopes`` drivers;
* ``e_g = sd_g * z_g``, ``z_g`` zero-sum normal: a random intercept per
  demographic (ethnicity, age, sex...), centred on zero across its levels so
  that ``alpha`` stays identified; contrasts between levels are unaffected.

Every group effect is non-centred (``z * sd``) because with ~20 respondents
a ward the likelihood is weak and the centred form gives funnels. Every
variable carries dims, so posterior arrays are labelled by borough, ward,
driver and demographic level. The frame is never read from a file here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from pas_bayes.geography import BOROUGH_NAMES
from pas_bayes.spec import ModelSpec


def _prior(name: str, table: dict[str, Any], **kwargs: Any) -> pt.TensorVariable:
    params = {k: v for k, v in table.items() if k != "dist"}
    return getattr(pm, table["dist"])(name, **params, **kwargs)


def model_coords(spec: ModelSpec, frame: pd.DataFrame) -> dict[str, list[str]]:
    """The labels of every dimension: boroughs and wards found in the data, drivers, levels.

    Boroughs keep the canonical order; wards are ordered by borough, then code.
    """
    boroughs = [b for b in BOROUGH_NAMES if b in set(frame["borough"])]
    wards = (frame[["borough", "ward"]].drop_duplicates()
             .assign(order=lambda f: f["borough"].map(boroughs.index))
             .sort_values(["order", "ward"])["ward"].tolist())
    coords: dict[str, list[str]] = {
        "driver": list(spec.drivers),
        "ward_driver": list(spec.ward_slopes),
        "borough": boroughs,
        "ward": wards,
    }
    book = spec.codebook()
    for g in spec.demographics:
        known = [lev for lev in book.demographics[g].levels if lev in set(frame[g])]
        coords[g] = known + sorted(set(frame[g]) - set(known))
    return coords


def build_model(spec: ModelSpec, frame: pd.DataFrame) -> pm.Model:
    """Build the hierarchical Bernoulli-logit model of ``spec.outcome``.

    Parameters
    ----------
    spec
        Outcome, drivers, ward-slope drivers, demographics and priors.
    frame
        The tidy frame of :func:`pas_bayes.survey.read_survey` (``SurveyData.frame``).

    Returns
    -------
    pymc.Model
        With coords ``obs``, ``driver``, ``ward_driver``, ``borough``, ``ward``
        and one per demographic. ``constant_data`` keeps the design and the
        ward -> borough map, so summaries never need the survey again.
    """
    coords = model_coords(spec, frame)
    borough_idx = frame["borough"].map({b: i for i, b in enumerate(coords["borough"])}).to_numpy()
    ward_idx = frame["ward"].map({w: i for i, w in enumerate(coords["ward"])}).to_numpy()
    ward_borough = (frame.drop_duplicates("ward").set_index("ward")["borough"]
                    .reindex(coords["ward"]).map({b: i for i, b in enumerate(coords["borough"])})
                    .to_numpy())
    X = frame[list(spec.drivers)].to_numpy(dtype=float)
    ward_cols = [spec.drivers.index(d) for d in spec.ward_slopes]
    y = frame[spec.outcome].to_numpy(dtype=int)
    coords_all = {**coords, "obs": np.arange(len(frame))}

    with pm.Model(coords=coords_all) as model:
        x_raw = pm.Data("X", X, dims=("obs", "driver"))
        # Drivers enter centred at their sample means (binary ones included): a ward's
        # intercept and its yes/no slopes then barely trade off, which the group SDs need
        # to mix well. Slopes keep their meaning; intercepts are at the average resident.
        centre = pm.Data("X_centre", X.mean(axis=0), dims="driver")
        x = x_raw - centre
        b_idx = pm.Data("borough_idx", borough_idx, dims="obs")
        w_idx = pm.Data("ward_idx", ward_idx, dims="obs")
        pm.Data("ward_borough_idx", ward_borough, dims="ward")

        alpha = _prior("intercept", spec.prior("intercept"))
        beta = _prior("beta", spec.prior("driver_effect"), dims="driver")

        sd_b0 = _prior("sd_borough_intercept", spec.prior("borough_intercept_sd"))
        z_b0 = pm.Normal("z_borough_intercept", 0.0, 1.0, dims="borough")
        a_b = pm.Deterministic("borough_intercept", z_b0 * sd_b0, dims="borough")
        sd_b = _prior("sd_borough_slope", spec.prior("borough_slope_sd"), dims="driver")
        z_b = pm.Normal("z_borough_slope", 0.0, 1.0, dims=("borough", "driver"))
        u_b = pm.Deterministic("borough_slope_dev", z_b * sd_b, dims=("borough", "driver"))
        pm.Deterministic("borough_slope", beta + u_b, dims=("borough", "driver"))

        sd_w0 = _prior("sd_ward_intercept", spec.prior("ward_intercept_sd"))
        z_w0 = pm.Normal("z_ward_intercept", 0.0, 1.0, dims="ward")
        a_w = pm.Deterministic("ward_intercept", z_w0 * sd_w0, dims="ward")

        eta = alpha + a_b[b_idx] + a_w[w_idx] + (x * (beta + u_b[b_idx])).sum(axis=1)
        if ward_cols:
            sd_w = _prior("sd_ward_slope", spec.prior("ward_slope_sd"), dims="ward_driver")
            z_w = pm.Normal("z_ward_slope", 0.0, 1.0, dims=("ward", "ward_driver"))
            v_w = pm.Deterministic("ward_slope_dev", z_w * sd_w, dims=("ward", "ward_driver"))
            eta = eta + (x[:, ward_cols] * v_w[w_idx]).sum(axis=1)

        for g in spec.demographics:
            level_idx = frame[g].map({v: i for i, v in enumerate(coords[g])}).to_numpy()
            idx = pm.Data(f"{g}_idx", level_idx, dims="obs")
            sd_g = _prior(f"sd_{g}", spec.prior("demographic_sd"))
            # Zero-sum: with only 2-6 levels, free intercepts would trade off against the
            # London intercept (one more unidentified location, low ESS for both).
            z_g = pm.ZeroSumNormal(f"z_{g}", sigma=1.0, dims=g)
            e_g = pm.Deterministic(f"effect_{g}", z_g * sd_g, dims=g)
            eta = eta + e_g[idx]

        pm.Bernoulli(spec.outcome, logit_p=eta, observed=y, dims="obs")
    return model
