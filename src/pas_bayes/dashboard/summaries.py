"""Posterior -> the tables policy readers need from a dashboard run.

* :func:`trends`: each borough's (and London's) rolling-year rate with credible
  bands, the published value beside it, and a predictive band that adds the
  survey's sampling noise (what a newly published value should fall in);
* :func:`falls`: the probability that a borough's latest year is lower than the
  year before, with the change in points;
* :func:`associations`: between-borough and within-borough (over time)
  associations of the drivers with the outcome, log-odds per SD and points;
* :func:`checks`: how often published values fall in the bands, by nominal
  level: the London series (never fitted) and the held-out quarters;
* :func:`claims_check`: whether "this borough fell" claims made at the end of
  the fitted period hold against the held-out year that followed.

London is the population-weighted mean of the boroughs (Census 2021), as in
MOPAC's own MPS figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pas_bayes.dashboard.model import ROUNDING_VAR, averaging_matrix, sampling_covariance
from pas_bayes.dashboard.read import MEASURE_BY_KEY
from pas_bayes.fit import Run
from pas_bayes.geography import POPULATION_2021

LEVELS = (0.5, 0.8, 0.9, 0.95)
LONDON_CHECK = "London series inside London's rate band, fitted quarters"
HELDOUT_CHECK = "borough values, held-out quarters"
RELATIVE_CHECK = "borough minus London, held-out quarters"
MAX_DRAWS = 2000


@dataclass
class DashboardPosterior:
    """Posterior draws of one dashboard run as plain arrays (draws first)."""

    boroughs: list[str]
    windows: pd.PeriodIndex
    fitted: np.ndarray
    published: np.ndarray       # (borough, window) of the outcome
    rate: np.ndarray            # (draw, borough, window)
    design_effect: np.ndarray   # (draw,) of the outcome
    weights: np.ndarray         # (borough,) population shares
    n_window: int
    outcome: str

    @property
    def london_rate(self) -> np.ndarray:
        """(draw, window) population-weighted London rate."""
        return np.einsum("dbw,b->dw", self.rate, self.weights)

    def predictive(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draws of newly published values: borough (draw, b, w) and London (draw, w).

        Rolling-year sampling variance ``design_effect * p(1-p) / n`` plus rounding.
        """
        deff = self.design_effect[:, None, None]
        var = deff * self.rate * (1 - self.rate) / self.n_window + ROUNDING_VAR
        borough = self.rate + rng.standard_normal(self.rate.shape) * np.sqrt(var)
        lon_var = (deff[:, :, 0] * np.einsum("dbw,b->dw", self.rate * (1 - self.rate), self.weights**2)
                   / self.n_window + ROUNDING_VAR)
        london = self.london_rate + rng.standard_normal(lon_var.shape) * np.sqrt(lon_var)
        return borough, london


def _flat(da) -> np.ndarray:
    return np.asarray(da.stack(sample=("chain", "draw")).transpose("sample", ...).values)


def dashboard_posterior(run: Run, *, max_draws: int = MAX_DRAWS) -> DashboardPosterior:
    """Arrays of a dashboard run (at most ``max_draws`` draws, evenly thinned)."""
    post = run.idata["posterior"]
    const = run.idata["constant_data"]
    rate = _flat(post["rate"].transpose("chain", "draw", "borough", "window"))
    deff = _flat(post["design_effect"].sel(measure=run.spec.outcome))
    keep = np.linspace(0, len(rate) - 1, min(max_draws, len(rate))).round().astype(int)
    boroughs = [str(b) for b in post["borough"].values]
    weights = np.array([POPULATION_2021[b] for b in boroughs], dtype=float)
    return DashboardPosterior(
        boroughs=boroughs,
        windows=pd.PeriodIndex([pd.Period(w, "Q") for w in post["window"].values]),
        fitted=np.asarray(const["fitted"].values).astype(bool),
        published=np.asarray(const["published"].sel(measure=run.spec.outcome).values),
        rate=rate[keep], design_effect=deff[keep], weights=weights / weights.sum(),
        n_window=run.spec.n_window, outcome=run.spec.outcome)


