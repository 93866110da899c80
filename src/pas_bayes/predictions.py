"""Posterior predictions for the respondents of a run: the engine behind every
probability-scale summary (average marginal effects, scenarios, demographic
gaps, posterior predictive checks).

Everything is computed from the run's posterior and its ``constant_data``
(the design the model was fitted to), never by refitting or re-reading the
survey. To bound time and memory, summaries use at most ``max_draws`` posterior
draws, evenly spaced over the chains (1,000 by default: Monte Carlo error of an
interval end is then well under a percentage point), and respondents are
processed a block of draws at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.special import expit

DRAW_BLOCK = 200


@dataclass(frozen=True)
class Posterior:
    """The parts of a fitted run that predictions need, as plain arrays.

    Draw arrays have the selected draws first (``S``); indices map each of the
    ``N`` respondents to its borough, ward and demographic levels.
    """

    drivers: list[str]
    boroughs: list[str]
    wards: list[str]
    X: np.ndarray                # (N, D)
    X_centre: np.ndarray         # (D,) the model's centring of the drivers
    y: np.ndarray                # (N,)
    borough_idx: np.ndarray      # (N,)
    ward_idx: np.ndarray         # (N,)
    ward_borough_idx: np.ndarray  # (W,)
    demographic_idx: dict[str, np.ndarray]
    demographic_levels: dict[str, list[str]]
    intercept: np.ndarray        # (S,)
    borough_intercept: np.ndarray  # (S, B)
    ward_intercept: np.ndarray   # (S, W)
    borough_slope: np.ndarray    # (S, B, D) total slopes
    ward_slope_dev: np.ndarray   # (S, W, D), zero for drivers without ward slopes
    demographic_effect: dict[str, np.ndarray]  # g -> (S, levels)
    #: g -> (S, levels, D): deviations of the drivers' slopes by demographic level (zero where none).
    demographic_slope_dev: dict[str, np.ndarray] = field(default_factory=dict)
    years: list[str] = field(default_factory=list)
    year_idx: np.ndarray | None = None         # (N,) when the run has several years
    year_intercept: np.ndarray | None = None   # (S, T)
    year_slope_dev: np.ndarray | None = None   # (S, T, D), zero for drivers without year slopes
    #: (N,) which of the run's respondents these are (positions in its constant_data); all when None.
    rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rows is None:
            object.__setattr__(self, "rows", np.arange(self.y.size))

    @property
    def n_draws(self) -> int:
        return self.intercept.shape[0]

    def _levels(self, g: str, override: dict[str, np.ndarray] | None) -> np.ndarray:
        return override[g] if override and g in override else self.demographic_idx[g]

    def slopes(self, draws: slice, demographic_override: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Each respondent's total slope of every driver: (S_block, N, D)."""
        out = (self.borough_slope[draws][:, self.borough_idx, :]
               + self.ward_slope_dev[draws][:, self.ward_idx, :])
        if self.year_slope_dev is not None:
            out += self.year_slope_dev[draws][:, self.year_idx, :]
        for g, dev in self.demographic_slope_dev.items():
            out += dev[draws][:, self._levels(g, demographic_override), :]
        return out

    def eta(self, draws: slice, X: np.ndarray | None = None,
            demographic_override: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Log-odds of a positive answer (S_block, N), optionally with another design ``X``
        or other demographic levels (``{group: level index per respondent}``)."""
        X = self.X if X is None else X
        eta = (self.intercept[draws][:, None]
               + self.borough_intercept[draws][:, self.borough_idx]
               + self.ward_intercept[draws][:, self.ward_idx]
               + np.einsum("snd,nd->sn", self.slopes(draws, demographic_override), X - self.X_centre))
        if self.year_intercept is not None:
            eta += self.year_intercept[draws][:, self.year_idx]
        for g, effect in self.demographic_effect.items():
            eta += effect[draws][:, self._levels(g, demographic_override)]
        return eta

    def respondents(self, rows: slice | np.ndarray) -> Posterior:
        """The same posterior for some of the respondents (a slice or positions; draw arrays are
        shared, not copied)."""
        return replace(
            self, rows=self.rows[rows], X=self.X[rows], y=self.y[rows], borough_idx=self.borough_idx[rows],
            ward_idx=self.ward_idx[rows],
            demographic_idx={g: idx[rows] for g, idx in self.demographic_idx.items()},
            year_idx=None if self.year_idx is None else self.year_idx[rows])

    def blocks(self) -> Iterator[slice]:
        """Slices of draws, ``DRAW_BLOCK`` at a time."""
        for start in range(0, self.n_draws, DRAW_BLOCK):
            yield slice(start, min(start + DRAW_BLOCK, self.n_draws))


def draws(idata: xr.DataTree, var: str) -> np.ndarray:
    """Posterior draws of ``var`` as an array with chain and draw merged first (chain-major)."""
    values = idata["posterior"][var].values
    return values.reshape((-1, *values.shape[2:]))


def _flat(idata: xr.DataTree, var: str, keep: np.ndarray, where: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Draws ``keep`` (chain-major flat indices) of ``var``, optionally at positions ``where``
    (``{dim: indices}``); only those are read from a lazily loaded posterior."""
    da = idata["posterior"][var]
    if where:
        da = da.isel(where)
    n_draws = da.sizes["draw"]
    if keep.size == da.sizes["chain"] * n_draws and (keep == np.arange(keep.size)).all():
        values = da.values
    else:
        chain, draw = np.divmod(keep, n_draws)
        # Chain by chain (keep is sorted, so chain-major order is kept): an orthogonal selection
        # that a zarr- or dask-backed posterior reads without loading every draw.
        values = np.concatenate([da.isel(chain=c, draw=draw[chain == c]).values[None]
                                 for c in np.unique(chain)], axis=1)
    return values.reshape((-1, *values.shape[2:]))


def select_draws(n_chains: int, n_draws: int, max_draws: int) -> np.ndarray:
    """Indices (into chain-major flattened draws) of at most ``max_draws`` evenly spaced draws."""
    total = n_chains * n_draws
    if total <= max_draws:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max_draws).round().astype(int))


