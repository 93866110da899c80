"""London driver importance with intervals: the posterior counterpart of MOPAC's driver diagram."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.plots._style import OKABE_ITO, PlotResult, draw_intervals, interval_rows, percent


def plot_london_effects(ame_london: np.ndarray, *, drivers: list[str], labels: Mapping[str, str],
                        outcome_phrase: str, logit_draws: np.ndarray | None = None) -> PlotResult:
    """Dot-and-interval chart of each driver's London average marginal effect, largest first.

    Parameters
    ----------
    ame_london
        (S, D) draws of London's average marginal effect of each driver, in points.
    drivers, labels
        Driver names in column order, and the labels a policy reader knows.
    outcome_phrase
        What a positive answer means ("say the local police do a good job").
    logit_draws
        (S', D) draws of the London log-odds effects, added to the CSV when given.

    Returns
    -------
    PlotResult
        The figure; per driver the pp summaries, the probability the effect is
        positive and the probability it is the strongest driver.
    """
    rows = interval_rows(ame_london)
    order = np.argsort(rows["mean"])
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(drivers) + 1.8))
    y = np.arange(len(drivers))
    draw_intervals(ax, y, {k: v[order] for k, v in rows.items()}, OKABE_ITO["blue"], label=True)
    ax.axvline(0, color=OKABE_ITO["grey"], linewidth=0.8)
    ax.set_yticks(y, [labels.get(drivers[i], drivers[i]) for i in order])
    ax.set_xlabel(f"Change in the share of residents who {outcome_phrase} (percentage points),\n"
                  "averaged over London's residents: +1 SD in a perception score, or yes vs no for "
                  "patrol visibility and feeling informed")
    top = order[-1]
    strongest = (ame_london.argmax(axis=1)[:, None] == np.arange(len(drivers))).mean(axis=0)
    ax.set_title(f"{labels.get(drivers[top], drivers[top])} is the strongest driver: "
                 f"{rows['q50'][top]:+.0f} points (90% interval {rows['q05'][top]:.0f} to "
                 f"{rows['q95'][top]:.0f});\nprobability it is the strongest: {percent(strongest[top])}",
                 loc="left", fontsize=11)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.grid(axis="x", alpha=0.3)

    numbers = pd.DataFrame({
        "driver": drivers,
        "label": [labels.get(d, d) for d in drivers],
        **{f"pp_{k}": v for k, v in rows.items()},
        "prob_positive": (ame_london > 0).mean(axis=0),
        "prob_strongest": strongest,
    })
    if logit_draws is not None:
        numbers = numbers.assign(**{f"logit_{k}": v for k, v in interval_rows(logit_draws).items()})
    return PlotResult(fig, numbers.iloc[order[::-1]].reset_index(drop=True))
