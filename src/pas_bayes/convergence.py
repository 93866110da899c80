"""R-hat, bulk ESS and tail ESS of many parameters at once.

The statistics are ArviZ's (``arviz_stats.rhat(method="rank")``, ``ess(method="bulk")``
and ``ess(method="tail")``: the rank-normalised split statistics of Vehtari et al. 2021),
computed the same way step by step, but for a block of parameters in one pass, and with
less work a parameter:

* one sort of each parameter's draws gives the normal scores of its draws and of its
  folded draws (their distances from the median, ordered by one merge), the median and
  the tail quantiles; ArviZ ranks the draws and the folded draws with scipy's
  ``rankdata`` and takes two quantiles by partition;
* Geyer's truncation stops within a few dozen lags for all but the slowest-mixing
  parameters, so those lags' autocovariances are summed directly, in Numba; only a
  parameter still going at :data:`DIRECT_LAGS` gets ArviZ's FFT of every lag.

ArviZ calls its per-parameter Python functions once for each element and each statistic:
at a year (11,659 elements x 12,000 draws) the three statistics took 107 s that way and
26 s here with FFTs for every parameter; on a one-year run folder of 6,000 draws every
element's took 31.5 s with the FFTs and 8.5 s now, reading included, in two threads
(``benchmarks/diagnostics_speed.py`` times the statistics alone against ArviZ's).
``tests/test_convergence.py`` holds them equal to ArviZ's own results.
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
        # One sort of each parameter's split draws gives the normal scores of the draws and
        # of their distances from the median (the folded draws), the median itself and,
        # when no middle draw was dropped, the tail quantiles of all the draws.
        z, folded_z, bounds = _normal_scores(split, (low, high))
        if n_chain >= 2:
            bulk, tail = _rhat(z), _rhat(folded_z)
            # Python's max(bulk, tail), as ArviZ takes it: a NaN tail (folded draws all equal) keeps the bulk.
            r_hat[ok] = np.where(tail > bulk, tail, bulk)
        ess_bulk[ok] = _ess(z)
        if split.shape[2] * 2 == n_draw:
            quantiles = bounds
        else:  # an odd draw count: the split draws lack each chain's middle draw
            quantiles = [np.quantile(x.reshape(len(x), -1), q, axis=1) for q in (low, high)]
        tails = [_ess(_split_chains(x <= q[:, None, None]).astype(float)) for q in quantiles]
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


def _normal_scores(x: np.ndarray, probs: tuple[float, float]
                   ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Normal scores of each parameter's draws and of its folded draws, and two quantiles.

    ArviZ's rank normalisation, ``(rank - 3/8) / (size + 1/4)`` through the normal quantile
    with ties given their average rank, of ``x`` and of ``|x - median(x)|`` (``x``: n,
    chain, draw). Average ranks are whole or half numbers, so the scores are a table of
    ``2 * size`` values indexed by twice the rank. The folded draws need no sort of their
    own: below the median, walking down the sorted draws, and above it, walking up, their
    distances from it already rise, so one merge orders them. The quantiles are NumPy's
    (``np.quantile``, linear), from the same sorted rows.

    Returns
    -------
    (z, folded_z, quantiles)
        Arrays shaped as ``x``, and each of ``probs``'s quantiles of every parameter.
    """
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    rows, size = flat.shape
    order = np.argsort(flat, axis=1)
    halves = np.arange(2 * size + 1) / 2.0
    table = stats.norm.ppf((halves - _BLOM) / (size - 2 * _BLOM + 1))
    # NumPy's virtual index of the linear quantile (its expression, for the same rounding).
    virtual = [size * q + (1 + q * (1 - 1 - 1)) - 1 for q in probs]
    below = np.array([min(max(np.floor(v), 0), size - 1) for v in virtual], dtype=np.int64)
    above = np.array([min(max(np.floor(v) + 1, 0), size - 1) if v < size - 1 else size - 1
                      for v in virtual], dtype=np.int64)
    z, folded_z = np.empty_like(flat), np.empty_like(flat)
    a, b = np.empty((rows, len(probs))), np.empty((rows, len(probs)))
    _scores(flat, order, table, below, above, z, folded_z, a, b)
    quantiles = []
    for j, v in enumerate(virtual):
        gamma = 0.0 if v >= size - 1 or v < 0 else v - np.floor(v)
        diff = b[:, j] - a[:, j]
        # NumPy's _lerp: from the nearer bound, for the same rounding.
        quantiles.append(b[:, j] - diff * (1 - gamma) if gamma >= 0.5 else a[:, j] + diff * gamma)
    return z.reshape(x.shape), folded_z.reshape(x.shape), quantiles