def load_posterior(idata: xr.DataTree, *, max_draws: int = 1000, wards: np.ndarray | None = None) -> Posterior:
    """Collect the arrays of a run's posterior and design for predictions.

    Parameters
    ----------
    idata
        A posterior written by :func:`pas_bayes.fit.fit_run`.
    max_draws
        Use at most this many draws, evenly spaced.
    wards
        Positions (in the posterior's ``ward`` coordinate) of the wards to keep: the
        posterior of their respondents only, with only their wards' draws read (so every
        draw of a large survey can be taken a block of wards at a time). ``rows`` then
        says which of the run's respondents they are.
    """
    post, data = idata["posterior"], idata["constant_data"]
    keep = select_draws(post.sizes["chain"], post.sizes["draw"], max_draws)
    drivers = [str(d) for d in post["driver"].values]
    all_wards = [str(w) for w in post["ward"].values]
    where = None if wards is None else {"ward": np.asarray(wards, dtype=int)}
    ward_names = all_wards if where is None else [all_wards[w] for w in where["ward"]]
    ward_dev = np.zeros((keep.size, len(ward_names), len(drivers)))
    if "ward_slope_dev" in post.data_vars:
        cols = [drivers.index(str(d)) for d in post["ward_driver"].values]
        ward_dev[:, :, cols] = _flat(idata, "ward_slope_dev", keep, where)
    demographics = [v.removeprefix("effect_") for v in post.data_vars
                    if v.startswith("effect_") and f"{v.removeprefix('effect_')}_idx" in data.data_vars]
    years = [str(t) for t in post["year"].values] if "year" in post.coords else []
    year_dev = None
    if years:
        year_dev = np.zeros((keep.size, len(years), len(drivers)))
        if "year_slope_dev" in post.data_vars:
            cols = [drivers.index(str(d)) for d in post["year_driver"].values]
            year_dev[:, :, cols] = _flat(idata, "year_slope_dev", keep)
    demo_dev = {}
    for g in demographics:
        if f"slope_dev_{g}" in post.data_vars:
            dev = np.zeros((keep.size, post.sizes[g], len(drivers)))
            cols = [drivers.index(str(d)) for d in post[f"{g}_driver"].values]
            dev[:, :, cols] = _flat(idata, f"slope_dev_{g}", keep)
            demo_dev[g] = dev
    ward_idx = np.asarray(data["ward_idx"].values, dtype=int)
    ward_borough_idx = np.asarray(data["ward_borough_idx"].values, dtype=int)
    if where is not None:
        local = np.full(len(all_wards), -1)
        local[where["ward"]] = np.arange(where["ward"].size)
        ward_idx, ward_borough_idx = local[ward_idx], ward_borough_idx[where["ward"]]
    full = Posterior(
        drivers=drivers,
        boroughs=[str(b) for b in post["borough"].values],
        wards=ward_names,
        X=np.asarray(data["X"].values, dtype=float),
        X_centre=(np.asarray(data["X_centre"].values, dtype=float) if "X_centre" in data.data_vars
                  else np.zeros(len(drivers))),
        y=positive_answers(idata),
        borough_idx=np.asarray(data["borough_idx"].values, dtype=int),
        ward_idx=ward_idx,
        ward_borough_idx=ward_borough_idx,
        demographic_idx={g: np.asarray(data[f"{g}_idx"].values, dtype=int) for g in demographics},
        demographic_levels={g: [str(v) for v in post[g].values] for g in demographics},
        intercept=_flat(idata, "intercept", keep),
        borough_intercept=_flat(idata, "borough_intercept", keep),
        ward_intercept=_flat(idata, "ward_intercept", keep, where),
        borough_slope=_flat(idata, "borough_slope", keep),
        ward_slope_dev=ward_dev,
        demographic_effect={g: _flat(idata, f"effect_{g}", keep) for g in demographics},
        demographic_slope_dev=demo_dev,
        years=years,
        year_idx=np.asarray(data["year_idx"].values, dtype=int) if years else None,
        year_intercept=_flat(idata, "year_intercept", keep) if years else None,
        year_slope_dev=year_dev,
    )
    return full if where is None else full.respondents(np.flatnonzero(ward_idx >= 0))


