"""What-if scenarios: the expected change in the share of positive answers if a driver changed.

A binary driver (visibility, informed) is moved to a target *share* of
residents: to raise it, a random fraction of those without it gain it; to lower
it, a random fraction of those with it lose it. A composite driver is moved to
a target *mean* (in London SD units; London's mean is 0): every resident's
score shifts by the same amount. Either way the answer is averaged over the
residents of the place (a borough, or London), per posterior draw, so it comes
with an interval. These are associations carried forward through the model,
not causal effects of a policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from pas_bayes.errors import QueryError
from pas_bayes.geography import normalise_borough
from pas_bayes.predictions import Posterior, is_binary


@dataclass(frozen=True)
class Scenario:
    """One change: a driver moved to a target level in a borough (or London when ``borough`` is None)."""

    driver: str
    to: float
    borough: str | None = None


def run_scenario(post: Posterior, scenario: Scenario) -> pd.DataFrame:
    """Expected change in the share of positive answers, in percentage points, with intervals.

    Returns
    -------
    pandas.DataFrame
        One row: ``place, driver, kind, current, target, baseline_pct (mean, q05, q95),
        change_pp_mean, change_pp_q05, change_pp_q50, change_pp_q95, prob_increase, respondents``.

    Raises
    ------
    QueryError
        Unknown driver or borough, or a target outside the driver's range.
    """
    if scenario.driver not in post.drivers:
        raise QueryError(f"driver {scenario.driver!r} is not in this run; it has {post.drivers}")
    if scenario.borough is None:
        members = np.arange(post.X.shape[0])
        place = "London"
    else:
        place = normalise_borough(scenario.borough) or scenario.borough
        if place not in post.boroughs:
            raise QueryError(f"borough {scenario.borough!r} is not in this run; use one of {post.boroughs}")
        members = np.flatnonzero(post.borough_idx == post.boroughs.index(place))
    d = post.drivers.index(scenario.driver)
    x = post.X[members, d]
    binary = is_binary(post.X[:, d])
    current = float(x.mean())
    if binary and not 0.0 <= scenario.to <= 1.0:
        raise QueryError(f"{scenario.driver} is yes/no: --to is a share of residents between 0 and 1, "
                            f"got {scenario.to}")
    if not binary and not -3.0 <= scenario.to <= 3.0:
        raise QueryError(f"{scenario.driver} is a score in London SD units: --to is a mean between -3 and 3, "
                            f"got {scenario.to}")

    change = np.empty(post.n_draws)
    baseline = np.empty(post.n_draws)
    for block in post.blocks():
        eta = post.eta(block)[:, members]
        slope = post.slopes(block)[:, members, d]
        p_now = expit(eta)
        baseline[block] = p_now.mean(axis=1)
        if binary:
            gain = expit(eta + slope * (1.0 - x)) - expit(eta - slope * x)  # P(yes) - P(no) per resident
            if scenario.to >= current:
                share = 0.0 if current >= 1 else (scenario.to - current) / (1.0 - current)
                change[block] = share * (gain * (x == 0)).sum(axis=1) / members.size
            else:
                share = (current - scenario.to) / current
                change[block] = -share * (gain * (x == 1)).sum(axis=1) / members.size
        else:
            change[block] = (expit(eta + slope * (scenario.to - current)) - p_now).mean(axis=1)
    pp = 100.0 * change
    q = np.quantile(pp, [0.05, 0.5, 0.95])
    bq = np.quantile(100.0 * baseline, [0.05, 0.95])
    return pd.DataFrame([{
        "place": place, "driver": scenario.driver, "kind": "share" if binary else "mean score (SD)",
        "current": current, "target": scenario.to,
        "baseline_pct_mean": 100.0 * baseline.mean(), "baseline_pct_q05": bq[0], "baseline_pct_q95": bq[1],
        "change_pp_mean": pp.mean(), "change_pp_q05": q[0], "change_pp_q50": q[1], "change_pp_q95": q[2],
        "prob_increase": float((pp > 0).mean()), "respondents": int(members.size),
    }])


def describe(row: pd.Series, outcome_phrase: str, driver_phrase: str | None = None) -> str:
    """One plain-English sentence for a scenario result.

    ``driver_phrase`` names the driver in words ("seeing officers patrol at least weekly").
    """
    what = driver_phrase or row["driver"]
    if row["kind"] == "share":
        move = f"the share of residents {what} went from {100 * row['current']:.0f}% to {100 * row['target']:.0f}%"
    else:
        # Adding 0.0 turns a rounded -0.00 into +0.00.
        move = (f"the mean {what} score went from {round(row['current'], 2) + 0.0:+.2f} to "
                f"{round(row['target'], 2) + 0.0:+.2f} SD")
    return (f"In {row['place']}, if {move}, the share who {outcome_phrase} would change by "
            f"{row['change_pp_mean']:+.1f} points (90% interval {row['change_pp_q05']:+.1f} to "
            f"{row['change_pp_q95']:+.1f}), from about {row['baseline_pct_mean']:.0f}% now.")
