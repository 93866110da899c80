"""Prior predictive rates by borough: what the priors allow before any answer is seen."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals
from pas_bayes.prior_check import EXTREME, prior_verdict


def plot_prior_rates(rates: pd.DataFrame, *, outcome_phrase: str) -> PlotResult:
    """50% and 90% prior predictive intervals of each borough's and London's rate (%).

    ``rates`` is :func:`pas_bayes.prior_check.prior_rates`'s table.
    """
    rows = rates.iloc[::-1].reset_index(drop=True)  # London on top
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.26 * len(rows) + 2.2))
    ax.axvspan(0, EXTREME[0], color=OKABE_ITO["grey"], alpha=0.2, lw=0)
    ax.axvspan(EXTREME[1], 100, color=OKABE_ITO["grey"], alpha=0.2, lw=0, label="implausible (<5% or >95%)")
    colours = np.where(rows["place"] == "London", OKABE_ITO["vermillion"], OKABE_ITO["blue"])
    for colour in (OKABE_ITO["blue"], OKABE_ITO["vermillion"]):
        keep = colours == colour
        draw_intervals(ax, y[keep], {k: rows[k].to_numpy()[keep] for k in ("q05", "q25", "q50", "q75", "q95")},
                       colour, label=colour == OKABE_ITO["blue"])
    ax.set_yticks(y, rows["place"], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"Share who {outcome_phrase}, drawn from the priors alone (%)")
    ax.set_title(textwrap.fill(prior_verdict(rates), 90), loc="left", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return PlotResult(fig, rates)