def positive_answers(idata: xr.DataTree) -> np.ndarray:
    """Each respondent's observed answer as 1 = positive, 0 = not, whatever the model's family.

    A cumulative model observes the full answer (0 = least positive); its
    ``positive_from`` is the first positive category.
    """
    observed = idata["observed_data"]
    y = np.asarray(observed[next(iter(observed.data_vars))].values, dtype=float)
    data = idata["constant_data"]
    if "positive_from" in data.data_vars:
        y = (y >= float(data["positive_from"].values)).astype(float)
    return y


def group_means(values: np.ndarray, index: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``values`` (S, N) over respondents in each group: (S, n_groups); NaN for empty groups."""
    n = index.size
    indicator = sp.csr_matrix((np.ones(n), (np.arange(n), index)), shape=(n, n_groups))
    counts = np.asarray(indicator.sum(axis=0)).ravel()
    sums = (indicator.T @ values.T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def is_binary(column: np.ndarray) -> bool:
    """True for a 0/1 driver column."""
    return bool(np.isin(np.unique(column), (0.0, 1.0)).all())


def marginal_effect_draws(post: Posterior, driver: str) -> np.ndarray:
    """Per draw and respondent, the change in P(positive) from the driver's contrast.

    Binary driver: P(x = 1) - P(x = 0). Composite driver: P(x + 1 SD) - P(x).
    Returns (S, N), in probability units (multiply by 100 for points).
    """
    d = post.drivers.index(driver)
    out = np.empty((post.n_draws, post.X.shape[0]))
    for block in post.blocks():
        out[block] = _contrast(post.eta(block), post.slopes(block)[:, :, d], post.X[:, d])
    return out


def _contrast(eta: np.ndarray, slope: np.ndarray, x: np.ndarray) -> np.ndarray:
    rest = eta - slope * x
    if is_binary(x):
        return expit(rest + slope) - expit(rest)
    return expit(rest + slope * (x + 1.0)) - expit(rest + slope * x)


def average_marginal_effects(post: Posterior) -> dict[str, np.ndarray]:
    """Average marginal effects of every driver (probability units) over London, boroughs and wards.

    The same as :func:`marginal_effect_draws` followed by :func:`average_over`
    for each driver, but each block of draws computes the linear predictor once
    for all drivers.

    Returns
    -------
    dict
        ``london`` (S, 1, D), ``borough`` (S, B, D), ``ward`` (S, W, D).
    """
    S, D = post.n_draws, len(post.drivers)
    out = {"london": np.empty((S, 1, D)), "borough": np.empty((S, len(post.boroughs), D)),
           "ward": np.empty((S, len(post.wards), D))}
    for block in post.blocks():
        eta, slopes = post.eta(block), post.slopes(block)
        for d in range(D):
            averaged = average_over(_contrast(eta, slopes[:, :, d], post.X[:, d]), post)
            out["london"][block, 0, d] = averaged["london"]
            out["borough"][block, :, d] = averaged["borough"]
            out["ward"][block, :, d] = averaged["ward"]
    return out


def average_over(values: np.ndarray, post: Posterior) -> dict[str, np.ndarray]:
    """Average (S, N) per-respondent quantities over London, each borough and each ward."""
    return {
        "london": values.mean(axis=1),
        "borough": group_means(values, post.borough_idx, len(post.boroughs)),
        "ward": group_means(values, post.ward_idx, len(post.wards)),
    }


def predicted_probability(post: Posterior, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                          ) -> np.ndarray:
    """P(positive) per draw and respondent (S, N), for the design as fitted or transformed."""
    X = post.X if transform is None else transform(post.X.copy())
    out = np.empty((post.n_draws, X.shape[0]))
    for block in post.blocks():
        out[block] = expit(post.eta(block, X))
    return out
