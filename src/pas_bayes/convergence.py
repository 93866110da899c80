"""R-hat, bulk ESS and tail ESS of many parameters at once.

The statistics are ArviZ's (``arviz_stats.rhat(method="rank")``, ``ess(method="bulk")``
and ``ess(method="tail")``: the rank-normalised split statistics of Vehtari et al. 2021),
computed the same way step by step, but for a block of parameters in one pass: the
ranks, the FFT autocovariances and the R-hat sums are NumPy calls over the whole block,
and only Geyer's truncation of the autocorrelations (a loop whose length differs from
one parameter to the next) runs per parameter, compiled by Numba. ArviZ calls its
per-parameter Python functions once for each element and each statistic, and its
Geyer loop takes a NumPy mean of every lag: at a year (11,659 elements x 12,000 draws)
the three statistics took 107 s that way and 26 s here, in two threads
(``benchmarks/diagnostics_speed.py``). ``tests/test_convergence.py`` holds the two equal
to ArviZ's own results.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from arviz_base import rcParams
from scipy import stats
from scipy.fftpack import next_fast_len

from pas_bayes.cores import available_cores

__all__ = ["rhat_ess", "rhat_ess_in_blocks"]

#: Bytes of draws taken at a time (each block's working arrays are about ten times this).
BLOCK_BYTES = 2 * 2**20
#: Blom's offset in the rank back-transformation (ArviZ's ``c = 3/8``).
_BLOM = 3.0 / 8.0


def rhat_ess(draws: np.ndarray, prob: float | Sequence[float] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS of each parameter.

    Parameters
    ----------
    draws
        Array of shape ``(chain, draw, n)``: ``n`` parameters' draws.
    prob
        The tail ESS's probability, as ArviZ takes it: a float ``p`` means the quantiles
        ``p`` and ``1 - p``; two floats are the quantiles themselves. ``None`` is ArviZ's
        default (``rcParams["stats.ci_prob"]``).

    Returns
    -------
    (r_hat, ess_bulk, ess_tail)
        Arrays of shape ``(n,)``. A parameter with any NaN draw, or too few draws (under
        4) or chains (R-hat: under 2), gets NaN, as in ArviZ.
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"draws must have shape (chain, draw, n); got shape {x.shape}")
    x = np.moveaxis(x, 2, 0)  # (n, chain, draw): each parameter's draws together
    n, n_chain, n_draw = x.shape
    if prob is None:
        prob = rcParams["stats.ci_prob"]
    low, high = sorted((prob, 1 - prob)) if not isinstance(prob, Sequence) else prob

    r_hat = np.full(n, np.nan)
    ess_bulk = np.full(n, np.nan)
    ess_tail = np.full(n, np.nan)
    ok = ~np.isnan(x).any(axis=(1, 2))
    if n_draw < 4 or not ok.any():
        return r_hat, ess_bulk, ess_tail
    x = x[ok]
    split = _split_chains(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The normal scores of the split chains serve both the bulk R-hat and the bulk ESS.
        z = _z_scale(split)
        if n_chain >= 2:
            folded = np.abs(split - np.median(split.reshape(len(x), -1), axis=1)[:, None, None])
            bulk, tail = _rhat(z), _rhat(_z_scale(folded))
            # Python's max(bulk, tail), as ArviZ takes it: a NaN tail (folded draws all equal) keeps the bulk.
            r_hat[ok] = np.where(tail > bulk, tail, bulk)
        ess_bulk[ok] = _ess(z)
        flat = x.reshape(len(x), -1)
        tails = [_ess(_split_chains(x <= np.quantile(flat, q, axis=1)[:, None, None]).astype(float))
                 for q in (low, high)]
        ess_tail[ok] = np.where(tails[1] < tails[0], tails[1], tails[0])  # Python's min, as ArviZ's
    return r_hat, ess_bulk, ess_tail


def rhat_ess_in_blocks(draws: np.ndarray, prob: float | Sequence[float] | None = None,
                       threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rhat_ess` over blocks of parameters of :data:`BLOCK_BYTES` of draws, in threads.

    NumPy's sorts and FFTs release the GIL, so the blocks run side by side on the cores;
    small blocks keep each thread's working memory to a few tens of MB.

    Parameters
    ----------
    draws, prob
        As :func:`rhat_ess`.
    threads
        Threads to use (default: the cores this process may run on, at most 4).
    """
    x = np.asarray(draws)
    if x.ndim != 3:
        raise ValueError(f"draws must have shape (chain, draw, n); got shape {x.shape}")
    n_chain, n_draw, n = x.shape
    step = max(1, BLOCK_BYTES // max(1, n_chain * n_draw * 8))
    starts = range(0, n, step)
    if threads is None:
        threads = min(4, available_cores())
    if threads <= 1 or len(starts) <= 1:
        parts = [rhat_ess(x[:, :, i:i + step], prob) for i in starts]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda i: rhat_ess(x[:, :, i:i + step], prob), starts))
    if not parts:
        return np.empty(0), np.empty(0), np.empty(0)
    r_hat, bulk, tail = (np.concatenate(col) for col in zip(*parts, strict=True))
    return r_hat, bulk, tail


