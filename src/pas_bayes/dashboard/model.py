"""Dashboard frame + spec -> a PyMC model of borough trends and their drivers.

Every published value is a rolling 12-month proportion: the one dated quarter
``q`` pools the respondents of quarters ``q-3 .. q`` (about 100 a quarter per
borough). The model works with the latent *quarterly* rate of each measure m
in borough b and quarter t, on the log-odds scale::

    eta[m, b, t] = intercept[m] + L[m, t] + D[m, b] + W[m, b, t]

* ``L``: London's trend, a random walk over quarters (``london_step_sd``);
* ``D``: the borough's average level over the period, around London's
  (zero-sum over boroughs);
* ``W``: the borough's own movement around London's trend, a random walk
  whose steps sum to zero over boroughs each quarter (``borough_step_sd``),
  centred to average zero over the period.

For the outcome, the drivers' latent borough components enter as covariates,
split Mundlak-style into a between-borough part (``xb``: the borough's average
deviation from London over the whole period, ``D``) and a within-borough part
(``xw``: its movement over time relative to London's, ``W``)::

    eta[y, b, t] += sum_k between[k] * xb[k, b] + sum_k slope[k, b] * xw[k, b, t]
    slope[k, b] = within[k] + within_slope_sd[k] * z[k, b]

with ``xb``/``xw`` divided by the data's SD of each, so effects are log-odds per
SD. Because the drivers are latent here too, their sampling error does not
attenuate the slopes (no errors-in-variables bias).

Likelihood. A published value is the mean of four quarterly sample
proportions, so its mean is the mean of the four latent quarterly rates, and
values up to three quarters apart share respondents. With a normal
approximation to each quarter's binomial sampling (variance ``p(1-p)/n_q`` at
the published rate, ``n_q = n_window / 4``) the published series of a borough
is multivariate normal with that exact overlap structure, plus rounding to
two decimals. Its covariance is fixed by the data up to a design effect per
measure, so it is whitened once here (Cholesky) and the model evaluates only a
linear map of the latent rates: exact in the overlap, cheap to sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from scipy.linalg import cholesky, solve_triangular
from scipy.special import logit

from pas_bayes.dashboard.read import DashboardData
from pas_bayes.dashboard.spec import DashboardSpec
from pas_bayes.errors import data_error
from pas_bayes.geography import BOROUGH_NAMES

#: Variance of rounding a proportion to two decimals (uniform over +-0.005).
ROUNDING_VAR = 0.01**2 / 12
#: Variables kept in the posterior: everything a summary, figure or diagnostic reads.
#: The random-walk innovations are not stored (they are thousands of numbers a draw).
STORED = ("intercept", "london_step_sd", "borough_level_sd", "borough_step_sd", "design_effect",
          "between_effect", "within_effect", "within_slope_sd", "within_slope", "rate")


@dataclass(frozen=True)
class Layout:
    """Arrays the model is built from, all labelled by the same borough / quarter order.

    ``values[m]`` is (borough, window) with NaN where nothing was published;
    ``fitted`` marks windows used in the fit (the rest are held out).
    """

    boroughs: list[str]
    windows: pd.PeriodIndex
    quarters: pd.PeriodIndex
    measures: tuple[str, ...]
    values: dict[str, np.ndarray]
    fitted: np.ndarray
    scaling: pd.DataFrame

    def averaging(self) -> np.ndarray:
        """(window, quarter) matrix: row j averages the four quarters of window j."""
        return averaging_matrix(len(self.windows))


def averaging_matrix(n_windows: int) -> np.ndarray:
    """(window, quarter) matrix over ``n_windows + 3`` quarters: row j averages quarters j..j+3."""
    a = np.zeros((n_windows, n_windows + 3))
    for j in range(n_windows):
        a[j, j:j + 4] = 0.25
    return a


def layout(data: DashboardData, spec: DashboardSpec) -> Layout:
    """Arrange the dashboard frame for the model.

    Raises
    ------
    PASDataError
        When the outcome or a driver is not in the file, or holding out
        ``spec.holdout`` quarters leaves fewer than eight to fit.
    """
    frame = data.frame
    found = data.measures
    missing = [m for m in spec.measures if m not in found]
    if missing:
        raise data_error(data.path, f"measures {missing} are not in the file", column="Measure",
                         fix=f"choose the outcome and drivers among {found}")
    windows = data.quarters
    if len(windows) - spec.holdout < 8:
        raise data_error(data.path, f"holding out {spec.holdout} of {len(windows)} quarters leaves too few to fit",
                         fix="hold out fewer quarters (the model needs at least eight)")
    boroughs = [b for b in BOROUGH_NAMES if b in set(frame["borough"])]
    quarters = pd.period_range(windows[0] - 3, windows[-1], freq="Q")
    values = {}
    for m in spec.measures:
        wide = (frame[frame["measure"] == m].pivot(index="borough", columns="quarter", values="proportion")
                .reindex(index=boroughs, columns=windows))
        values[m] = wide.to_numpy(dtype=float)
    fitted = np.arange(len(windows)) < len(windows) - spec.holdout
    return Layout(boroughs, windows, quarters, spec.measures, values, fitted,
                  driver_scaling({m: values[m][:, fitted] for m in spec.drivers}))


def driver_scaling(values: dict[str, np.ndarray]) -> pd.DataFrame:
    """SDs that put the drivers' between and within parts on a per-SD scale.

    From the published values on the log-odds scale: the deviation from the
    all-borough mean each quarter, split into each borough's average
    (``between_sd``) and its change over time (``within_sd``). Sampling noise
    is in these SDs, so "1 SD" is slightly wider than the true spread; the
    scale only sets units and is stored with the run.
    """
    rows = []
    for m, v in values.items():
        lo = logit(np.clip(v, 0.01, 0.99))
        dev = lo - np.nanmean(lo, axis=0, keepdims=True)
        between = np.nanmean(dev, axis=1)
        within = dev - between[:, None]
        rows.append({"driver": m, "between_sd": float(np.nanstd(between)), "within_sd": float(np.nanstd(within))})
    return pd.DataFrame(rows, columns=["driver", "between_sd", "within_sd"])


def between_rotation(values: dict[str, np.ndarray], scaling: pd.DataFrame) -> np.ndarray:
    """Upper-triangular ``R`` of the QR decomposition of the drivers' published between-borough design.

    The engagement measures' borough averages are highly correlated (0.9 and more), so
    their between-borough coefficients form a narrow ridge that NUTS crosses slowly. The
    model samples ``R @ between_effect`` instead (nearly uncorrelated), with the prior still
    placed on ``between_effect`` itself: the posterior is unchanged, only its geometry.
    Scaled so that ``R`` is the identity for uncorrelated unit-variance drivers.
    """
    columns = []
    for m in scaling["driver"]:
        lo = logit(np.clip(values[m], 0.01, 0.99))
        columns.append(np.nanmean(lo - np.nanmean(lo, axis=0, keepdims=True), axis=1))
    design = np.column_stack(columns) / scaling["between_sd"].to_numpy()[None, :]
    design = design - design.mean(axis=0, keepdims=True)
    r = np.linalg.qr(design / np.sqrt(len(design)), mode="r")
    return r * np.sign(np.diag(r))[:, None]  # positive diagonal: the rotation keeps signs


def _quarterly_plugin(y: np.ndarray, observed: np.ndarray, n_quarters: int) -> np.ndarray:
    """A rate for each latent quarter: the mean of the published windows that contain it, else the nearest."""
    j_obs = np.flatnonzero(observed)
    p = np.empty(n_quarters)
    for t in range(n_quarters):
        inside = j_obs[(j_obs >= t - 3) & (j_obs <= t)]
        p[t] = y[inside].mean() if len(inside) else y[j_obs[np.argmin(np.abs(j_obs - t))]]
    return np.clip(p, 0.02, 0.98)


def sampling_covariance(y: np.ndarray, observed: np.ndarray, averaging: np.ndarray, n_window: int) -> np.ndarray:
    """Covariance of one borough's published values over all windows, at design effect 1.

    Each quarter's sample proportion has variance ``p(1-p)/n_q`` at the plug-in rate
    (:func:`_quarterly_plugin`, from the ``observed`` values of ``y``); a window averages
    four quarters, so windows that share quarters share their sampling error. Rounding
    to two decimals adds :data:`ROUNDING_VAR` to each value.
    """
    p = _quarterly_plugin(np.nan_to_num(y), observed, averaging.shape[1])
    return (averaging * (p * (1 - p) / (n_window / 4.0))) @ averaging.T + ROUNDING_VAR * np.eye(len(averaging))


def whitened_rows(y: np.ndarray, fitted: np.ndarray, averaging: np.ndarray,
                  n_window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whitened observations of one measure, ready for an independent-normal likelihood.

    Parameters
    ----------
    y
        (borough, window) published proportions, NaN where missing.
    fitted
        (window,) True for windows used in the fit.
    averaging
        (window, quarter) averaging matrix (:meth:`Layout.averaging`).
    n_window
        Respondents per borough in a rolling year.

    Returns
    -------
    tuple of numpy.ndarray
        ``z`` (rows,), ``design`` (rows, quarter) and ``borough`` (rows,) such that
        ``z ~ Normal(design @ rate[borough], sqrt(design_effect))`` is the
        multivariate-normal likelihood of the published series.
    """
    zs, designs, index = [], [], []
    for b in range(y.shape[0]):
        observed = ~np.isnan(y[b]) & fitted
        if not observed.any():
            continue
        a = averaging[observed]
        cov = sampling_covariance(y[b], observed, averaging, n_window)[np.ix_(observed, observed)]
        chol = cholesky(cov, lower=True)
        zs.append(solve_triangular(chol, y[b, observed], lower=True))
        designs.append(solve_triangular(chol, a, lower=True))
        index.append(np.full(int(observed.sum()), b))
    return np.concatenate(zs), np.concatenate(designs), np.concatenate(index)


