"""Borough caterpillar plot of one driver's effect, ranked, with 50% and 90% intervals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals, interval_rows, percent
from pas_bayes.rankings import rank_table


def mark_against(rows: dict[str, np.ndarray], reference: np.ndarray) -> np.ndarray:
    """'above', 'below' or 'unclear': a place's 90% interval wholly above / below the reference median."""
    centre = float(np.median(reference))
    return np.where(rows["q05"] > centre, "above", np.where(rows["q95"] < centre, "below", "unclear"))


def plot_borough_slopes(ame_borough: np.ndarray, ame_london: np.ndarray, *, boroughs: list[str], driver: str,
                        label: str, outcome_phrase: str) -> PlotResult:
    """Rank boroughs by how much ``driver`` goes with the outcome, with uncertainty.

    Parameters
    ----------
    ame_borough, ame_london
        (S, B) and (S,) draws of the driver's average marginal effect (points)
        over each borough's residents and over London's.

    Boroughs whose 90% interval lies wholly above (below) London's posterior
    median are orange (blue); grey ones cannot be told apart from London with
    these data. London's effect is the vertical line and its 90% band.

    Returns
    -------
    PlotResult
        The figure; per borough the pp summaries, the probability its effect
        exceeds London's, the probability it is in the top five, its rank interval
        and its mark.
    """
    rows = interval_rows(ame_borough)
    london_rows = interval_rows(ame_london[:, None])
    marks = mark_against(rows, ame_london)
    ranks = rank_table(ame_borough, ame_london, boroughs).set_index("place").loc[boroughs]
    order = np.argsort(rows["mean"])
    palette = {"above": OKABE_ITO["orange"], "below": OKABE_ITO["blue"], "unclear": OKABE_ITO["grey"]}

    fig, ax = plt.subplots(figsize=(8.5, 0.28 * len(boroughs) + 2.2))
    ax.axvspan(london_rows["q05"][0], london_rows["q95"][0], color=OKABE_ITO["grey"], alpha=0.18)
    ax.axvline(london_rows["q50"][0], color=OKABE_ITO["black"], linewidth=1)
    for pos, i in enumerate(order):
        draw_intervals(ax, np.array([pos]), {k: v[i:i + 1] for k, v in rows.items()}, palette[marks[i]])
    ax.set_yticks(np.arange(len(boroughs)),
                  [f"{boroughs[i]}  (rank {ranks['rank_q05'].iat[i]}-{ranks['rank_q95'].iat[i]})" for i in order],
                  fontsize=8)
    ax.set_xlabel(f"Change in the share of residents who {outcome_phrase} (percentage points),\n"
                  "averaged over the borough's residents; thick bar 50%, thin bar 90% interval; "
                  "90% rank interval in brackets")
    top = order[-1]
    above = [boroughs[i] for i in order[::-1] if marks[i] == "above"]
    if above:
        finding = f"{label} matters most in {', '.join(above[:3])}{' and others' if len(above) > 3 else ''}"
    else:
        finding = f"{label}: no borough clearly stands above London (highest: {boroughs[top]})"
    ax.set_title(f"{finding};\n{int((marks != 'unclear').sum())} of {len(boroughs)} boroughs clearly differ "
                 f"from London; {boroughs[top]} is top-five with probability {percent(ranks['prob_top'].iat[top])}",
                 loc="left", fontsize=11)
    ax.legend(handles=[
        Patch(color=OKABE_ITO["grey"], alpha=0.18, label="London, 90% interval"),
        Line2D([], [], color=OKABE_ITO["black"], linewidth=1, label="London"),
        Line2D([], [], color=palette["above"], linewidth=4, label="clearly above London"),
        Line2D([], [], color=palette["below"], linewidth=4, label="clearly below London"),
        Line2D([], [], color=palette["unclear"], linewidth=4, label="cannot be told apart"),
    ], loc="lower right", frameon=True, framealpha=0.9, fontsize=8)
    ax.grid(axis="x", alpha=0.3)

    numbers = pd.DataFrame({
        "borough": boroughs, "driver": driver,
        **{f"pp_{k}": v for k, v in rows.items()},
        "prob_above_london": ranks["prob_above_reference"].to_numpy(),
        "prob_top5": ranks["prob_top"].to_numpy(),
        "rank_q05": ranks["rank_q05"].to_numpy(), "rank_q50": ranks["rank_q50"].to_numpy(),
        "rank_q95": ranks["rank_q95"].to_numpy(),
        "mark": marks,
        "london_pp_mean": london_rows["mean"][0],
    }).iloc[order[::-1]].reset_index(drop=True)
    return PlotResult(fig, numbers)