@numba.njit(nogil=True, cache=True)
def _scores(flat: np.ndarray, order: np.ndarray, table: np.ndarray, below: np.ndarray, above: np.ndarray,
            z: np.ndarray, folded_z: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:  # pragma: no cover
    """:func:`_normal_scores`'s loop, a parameter (row) at a time, releasing the GIL."""
    rows, size = flat.shape
    ordered = np.empty(size)
    folded = np.empty(size)
    folded_at = np.empty(size, np.int64)
    for r in range(rows):
        for j in range(size):
            ordered[j] = flat[r, order[r, j]]
        _scores_in_order(ordered, order[r], table, z[r])
        for j in range(below.size):
            a[r, j] = ordered[below[j]]
            b[r, j] = ordered[above[j]]
        mid = size // 2
        median = ordered[mid] if size % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
        up = 0
        while up < size and ordered[up] < median:
            up += 1
        down = up - 1
        for p in range(size):
            if up >= size or (down >= 0 and abs(ordered[down] - median) <= abs(ordered[up] - median)):
                folded[p] = abs(ordered[down] - median)
                folded_at[p] = order[r, down]
                down -= 1
            else:
                folded[p] = abs(ordered[up] - median)
                folded_at[p] = order[r, up]
                up += 1
        _scores_in_order(folded, folded_at, table, folded_z[r])


@numba.njit(nogil=True, cache=True)
def _scores_in_order(values: np.ndarray, at: np.ndarray, table: np.ndarray,
                     out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Write the score of each of ``values`` (sorted) to ``out[at]``: a run of equal values
    from position ``first`` to ``last`` (0-based) shares twice the rank ``first + last + 2``."""
    size = values.size
    first = 0
    while first < size:
        last = first
        while last + 1 < size and values[last + 1] == values[first]:
            last += 1
        score = table[first + last + 2]
        for p in range(first, last + 1):
            out[at[p]] = score
        first = last + 1


def _rhat(x: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of each parameter of ``x`` (n, chain, draw)."""
    n_draw = x.shape[2]
    between = n_draw * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.var(x, axis=2, ddof=1).mean(axis=1)
    return np.sqrt((between / within + n_draw - 1) / n_draw)


#: Autocovariance lags summed directly before an FFT is cheaper (one FFT of a parameter's
#: split chains costs about as much as 150 lags summed; most parameters stop within 40).
DIRECT_LAGS = 100


def _ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of each parameter of ``x`` (n, chain, draw), Geyer-truncated.

    Geyer's sequence stops at the first lag pair whose autocorrelations sum below zero,
    within a few dozen lags for all but the slowest-mixing parameters: those lags are
    summed directly, and only a parameter still going at :data:`DIRECT_LAGS` gets ArviZ's
    FFT of every lag (:func:`_ess_fft`).
    """
    n_chain = x.shape[1]
    centred = x - x.mean(axis=2, keepdims=True)
    var_plus_between = np.var(x.mean(axis=2), axis=1, ddof=1) if n_chain > 1 else np.zeros(len(x))
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    out = np.empty(len(x))
    unfinished = np.zeros(len(x), dtype=np.bool_)
    _geyer_direct(np.ascontiguousarray(centred), var_plus_between, constant, DIRECT_LAGS, out, unfinished)
    if unfinished.any():
        out[unfinished] = _ess_fft(x[unfinished])
    return out


def _ess_fft(x: np.ndarray) -> np.ndarray:
    """:func:`_ess` from every lag's autocovariance, by FFT (ArviZ's way)."""
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


@numba.njit(nogil=True, cache=True)
def _mean_acov(centred: np.ndarray, lag: int) -> float:  # pragma: no cover - compiled
    """The chains' mean autocovariance at ``lag`` of one parameter's centred draws (chain, draw)."""
    n_chain, n_draw = centred.shape
    total = 0.0
    for c in range(n_chain):
        # Four running sums: independent additions the CPU overlaps, in a fixed order.
        s0 = s1 = s2 = s3 = 0.0
        m = n_draw - lag
        j = 0
        while j + 4 <= m:
            s0 += centred[c, j] * centred[c, j + lag]
            s1 += centred[c, j + 1] * centred[c, j + 1 + lag]
            s2 += centred[c, j + 2] * centred[c, j + 2 + lag]
            s3 += centred[c, j + 3] * centred[c, j + 3 + lag]
            j += 4
        while j < m:
            s0 += centred[c, j] * centred[c, j + lag]
            j += 1
        total += ((s0 + s1) + (s2 + s3)) / n_draw
    return total / n_chain


@numba.njit(nogil=True, cache=True)
def _geyer_ess(rho: np.ndarray, rho_even: float, max_t: int, size: int) -> float:  # pragma: no cover - compiled
    """The end of Geyer's truncation, shared by both loops: the last even lag kept, the
    sequence made monotone, and ESS = size / tau (ArviZ's ``_ess``)."""
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:
        if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1: max_t + 2])
    tau = max(tau, 1.0 / np.log10(size))
    return np.nan if np.isnan(rho).any() else size / tau


