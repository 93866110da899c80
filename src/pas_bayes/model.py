"""ModelSpec + tidy survey frame -> a PyMC model with labelled dimensions.

The model (respondent i in ward w within borough b, year t, drivers x):

    eta_i = a_b + a_w + sum_d x_id (beta_d + u_bd + v_wd + s_td + r_gd[level of i in g])
            + y_t + sum_g e_g[level of i in g]

    bernoulli:   logit P(positive_i) = alpha + eta_i
    cumulative:  P(answer_i <= k) = logistic(c_k - eta_i), k = 0..K-2

* ``alpha``, ``beta_d``: London intercept (for a resident at the London mean of
  every driver: drivers enter centred) and driver effects (log-odds per SD of a
  composite driver, or yes vs no for a binary one). In the cumulative model the
  cut-points ``c`` take the intercept's place, and ``intercept`` is recorded as
  ``-c`` at the positive/non-positive boundary: it is then the log-odds of a
  positive answer, exactly as in the binary model, so every summary on the
  probability scale reads both models alike.
* ``a_b``, ``u_bd``: borough intercepts and driver slopes, independent normals
  with their own SDs, or (``correlated = ["borough"]``) one multivariate normal
  with an LKJ prior on the correlation of intercept and slopes;
* ``a_w``, ``v_wd``: the same for wards within borough (slopes for the spec's
  ``ward_slopes``);
* ``y_t``, ``s_td``: year intercepts and year-varying slopes (``year_slopes``),
  zero-sum over years, when the data hold more than one financial year; wards
  are whatever codes the data hold, so a year on 2018 boundaries and a year on
  2022 boundaries simply have different wards;
* ``e_g``: zero-sum random intercepts per demographic; ``r_gd``: zero-sum
  deviations of driver d's effect by level of demographic g (``demographic_slopes``).

Borough and ward effects are non-centred (``z * sd``, or ``z @ L.T * sd`` when
correlated) unless the spec lists the level under ``centred``: with ~20
respondents a ward the likelihood is weak and the centred form gives funnels
(centring the boroughs of a year's survey, 400 a borough, was measured worse too:
``benchmarks/README.md``). The small crossed groupings (year, demographics), and
the boroughs of very large surveys, are centred when the data inform their levels
well (``centred = "auto"``, :func:`centred_groupings`). The London
intercept and effects are sampled as the boroughs' average (:func:`_london_effect`).
All of these choose the sampler's coordinates, not the model.
Survey weights (``weights``) multiply each respondent's log-likelihood
(pseudo-likelihood); the Savitsky-Williams option also weights each borough's
and ward's prior density by its group weight.
Each ward's intercept and slopes are added up once per ward and applied a run of the
ward's respondents at a time (:mod:`pas_bayes.ward_terms`; the design is held term by
term): in the reader's ward order each ward is one run. Below :data:`RUNS_FROM` respondents
a run on average (a small survey) each respondent's row of the ward table is gathered
instead, which is faster there. Every variable carries dims. The frame is never read from a
file here.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

from pas_bayes.geography import BOROUGH_NAMES
from pas_bayes.likelihood import bernoulli_logit_logp
from pas_bayes.spec import ModelSpec
from pas_bayes.ward_terms import ward_runs, ward_terms

#: Respondents a ward run on average from which the ward terms are applied a run at a time
#: (:mod:`pas_bayes.ward_terms`); below it each respondent's row of the ward table is gathered.
#: One gradient, runs against the gather as rows of one run at each size: 4.7 a ward 87.0
#: against 79.3 us, 9.0 a ward 123.1 against 119.4 (even), 17.8 a ward 180.9 against 214.2
#: (``benchmarks/results/where_time_goes_*gather.md``).
RUNS_FROM = 7


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
    if frame["financial_year"].nunique() > 1:
        coords["year"] = sorted(frame["financial_year"].unique(), key=_year_key)
        coords["year_driver"] = list(spec.year_slopes)
    book = spec.codebook()
    for g in spec.demographics:
        known = [lev for lev in book.demographics[g].levels if lev in set(frame[g])]
        coords[g] = known + sorted(set(frame[g]) - set(known))
        if g in spec.demographic_slopes:
            coords[f"{g}_driver"] = list(spec.demographic_slopes[g])
    return coords


def _year_key(year: str) -> tuple[int, str]:
    """Financial years in time order ("FY 9-10" before "FY 23-24")."""
    digits = "".join(ch if ch.isdigit() else " " for ch in year).split()
    return (int(digits[0]) if digits else 0, year)


def _bernoulli_logit(eta: pt.TensorVariable, size: Any) -> pt.TensorVariable:
    # The generative side (prior and posterior predictive draws) of the same outcome.
    return pm.Bernoulli.dist(logit_p=eta, size=size)


def _std_normal_logp(z: pt.TensorVariable, axis: int) -> pt.TensorVariable:
    return (-0.5 * z**2 - 0.5 * np.log(2 * np.pi)).sum(axis=axis)


@dataclass
class GroupEffects:
    """A level's intercepts (G,), slope deviations (G, D_level) and each group's log prior density."""

    intercept: pt.TensorVariable
    slopes: pt.TensorVariable | None
    log_prior: pt.TensorVariable  # (G,): log density of the group's effects, for group weights
    #: ``sd * mean(z)`` of the intercepts and of each slope, when the groups' average was
    #: sampled as a parameter of its own (:func:`_mean_apart`); ``None`` otherwise.
    intercept_mean: pt.TensorVariable | None = None
    slopes_mean: pt.TensorVariable | None = None


def _group_effects(level: str, dim: str, slope_dim: str | None, slope_names: list[str],
                   spec: ModelSpec, intercept_prior: str, slope_prior: str, centred: frozenset[str], *,
                   mean_apart: bool = False) -> GroupEffects:
    """Intercepts and slope deviations of one grouping level, non-centred, optionally LKJ-correlated.

    ``mean_apart``: sample the groups' average of each ``z`` apart (:func:`_mean_apart`), so
    the London effects can be sampled as the boroughs' average (:func:`_london_effect`).
    """
    sd0 = _prior(f"sd_{level}_intercept", spec.prior(intercept_prior))
    if not slope_names and level in centred:
        if mean_apart:
            a0, a_mean = _mean_apart(f"{level}_intercept", dim, None, sigma=sd0)
            a = pm.Deterministic(f"{level}_intercept", a0, dims=dim)
        else:
            a, a_mean = pm.Normal(f"{level}_intercept", 0.0, sd0, dims=dim), None
        return GroupEffects(a, None, _std_normal_logp((a / sd0)[:, None], 1) - pt.log(sd0), intercept_mean=a_mean)
    if not slope_names:
        if mean_apart:
            z0, z0_mean = _mean_apart(f"z_{level}_intercept", dim, None)
        else:
            z0, z0_mean = pm.Normal(f"z_{level}_intercept", 0.0, 1.0, dims=dim), None
        a = pm.Deterministic(f"{level}_intercept", z0 * sd0, dims=dim)
        return GroupEffects(a, None, _std_normal_logp(z0[:, None], 1) - pt.log(sd0),
                            intercept_mean=None if z0_mean is None else sd0 * z0_mean)
    sd = _prior(f"sd_{level}_slope", spec.prior(slope_prior), dims=slope_dim)
    if level in spec.correlated:
        coef = f"{level}_coef"
        eta = spec.prior("correlation")["eta"]
        chol = pm.LKJCorr(f"corr_chol_{level}", n=1 + len(slope_names), eta=eta)
        pm.Deterministic(f"corr_{level}", chol @ chol.T, dims=(coef, f"{coef}_"))
        z = pm.Normal(f"z_{level}", 0.0, 1.0, dims=(dim, coef))
        scales = pt.concatenate([sd0[None], sd])
        effects = pt.dot(z, chol.T) * scales
        a = pm.Deterministic(f"{level}_intercept", effects[:, 0], dims=dim)
        u = pm.Deterministic(f"{level}_slope_dev", effects[:, 1:], dims=(dim, slope_dim))
        log_det = pt.log(pt.diagonal(chol)).sum() + pt.log(scales).sum()
        return GroupEffects(a, u, _std_normal_logp(z, 1) - log_det)
    if level in centred:
        if mean_apart:
            # Centred, with the groups' average apart, as the non-centred form below keeps it.
            a0, a_mean = _mean_apart(f"{level}_intercept", dim, None, sigma=sd0)
            u_t, u_mean = _mean_apart(f"{level}_slope_by_driver", dim, slope_dim, sigma=sd)
            a = pm.Deterministic(f"{level}_intercept", a0, dims=dim)
            u = pm.Deterministic(f"{level}_slope_dev", u_t.T, dims=(dim, slope_dim))
        else:
            a_mean = u_mean = None
            a = pm.Normal(f"{level}_intercept", 0.0, sd0, dims=dim)
            u = pm.Normal(f"{level}_slope_dev", 0.0, sd, dims=(dim, slope_dim))
        log_prior = (_std_normal_logp((a / sd0)[:, None], 1) + _std_normal_logp(u / sd, 1)
                     - pt.log(sd0) - pt.log(sd).sum())
        return GroupEffects(a, u, log_prior, intercept_mean=a_mean, slopes_mean=u_mean)
    if mean_apart:
        z0, z0_mean = _mean_apart(f"z_{level}_intercept", dim, None)
        z_t, z_mean = _mean_apart(f"z_{level}_slope", dim, slope_dim)
        z = z_t.T
    else:
        z0 = pm.Normal(f"z_{level}_intercept", 0.0, 1.0, dims=dim)
        z = pm.Normal(f"z_{level}_slope", 0.0, 1.0, dims=(dim, slope_dim))
    a = pm.Deterministic(f"{level}_intercept", z0 * sd0, dims=dim)
    u = pm.Deterministic(f"{level}_slope_dev", z * sd, dims=(dim, slope_dim))
    log_prior = (_std_normal_logp(z0[:, None], 1) + _std_normal_logp(z, 1)
                 - pt.log(sd0) - pt.log(sd).sum())
    if mean_apart:
        return GroupEffects(a, u, log_prior, intercept_mean=sd0 * z0_mean, slopes_mean=sd * z_mean)
    return GroupEffects(a, u, log_prior)


def _mean_apart(name: str, dim: str, by: str | None,
                sigma: float | pt.TensorVariable = 1.0) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Independent normals of scale ``sigma`` over ``dim`` (per ``by``), as their mean plus the rest.

    ``z = rest + mean`` with ``rest`` zero-sum normal of scale ``sigma`` and
    ``mean ~ Normal(0, sigma/sqrt(G))`` is exactly ``G`` independent ``Normal(0, sigma)``:
    the same prior, with the groups' average one coordinate instead of a direction shared
    by all ``G``. ``sigma`` is 1 for non-centred ``z``, the group SD (one per ``by``) for
    centred effects. Returns ``(z, mean)``; ``z`` is ``(by, dim)`` when ``by`` is given.
    """
    n = len(pm.modelcontext(None).coords[dim])
    dims = (by, dim) if by else (dim,)
    scale = sigma[:, None] if by and not isinstance(sigma, float) else sigma  # one SD per row of ``by``
    rest = pm.ZeroSumNormal(f"{name}_dev", sigma=scale, dims=dims)
    mean = pm.Normal(f"{name}_mean", 0.0, sigma / np.sqrt(n), dims=by)
    return rest + (mean[:, None] if by else mean), mean


