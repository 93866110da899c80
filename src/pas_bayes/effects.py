"""Driver effects by London, borough and ward, as a tidy table.

Two scales:

* ``logit``: the model's slopes (London effect; each borough's and ward's total
  slope), log-odds per SD of a composite driver or yes vs no for a binary one;
* ``pp``: average marginal effects in percentage points: for each respondent,
  the change in the probability of a positive answer when the driver goes up
  by 1 SD (composite) or from no to yes (binary), computed with the slopes of
  their own ward and borough, then averaged over the respondents of London,
  of each borough and of each ward (:mod:`pas_bayes.predictions`).

Array work is done on plain numpy arrays of draws (samples x ...), and labels
are attached once, at the end, as in arviz-stats. Ward slopes are never
stored in the posterior (679 wards x 7 drivers x 4,000 draws would dominate
the run folder); they are assembled here from their parts:

    ward slope = beta + borough deviation of the ward's borough + ward deviation
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pas_bayes.predictions import (
    Posterior,
    average_marginal_effects,
    draws,
    group_means,
    load_posterior,
    marginal_effect_draws,
)

EFFECT_COLUMNS = ("level", "borough", "ward", "driver", "scale", "mean", "sd", "q05", "q50", "q95")


def _coord(idata: xr.DataTree, dim: str) -> list[str]:
    return [str(v) for v in idata["posterior"][dim].values]


def slope_draws(idata: xr.DataTree) -> dict[str, np.ndarray]:
    """Total driver slopes: ``london`` (S, D), ``borough`` (S, B, D), ``ward`` (S, W, D)."""
    beta = draws(idata, "beta")
    borough_dev = draws(idata, "borough_slope_dev")
    ward_borough = np.asarray(idata["constant_data"]["ward_borough_idx"].values, dtype=int)
    ward = beta[:, None, :] + borough_dev[:, ward_borough, :]
    if "ward_slope_dev" in idata["posterior"].data_vars:
        drivers = _coord(idata, "driver")
        cols = [drivers.index(d) for d in _coord(idata, "ward_driver")]
        ward[:, :, cols] += draws(idata, "ward_slope_dev")
    return {"london": beta, "borough": beta[:, None, :] + borough_dev, "ward": ward}


def _summarise(samples: np.ndarray) -> dict[str, np.ndarray]:
    q = np.quantile(samples, [0.05, 0.5, 0.95], axis=0)
    return {"mean": samples.mean(axis=0), "sd": samples.std(axis=0, ddof=1),
            "q05": q[0], "q50": q[1], "q95": q[2]}


def _places(idata: xr.DataTree) -> dict[str, list[tuple[str, str]]]:
    boroughs = _coord(idata, "borough")
    wards = _coord(idata, "ward")
    ward_borough = np.asarray(idata["constant_data"]["ward_borough_idx"].values, dtype=int)
    return {"london": [("", "")],
            "borough": [(b, "") for b in boroughs],
            "ward": [(boroughs[ward_borough[i]], w) for i, w in enumerate(wards)]}


def _tidy(level: str, places: list[tuple[str, str]], drivers: list[str], scale: str,
          samples: np.ndarray) -> pd.DataFrame:
    """Summaries of ``samples`` (S, places, drivers) as tidy rows."""
    stats = _summarise(samples.reshape(samples.shape[0], len(places), len(drivers)))
    return pd.DataFrame({
        "level": level,
        "borough": np.repeat([p[0] for p in places], len(drivers)),
        "ward": np.repeat([p[1] for p in places], len(drivers)),
        "driver": np.tile(drivers, len(places)),
        "scale": scale,
        **{k: v.reshape(-1) for k, v in stats.items()},
    })


def marginal_effects(post: Posterior) -> dict[str, np.ndarray]:
    """Average marginal effects in percentage points, by level, as draws.

    Returns
    -------
    dict
        ``level -> (S, places, drivers)`` arrays for ``london`` (places = 1),
        ``borough`` and ``ward``.
    """
    return {level: 100.0 * values for level, values in average_marginal_effects(post).items()}


def driver_effects(idata: xr.DataTree, *, probability_scale: bool = True,
                   max_draws: int = 1000) -> pd.DataFrame:
    """Tidy driver effects on the log-odds scale and, by default, in percentage points.

    Parameters
    ----------
    idata
        A posterior made by :func:`pas_bayes.fit.fit_run`.
    probability_scale
        Add ``pp`` rows (average marginal effects); they take a few seconds a driver.
    max_draws
        Draws used for the ``pp`` rows (evenly spaced); ``logit`` rows use every draw.

    Returns
    -------
    pandas.DataFrame
        Columns ``level`` (london, borough, ward), ``borough``, ``ward``,
        ``driver``, ``scale`` (``logit`` or ``pp``), ``mean``, ``sd``, ``q05``,
        ``q50``, ``q95``. Borough and ward ``logit`` rows are total slopes
        (London plus deviations); ``borough`` is empty on London rows, ``ward``
        on London and borough rows.
    """
    drivers = _coord(idata, "driver")
    places = _places(idata)
    slopes = slope_draws(idata)
    frames = [_tidy(level, places[level], drivers, "logit", slopes[level]) for level in places]
    if probability_scale:
        ame = marginal_effects(load_posterior(idata, max_draws=max_draws))
        frames += [_tidy(level, places[level], drivers, "pp", ame[level]) for level in places]
    return pd.concat(frames, ignore_index=True)[list(EFFECT_COLUMNS)]


GROUP_COLUMNS = ("group", "level", "driver", "mean", "sd", "q05", "q50", "q95", "dev_mean", "dev_q05",
                 "dev_q95", "prob_above_average")


def group_slopes(idata: xr.DataTree) -> pd.DataFrame:
    """Driver effects by financial year and by demographic level, where the run lets them vary.

    Each row is one level's total slope (log-odds per SD, or yes vs no) and its
    deviation from the London effect (``beta``, the average over levels: the
    deviations sum to zero over a group's levels), with the probability that the
    deviation is positive.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GROUP_COLUMNS`; empty when nothing varies by year or demographic.
    """
    post = idata["posterior"]
    drivers = _coord(idata, "driver")
    beta = draws(idata, "beta")
    sources = []
    if "year_slope_dev" in post.data_vars:
        sources.append(("year", "year", "year_driver", "year_slope_dev"))
    for var in post.data_vars:
        if var.startswith("slope_dev_"):
            g = var.removeprefix("slope_dev_")
            sources.append((g, g, f"{g}_driver", var))
    rows = []
    for group, dim, driver_dim, var in sources:
        dev = draws(idata, var)  # (S, levels, drivers of the group)
        for j, driver in enumerate(_coord(idata, driver_dim)):
            total = beta[:, [drivers.index(driver)]] + dev[:, :, j]
            stats, dstats = _summarise(total), _summarise(dev[:, :, j])
            for i, level in enumerate(_coord(idata, dim)):
                rows.append({"group": group, "level": level, "driver": driver,
                             **{k: float(v[i]) for k, v in stats.items()},
                             "dev_mean": float(dstats["mean"][i]), "dev_q05": float(dstats["q05"][i]),
                             "dev_q95": float(dstats["q95"][i]),
                             "prob_above_average": float((dev[:, i, j] > 0).mean())})
    return pd.DataFrame(rows, columns=list(GROUP_COLUMNS))


def effect_correlations(idata: xr.DataTree) -> pd.DataFrame:
    """Correlations of LKJ-correlated varying effects (e.g. borough intercept with engagement slope).

    Returns
    -------
    pandas.DataFrame
        ``level`` (borough or ward), ``first``, ``second`` (each pair once), ``mean``, ``q05``, ``q50``,
        ``q95``, ``prob_positive``; empty when the run has no correlated effects.
    """
    rows = []
    for level in ("borough", "ward"):
        var = f"corr_{level}"
        if var not in idata["posterior"].data_vars:
            continue
        corr = draws(idata, var)
        names = _coord(idata, f"{level}_coef")
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                r = corr[:, i, j]
                q = np.quantile(r, [0.05, 0.5, 0.95])
                rows.append({"level": level, "first": names[i], "second": names[j], "mean": float(r.mean()),
                             "q05": q[0], "q50": q[1], "q95": q[2], "prob_positive": float((r > 0).mean())})
    return pd.DataFrame(rows, columns=["level", "first", "second", "mean", "q05", "q50", "q95", "prob_positive"])


def group_marginal_effects(post: Posterior) -> pd.DataFrame:
    """Average marginal effects (points) among the respondents of each year or demographic level,
    for the drivers whose effect varies by that group.

    Each respondent's effect uses their own slopes (borough, ward, year, demographic), so
    the numbers answer "how much does engagement move the share positive among Black
    Londoners?", on the probability scale.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``level``, ``driver``, ``respondents``, ``mean``, ``q05``, ``q25``, ``q50``,
        ``q75``, ``q95`` (points), ``prob_above_others`` (P(the level's effect exceeds the mean of
        the other levels' effects)).
    """
    groupings = []
    if post.year_slope_dev is not None:
        varying = np.flatnonzero(np.abs(post.year_slope_dev).sum(axis=(0, 1)) > 0)
        groupings.append(("year", post.year_idx, post.years, varying))
    for g, dev in post.demographic_slope_dev.items():
        varying = np.flatnonzero(np.abs(dev).sum(axis=(0, 1)) > 0)
        groupings.append((g, post.demographic_idx[g], post.demographic_levels[g], varying))
    rows = []
    for group, index, levels, varying in groupings:
        counts = np.bincount(index, minlength=len(levels))
        for d in varying:
            driver = post.drivers[d]
            by_level = 100.0 * group_means(marginal_effect_draws(post, driver), index, len(levels))
            q = np.quantile(by_level, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
            for i, level in enumerate(levels):
                others = np.delete(by_level, i, axis=1).mean(axis=1) if len(levels) > 1 else by_level[:, i]
                rows.append({"group": group, "level": level, "driver": driver, "respondents": int(counts[i]),
                             "mean": float(by_level[:, i].mean()), "q05": q[0, i], "q25": q[1, i],
                             "q50": q[2, i], "q75": q[3, i], "q95": q[4, i],
                             "prob_above_others": float((by_level[:, i] > others).mean())})
    return pd.DataFrame(rows, columns=["group", "level", "driver", "respondents", "mean", "q05", "q25", "q50",
                                       "q75", "q95", "prob_above_others"])