@numba.njit(nogil=True, cache=True)
def _geyer_direct(centred: np.ndarray, var_plus_between: np.ndarray, constant: np.ndarray, max_lag: int,
                  out: np.ndarray, unfinished: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`_geyer` with each lag's autocovariance summed when the sequence reaches it.

    A parameter whose sequence needs a lag beyond ``max_lag`` is marked ``unfinished``.
    """
    n, n_chain, n_draw = centred.shape
    rho = np.empty(n_draw)
    acov = np.empty(max_lag + 3)
    for i in range(n):
        if constant[i]:
            out[i] = n_chain * n_draw
            continue
        row = centred[i]
        known = 0  # lags whose autocovariance is in acov
        for lag in range(2):
            acov[lag] = _mean_acov(row, lag)
        known = 2
        mean_var = acov[0] * n_draw / (n_draw - 1.0)
        var_plus = mean_var * (n_draw - 1.0) / n_draw + var_plus_between[i]
        rho[:] = 0.0
        rho_even = 1.0
        rho[0] = rho_even
        rho_odd = 1.0 - (mean_var - acov[1]) / var_plus
        rho[1] = rho_odd
        t = 1
        while t < (n_draw - 3) and (rho_even + rho_odd) > 0.0:
            if t + 2 > max_lag:
                unfinished[i] = True
                break
            while known <= t + 2:
                acov[known] = _mean_acov(row, known)
                known += 1
            rho_even = 1.0 - (mean_var - acov[t + 1]) / var_plus
            rho_odd = 1.0 - (mean_var - acov[t + 2]) / var_plus
            if (rho_even + rho_odd) >= 0:
                rho[t + 1] = rho_even
                rho[t + 2] = rho_odd
            t += 2
        if unfinished[i]:
            out[i] = np.nan
            continue
        out[i] = _geyer_ess(rho, rho_even, t - 2, n_chain * n_draw)


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
        out[i] = _geyer_ess(rho, rho_even, t - 2, n_chain * n_draw)
    return out