def _london_effect(name: str, table: dict[str, Any], groups_mean: pt.TensorVariable | None,
                   **kwargs: Any) -> pt.TensorVariable:
    """A London effect with its prior ``table``, sampled as the average of the borough effects.

    The survey pins down the average of the 32 borough effects (``effect + sd * mean(z)``)
    far better than either part: non-centred, the sampler had to move the effect and all 32
    ``z`` together (the five-year fit's slowest parameters were the London effects). The
    average is sampled as ``{name}_borough_mean ~ prior shifted by sd * mean(z)`` and the
    effect is that minus ``sd * mean(z)``: the same prior, the same posterior, a change of
    variables with unit Jacobian. Priors without a location (``mu``) keep the plain form.
    """
    if groups_mean is None or table["dist"] not in ("Normal", "StudentT"):
        return _prior(name, table, **kwargs)
    shifted = {**table, "mu": table["mu"] + groups_mean}
    average = _prior(f"{name}_borough_mean", shifted, **kwargs)
    return pm.Deterministic(name, average - groups_mean, **kwargs)


def _zero_sum_effect(name: str, z_name: str, sd: pt.TensorVariable, dim: str,
                     centred: bool) -> pt.TensorVariable:
    """Zero-sum intercepts of a small crossed grouping (year, a demographic), ``name`` over ``dim``.

    Non-centred: ``z * sd`` with ``z`` zero-sum standard normal (stored as ``z_name``).
    Centred: a zero-sum normal with scale ``sd`` itself. A grouping with a handful of
    levels holding thousands of respondents each pins every level's effect down, so
    non-centred ``z`` and ``sd`` trade off along a curve the sampler crawls along.
    """
    if centred:
        return pm.ZeroSumNormal(name, sigma=sd, dims=dim)
    return pm.Deterministic(name, pm.ZeroSumNormal(z_name, sigma=1.0, dims=dim) * sd, dims=dim)