def _bands(draws: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    q = np.quantile(draws, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    return {f"{prefix}{k}": v for k, v in zip(("q05", "q25", "q50", "q75", "q95"), q, strict=True)}


def trends(post: DashboardPosterior, london_published: pd.Series | None = None, *, seed: int = 0) -> pd.DataFrame:
    """Rolling-year rate by borough and quarter (and London), with bands, in proportions.

    Columns: ``area``, ``quarter``, ``fitted`` (used in the fit), ``published``,
    ``q05 .. q95`` (the rate), ``pred_q05``, ``pred_q95`` (a new published value).
    """
    borough_pred, london_pred = post.predictive(np.random.default_rng(seed))
    frames = []
    for b, name in enumerate(post.boroughs):
        frames.append(pd.DataFrame({"area": name, "quarter": post.windows.astype(str), "fitted": post.fitted,
                                    "published": post.published[b], **_bands(post.rate[:, b]),
                                    **{k: v for k, v in _bands(borough_pred[:, b], "pred_").items()
                                       if k in ("pred_q05", "pred_q95")}}))
    lon = (london_published.reindex(post.windows).to_numpy(dtype=float) if london_published is not None
           else np.full(len(post.windows), np.nan))
    frames.append(pd.DataFrame({"area": "London", "quarter": post.windows.astype(str), "fitted": post.fitted,
                                "published": lon, **_bands(post.london_rate),
                                **{k: v for k, v in _bands(london_pred, "pred_").items()
                                   if k in ("pred_q05", "pred_q95")}}))
    return pd.concat(frames, ignore_index=True)


def falls(post: DashboardPosterior, *, lag: int = 4) -> pd.DataFrame:
    """P(the latest fitted year is lower than ``lag`` quarters before), by borough and London.

    Columns: ``area``, ``latest``, ``earlier``, ``rate_latest`` (median),
    ``change_q50``, ``change_q05``, ``change_q95`` (points), ``p_lower``;
    London last, boroughs from the likeliest fall down.
    """
    last = int(np.flatnonzero(post.fitted)[-1])
    if last - lag < 0:
        raise ValueError(f"need more than {lag} fitted quarters to compare a year with the one before")
    rows = []
    series = [(name, post.rate[:, b]) for b, name in enumerate(post.boroughs)] + [("London", post.london_rate)]
    for name, draws in series:
        change = 100 * (draws[:, last] - draws[:, last - lag])
        rows.append({"area": name, "latest": str(post.windows[last]), "earlier": str(post.windows[last - lag]),
                     "rate_latest": float(np.median(draws[:, last])),
                     "change_q50": float(np.median(change)), "change_q05": float(np.quantile(change, 0.05)),
                     "change_q95": float(np.quantile(change, 0.95)), "p_lower": float((change < 0).mean())})
    table = pd.DataFrame(rows)
    boroughs = table[table["area"] != "London"].sort_values("p_lower", ascending=False)
    return pd.concat([boroughs, table[table["area"] == "London"]], ignore_index=True)


def associations(run: Run, post: DashboardPosterior | None = None) -> pd.DataFrame:
    """Driver associations with the outcome, London-wide and by borough.

    Rows: ``level`` (``between boroughs`` / ``within borough, over time``),
    ``area`` (London, or a borough for its own within-borough slope),
    ``driver``, ``scale`` (``logit`` per SD; ``pp``: points of the outcome per SD
    at London's average rate), ``mean``, ``sd``, ``q05``, ``q50``, ``q95``,
    ``p_positive``. These are associations between aggregates (boroughs, and
    boroughs' changes over time), not effects on individuals.
    """
    posterior = run.idata["posterior"]
    if "within_effect" not in posterior:
        return pd.DataFrame(columns=["level", "area", "driver", "scale", "mean", "sd", "q05", "q50", "q95",
                                     "p_positive"])
    post = post or dashboard_posterior(run)
    p_bar = float(post.london_rate[:, post.fitted].mean())
    slope_scale = 100 * p_bar * (1 - p_bar)
    rows = []

    def add(level: str, area: str, driver: str, draws: np.ndarray) -> None:
        for scale, x in (("logit", draws), ("pp", draws * slope_scale)):
            rows.append({"level": level, "area": area, "driver": driver, "scale": scale,
                         "mean": float(x.mean()), "sd": float(x.std(ddof=1)),
                         "q05": float(np.quantile(x, 0.05)), "q50": float(np.median(x)),
                         "q95": float(np.quantile(x, 0.95)), "p_positive": float((x > 0).mean())})

    for driver in posterior["driver"].values:
        add("between boroughs", "London", str(driver), _flat(posterior["between_effect"].sel(driver=driver)))
        add("within borough, over time", "London", str(driver), _flat(posterior["within_effect"].sel(driver=driver)))
        slopes = posterior["within_slope"].sel(driver=driver)
        for borough in slopes["borough"].values:
            add("within borough, over time", str(borough), str(driver), _flat(slopes.sel(borough=borough)))
    return pd.DataFrame(rows)


def coverage(published: np.ndarray, draws: np.ndarray, *, levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """Share of published values inside central predictive intervals, by nominal level.

    ``published`` (n,) and ``draws`` (draw, n); NaN values are skipped.
    """
    ok = ~np.isnan(published)
    rows = []
    for level in levels:
        lo, hi = np.quantile(draws[:, ok], [(1 - level) / 2, (1 + level) / 2], axis=0)
        inside = (published[ok] >= lo - 1e-9) & (published[ok] <= hi + 1e-9)
        rows.append({"nominal": level, "empirical": float(inside.mean()), "n": int(ok.sum())})
    return pd.DataFrame(rows)


def heldout_predictive(post: DashboardPosterior, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the held-out published values given everything published before them.

    A held-out rolling-year value shares up to three quarters of its respondents
    with the last fitted values, so its sampling error is partly known already:
    the predictive is the conditional normal of the held-out windows given the
    fitted windows' residuals (same covariance as the model's likelihood), not
    the wider marginal one.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Borough draws (draw, borough, held-out window), NaN where nothing was
        published, and London draws (draw, held-out window).
    """
    held = np.flatnonzero(~post.fitted)
    n_d, n_b = post.rate.shape[:2]
    n_j = len(post.windows)
    averaging = averaging_matrix(n_j)
    borough = np.full((n_d, n_b, len(held)), np.nan)
    london_mean = np.zeros((n_d, len(held)))
    london_var = np.zeros((n_d, len(held)))
    for b in range(n_b):
        y = post.published[b]
        obs = np.flatnonzero(~np.isnan(y) & post.fitted)
        if len(obs) == 0:  # nothing fitted in this borough: nothing to predict it from
            continue
        cov = sampling_covariance(y, ~np.isnan(y) & post.fitted, averaging, post.n_window)
        gain = np.linalg.solve(cov[np.ix_(obs, obs)], cov[np.ix_(obs, held)]).T          # (held, obs)
        cond_var = np.diag(cov[np.ix_(held, held)] - gain @ cov[np.ix_(obs, held)])
        mean = post.rate[:, b, held] + (y[obs] - post.rate[:, b, obs]) @ gain.T
        var = post.design_effect[:, None] * cond_var[None, :]
        borough[:, b, :] = mean + rng.standard_normal(mean.shape) * np.sqrt(var)
        london_mean += post.weights[b] * mean
        london_var += post.weights[b] ** 2 * var
    borough[:, np.isnan(post.published[:, held])] = np.nan
    london = london_mean + rng.standard_normal(london_mean.shape) * np.sqrt(london_var + ROUNDING_VAR)
    return borough, london


def checks(post: DashboardPosterior, london_published: pd.Series | None, *, seed: int = 0) -> pd.DataFrame:
    """Coverage checks of the London series and of held-out quarters, by nominal level.

    Columns ``check``, ``nominal``, ``empirical``, ``n``:

    * ``London series inside London's rate band, fitted quarters``: does the
      London trend rebuilt from the boroughs follow MOPAC's published London
      series (never fitted)? The published London value pools the same
      respondents as the borough values, so this checks the trend and the
      population weighting, not an independent prediction;
    * ``London series, held-out quarters`` and ``borough values, held-out
      quarters``: predictive intervals of values the fit did not see, given the
      values before them (:func:`heldout_predictive`). These are the forecast
      checks. All boroughs share London's forecast error, so a single held-out
      year can over- or under-cover across every borough at once;
    * ``borough minus London, held-out quarters``: the borough's gap to the
      population-weighted mean of the boroughs, which removes that shared error.
    """
    rng = np.random.default_rng(seed)
    frames = []
    held = ~post.fitted
    if london_published is not None:
        lon = london_published.reindex(post.windows).to_numpy(dtype=float)
        frames.append(coverage(lon[post.fitted], post.london_rate[:, post.fitted])
                      .assign(check=LONDON_CHECK))
    if held.any():
        borough_pred, london_pred = heldout_predictive(post, rng)
        if london_published is not None:
            frames.append(coverage(lon[held], london_pred).assign(check="London series, held-out quarters"))
        frames.append(coverage(post.published[:, held].ravel(), borough_pred.reshape(len(borough_pred), -1))
                      .assign(check=HELDOUT_CHECK))
        # Every borough shares London's forecast error, so coverage over boroughs is one London draw
        # wide; the borough's gap to London isolates what the borough level adds.
        gap = post.published[:, held] - post.weights @ np.nan_to_num(post.published[:, held])
        gap_pred = borough_pred - np.einsum("dbh,b->dh", np.nan_to_num(borough_pred), post.weights)[:, None, :]
        frames.append(coverage(gap.ravel(), gap_pred.reshape(len(gap_pred), -1)).assign(check=RELATIVE_CHECK))
    if not frames:
        return pd.DataFrame(columns=["check", "nominal", "empirical", "n"])
    return pd.concat(frames, ignore_index=True)[["check", "nominal", "empirical", "n"]]


def claims_check(post: DashboardPosterior, *, lag: int = 4, threshold: float = 0.9) -> pd.DataFrame:
    """Do "this borough fell" claims at the end of the fit hold in the held-out year?

    A claim is made where P(latest fitted year < the year before) exceeds
    ``threshold``. It holds if the value published ``lag`` quarters after the
    end of the fit (a new sample of respondents) is still below the value of
    the year before the claim. Needs ``holdout >= lag``.

    Returns one row per borough: ``p_lower``, ``claim`` (fell / rose / no claim),
    ``published_before``, ``published_later``, ``later_lower``, ``holds``.
    """
    last = int(np.flatnonzero(post.fitted)[-1])
    if last + lag >= len(post.windows):
        return pd.DataFrame()
    table = falls(post, lag=lag)
    table = table[table["area"] != "London"].set_index("area")
    rows = []
    for b, name in enumerate(post.boroughs):
        before, later = post.published[b, last - lag], post.published[b, last + lag]
        p = table.loc[name, "p_lower"]
        claim = "fell" if p > threshold else "rose" if p < 1 - threshold else "no claim"
        lower = bool(later < before)
        # 1.0 / 0.0 / NaN (no claim), so that sums and means count claims that held.
        holds = float(lower) if claim == "fell" else float(later > before) if claim == "rose" else np.nan
        rows.append({"area": name, "p_lower": p, "claim": claim, "published_before": before,
                     "published_later": later, "later_lower": lower, "holds": holds})
    return pd.DataFrame(rows)


def london_series(run: Run) -> pd.Series | None:
    """The published London series of the run's outcome (from ``london.csv``), by quarter."""
    path = run.path / "london.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    table = table[table["measure"] == run.spec.outcome]
    if table.empty:
        return None
    return pd.Series(table["proportion"].to_numpy(), index=pd.PeriodIndex(table["quarter"], freq="Q"))


@dataclass
class DashboardSummary:
    """Every table of one dashboard run, computed once for its figures and report."""

    run: Run
    post: DashboardPosterior
    trends: pd.DataFrame
    change: pd.DataFrame
    cover: pd.DataFrame
    assoc: pd.DataFrame
    claims: pd.DataFrame


def summarise_dashboard(run: Run) -> DashboardSummary:
    """Trends, latest-year changes, checks, associations and the claims check of a run."""
    post = dashboard_posterior(run)
    london = london_series(run)
    return DashboardSummary(run=run, post=post, trends=trends(post, london), change=falls(post),
                            cover=checks(post, london), assoc=associations(run, post), claims=claims_check(post))


def outcome_label(measure: str) -> str:
    """A short phrase for a measure: "say the police do a good job"."""
    known = {"good_job": "say the police do a good job locally", "trust": "trust the MPS"}
    return known.get(measure, MEASURE_BY_KEY[measure].description if measure in MEASURE_BY_KEY else measure)


def measure_label(key: str) -> str:
    """A measure's label as published ("Understand issues"), or the key of an unknown one."""
    return MEASURE_BY_KEY[key].label.strip('"') if key in MEASURE_BY_KEY else key