def _prior(name: str, table: dict[str, Any], **kwargs: Any) -> pt.TensorVariable:
    params = {k: v for k, v in table.items() if k != "dist"}
    return getattr(pm, table["dist"])(name, **params, **kwargs)


def _random_walk(steps: pt.TensorVariable) -> pt.TensorVariable:
    """Cumulative sum over the last axis, starting at zero."""
    zero = pt.zeros_like(steps[..., :1])
    return pt.concatenate([zero, pt.cumsum(steps, axis=-1)], axis=-1)


def build_dashboard_model(data: DashboardData, spec: DashboardSpec) -> tuple[pm.Model, Layout]:
    """The PyMC model of a dashboard spec and the layout it was built on.

    Returns
    -------
    (pymc.Model, Layout)
        Coordinates: ``measure``, ``driver``, ``borough``, ``quarter`` (latent
        quarters, three before the first window), ``step``, ``window``.
    """
    lay = layout(data, spec)
    measures, drivers = list(spec.measures), list(spec.drivers)
    coords = {"measure": measures, "driver": drivers, "borough": lay.boroughs,
              "quarter": [str(q) for q in lay.quarters], "step": [str(q) for q in lay.quarters[1:]],
              "window": [str(w) for w in lay.windows]}
    averaging = lay.averaging()
    with pm.Model(coords=coords) as model:
        pm.Data("fitted", lay.fitted.astype(int), dims="window")
        pm.Data("between_sd", lay.scaling["between_sd"].to_numpy(), dims="driver")
        pm.Data("within_sd", lay.scaling["within_sd"].to_numpy(), dims="driver")

        intercept = _prior("intercept", spec.prior("intercept"), dims="measure")
        london_sd = _prior("london_step_sd", spec.prior("london_step_sd"), dims="measure")
        level_sd = _prior("borough_level_sd", spec.prior("borough_level_sd"), dims="measure")
        step_sd = _prior("borough_step_sd", spec.prior("borough_step_sd"), dims="measure")
        deff = _prior("design_effect", spec.prior("design_effect"), dims="measure")

        z_london = pm.Normal("z_london", 0.0, 1.0, dims=("measure", "step"))
        z_level = pm.ZeroSumNormal("z_level", sigma=1.0, dims=("measure", "borough"))
        # Zero-sum over boroughs (the last axis) at every step: London's trend stays in L.
        z_step = pm.ZeroSumNormal("z_step", sigma=1.0, dims=("measure", "step", "borough"))

        london = _random_walk(london_sd[:, None] * z_london)                       # (m, t)
        level = level_sd[:, None] * z_level                                         # (m, b)
        # Centred in time, so that ``level`` is the borough's average over the period and ``own``
        # only its movement: otherwise the two compete for the same variation and mix slowly.
        own = _random_walk((step_sd[:, None, None] * z_step).transpose(0, 2, 1))    # (m, b, t)
        own = own - own.mean(axis=-1, keepdims=True)
        eta = intercept[:, None, None] + london[:, None, :] + level[:, :, None] + own

        if drivers:
            k = slice(1, None)
            xb = level[k] / model["between_sd"][:, None]
            xw = own[k] / model["within_sd"][:, None, None]
            # Sampled rotated (see between_rotation); the prior is on between_effect itself. The
            # map is linear with a constant Jacobian, so the Potential gives exactly that prior.
            r = between_rotation({m: lay.values[m][:, lay.fitted] for m in drivers}, lay.scaling)
            rotated = pm.Flat("between_rotated", dims="driver")
            between = pm.Deterministic("between_effect", pt.as_tensor(np.linalg.inv(r)) @ rotated, dims="driver")
            table = spec.prior("between_effect")
            prior = getattr(pm, table["dist"]).dist(**{k: v for k, v in table.items() if k != "dist"})
            pm.Potential("between_effect_prior", pm.logp(prior, between).sum())
            within = _prior("within_effect", spec.prior("within_effect"), dims="driver")
            slope_sd = _prior("within_slope_sd", spec.prior("within_slope_sd"), dims="driver")
            z_slope = pm.Normal("z_slope", 0.0, 1.0, dims=("driver", "borough"))
            slope = pm.Deterministic("within_slope", within[:, None] + slope_sd[:, None] * z_slope,
                                     dims=("driver", "borough"))
            outcome = eta[0] + (between[:, None] * xb).sum(0)[:, None] + (slope[:, :, None] * xw).sum(0)
            eta = pt.concatenate([outcome[None], eta[1:]], axis=0)

        rate = pm.math.sigmoid(eta)                                                  # (m, b, t)
        pm.Deterministic("rate", pt.tensordot(rate[0], averaging.T, axes=1), dims=("borough", "window"))
        for i, m in enumerate(measures):
            z, design, b_index = whitened_rows(lay.values[m], lay.fitted, averaging, spec.n_window)
            model.add_coord(f"row_{m}", np.arange(len(z)))
            mean = (pt.as_tensor(design) * rate[i][b_index]).sum(axis=-1)
            pm.Normal(f"published_{m}", mu=mean, sigma=pt.sqrt(deff[i]), observed=z, dims=f"row_{m}")
    return model, lay