def _split_chains(x: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as two chains (the middle draw of an odd count dropped)."""
    half = x.shape[2] // 2
    return np.concatenate((x[:, :, :half], x[:, :, -half:]), axis=1)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of each parameter's ranks (ties averaged) over all its chains and draws.

    ArviZ's ``(rank - 3/8) / (size + 1/4)`` through the normal quantile, with scipy's
    average ranks. Those ranks are whole or half numbers, so the scores are a table of
    ``2 * size`` values looked up in each row's sorted order: one argsort a row (NumPy's
    is vectorised) instead of scipy's rankdata and a normal quantile of every draw, which
    were most of ArviZ's time.
    """
    flat = x.reshape(len(x), -1)
    rows, size = flat.shape
    order = np.argsort(flat, axis=1)
    in_order = np.take_along_axis(flat, order, axis=1)
    new_value = in_order[:, 1:] != in_order[:, :-1]
    position = np.arange(size)
    # Each sorted position's run of equal values: its first and last position.
    first = np.maximum.accumulate(np.where(np.c_[np.ones((rows, 1), bool), new_value], position, 0), axis=1)
    last = np.minimum.accumulate(np.where(np.c_[new_value, np.ones((rows, 1), bool)], position, size)[:, ::-1],
                                 axis=1)[:, ::-1]
    twice_rank = first + last + 2  # twice the average 1-based rank of the run
    halves = np.arange(2 * size + 1) / 2.0
    table = stats.norm.ppf((halves - _BLOM) / (size - 2 * _BLOM + 1))
    z = np.empty_like(flat)
    np.put_along_axis(z, order, table[twice_rank], axis=1)
    return z.reshape(x.shape)


def _rhat(x: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of each parameter of ``x`` (n, chain, draw)."""
    n_draw = x.shape[2]
    between = n_draw * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.var(x, axis=2, ddof=1).mean(axis=1)
    return np.sqrt((between / within + n_draw - 1) / n_draw)


def _ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of each parameter of ``x`` (n, chain, draw), Geyer-truncated."""
    _, n_chain, n_draw = x.shape
    centred = x - x.mean(axis=2, keepdims=True)
    m = next_fast_len(2 * n_draw)
    spectrum = np.fft.rfft(centred, n=m, axis=2)
    spectrum *= np.conjugate(spectrum)
    acov = np.fft.irfft(spectrum, n=m, axis=2)[:, :, :n_draw]
    acov /= n_draw
    mean_var = acov[:, :, 0].mean(axis=1) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    return _geyer(np.ascontiguousarray(acov.mean(axis=1)), mean_var, var_plus, constant, n_chain)


@numba.njit(cache=True)
def _geyer(mean_acov: np.ndarray, mean_var: np.ndarray, var_plus: np.ndarray, constant: np.ndarray,
           n_chain: int) -> np.ndarray:  # pragma: no cover - compiled
    """ESS from the chains' mean autocovariance: Geyer's initial positive then monotone sequence.

    A transcription of ArviZ's ``_ess`` loop, one parameter at a time.
    """
    n, n_draw = mean_acov.shape
    out = np.empty(n)
    rho = np.empty(n_draw)
    for i in range(n):
        if constant[i]:
            out[i] = n_chain * n_draw
            continue
        rho[:] = 0.0
        rho_even = 1.0
        rho[0] = rho_even
        rho_odd = 1.0 - (mean_var[i] - mean_acov[i, 1]) / var_plus[i]
        rho[1] = rho_odd
        t = 1
        while t < (n_draw - 3) and (rho_even + rho_odd) > 0.0:
            rho_even = 1.0 - (mean_var[i] - mean_acov[i, t + 1]) / var_plus[i]
            rho_odd = 1.0 - (mean_var[i] - mean_acov[i, t + 2]) / var_plus[i]
            if (rho_even + rho_odd) >= 0:
                rho[t + 1] = rho_even
                rho[t + 2] = rho_odd
            t += 2
        max_t = t - 2
        if rho_even > 0:
            rho[max_t + 1] = rho_even
        t = 1
        while t <= max_t - 2:
            if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
                rho[t + 2] = rho[t + 1]
            t += 2
        size = n_chain * n_draw
        tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1: max_t + 2])
        tau = max(tau, 1.0 / np.log10(size))
        out[i] = np.nan if np.isnan(rho).any() else size / tau
    return out