def _zero_sum_slopes(name: str, z_name: str, sd: pt.TensorVariable, dim: str, slope_dim: str,
                     centred: bool) -> pt.TensorVariable:
    """Zero-sum slope deviations over ``dim``, one SD per driver; stored as (``dim``, ``slope_dim``).

    The zero-sum axis must be the last, so the draws are (driver, level) and the named
    deviations their transpose.
    """
    if centred:
        by_driver = pm.ZeroSumNormal(f"{name}_by_driver", sigma=sd[:, None], dims=(slope_dim, dim))
    else:
        by_driver = pm.ZeroSumNormal(z_name, sigma=1.0, dims=(slope_dim, dim)) * sd[:, None]
    return pm.Deterministic(name, by_driver.T, dims=(dim, slope_dim))


#: ``centred = "auto"``: a small crossed grouping is centred when its median level holds at
#: least this many respondents (a level's log-odds then known to about +-0.07, well inside
#: the spread of the levels) and it has 3 or more levels.
CENTRED_FROM = 1000
#: A 2-level grouping (sex) needs many more: its SD rests on one difference. At a year (6,000
#: a level, the difference known to about +-0.045) the centred form funnelled (11 divergences);
#: at five years (30,000 a level, +-0.02) the non-centred one did instead, along the ridge
#: ``z * sd = difference`` at large SDs (``benchmarks/README.md``, *Mixing*).
CENTRED_FROM_TWO_LEVELS = 15000
#: Boroughs are centred from this many respondents a borough (their average kept apart, as
#: non-centred). A year's 400 and five years' 2,000 a borough sample cleanly non-centred; at
#: 8,000 a borough the non-centred borough intercepts funnelled (R-hat 1.09 on their SD,
#: ``benchmarks/README.md``, *Mixing*). Wards (a few hundred at most) stay non-centred.
CENTRED_BOROUGH_FROM = 4000


