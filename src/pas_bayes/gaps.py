"""Demographic gaps after accounting for the drivers, in percentage points.

For each demographic level, the gap to the reference level (the first level of
the codebook: White, 16-24, Male): each respondent's probability of a positive
answer with their demographic set to the level, minus with it set to the
reference, everything else (drivers, borough, ward, other demographics) as
observed, averaged over all respondents, per posterior draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from pas_bayes.predictions import Posterior


def demographic_gaps(post: Posterior) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Gap of every level to its demographic's reference level.

    Returns
    -------
    tuple
        A table (``demographic, level, reference, respondents, mean, q05, q50, q95,
        prob_below_reference``; percentage points) and the draws of each gap
        keyed by ``(demographic, level)``.
    """
    rows, draws = [], {}
    for g, levels in post.demographic_levels.items():
        reference = levels[0]
        idx = post.demographic_idx[g]
        counts = np.bincount(idx, minlength=len(levels))
        gaps = np.empty((post.n_draws, len(levels)))
        for block in post.blocks():
            # Everyone set to a level: its intercept and, where the run has them, its
            # driver slopes (demographic_slopes) both change.
            at_ref = expit(post.eta(block, demographic_override={g: np.zeros_like(idx)}))
            for j in range(1, len(levels)):
                at_level = expit(post.eta(block, demographic_override={g: np.full_like(idx, j)}))
                gaps[block, j] = (at_level - at_ref).mean(axis=1)
        for j, level in enumerate(levels[1:], start=1):
            gap = 100.0 * gaps[:, j]
            draws[(g, level)] = gap
            q = np.quantile(gap, [0.05, 0.5, 0.95])
            rows.append({"demographic": g, "level": level, "reference": reference,
                         "respondents": int(counts[j]), "mean": gap.mean(), "q05": q[0], "q50": q[1],
                         "q95": q[2], "prob_below_reference": float((gap < 0).mean())})
    columns = ["demographic", "level", "reference", "respondents", "mean", "q05", "q50", "q95",
               "prob_below_reference"]
    return pd.DataFrame(rows, columns=columns), draws
