"""Demographic gaps after accounting for the drivers, in percentage points."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.plots._style import OKABE_ITO, PlotResult

NAMES = {"ethnicity": "Ethnicity", "age": "Age band", "sex": "Sex"}


def plot_demographic_gaps(gaps: pd.DataFrame, *, outcome_phrase: str) -> PlotResult:
    """One panel per demographic: each level's gap to the reference level, with 90% intervals.

    ``gaps`` is :func:`pas_bayes.gaps.demographic_gaps`'s table.
    """
    groups = list(dict.fromkeys(gaps["demographic"]))
    heights = [gaps["demographic"].eq(g).sum() + 1 for g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 0.42 * sum(heights) + 2),
                             gridspec_kw={"height_ratios": heights}, sharex=True, squeeze=False)
    for ax, g in zip(axes[:, 0], groups, strict=True):
        rows = gaps[gaps["demographic"] == g].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        colours = [OKABE_ITO["blue"] if q95 < 0 else OKABE_ITO["orange"] if q05 > 0 else OKABE_ITO["grey"]
                   for q05, q95 in zip(rows["q05"], rows["q95"], strict=True)]
        ax.hlines(y, rows["q05"], rows["q95"], color=colours, linewidth=2.5)
        ax.scatter(rows["q50"], y, color="white", edgecolor=colours, zorder=3)
        ax.axvline(0, color=OKABE_ITO["black"], linewidth=0.8)
        ax.set_yticks(y, [f"{lev} (n={n})" for lev, n in zip(rows["level"], rows["respondents"], strict=True)],
                      fontsize=8)
        ax.set_title(f"{NAMES.get(g, g)}: compared with {rows['reference'].iat[0]}", loc="left", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    worst = gaps.sort_values("q50").iloc[0]
    fig.suptitle(f"After accounting for the drivers, {worst['level']} residents are {abs(worst['q50']):.0f} points "
                 f"less likely to {outcome_phrase}\nthan {worst['reference']} residents "
                 f"(90% interval {abs(worst['q95']):.0f} to {abs(worst['q05']):.0f}); blue: clearly lower, "
                 "orange: clearly higher", x=0.02, ha="left", fontsize=11)
    axes[-1, 0].set_xlabel("Gap in percentage points, averaged over London's residents (90% interval)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return PlotResult(fig, gaps.copy())