def centred_groupings(spec: ModelSpec, frame: pd.DataFrame) -> frozenset[str]:
    """The groupings sampled centred: the spec's list, or with ``"auto"`` those the data inform well.

    ``"auto"``: a year or demographic from :data:`CENTRED_FROM` respondents in its median
    level (:data:`CENTRED_FROM_TWO_LEVELS` for two levels), the boroughs from
    :data:`CENTRED_BOROUGH_FROM` in the median borough; never a correlated level or the wards.

    Parameters
    ----------
    spec
        Its ``centred`` option: a list of groupings, or ``"auto"``.
    frame
        The tidy survey frame the model is built on (``"auto"`` counts its respondents).
    """
    if not isinstance(spec.centred, str):
        return frozenset(spec.centred)
    candidates = [*(["year"] if frame["financial_year"].nunique() > 1 else []), *spec.demographics]
    chosen = set()
    for g in candidates:
        counts = frame["financial_year" if g == "year" else g].value_counts()
        enough = CENTRED_FROM if len(counts) >= 3 else CENTRED_FROM_TWO_LEVELS
        if len(counts) >= 2 and counts.median() >= enough and g not in spec.correlated:
            chosen.add(g)
    if frame["borough"].value_counts().median() >= CENTRED_BOROUGH_FROM and "borough" not in spec.correlated:
        chosen.add("borough")
    return frozenset(chosen)


