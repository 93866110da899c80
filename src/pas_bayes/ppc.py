"""Posterior predictive check: observed vs replicated shares of positive answers.

For each posterior draw, a replicated survey is drawn from the model (one
Bernoulli draw per respondent, the respondents and their drivers as observed)
and its share of positive answers computed by borough and by demographic
level. An observed share far in the tail of its replicated distribution points
to something the model misses in that group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pas_bayes.predictions import Posterior, group_means, predicted_probability


def replicated_shares(post: Posterior, *, seed: int = 0) -> pd.DataFrame:
    """Observed and replicated shares (%) by borough and by each demographic level.

    Returns
    -------
    pandas.DataFrame
        ``group`` (borough or a demographic name), ``level``, ``respondents``,
        ``observed_pct``, ``replicated_mean``, ``replicated_q05``, ``replicated_q95``,
        ``ppp`` (share of replications at or above the observed share).
    """
    rng = np.random.default_rng(seed)
    p = predicted_probability(post)
    y_rep = (rng.random(p.shape) < p).astype(float)
    groupings = {"borough": (post.borough_idx, post.boroughs)}
    groupings.update({g: (post.demographic_idx[g], levels) for g, levels in post.demographic_levels.items()})
    frames = []
    for group, (index, names) in groupings.items():
        rep = 100.0 * group_means(y_rep, index, len(names))
        observed = 100.0 * group_means(post.y[None, :], index, len(names))[0]
        q = np.quantile(rep, [0.05, 0.95], axis=0)
        frames.append(pd.DataFrame({
            "group": group, "level": names, "respondents": np.bincount(index, minlength=len(names)),
            "observed_pct": observed, "replicated_mean": rep.mean(axis=0), "replicated_q05": q[0],
            "replicated_q95": q[1], "ppp": (rep >= observed[None, :]).mean(axis=0),
        }))
    return pd.concat(frames, ignore_index=True)
