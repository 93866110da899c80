"""Ward-level plots: the wards of one borough against their borough, and London's extremes.

Ward estimates rest on about 18 respondents each, so the model pulls them
toward their borough's effect (partial pooling); these plots show that pull
(the borough band behind every ward) rather than hide it, and never list
hundreds of wards in one column.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals, interval_rows
from pas_bayes.plots.borough_slopes import mark_against
from pas_bayes.rankings import rank_table


def plot_ward_effects(ame_ward: np.ndarray, ame_borough: np.ndarray, *, wards: list[str], ward_names: list[str],
                      respondents: np.ndarray, borough: str, driver: str, label: str,
                      outcome_phrase: str) -> PlotResult:
    """Caterpillar of the wards of one borough, with the borough's effect behind them.

    Parameters
    ----------
    ame_ward
        (S, W) draws of each ward's average marginal effect (points).
    ame_borough
        (S,) draws of the borough's.
    wards, ward_names
        Ward identifiers (as in the data) and names to print.
    respondents
        Respondents per ward: fewer respondents, more pull toward the borough.
    """
    rows = interval_rows(ame_ward)
    borough_rows = interval_rows(ame_borough[:, None])
    marks = mark_against(rows, ame_borough)
    ranks = rank_table(ame_ward, ame_borough, wards, top=min(5, len(wards))).set_index("place").loc[wards]
    order = np.argsort(rows["mean"])
    palette = {"above": OKABE_ITO["orange"], "below": OKABE_ITO["blue"], "unclear": OKABE_ITO["grey"]}
    fig, ax = plt.subplots(figsize=(8.5, 0.3 * len(wards) + 2.3))
    ax.axvspan(borough_rows["q05"][0], borough_rows["q95"][0], color=OKABE_ITO["sky"], alpha=0.25,
               label=f"{borough}, 90% interval")
    ax.axvline(borough_rows["q50"][0], color=OKABE_ITO["black"], linewidth=1, label=borough)
    for pos, i in enumerate(order):
        draw_intervals(ax, np.array([pos]), {k: v[i:i + 1] for k, v in rows.items()}, palette[marks[i]])
    ax.set_yticks(np.arange(len(wards)), [f"{ward_names[i]} (n={respondents[i]})" for i in order], fontsize=8)
    ax.set_xlabel(f"Change in the share of residents who {outcome_phrase} (percentage points),\n"
                  "averaged over the ward's residents; estimates are pulled toward the borough, "
                  "most where n is small")
    n_clear = int((marks != "unclear").sum())
    ax.set_title(f"{label} in {borough}'s wards: {n_clear} of {len(wards)} wards clearly differ from the "
                 "borough;\nwith about 18 respondents a ward, most ward differences cannot be told apart",
                 loc="left", fontsize=11)
    ax.legend(loc="lower right", frameon=True, framealpha=0.9, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    numbers = pd.DataFrame({
        "borough": borough, "ward": wards, "ward_name": ward_names, "respondents": respondents, "driver": driver,
        **{f"pp_{k}": v for k, v in rows.items()},
        "prob_above_borough": ranks["prob_above_reference"].to_numpy(),
        "prob_top5_in_borough": ranks["prob_top"].to_numpy(),
        "rank_q05": ranks["rank_q05"].to_numpy(), "rank_q95": ranks["rank_q95"].to_numpy(), "mark": marks,
        "borough_pp_mean": borough_rows["mean"][0],
    }).iloc[order[::-1]].reset_index(drop=True)
    return PlotResult(fig, numbers)


def plot_ward_extremes(ame_ward: np.ndarray, ame_london: np.ndarray, *, wards: list[str], ward_labels: list[str],
                       driver: str, label: str, outcome_phrase: str, show: int = 12) -> PlotResult:
    """The ``show`` wards with the largest and smallest effects in London; the rest as a band.

    Every ward's interval is wide, so the title reports how many of all wards
    clearly differ from London rather than crowning a single ward.
    """
    rows = interval_rows(ame_ward)
    london = interval_rows(ame_london[:, None])
    marks = mark_against(rows, ame_london)
    order = np.argsort(rows["mean"])
    picked = np.concatenate([order[:show], order[-show:]]) if len(order) > 2 * show else order
    rest = np.setdiff1d(order, picked)
    fig, ax = plt.subplots(figsize=(8.5, 0.3 * len(picked) + 2.6))
    ax.axvspan(london["q05"][0], london["q95"][0], color=OKABE_ITO["grey"], alpha=0.18, label="London, 90% interval")
    ax.axvline(london["q50"][0], color=OKABE_ITO["black"], linewidth=1, label="London")
    palette = {"above": OKABE_ITO["orange"], "below": OKABE_ITO["blue"], "unclear": OKABE_ITO["grey"]}
    positions = np.arange(len(picked)) + np.where(np.arange(len(picked)) >= min(show, len(picked)), 1, 0)
    for pos, i in zip(positions, picked, strict=True):
        draw_intervals(ax, np.array([pos]), {k: v[i:i + 1] for k, v in rows.items()}, palette[marks[i]])
    labels = [ward_labels[i] for i in picked]
    if rest.size:
        gap = min(show, len(picked))
        lo, hi = np.quantile(rows["mean"][rest], [0.05, 0.95])
        ax.hlines(gap, lo, hi, color=OKABE_ITO["purple"], linewidth=6, alpha=0.5)
        ax.set_yticks(np.r_[positions, gap], [*labels, f"{rest.size} other wards: middle 90% of their means"],
                      fontsize=7)
    else:
        ax.set_yticks(positions, labels, fontsize=7)
    n_clear = int((marks != "unclear").sum())
    ax.set_title(f"{label}: {n_clear} of {len(wards)} wards clearly differ from London;\n"
                 f"the {min(show, len(picked))} highest and lowest wards shown", loc="left", fontsize=11)
    ax.set_xlabel(f"Change in the share of residents who {outcome_phrase} (percentage points)")
    ax.legend(loc="lower right", frameon=True, framealpha=0.9, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    numbers = pd.DataFrame({"ward": wards, "label": ward_labels, "driver": driver,
                            **{f"pp_{k}": v for k, v in rows.items()}, "mark": marks,
                            "shown": np.isin(np.arange(len(wards)), picked)})
    return PlotResult(fig, numbers.iloc[order[::-1]].reset_index(drop=True))
