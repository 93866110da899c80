"""Predictive model comparison: PSIS-LOO per respondent and leave-one-ward-out, and ranking runs.

At fit time (:func:`loo_tables`) the pointwise log-likelihood of every
respondent is computed from the posterior (:func:`pointwise_log_likelihood`), and ArviZ's PSIS-LOO
(run over blocks of respondents by :mod:`pas_bayes.psis`) gives each respondent's expected log predictive density
(``elpd_loo``) and Pareto k. The log-likelihood itself is not kept (12,800
respondents x 6,000 draws is 600 MB a run); the pointwise results are, in the
run folder's ``loo.csv`` and ``loo_wards.csv``. That is all a comparison needs:
the ELPD difference of two models fitted to the same respondents is the sum of
their pointwise differences, and its standard error is
``sqrt(n * var(pointwise differences))`` (Vehtari, Gelman & Gabry 2017; variance with
divisor n, as ArviZ computes it), which
is what ``arviz_stats.compare`` computes too (a test checks they agree).

Leave-one-ward-out sums each ward's log-likelihood before PSIS: it asks how
well a model predicts a whole ward it has not seen, and is the check to use when
respondent-level Pareto k are high (a respondent's own ward effect is then
what the importance weights struggle with). It is itself an importance-sampling
estimate with its own Pareto k, reported beside it.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from scipy.special import log_expit, logsumexp

from pas_bayes import psis
from pas_bayes.cores import available_cores
from pas_bayes.errors import QueryError
from pas_bayes.memory import one_block_at_a_time, trim_heap
from pas_bayes.predictions import Posterior, draws, load_posterior

#: Pareto k above this: the importance-sampling estimate for that point is unreliable.
K_BAD = 0.7
#: Pareto k above this: unusable; refit without the point (k-fold) if it matters.
K_VERY_BAD = 1.0
LEVELS = ("respondent", "ward")


@dataclass(frozen=True)
class LooResult:
    """Pointwise PSIS-LOO of one run, by respondent and by ward, and their totals."""

    respondents: pd.DataFrame  # row, ward, elpd_loo, pareto_k
    wards: pd.DataFrame        # ward, respondents, elpd_loo, pareto_k
    summary: dict[str, Any]


def _psis_columns(flat: np.ndarray, r_eff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """PSIS-LOO of each column of a (draws, points) log-likelihood matrix, as ArviZ computes
    it (:mod:`pas_bayes.psis`, many points at once): each point's ELPD, Pareto k and log
    pointwise predictive density, and the threshold of a good k for this many draws."""
    elpd, k = psis.psis_loo_points(flat, r_eff)
    lppd = logsumexp(flat, axis=0) - np.log(flat.shape[0])
    return elpd, k, lppd, psis.good_k(flat.shape[0])


def _loo_totals(elpd: np.ndarray, lppd: np.ndarray, good_k: float, n_samples: int) -> dict[str, float]:
    """The totals ArviZ reports for all points at once (tested: equal; p_loo within 0.1%)."""
    total = float(elpd.sum())
    return {"elpd_loo": total, "se": float(np.sqrt(elpd.size * np.var(elpd, ddof=1))),
            "p_loo": float(lppd.sum() - total), "good_k": good_k, "n_draws": n_samples}


def pointwise_log_likelihood(idata: xr.DataTree, obs: slice | None = None,
                             post: Posterior | None = None, answers: np.ndarray | None = None) -> xr.DataArray:
    """Each respondent's log-likelihood under every posterior draw: ``(chain, draw, obs)``.

    Computed from the stored posterior with the same linear predictor as every other
    summary (:class:`pas_bayes.predictions.Posterior`): Bernoulli-logit of a positive answer,
    or the cumulative logit of the full answer (the ``cutpoints``, with the linear
    predictor taken without the recorded ``intercept``). PyMC's
    ``compute_log_likelihood`` is not used because it cannot rebuild models with an LKJ
    correlation (its value transform is renamed); a test checks that both agree elsewhere.

    ``post`` is an already loaded :class:`~pas_bayes.predictions.Posterior` of every draw
    (of all respondents, or of some: a block of wards); ``obs`` limits it to a slice of
    its respondents, so a large survey is taken a chunk at a time. ``answers`` is every
    respondent's observed answer, when the caller has already read it (it is the same for
    every chunk).
    """
    post_ds = idata["posterior"]
    chains, n_draws = post_ds.sizes["chain"], post_ds.sizes["draw"]
    if post is None:
        post = load_posterior(idata, max_draws=chains * n_draws)
    if obs is not None:
        post = post.respondents(obs)
    if answers is None:
        observed = idata["observed_data"]
        answers = np.asarray(observed[next(iter(observed.data_vars))].values, dtype=int)
    answer = answers[post.rows]
    cumulative = "cutpoints" in post_ds.data_vars
    if cumulative:
        cut = draws(idata, "cutpoints")
        lower_idx, upper_idx = answer - 1, answer  # category k lies between cut k-1 and cut k
        n_cut = cut.shape[1]
    out = np.empty((post.n_draws, answer.size))
    for block in post.blocks():
        eta = post.eta(block)
        if not cumulative:
            out[block] = answer * eta - np.logaddexp(0.0, eta)
            continue
        eta = eta - post.intercept[block][:, None]
        c = cut[block]
        upper = np.where(upper_idx < n_cut, c[:, np.minimum(upper_idx, n_cut - 1)], np.inf) - eta
        lower = np.where(lower_idx >= 0, c[:, np.maximum(lower_idx, 0)], -np.inf) - eta
        # log(F(upper) - F(lower)) without cancellation: log F(u) + log1p(-F(l) / F(u)).
        log_u, log_l = log_expit(upper), log_expit(lower)
        out[block] = log_u + np.log1p(-np.exp(log_l - log_u))
    return xr.DataArray(out.reshape(chains, n_draws, -1), dims=("chain", "draw", "obs"))


#: Respondents whose log-likelihood is held in memory at once in :func:`loo_tables`
#: (400 x 4,000 draws is 13 MB, whatever the size of the survey; PSIS holds a few times that).
LOO_CHUNK = 400
#: Bytes of per-ward draws (intercepts and slopes of every draw) read at once in
#: :func:`loo_tables`: about 50 wards of 4,000 draws (:data:`LOO_MAX_DRAWS`), whatever the
#: number of wards.
WARD_BLOCK_BYTES = 12 * 2**20
#: PSIS-LOO uses at most this many draws, every k-th of each chain: a default fit has 9,200,
#: and PSIS over 3,000 or more draws is as reliable (ArviZ's good-k threshold is 0.7 from
#: about 2,200 draws on) at a third of the cost, which at five years is minutes.
LOO_MAX_DRAWS = 4000


def loo_tables(idata: xr.DataTree, frame: pd.DataFrame, *, chunk: int = LOO_CHUNK,
               ward_block_bytes: int = WARD_BLOCK_BYTES, max_draws: int | None = LOO_MAX_DRAWS,
               threads: int | None = None) -> LooResult:
    """PSIS-LOO of a fitted survey model, per respondent and leaving out one ward at a time.

    Pareto-smoothed importance sampling treats each respondent on its own, so the
    log-likelihood is computed and smoothed ``chunk`` respondents at a time, and the
    posterior's ward effects are read a block of wards at a time (``ward_block_bytes`` of
    draws): memory stays flat as the survey and its wards grow (the whole log-likelihood
    matrix would be 12 GB at 256,000 respondents). Each ward's summed log-likelihood is
    accumulated over the chunks.

    Parameters
    ----------
    idata
        The posterior (with ``observed_data`` and ``constant_data``).
    frame
        The tidy frame the model was fitted to (for the ``row`` and ``ward`` of each respondent).
    chunk
        Respondents per chunk.
    ward_block_bytes
        Memory for the draws of one block of wards.
    max_draws
        Thin every chain alike to at most this many draws in all (``None``: every draw);
        the summary's ``n_draws`` says how many were used.
    threads
        Chunks of respondents computed side by side (default: the cores this process may
        run on, at most 4), while the next block of wards is read. NumPy's gathers, sorts
        and exponentials release the GIL. Every chunk writes only its own respondents; with
        threads the chunks are smaller, so the tables agree with one thread's to rounding
        (NumPy's vectorised sums round in another order).
    """
    total = idata["posterior"].sizes["chain"] * idata["posterior"].sizes["draw"]
    thin = 1 if max_draws is None else math.ceil(total / max_draws)
    idata = idata.copy()
    kept = idata["posterior"].to_dataset().isel(draw=slice(None, None, thin))
    # Every block of wards reads the London and borough variables again: they are read once
    # here, and only the kept draws (a run folder's hold every draw; at 242,410 respondents
    # and 4 x 3,000 draws reading them whole before thinning put the fit's peak over 1 GB).
    idata["posterior"] = xr.DataTree(kept.assign({name: da.load() for name, da in kept.data_vars.items()
                                                  if "ward" not in da.dims}))
    post_ds = idata["posterior"]
    chains, n_draws = post_ds.sizes["chain"], post_ds.sizes["draw"]
    n_samples = chains * n_draws
    # The tail length of every point's PSIS fit is set by the London effects' relative ESS.
    r_eff = psis.relative_ess(idata["posterior"].to_dataset()[["beta"]].compute())
    wards, ward_idx = np.unique(frame["ward"].to_numpy(), return_inverse=True)
    n = len(frame)
    elpd_i, k_i, lppd_i = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    elpd_w, k_w, lppd_w = np.full(wards.size, np.nan), np.full(wards.size, np.nan), np.full(wards.size, np.nan)
    # A ward's draws: its intercept and a slope for every driver (zero where it has none).
    per_ward = n_samples * 8 * (1 + post_ds.sizes["driver"])
    if threads is None:
        threads = min(4, available_cores())
    # With threads, the next block is read while this one is computed: two blocks at once,
    # so each is half the size.
    step = max(1, (ward_block_bytes // (2 if threads > 1 else 1)) // per_ward)
    # Blocks of whole stored chunks of wards (a block ending inside a chunk would have the
    # next block read that chunk again): at the defaults 32 wards, not 24. A budget under
    # half a chunk keeps its small blocks.
    ward_chunk = next((da.chunksizes["ward"][0] for da in post_ds.to_dataset().data_vars.values()
                       if "ward" in da.dims and da.chunks is not None), None)
    if ward_chunk and 2 * step >= ward_chunk:
        step = max(ward_chunk, step // ward_chunk * ward_chunk)
    n_model_wards = post_ds.sizes["ward"]
    good_k = psis.good_k(n_samples)
    observed = idata["observed_data"]
    answers = np.asarray(observed[next(iter(observed.data_vars))].values, dtype=int)

    def read_block(first: int) -> Posterior:
        return load_posterior(idata, max_draws=n_samples, wards=np.arange(first, min(first + step, n_model_wards)))

    firsts = list(range(0, n_model_wards, step))
    # Blocks are read one after another, by dask in this thread: any other reading thread
    # (dask's, or one reading ahead) keeps a malloc arena of its own freed read buffers. A
    # block's chunks of respondents are computed side by side in the pool while this thread
    # reads the next block (a quarter of the time at five years was reading), each chunk
    # 1/threads of ``chunk`` so that those in flight hold what one chunk would. Measured at a
    # year, 6,000 draws: reading ahead in a second thread with whole chunks and blocks added
    # 78 MB to PSIS-LOO's peak; this way, 2-14 MB. With one thread every step runs here, in turn.
    per_thread = max(1, chunk // max(1, threads))
    with one_block_at_a_time(), ThreadPoolExecutor(max(1, threads)) as pool:
        block = read_block(firsts[0]) if firsts else None
        for i in range(len(firsts)):
            # Every respondent of a ward is in its block, so each ward's summed log-likelihood
            # (for leaving out the whole ward) is complete when the block is done. In ward order
            # (the survey's rows are not), a chunk of respondents touches one or two wards.
            block = block.respondents(np.argsort(ward_idx[block.rows], kind="stable"))
            block_wards, block_ward_of = np.unique(ward_idx[block.rows], return_inverse=True)

            def respondent_chunk(start: int, block: Posterior = block,
                                 block_ward_of: np.ndarray = block_ward_of) -> tuple[np.ndarray, Any]:
                part = block.respondents(slice(start, start + per_thread))
                m = part.rows.size
                flat = pointwise_log_likelihood(idata, post=part, answers=answers).values.reshape(-1, m)
                # Each chunk's share of its wards' summed log-likelihood, added up in order below:
                # for the few wards it touches only (the block is in ward order), as the
                # shares of every chunk of a block may all be waiting at once: at 242,410
                # respondents a block's 57 shares of every ward were 57 MB, now about 3.
                touched, members = np.unique(block_ward_of[start:start + m], return_inverse=True)
                indicator = sp.csr_matrix((np.ones(m), (np.arange(m), members)), shape=(m, touched.size))
                return part.rows, (*_psis_columns(flat, r_eff), touched, np.asarray((indicator.T @ flat.T).T))

            starts = range(0, block.rows.size, per_thread)
            if threads > 1:
                pending = [pool.submit(respondent_chunk, start) for start in starts]
                upcoming = read_block(firsts[i + 1]) if i + 1 < len(firsts) else None
                chunks = [task.result() for task in pending]
                # What the pool's threads freed stays in their own malloc arenas until handed back.
                trim_heap()
            else:
                chunks = [respondent_chunk(start) for start in starts]
                upcoming = read_block(firsts[i + 1]) if i + 1 < len(firsts) else None
            by_ward = np.zeros((n_samples, block_wards.size))
            for rows, (elpd, k, lppd, _, touched, share) in chunks:
                elpd_i[rows], k_i[rows], lppd_i[rows] = elpd, k, lppd
                by_ward[:, touched] += share
            for cols in range(0, block_wards.size, chunk):
                these = slice(cols, cols + chunk)
                (elpd_w[block_wards[these]], k_w[block_wards[these]], lppd_w[block_wards[these]],
                 _) = _psis_columns(by_ward[:, these], r_eff)
            block = upcoming
    totals = _loo_totals(elpd_i, lppd_i, good_k, n_samples)
    ward_totals = _loo_totals(elpd_w, lppd_w, good_k, n_samples)

    respondents = pd.DataFrame({"row": frame["row"].to_numpy(), "ward": frame["ward"].to_numpy(),
                                "elpd_loo": elpd_i, "pareto_k": k_i})
    ward_table = pd.DataFrame({"ward": wards, "respondents": np.bincount(ward_idx), "elpd_loo": elpd_w,
                               "pareto_k": k_w})
    summary = {"respondent": {**totals, **_k_counts(k_i, totals["good_k"])},
               "ward": {**ward_totals, **_k_counts(k_w, ward_totals["good_k"])}}
    return LooResult(respondents, ward_table, summary)


def _k_counts(k: np.ndarray, good_k: float) -> dict[str, int]:
    return {"n": int(k.size), "k_good": int((k <= good_k).sum()),
            "k_ok": int(((k > good_k) & (k <= K_BAD)).sum()),
            "k_bad": int(((k > K_BAD) & (k <= K_VERY_BAD)).sum()), "k_very_bad": int((k > K_VERY_BAD).sum())}


def compare_pointwise(pointwise: dict[str, pd.DataFrame], key: str) -> pd.DataFrame:
    """Rank models by ELPD from their pointwise LOO tables (all over the same units).

    Parameters
    ----------
    pointwise
        Model name -> table with ``key`` (``row`` or ``ward``), ``elpd_loo`` and ``pareto_k``.
    key
        The column that identifies a unit; every table must hold the same units.

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``model, rank, elpd_loo, se, elpd_diff`` (the model's ELPD
        minus the best's: 0 for the best, negative for the others, as in ``arviz_stats.compare``),
        ``dse`` (standard error of that difference), ``diff_over_dse``, ``p_worse`` (normal approximation of
        the probability that the model predicts worse than the best), ``n``, ``max_k``, ``k_over_0.7``.

    Raises
    ------
    QueryError
        When the tables do not hold the same units (different data or rows).
    """
    names = list(pointwise)
    aligned = {}
    reference = None
    for name, table in pointwise.items():
        ordered = table.set_index(key).sort_index()
        if reference is None:
            reference = ordered.index
        elif not ordered.index.equals(reference):
            raise QueryError(f"runs {names[0]!r} and {name!r} were not fitted to the same {key}s; "
                             "ELPD can only be compared on the same data. What to do: fit both models to "
                             "the same file with the same exclusions")
        aligned[name] = ordered
    elpd = pd.DataFrame({n: t["elpd_loo"] for n, t in aligned.items()})
    n = len(elpd)
    totals = elpd.sum()
    best = totals.idxmax()
    rows = []
    for name in names:
        diff = elpd[name] - elpd[best]  # <= 0 in total, as arviz_stats.compare reports it
        dse = float(np.sqrt(n * diff.var(ddof=0))) if name != best else 0.0
        d = float(diff.sum())
        rows.append({"model": name, "elpd_loo": float(totals[name]),
                     "se": float(np.sqrt(n * elpd[name].var(ddof=0))), "elpd_diff": d, "dse": dse,
                     "diff_over_dse": abs(d) / dse if dse > 0 else np.nan,
                     "p_worse": float(_normal_cdf(-d / dse)) if dse > 0 else np.nan, "n": n,
                     "max_k": float(aligned[name]["pareto_k"].max()),
                     "k_over_0.7": int((aligned[name]["pareto_k"] > K_BAD).sum())})
    table = pd.DataFrame(rows).sort_values("elpd_loo", ascending=False).reset_index(drop=True)
    table.insert(1, "rank", np.arange(len(table)))
    return table


def _normal_cdf(z: float) -> float:
    from scipy.stats import norm

    return float(norm.cdf(z))


def verdict(table: pd.DataFrame) -> str:
    """One sentence on what the comparison supports, for the terminal and the report."""
    if len(table) < 2:
        return "Only one model: nothing to compare."
    best, second = table.iloc[0], table.iloc[1]
    ratio = second["diff_over_dse"]
    if ratio > 4:
        strength = "clearly better than"
    elif ratio > 2:
        strength = "better than"
    else:
        strength = "not distinguishable from"
    return (f"{best['model']} predicts best; it is {strength} {second['model']} "
            f"(ELPD difference {abs(second['elpd_diff']):.1f}, SE {second['dse']:.1f}).")


def compare_runs(run_paths: list[str], *, by: str = "respondent") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank run folders by PSIS-LOO ELPD; the table and each run's Pareto-k summary.

    Parameters
    ----------
    run_paths
        Two or more run folders written by ``pas-bayes fit``.
    by
        ``"respondent"`` (``loo.csv``) or ``"ward"`` (``loo_wards.csv``).

    Raises
    ------
    QueryError
        Fewer than two runs; a run without LOO (dashboard or survey-weighted); runs fitted to
        different data or rows, or with different outcomes or families (their likelihoods are of
        different things).
    """
    from pas_bayes.fit import load_run_meta

    if by not in LEVELS:
        raise QueryError(f"--by must be one of {LEVELS}, got {by!r}")
    if len(run_paths) < 2:
        raise QueryError("give at least two run folders to compare")
    pointwise, k_rows, names, first = {}, [], [], None
    for path in run_paths:
        spec, provenance = load_run_meta(path)
        file = Path(path) / ("loo.csv" if by == "respondent" else "loo_wards.csv")
        if not file.exists():
            reason = provenance.get("loo") if isinstance(provenance.get("loo"), str) else (
                "it has no pointwise LOO (a dashboard run, or fitted before LOO was recorded)")
            raise QueryError(f"{path}: cannot be compared: {reason}. What to do: compare unweighted "
                             "respondent-level runs made by `pas-bayes fit` (without --no-loo)")
        key = (provenance.get("data_sha256"), spec.get("outcome"), spec.get("family", "bernoulli"))
        if first is None:
            first = (path, key)
        elif key != first[1]:
            raise QueryError(
                f"{path} and {first[0]} differ in data file, outcome or family ({key} vs {first[1]}): "
                "ELPD compares models of the same answers only (a cumulative model predicts the full "
                "answer, a binary one only positive vs not). What to do: compare runs of one outcome and "
                "family fitted to one file")
        name = Path(path).name
        if name in names:
            name = str(path)
        names.append(name)
        table = pd.read_csv(file, dtype={"ward": str}, keep_default_na=False)
        pointwise[name] = table
        k = table["pareto_k"].to_numpy()
        good_k = provenance.get("loo", {}).get(by, {}).get("good_k", K_BAD) if isinstance(
            provenance.get("loo"), dict) else K_BAD
        k_rows.append({"model": name, **_k_counts(k, good_k), "good_k": round(float(good_k), 3),
                       "max_k": round(float(k.max()), 3)})
    return compare_pointwise(pointwise, "row" if by == "respondent" else "ward"), pd.DataFrame(k_rows)
