"""Pareto-smoothed importance sampling LOO, many points at once.

ArviZ's ``loo`` smooths one point at a time through a Python-level loop (four SciPy
``logsumexp`` calls, a sort and a generalised Pareto fit each): about 1.3 ms a point, so
PSIS-LOO took two minutes of a five-year fit (60,000 respondents and 1,300 wards) and
almost three at 242,000 respondents. The same computation, step for step as
``arviz_stats`` does it (its ``_psislw``, ``_gpdfit`` and ``_gpinv``, with Zhang and
Stephens's empirical-Bayes fit and the weakly informative prior on k of Vehtari et al.
2024), is written here over a block of points at once with NumPy: about 0.2 ms a point
at 4,000 draws, against ArviZ's 1.3 to 3 ms on the same machine. It is tested equal to
ArviZ's pointwise ELPD and Pareto k (``tests/test_psis.py``), heavy tails included.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from arviz_stats import ess
from scipy.special import logsumexp

#: Points smoothed together: the generalised Pareto fit holds (about 45 x tail draws x
#: points) floats, 20 MB at 4,000 draws and this many points.
POINTS_PER_BLOCK = 200


def good_k(n_samples: int) -> float:
    """The Pareto k above which a PSIS estimate from ``n_samples`` draws is unreliable
    (``min(1 - 1/log10(S), 0.7)``, as ArviZ reports it)."""
    return min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7


def relative_ess(posterior: xr.Dataset) -> float:
    """The draws' relative effective sample size as ArviZ's ``loo`` takes it: the mean
    ``ess(method="mean")`` of the posterior's variables over the number of draws."""
    if posterior.sizes["chain"] == 1:
        return 1.0
    stat = ess(xr.DataTree.from_dict({"posterior": posterior}), method="mean")
    values = np.hstack([stat[v].values.ravel() for v in stat.data_vars])
    return float(values.mean() / (posterior.sizes["chain"] * posterior.sizes["draw"]))


def tail_length(n_samples: int, r_eff: float) -> int:
    """Draws in the fitted tail: ``3 sqrt(S / r_eff)``, or a fifth of them for few draws."""
    return int(np.floor(3 * (n_samples / r_eff) ** 0.5) if n_samples * r_eff > 225 else np.floor(n_samples / 5))


def _gpd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Pareto shape k and scale sigma of each column of ``x`` (sorted ascending,
    exceedances over the cut-off), with ArviZ's prior on k; NaN where the first quartile
    is not above the minimum, inf where the fit fails."""
    prior_bs, prior_k = 3, 10
    n = x.shape[0]
    m_est = 30 + int(n**0.5)
    xstar = x[int((n / 4 + 0.5) - 1)]
    usable = xstar > x[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        grid = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
        b = grid[:, None] / (prior_bs * xstar[None, :]) + 1 / x[-1][None, :]          # (m_est, points)
        k_grid = np.log1p(-b[:, None, :] * x[None, :, :]).mean(axis=1)              # (m_est, points)
        len_scale = n * (np.log(-b / k_grid) - k_grid - 1)
        w = np.exp(len_scale - logsumexp(len_scale, axis=0, keepdims=True))
        w = np.where(w >= 10 * np.finfo(float).eps, w, 0.0)
        w /= w.sum(axis=0, keepdims=True)
        b_post = (b * w).sum(axis=0)
        kappa = np.log1p(-b_post[None, :] * x).mean(axis=0)
        sigma = -kappa / b_post
        kappa = (n * kappa + prior_k * 0.5) / (n + prior_k)
    kappa = np.where(np.isnan(kappa), np.inf, kappa)
    return np.where(usable, kappa, np.nan), np.where(usable, sigma, np.nan)


def _gpd_quantiles(p: np.ndarray, kappa: np.ndarray, sigma: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Generalised Pareto quantiles at ``p`` (rows) for each column's (k, sigma, mu)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(kappa == 0, mu - sigma * np.log1p(-p)[:, None],
                     mu + sigma * np.expm1(-kappa * np.log1p(-p)[:, None]) / kappa)
    return np.where(sigma > 0, q, np.nan)


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a)))`` of each row (SciPy's ``logsumexp`` costs more in checks than in
    arithmetic at these sizes)."""
    top = a.max(axis=1, keepdims=True)
    return np.log(np.exp(a - top).sum(axis=1)) + top[:, 0]


def _psis_block(log_lik: np.ndarray, n_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed ELPD and k of each row of a (points, draws) log-likelihood block."""
    n_samples = log_lik.shape[1]
    lw = -log_lik
    lw -= lw.max(axis=1, keepdims=True)
    # Only the tail and the draw below it need ordering: partition, then sort those.
    first = n_samples - n_tail - 1
    top_rows = np.argpartition(lw, first, axis=1)[:, first:]
    top_rows = np.take_along_axis(top_rows, np.argsort(np.take_along_axis(lw, top_rows, axis=1), axis=1), axis=1)
    top = np.take_along_axis(lw, top_rows, axis=1)
    cutoff, tail, tail_rows = top[:, 0], top[:, 1:], top_rows[:, 1:]
    if np.any(np.abs(tail[:, -1] - tail[:, 0]) < np.finfo(float).tiny):
        raise ValueError("PSIS: all tail values of a point's importance ratios are the same")
    kappa, sigma = _gpd_fit((np.exp(tail) - np.exp(cutoff)[:, None]).T)
    smooth = np.isfinite(kappa)
    if smooth.any():
        p = np.arange(0.5, n_tail) / n_tail
        with np.errstate(divide="ignore", invalid="ignore"):
            smoothed = np.log(_gpd_quantiles(p, kappa[smooth], sigma[smooth], np.exp(cutoff[smooth]))).T
        largest = tail[smooth, -1:]  # the largest log ratio (the tail is sorted)
        smoothed = np.where(smoothed > largest, largest, smoothed)
        rows = np.flatnonzero(smooth)
        lw[rows[:, None], tail_rows[rows]] = smoothed
    lw -= _logsumexp_rows(lw)[:, None]
    return _logsumexp_rows(lw + log_lik), kappa


def psis_loo_points(log_lik: np.ndarray, r_eff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """PSIS-LOO of each column of a (draws, points) log-likelihood matrix.

    Parameters
    ----------
    log_lik
        Log-likelihood of each point (column) at each posterior draw (row), every chain's
        draws together.
    r_eff
        Relative effective sample size of the draws (sets the tail length), as ArviZ
        takes it: the mean ``ess(method="mean")`` of the posterior over the draw count.

    Returns
    -------
    elpd : numpy.ndarray
        Each point's leave-one-out expected log predictive density.
    pareto_k : numpy.ndarray
        Each point's Pareto k (NaN where the tail cannot be fitted).
    """
    log_lik = np.asarray(log_lik, dtype=float)
    n_tail = tail_length(log_lik.shape[0], r_eff)
    if n_tail < 5:
        raise ValueError(f"PSIS needs at least 5 tail draws; {log_lik.shape[0]} draws give {n_tail}")
    elpd, k = np.empty(log_lik.shape[1]), np.empty(log_lik.shape[1])
    for start in range(0, log_lik.shape[1], POINTS_PER_BLOCK):
        cols = slice(start, start + POINTS_PER_BLOCK)
        # Each point's draws contiguous: sorting along rows is several times faster.
        elpd[cols], k[cols] = _psis_block(np.ascontiguousarray(log_lik[:, cols].T), n_tail)
    return elpd, k
