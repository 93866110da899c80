"""Rankings with their uncertainty: never a bare league table.

For each driver, from posterior draws of the average marginal effects (pp):
each borough's probability that its effect exceeds London's, its probability
of being in the top five, and its rank with a 90% interval (rank 1 = the
largest effect); and the same for the wards within each borough, against their
borough.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pas_bayes.predictions import Posterior

TOP = 5


def rank_draws(samples: np.ndarray) -> np.ndarray:
    """Rank of each place in each draw, 1 = largest: (S, places) -> (S, places)."""
    order = np.argsort(-samples, axis=1)
    ranks = np.empty_like(order)
    rows = np.arange(samples.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, samples.shape[1] + 1)
    return ranks


def rank_table(samples: np.ndarray, reference: np.ndarray, names: list[str], *, top: int = TOP) -> pd.DataFrame:
    """Summaries and rank statistics of places against a reference.

    Parameters
    ----------
    samples
        (S, places) draws of each place's effect.
    reference
        (S,) draws of the reference effect (London's, or the borough's for its wards).
    names
        Place names.

    Returns
    -------
    pandas.DataFrame
        ``place, mean, q05, q95, prob_above_reference, prob_top, rank_mean, rank_q05,
        rank_q50, rank_q95``, sorted by mean rank.
    """
    ranks = rank_draws(samples)
    q = np.quantile(samples, [0.05, 0.95], axis=0)
    rq = np.quantile(ranks, [0.05, 0.5, 0.95], axis=0)
    table = pd.DataFrame({
        "place": names,
        "mean": samples.mean(axis=0),
        "q05": q[0],
        "q95": q[1],
        "prob_above_reference": (samples > reference[:, None]).mean(axis=0),
        "prob_top": (ranks <= top).mean(axis=0),
        "rank_mean": ranks.mean(axis=0),
        "rank_q05": rq[0].round().astype(int),
        "rank_q50": rq[1].round().astype(int),
        "rank_q95": rq[2].round().astype(int),
    })
    return table.sort_values(["rank_mean", "place"]).reset_index(drop=True)


def borough_rankings(ame: dict[str, np.ndarray], post: Posterior) -> pd.DataFrame:
    """Borough rankings of every driver's average marginal effect (pp).

    ``ame`` is :func:`pas_bayes.effects.marginal_effects`'s output.
    """
    frames = []
    for d, driver in enumerate(post.drivers):
        table = rank_table(ame["borough"][:, :, d], ame["london"][:, 0, d], post.boroughs)
        frames.append(table.rename(columns={"place": "borough", "prob_above_reference": "prob_above_london",
                                            "prob_top": "prob_top5"}).assign(driver=driver, scale="pp"))
    return pd.concat(frames, ignore_index=True)[
        ["driver", "borough", "scale", "mean", "q05", "q95", "prob_above_london", "prob_top5",
         "rank_mean", "rank_q05", "rank_q50", "rank_q95"]]


def ward_rankings(ame: dict[str, np.ndarray], post: Posterior) -> pd.DataFrame:
    """Ward rankings within each borough, against the borough's own effect."""
    counts = np.bincount(post.ward_idx, minlength=len(post.wards))
    frames = []
    for b, borough in enumerate(post.boroughs):
        members = np.flatnonzero(post.ward_borough_idx == b)
        if members.size == 0:
            continue
        for d, driver in enumerate(post.drivers):
            table = rank_table(ame["ward"][:, members, d], ame["borough"][:, b, d],
                               [post.wards[w] for w in members], top=min(TOP, members.size))
            table["respondents"] = table["place"].map(dict(zip([post.wards[w] for w in members],
                                                               counts[members], strict=True)))
            frames.append(table.rename(columns={"place": "ward", "prob_above_reference": "prob_above_borough",
                                                "prob_top": "prob_top5_in_borough"})
                          .assign(driver=driver, borough=borough, scale="pp"))
    return pd.concat(frames, ignore_index=True)[
        ["driver", "borough", "ward", "respondents", "scale", "mean", "q05", "q95", "prob_above_borough",
         "prob_top5_in_borough", "rank_mean", "rank_q05", "rank_q50", "rank_q95"]]
