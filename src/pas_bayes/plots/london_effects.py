"""London driver effects with intervals: the posterior counterpart of MOPAC's driver diagram."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from pas_bayes.effects import draws
from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals, interval_rows, to_percentage_points


def plot_london_effects(idata: xr.DataTree, *, labels: Mapping[str, str], outcome_label: str,
                        base_rate: float) -> PlotResult:
    """Dot-and-interval chart of each driver's London effect, largest first.

    Parameters
    ----------
    idata
        A fitted posterior.
    labels
        Driver name -> label a policy reader knows.
    outcome_label
        What a positive answer means ("say the local police do a good job").
    base_rate
        London share of positive answers; effects are shown as the change in
        that share, in percentage points, for a resident at this rate.

    Returns
    -------
    PlotResult
        The figure, and per driver the log-odds and percentage-point summaries.
    """
    beta = draws(idata, "beta")
    drivers = [str(d) for d in idata["posterior"]["driver"].values]
    pp = to_percentage_points(beta, base_rate)
    rows_pp, rows_logit = interval_rows(pp), interval_rows(beta)
    order = np.argsort(rows_pp["mean"])
    prob_positive = (beta > 0).mean(axis=0)

    fig, ax = plt.subplots(figsize=(8, 0.55 * len(drivers) + 1.8))
    y = np.arange(len(drivers))
    draw_intervals(ax, y, {k: v[order] for k, v in rows_pp.items()}, OKABE_ITO["blue"], label=True)
    ax.axvline(0, color=OKABE_ITO["grey"], linewidth=0.8)
    ax.set_yticks(y, [labels.get(drivers[i], drivers[i]) for i in order])
    ax.set_xlabel(f"Change in the chance a resident would {outcome_label} (percentage points)\n"
                  f"for +1 SD in a perception driver, or yes vs no for visibility and informed, "
                  f"at London's rate of {100 * base_rate:.0f}%")
    top = order[-1]
    # How sure we are that the top driver is the top one: the share of draws where it is largest.
    p_top = float((pp.argmax(axis=1) == top).mean())
    ax.set_title(f"{labels.get(drivers[top], drivers[top])} is the strongest driver: "
                 f"{rows_pp['q50'][top]:+.0f} points (90% interval {rows_pp['q05'][top]:.0f} to "
                 f"{rows_pp['q95'][top]:.0f});\nprobability it is the strongest: {100 * p_top:.0f}%",
                 loc="left", fontsize=11)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.grid(axis="x", alpha=0.3)

    numbers = pd.DataFrame({
        "driver": drivers,
        "label": [labels.get(d, d) for d in drivers],
        **{f"pp_{k}": v for k, v in rows_pp.items()},
        **{f"logit_{k}": v for k, v in rows_logit.items()},
        "prob_positive": prob_positive,
        "prob_strongest": (pp.argmax(axis=1)[:, None] == np.arange(len(drivers))).mean(axis=0),
        "base_rate": base_rate,
    }).iloc[order[::-1]].reset_index(drop=True)
    return PlotResult(fig, numbers)