def design_weights(frame: pd.DataFrame, how: str, borough_idx: np.ndarray,
                   ward_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Respondent, ward and borough weights for ``weights = how``.

    ``pseudo``: each respondent's ``WT_Discrete``, scaled to average 1 (the
    likelihood then carries as much information as the sample has respondents).
    ``savitsky_williams``: the weight split into three parts whose product is
    the respondent's weight (up to one constant): the borough's (the mean of its
    wards' mean weights, scaled to average 1 over boroughs), the ward's within its
    borough (the ward's mean over that borough mean: average 1 over the borough's
    wards) and the respondent's within the ward (weight over the ward's mean). The first two
    weight the group priors, the last the likelihood (Savitsky & Williams 2022).
    """
    w = frame["weight"].to_numpy(dtype=float)
    w = w / w.mean()
    if how == "pseudo":
        return {"respondent": w}
    ward_mean = np.bincount(ward_idx, w) / np.bincount(ward_idx)
    ward_borough = np.zeros(ward_mean.size, dtype=int)
    ward_borough[ward_idx] = borough_idx
    # A borough's weight is the mean of its wards' mean weights, so the ward parts average
    # exactly 1 within each borough and the three parts multiply back to the weight.
    borough_mean = np.bincount(ward_borough, ward_mean) / np.bincount(ward_borough)
    ward_rel = ward_mean / borough_mean[ward_borough]
    return {"respondent": w / ward_mean[ward_idx], "ward": ward_rel,
            "borough": borough_mean / borough_mean.mean()}


def build_model(spec: ModelSpec, frame: pd.DataFrame) -> pm.Model:
    """Build the hierarchical model of ``spec.outcome`` (binary or cumulative logit).

    Parameters
    ----------
    spec
        Outcome, family, drivers, varying effects, demographics, weights and priors.
    frame
        The tidy frame of :func:`pas_bayes.survey.read_survey` (``SurveyData.frame``).

    Returns
    -------
    pymc.Model
        With coords ``obs``, ``driver``, ``ward_driver``, ``borough``, ``ward``,
        one per demographic, and ``year`` / ``answer`` when used.
        ``constant_data`` keeps the design (``term`` x ``obs``) and the index maps, so summaries
        never need the survey again.
    """
    coords = model_coords(spec, frame)
    borough_idx = frame["borough"].map({b: i for i, b in enumerate(coords["borough"])}).to_numpy()
    ward_idx = frame["ward"].map({w: i for i, w in enumerate(coords["ward"])}).to_numpy()
    ward_borough = (frame.drop_duplicates("ward").set_index("ward")["borough"]
                    .reindex(coords["ward"]).map({b: i for i, b in enumerate(coords["borough"])})
                    .to_numpy())
    X = frame[list(spec.drivers)].to_numpy(dtype=float)
    ward_cols = [spec.drivers.index(d) for d in spec.ward_slopes]
    coords_all = {**coords, "obs": np.arange(len(frame)), "term": ["intercept", *spec.drivers]}
    cumulative = spec.family == "cumulative"
    if cumulative:
        answers, positive_from = spec.codebook().answer_order(spec.outcome)
        coords_all["cut"] = [f"{a} | {b}" for a, b in pairwise(answers)]
        y = frame["answer"].to_numpy(dtype=int)
    else:
        y = frame[spec.outcome].to_numpy(dtype=int)
    if "borough" in spec.correlated:
        coords_all["borough_coef"] = coords_all["borough_coef_"] = ["intercept", *spec.drivers]
    if "ward" in spec.correlated:
        coords_all["ward_coef"] = coords_all["ward_coef_"] = ["intercept", *spec.ward_slopes]

    with pm.Model(coords=coords_all) as model:
        # The raw design and its centring are kept for every summary (predictions, scenarios);
        # the likelihood reads the centred design with a leading column of ones, built once here
        # rather than re-centred at every gradient evaluation.
        pm.Data("X", X, dims=("obs", "driver"))
        centre = X.mean(axis=0)
        pm.Data("X_centre", centre, dims="driver")
        # Drivers enter centred at their sample means (binary ones included): a ward's
        # intercept and its yes/no slopes then barely trade off, which the group SDs need
        # to mix well. Slopes keep their meaning; intercepts are at the average resident.
        # Held term by term, (term, obs), for the ward terms' runs (pas_bayes.ward_terms).
        design = pm.Data("design", np.vstack([np.ones(len(frame)), (X - centre).T]), dims=("term", "obs"))
        pm.Data("borough_idx", borough_idx, dims="obs")
        ward_idx_data = pm.Data("ward_idx", ward_idx, dims="obs")
        wb_idx = pm.Data("ward_borough_idx", ward_borough, dims="ward")

        centred = centred_groupings(spec, frame)
        borough = _group_effects("borough", "borough", "driver", list(spec.drivers), spec,
                                 "borough_intercept_sd", "borough_slope_sd", centred, mean_apart=True)
        beta = _london_effect("beta", spec.prior("driver_effect"), borough.slopes_mean, dims="driver")
        pm.Deterministic("borough_slope", beta + borough.slopes, dims=("borough", "driver"))
        ward = _group_effects("ward", "ward", "ward_driver", list(spec.ward_slopes), spec,
                              "ward_intercept_sd", "ward_slope_sd", centred)
        # Every respondent's intercept and slopes are those of their ward, so they are added up
        # once per ward (680 rows) and applied once per respondent, a run of the ward's
        # respondents at a time (the reader puts them in ward order): no per-level gathers
        # or scatters in the gradient (measured in benchmarks/where_time_goes.py).
        ward_slopes = beta + borough.slopes[wb_idx]
        if ward_cols:
            ward_slopes = pt.set_subtensor(ward_slopes[:, ward_cols], ward_slopes[:, ward_cols] + ward.slopes)
        ward_coef = pt.concatenate([(borough.intercept[wb_idx] + ward.intercept)[:, None], ward_slopes], axis=1)
        run_ward, run_start = ward_runs(ward_idx)
        if len(frame) >= RUNS_FROM * len(run_ward):
            eta = ward_terms(ward_coef, design, pytensor.shared(run_ward, name="ward_run_ward"),
                             pytensor.shared(run_start, name="ward_run_start"), n_wards=len(coords["ward"]))
        else:
            # Runs of a few respondents cost more in loop overhead than a gather over all of them.
            eta = (design.T * ward_coef[ward_idx_data]).sum(axis=1)
        # Intercepts of small crossed groupings (year, each demographic), gathered together
        # below through the cell (combination of levels) each respondent is in.
        cell_terms: list[tuple[pt.TensorVariable, np.ndarray]] = []

        if "year" in coords:
            year_idx = frame["financial_year"].map({t: i for i, t in enumerate(coords["year"])}).to_numpy()
            t_idx = pm.Data("year_idx", year_idx, dims="obs")
            sd_t = _prior("sd_year", spec.prior("year_sd"))
            cell_terms.append((_zero_sum_effect("year_intercept", "z_year", sd_t, "year", "year" in centred),
                               year_idx))
            if spec.year_slopes:
                cols = [spec.drivers.index(d) for d in spec.year_slopes]
                sd_ts = _prior("sd_year_slope", spec.prior("year_slope_sd"), dims="year_driver")
                dev = _zero_sum_slopes("year_slope_dev", "z_year_slope", sd_ts, "year", "year_driver",
                                       "year" in centred)
                eta = eta + (design[[1 + c for c in cols]].T * dev[t_idx]).sum(axis=1)

        for g in spec.demographics:
            level_idx = frame[g].map({v: i for i, v in enumerate(coords[g])}).to_numpy()
            idx = pm.Data(f"{g}_idx", level_idx, dims="obs")
            sd_g = _prior(f"sd_{g}", spec.prior("demographic_sd"))
            # Zero-sum: with only 2-6 levels, free intercepts would trade off against the
            # London intercept (one more unidentified location, low ESS for both).
            cell_terms.append((_zero_sum_effect(f"effect_{g}", f"z_{g}", sd_g, g, g in centred), level_idx))
            if g in spec.demographic_slopes:
                # Zero-sum over levels too: beta stays the effect for the average level.
                cols = [spec.drivers.index(d) for d in spec.demographic_slopes[g]]
                sd_gs = _prior(f"sd_{g}_slope", spec.prior("demographic_slope_sd"), dims=f"{g}_driver")
                dev = _zero_sum_slopes(f"slope_dev_{g}", f"z_{g}_slope", sd_gs, g, f"{g}_driver", g in centred)
                eta = eta + (design[[1 + c for c in cols]].T * dev[idx]).sum(axis=1)

        if cell_terms:
            # A full year has ~80 cells of ethnicity x age x sex: one gather (and one scatter in
            # the gradient) over respondents instead of one per grouping.
            levels, cell_idx = np.unique(np.column_stack([idx for _, idx in cell_terms]), axis=0,
                                         return_inverse=True)
            cell_effect = sum(effect[levels[:, j]] for j, (effect, _) in enumerate(cell_terms))
            eta = eta + cell_effect[pm.Data("cell_idx", cell_idx.ravel(), dims="obs")]

        if cumulative:
            n_cut = len(coords_all["cut"])
            cut_prior = spec.prior("cutpoints")
            cutpoints = pm.Normal("cutpoints", cut_prior["mu"], cut_prior["sigma"], dims="cut",
                                  transform=pm.distributions.transforms.ordered,
                                  initval=np.linspace(-2.0, 2.0, n_cut))
            pm.Deterministic("intercept", -cutpoints[positive_from - 1])
            pm.Data("positive_from", positive_from)
            dist = pm.OrderedLogistic.dist(eta=eta, cutpoints=cutpoints)
        else:
            alpha = _london_effect("intercept", spec.prior("intercept"), borough.intercept_mean)
            eta = alpha + eta

        if spec.weights == "none":
            if cumulative:
                model.register_rv(dist, spec.outcome, observed=y, dims=("obs",))
            else:
                pm.CustomDist(spec.outcome, eta, dist=_bernoulli_logit, logp=bernoulli_logit_logp,
                              observed=y, dims="obs")
        else:
            parts = design_weights(frame, spec.weights, borough_idx, ward_idx)
            pm.Data("y_observed", y, dims="obs")
            w = pm.Data("weight_respondent", parts["respondent"], dims="obs")
            loglik = pm.logp(dist, y) if cumulative else bernoulli_logit_logp(pt.as_tensor(y), eta)
            pm.Potential("weighted_loglik", (w * loglik).sum())
            for level, effects in (("borough", borough), ("ward", ward)):
                if level in parts:
                    wg = pm.Data(f"weight_{level}", parts[level], dims=level)
                    # The group's prior density counts w_g times instead of once.
                    pm.Potential(f"weighted_prior_{level}", ((wg - 1.0) * effects.log_prior).sum())
    return model


#: Per-draw ward effects that are ``z * sd`` of stored draws: 680 x 8 numbers a draw at a full
#: year, half of everything stored. They are left out of the trace and recomputed on reading
#: (:func:`restore_ward_effects`), which keeps a fit's peak memory down.
RECOMPUTED = {"ward_intercept": ("z_ward_intercept", "sd_ward_intercept"),
              "ward_slope_dev": ("z_ward_slope", "sd_ward_slope")}


def stored_variables(model: pm.Model) -> list[str]:
    """Names of the variables a fit stores: every free variable and deterministic but those
    in :data:`RECOMPUTED` (when the model has them in their ``z * sd`` form)."""
    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    skip = {name for name, parts in RECOMPUTED.items() if all(p in model.named_vars for p in parts)}
    return [n for n in names if n not in skip]


def restore_ward_effects(idata: xr.DataTree) -> xr.DataTree:
    """Add the ward effects left out of the trace (:data:`RECOMPUTED`) back to the posterior.

    Exactly the deterministics the model defines (``z * sd``, broadcast by dimension name);
    a posterior that already holds them is returned unchanged.
    """
    post = idata["posterior"].to_dataset()
    restored = with_ward_effects(post)
    if restored is not post:
        idata["posterior"] = xr.DataTree(restored)
    return idata


def with_ward_effects(ds: xr.Dataset) -> xr.Dataset:
    """:func:`restore_ward_effects` for one posterior Dataset.

    When the draws are dask arrays (a large posterior read from its run folder), so are the
    effects: computed a block at a time by whatever reads them, so restoring them never
    holds every draw's ward effects in memory.
    """
    missing = {name: parts for name, parts in RECOMPUTED.items()
               if name not in ds.data_vars and all(p in ds.data_vars for p in parts)}
    if not missing:
        return ds
    ds = ds.copy()
    for name, (z, sd) in missing.items():
        ds[name] = (ds[z] * ds[sd]).transpose(*ds[z].dims)
    return ds
