"""Posterior predictive check by borough: observed share against the model's replicated shares."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.plots._style import OKABE_ITO, PlotResult


def plot_ppc_by_borough(ppc: pd.DataFrame, *, outcome_phrase: str, demographics: bool = False) -> PlotResult:
    """Observed share of positive answers per borough (or demographic level), against the 90% range
    of replicated shares.

    ``ppc`` is :func:`pas_bayes.ppc.replicated_shares`'s table; its borough rows are drawn, or with
    ``demographics`` its demographic rows (labelled "group: level").
    """
    if demographics:
        rows = ppc[ppc["group"] != "borough"].reset_index(drop=True)
        rows = rows.assign(level=rows["group"] + ": " + rows["level"])
    else:
        rows = ppc[ppc["group"] == "borough"].sort_values("replicated_mean").reset_index(drop=True)
    outside = (rows["observed_pct"] < rows["replicated_q05"]) | (rows["observed_pct"] > rows["replicated_q95"])
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 2))
    ax.hlines(y, rows["replicated_q05"], rows["replicated_q95"], color=OKABE_ITO["sky"], linewidth=5,
              label="model: 90% range of replicated surveys")
    ax.scatter(rows["observed_pct"], y, color=np.where(outside, OKABE_ITO["vermillion"], OKABE_ITO["black"]),
               zorder=3, s=18, label="observed")
    ax.set_yticks(y, rows["level"], fontsize=8)
    ax.set_xlabel(f"Share of respondents who {outcome_phrase} (%)")
    expected = 0.10 * len(rows)
    unit = "demographic groups'" if demographics else "boroughs'"
    verdict = (f"The model reproduces the {unit} shares" if outside.sum() <= 2 * expected + 1
               else f"The model misses some {unit} shares")
    ax.set_title(f"{verdict}: {int(outside.sum())} of {len(rows)} observed shares fall outside\n"
                 f"the 90% range of replicated surveys (about {expected:.0f} expected by chance)",
                 loc="left", fontsize=11)
    ax.legend(loc="lower right", frameon=True, framealpha=0.9, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return PlotResult(fig, rows.assign(outside_90=outside))
