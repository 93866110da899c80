"""Borough caterpillar plot of one driver's total slope, ranked, with 50% and 90% intervals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pas_bayes.effects import slope_draws
from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals, interval_rows, to_percentage_points


def plot_borough_slopes(idata: xr.DataTree, driver: str, *, label: str, outcome_label: str,
                        base_rate: float) -> PlotResult:
    """Rank boroughs by how strongly ``driver`` goes with the outcome, with uncertainty.

    Boroughs whose 90% interval lies wholly above (below) London's posterior
    median are marked in orange (blue); grey ones cannot be told apart from
    London with these data. London's effect is the vertical line and band.

    Returns
    -------
    PlotResult
        The figure, and per borough the percentage-point and log-odds
        summaries, the probability its effect exceeds London's, and its mark.
    """
    drivers = [str(d) for d in idata["posterior"]["driver"].values]
    if driver not in drivers:
        raise KeyError(f"driver {driver!r} is not in this run; it has {drivers}")
    j = drivers.index(driver)
    boroughs = [str(b) for b in idata["posterior"]["borough"].values]
    slopes = slope_draws(idata)
    london = slopes["london"][:, j]
    borough = slopes["borough"][:, :, j]
    pp, pp_london = to_percentage_points(borough, base_rate), to_percentage_points(london, base_rate)
    rows, rows_logit = interval_rows(pp), interval_rows(borough)
    london_rows = interval_rows(pp_london)
    p_above = (borough > london[:, None]).mean(axis=0)
    above = rows["q05"] > london_rows["q50"]
    below = rows["q95"] < london_rows["q50"]
    order = np.argsort(rows["mean"])

    fig, ax = plt.subplots(figsize=(8, 0.28 * len(boroughs) + 2.2))
    ax.axvspan(london_rows["q05"], london_rows["q95"], color=OKABE_ITO["grey"], alpha=0.18)
    ax.axvline(london_rows["q50"], color=OKABE_ITO["black"], linewidth=1)
    y = np.arange(len(boroughs))
    colours = np.where(above, OKABE_ITO["orange"], np.where(below, OKABE_ITO["blue"], OKABE_ITO["grey"]))
    for pos, i in enumerate(order):
        draw_intervals(ax, np.array([pos]), {k: v[i:i + 1] for k, v in rows.items()}, colours[i])
    ax.set_yticks(y, [boroughs[i] for i in order], fontsize=8)
    ax.set_xlabel(f"Change in the chance a resident would {outcome_label} (percentage points)\n"
                  f"at London's rate of {100 * base_rate:.0f}%; thick bar 50%, thin bar 90% interval")
    top, bottom = boroughs[order[-1]], boroughs[order[0]]
    n_diff = int(above.sum() + below.sum())
    ax.set_title(f"{label}: strongest in {top}, weakest in {bottom};\n"
                 f"{n_diff} of {len(boroughs)} boroughs clearly differ from London "
                 "(90% interval wholly above or below it)", loc="left", fontsize=11)
    ax.legend(handles=[
        Patch(color=OKABE_ITO["grey"], alpha=0.18, label="London, 90% interval"),
        Line2D([], [], color=OKABE_ITO["black"], linewidth=1, label="London"),
        Line2D([], [], color=OKABE_ITO["orange"], linewidth=4, label="clearly above London"),
        Line2D([], [], color=OKABE_ITO["blue"], linewidth=4, label="clearly below London"),
        Line2D([], [], color=OKABE_ITO["grey"], linewidth=4, label="cannot be told apart"),
    ], loc="lower right", frameon=True, framealpha=0.9, fontsize=8)
    ax.grid(axis="x", alpha=0.3)

    numbers = pd.DataFrame({
        "borough": boroughs, "driver": driver,
        **{f"pp_{k}": v for k, v in rows.items()},
        **{f"logit_{k}": v for k, v in rows_logit.items()},
        "prob_above_london": p_above,
        "mark": np.where(above, "above London", np.where(below, "below London", "not distinguishable")),
        "base_rate": base_rate,
    }).iloc[order[::-1]].reset_index(drop=True)
    return PlotResult(fig, numbers)
