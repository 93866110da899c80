"""Parameter recovery: every estimate of a fit beside the generator's truth, and a scorecard over fits.

For a survey made by :mod:`pas_bayes.simulate` the truth (``truth.json``) holds
the London effects, every SD and each borough's slope deviations.
:func:`parameter_recovery` puts each posterior summary beside its true value;
:func:`recovery_scorecard` says, over many fits, how often 50% and 90% intervals
cover the truth, how well the borough slopes correlate with theirs, and how
often a "this borough differs from London" claim is made where the truth has no
difference (the false-positive rate). A claim here is the one the report
makes: the 90% interval of the borough's deviation from London excludes 0.

What is compared (log-odds):

* ``london_effect``: ``beta[d]`` vs the true driver effect;
* ``borough_slope``: ``borough_slope[b, d]`` vs the true effect plus deviation;
* ``borough_deviation``: ``borough_slope_dev[b, d]`` vs the true deviation;
* ``sd``: the group SDs vs the SDs the deviations were drawn with (a true SD of
  0 lies on the prior's boundary, where no interval can cover it: those rows
  are marked ``boundary`` and left out of coverage);
* ``cutpoint_spacing`` (ordinal models): the distance between neighbouring cut-points;
* ``demographic_gap``: each level's effect minus the first level's, vs the true
  difference (the model's demographic effects are zero-sum, the truth's are not,
  so only differences are comparable).

The London intercept is not compared: the model's is at the average resident
(drivers enter centred), the generator's at driver scores of 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
COLUMNS = ("kind", "parameter", "borough", "driver", "truth", "mean", "sd", "q05", "q25", "q50", "q75", "q95",
           "p_positive", "boundary")


def _summaries(samples: np.ndarray) -> dict[str, float]:
    """Mean, SD, quantiles and P(> 0) of draws along the last axis (one row per leading index)."""
    q = np.quantile(samples, QUANTILES, axis=-1)
    return {"mean": samples.mean(axis=-1), "sd": samples.std(axis=-1), "q05": q[0], "q25": q[1], "q50": q[2],
            "q75": q[3], "q95": q[4], "p_positive": (samples > 0).mean(axis=-1)}


def _flat(da: xr.DataArray) -> np.ndarray:
    other = [d for d in da.dims if d not in ("chain", "draw")]
    return da.stack(sample=("chain", "draw")).transpose(*other, "sample").values


def _rows(kind: str, parameter: str, draws: np.ndarray, truth: np.ndarray, **labels: Any) -> pd.DataFrame:
    frame = pd.DataFrame({"kind": kind, "parameter": parameter, **labels, "truth": truth, **_summaries(draws)})
    return frame


def parameter_recovery(idata: xr.DataTree, truth: dict[str, Any], outcome: str) -> pd.DataFrame:
    """Every compared parameter of one fit: posterior summaries beside the truth.

    Parameters
    ----------
    idata
        The run's posterior DataTree.
    truth
        The simulation's ``truth.json`` (format ``pas_bayes.truth/1``).
    outcome
        Which outcome's truth the fit is of.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind, parameter, borough, driver, truth, mean, sd, q05, q25, q50,
        q75, q95, p_positive, boundary``.
    """
    post = idata["posterior"].to_dataset()
    t = truth["outcomes"][outcome]
    drivers = [str(d) for d in post["beta"]["driver"].values]
    boroughs = [str(b) for b in post["borough_slope"]["borough"].values]
    frames = [_rows("london_effect", "beta", _flat(post["beta"]),
                    np.array([t["driver_effects"][d] for d in drivers]), borough="", driver=drivers)]
    dev = np.array([[t["borough_slope_deviations"][b][d] for d in drivers] for b in boroughs])
    beta = np.array([t["driver_effects"][d] for d in drivers])
    b_idx, d_idx = np.meshgrid(np.arange(len(boroughs)), np.arange(len(drivers)), indexing="ij")
    labels = {"borough": np.array(boroughs)[b_idx.ravel()], "driver": np.array(drivers)[d_idx.ravel()]}
    n_samples = post.sizes["chain"] * post.sizes["draw"]
    frames.append(_rows("borough_slope", "borough_slope", _flat(post["borough_slope"]).reshape(-1, n_samples),
                        (beta + dev).ravel(), **labels))
    frames.append(_rows("borough_deviation", "borough_slope_dev",
                        _flat(post["borough_slope_dev"]).reshape(-1, n_samples), dev.ravel(), **labels))
    sds = [("sd_borough_intercept", "", t["borough_intercept_sd"]), ("sd_ward_intercept", "", t["ward_intercept_sd"])]
    sds += [("sd_borough_slope", d, t["borough_slope_sd"].get(d, 0.0)) for d in drivers]
    if "sd_ward_slope" in post:
        sds += [("sd_ward_slope", str(d), t["ward_slope_sd"].get(str(d), 0.0))
                for d in post["sd_ward_slope"]["ward_driver"].values]
    for name, driver, value in sds:
        da = post[name] if not driver else post[name].sel({post[name].dims[-1]: driver})
        frames.append(_rows("sd", name, _flat(da)[None, :], np.array([value]), borough="", driver=[driver]))
    for g, effects in t["demographic_effects"].items():
        var = f"effect_{g}"
        if var not in post:
            continue
        levels = [str(v) for v in post[var][g].values if str(v) in effects]
        draws = _flat(post[var].sel({g: levels}))
        gaps = draws[1:] - draws[:1]
        frames.append(_rows("demographic_gap", f"{var}[level - {levels[0]}]", gaps,
                            np.array([effects[v] - effects[levels[0]] for v in levels[1:]]), borough="",
                            driver=levels[1:]))
    if "cutpoints" in post:
        # The cut-points absorb the intercept (at the average resident, not at driver
        # scores of 0), so only their spacing is comparable with the generator's.
        true_cuts = np.sort(np.asarray(truth["outcome_cutpoints"], dtype=float))
        cuts = _flat(post["cutpoints"])
        frames.append(_rows("cutpoint_spacing", "cutpoints[k+1] - cutpoints[k]", np.diff(cuts, axis=0),
                            np.diff(true_cuts), borough="",
                            driver=[str(c) for c in post["cutpoints"]["cut"].values[1:]]))
    table = pd.concat(frames, ignore_index=True)
    table["boundary"] = (table["kind"] == "sd") & (table["truth"] == 0)
    return table.reindex(columns=list(COLUMNS))


def _claims(rows: pd.DataFrame) -> pd.Series:
    """Whether the 90% interval excludes 0: the claim "differs from London"."""
    return (rows["q05"] > 0) | (rows["q95"] < 0)


def _right_sign_claims(rows: pd.DataFrame) -> pd.Series:
    """A claim that the borough differs from London, in the direction the truth does."""
    return ((rows["q05"] > 0) & (rows["truth"] > 0)) | ((rows["q95"] < 0) & (rows["truth"] < 0))


def _ranking_auc(rows: pd.DataFrame) -> float:
    """How well P(deviation > 0) ranks truly positive deviations above null ones (mean AUC over fits).

    1: every truly higher borough ranks above every null one; 0.5: no better than chance.
    NaN when no fit has both kinds.
    """
    aucs = []
    for _, fit in rows.groupby("task"):
        pos, null = fit.loc[fit["truth"] > 0, "p_positive"].to_numpy(), fit.loc[fit["truth"] == 0, "p_positive"]
        if len(pos) and len(null):
            null = null.to_numpy()
            aucs.append(float(((pos[:, None] > null[None, :]) + 0.5 * (pos[:, None] == null[None, :])).mean()))
    return float(np.mean(aucs)) if aucs else np.nan


def recovery_scorecard(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage, error, correlation and claims over the fits of one scenario.

    Parameters
    ----------
    table
        :func:`parameter_recovery` rows of many fits, with a ``task`` column.

    Returns
    -------
    pandas.DataFrame
        One row per kind and driver (``driver = "all"`` for the kind as a whole):
        ``estimates``, ``fits``, ``coverage50``, ``coverage90`` (boundary SDs left
        out), ``mean_error``, ``rmse``, ``slope_correlation`` (borough slopes: the
        mean over fits of the correlation of posterior means with the truth),
        ``null_deviations`` and ``false_positive_rate`` (deviations whose truth is 0
        that a claim calls different), ``real_deviations`` and ``detected``
        (nonzero true deviations whose claim has the right sign), ``auc_positive_vs_null``
        (how well P(deviation > 0) ranks truly higher boroughs above null ones: the mean
        over fits of the AUC; 0.5 is chance).
    """
    if table.empty:
        return pd.DataFrame()
    table = table.assign(error=table["mean"] - table["truth"],
                         in50=(table["q25"] <= table["truth"]) & (table["truth"] <= table["q75"]),
                         in90=(table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"]))
    rows = []
    for kind, by_kind in table.groupby("kind", sort=False):
        groups = [("all", by_kind)]
        if kind in ("london_effect", "borough_slope", "borough_deviation"):
            groups += list(by_kind.groupby("driver", sort=False))
        if kind == "sd":  # one row per SD parameter: sd_borough_slope[visibility], ...
            groups += [(f"{p}[{d}]" if d else p, g) for (p, d), g in by_kind.groupby(["parameter", "driver"],
                                                                                    sort=False)]
        for driver, g in groups:
            scored = g[~g["boundary"].astype(bool)]
            row = {"kind": kind, "driver": driver, "estimates": len(g), "fits": g["task"].nunique(),
                   "coverage50": scored["in50"].mean() if len(scored) else np.nan,
                   "coverage90": scored["in90"].mean() if len(scored) else np.nan,
                   "mean_error": g["error"].mean(), "rmse": float(np.sqrt((g["error"] ** 2).mean())),
                   "boundary_estimates": int(g["boundary"].astype(bool).sum()),
                   "boundary_mean_q95": g.loc[g["boundary"].astype(bool), "q95"].mean()}
            if kind == "borough_slope":
                cors = [np.corrcoef(f["mean"], f["truth"])[0, 1] for _, f in g.groupby(["task", "driver"])
                        if f["truth"].std() > 1e-9 and len(f) > 2]
                row["slope_correlation"] = float(np.mean(cors)) if cors else np.nan
            if kind == "borough_deviation":
                null = g[g["truth"] == 0]
                real = g[g["truth"] != 0]
                row.update(null_deviations=len(null),
                           false_positive_rate=_claims(null).mean() if len(null) else np.nan,
                           real_deviations=len(real),
                           detected=_right_sign_claims(real).mean() if len(real) else np.nan,
                           auc_positive_vs_null=_ranking_auc(g))
            rows.append(row)
    return pd.DataFrame(rows)
