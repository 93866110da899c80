"""Driver effects by London, borough and ward, as a tidy table.

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

EFFECT_COLUMNS = ("level", "borough", "ward", "driver", "scale", "mean", "sd", "q05", "q50", "q95")


def draws(idata: xr.DataTree, var: str) -> np.ndarray:
    """Posterior draws of ``var`` as an array with chain and draw merged first."""
    da = idata["posterior"][var]
    values = da.values
    return values.reshape((-1, *values.shape[2:]))


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


def driver_effects(idata: xr.DataTree) -> pd.DataFrame:
    """Tidy driver effects on the log-odds scale.

    Parameters
    ----------
    idata
        A posterior made by :func:`pas_bayes.fit.fit_run`.

    Returns
    -------
    pandas.DataFrame
        Columns ``level`` (london, borough, ward), ``borough``, ``ward``,
        ``driver``, ``scale`` (``logit``), ``mean``, ``sd``, ``q05``, ``q50``,
        ``q95``. Borough and ward rows are total slopes (London plus
        deviations); ``borough`` is empty on London rows, ``ward`` on London
        and borough rows.
    """
    drivers = _coord(idata, "driver")
    boroughs = _coord(idata, "borough")
    wards = _coord(idata, "ward")
    ward_borough = np.asarray(idata["constant_data"]["ward_borough_idx"].values, dtype=int)
    slopes = slope_draws(idata)
    frames = []
    for level, places in (("london", [("", "")]),
                          ("borough", [(b, "") for b in boroughs]),
                          ("ward", [(boroughs[ward_borough[i]], w) for i, w in enumerate(wards)])):
        stats = _summarise(slopes[level].reshape(slopes[level].shape[0], len(places), len(drivers)))
        frame = pd.DataFrame({
            "level": level,
            "borough": np.repeat([p[0] for p in places], len(drivers)),
            "ward": np.repeat([p[1] for p in places], len(drivers)),
            "driver": np.tile(drivers, len(places)),
            "scale": "logit",
            **{k: v.reshape(-1) for k, v in stats.items()},
        })
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(EFFECT_COLUMNS)]


def borough_rank_table(effects: pd.DataFrame, driver: str) -> pd.DataFrame:
    """Borough rows of one driver, sorted from the largest posterior mean to the smallest."""
    rows = effects[(effects["level"] == "borough") & (effects["driver"] == driver)]
    return rows.sort_values("mean", ascending=False).reset_index(drop=True)
