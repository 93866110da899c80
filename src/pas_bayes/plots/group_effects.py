"""Driver effects by year or demographic group, in percentage points."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals, percent

NAMES = {"year": "financial year", "ethnicity": "ethnic group", "age": "age band", "sex": "sex"}


def plot_group_effects(table: pd.DataFrame, *, labels: dict[str, str], outcome_phrase: str) -> PlotResult:
    """One panel per (group, driver): each level's average marginal effect with 50/90% intervals.

    ``table`` is :func:`pas_bayes.effects.group_marginal_effects`'s table; the title names the
    level where the first panel's driver matters most, and how sure that is.
    """
    panels = list(dict.fromkeys(zip(table["group"], table["driver"], strict=True)))
    heights = [int(((table["group"] == g) & (table["driver"] == d)).sum()) + 1 for g, d in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 0.4 * sum(heights) + 2),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (group, driver) in zip(axes[:, 0], panels, strict=True):
        rows = table[(table["group"] == group) & (table["driver"] == driver)].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        draw_intervals(ax, y, {k: rows[k].to_numpy() for k in ("q05", "q25", "q50", "q75", "q95")},
                       OKABE_ITO["blue"], label=ax is axes[0, 0])
        ax.set_yticks(y, [f"{lev} (n={n})" for lev, n in zip(rows["level"], rows["respondents"], strict=True)],
                      fontsize=8)
        ax.set_title(f"{labels.get(driver, driver)}, by {NAMES.get(group, group)}", loc="left", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("percentage points", fontsize=8)
    group, driver = panels[0]
    first = table[(table["group"] == group) & (table["driver"] == driver)]
    top = first.sort_values("q50", ascending=False).iloc[0]
    axes[0, 0].legend(loc="lower right", fontsize=7, frameon=False)
    fig.suptitle(f"{labels.get(driver, driver)} moves the share who {outcome_phrase} most for {top['level']}: "
                 f"+{top['q50']:.0f} points\n(90% interval {top['q05']:.0f} to {top['q95']:.0f}; "
                 f"P(more than for the other {NAMES.get(group, group)}s) {percent(top['prob_above_others'])})",
                 x=0.02, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return PlotResult(fig, table.copy())
