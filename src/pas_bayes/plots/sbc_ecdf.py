"""Simulation-based calibration: the ECDF difference of each quantity's ranks, with its simultaneous band."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.calibration import BAND_PROB, ecdf_band, pit_values
from pas_bayes.plots._style import OKABE_ITO, PlotResult


def plot_sbc_ecdf(ranks: pd.DataFrame, summary: pd.DataFrame, prob: float = BAND_PROB) -> PlotResult:
    """One panel per ranked quantity: ECDF of the scaled ranks minus the uniform CDF.

    A calibrated model's line stays inside the grey band (simultaneous ``prob``
    band: with probability ``prob`` a uniform sample's whole line lies inside).
    Lines that leave it are drawn in vermillion and named in the title.

    Parameters
    ----------
    ranks
        :func:`pas_bayes.calibration.rank_table` rows.
    summary
        :func:`pas_bayes.calibration.sbc_summary` of the same ranks.

    Returns
    -------
    PlotResult
        The figure; per quantity and evaluation point the ECDF difference and the band.
    """
    quantities = list(summary["quantity"])
    failing = list(summary.loc[summary["verdict"] == "FAIL", "quantity"])
    n_cols = 4
    n_rows = int(np.ceil(len(quantities) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 2.3 * n_rows + 1), sharex=True, sharey=True,
                             squeeze=False)
    numbers = []
    for i, name in enumerate(quantities):
        ax = axes.flat[i]
        group = ranks[ranks["quantity"] == name]
        pit = np.sort(pit_values(group["rank"].to_numpy(), int(group["n_ranks"].iloc[0]), seed=i))
        x, lower, upper = ecdf_band(len(pit), prob)
        diff = np.searchsorted(pit, x, side="right") / len(pit) - x
        bad = name in failing
        ax.fill_between(x, lower - x, upper - x, step="mid", color=OKABE_ITO["grey"], alpha=0.35, linewidth=0)
        ax.step(x, diff, where="mid", color=OKABE_ITO["vermillion" if bad else "blue"], linewidth=1.3)
        ax.axhline(0, color=OKABE_ITO["black"], linewidth=0.6)
        ax.set_title(name, fontsize=8, color=OKABE_ITO["vermillion"] if bad else "black")
        ax.tick_params(labelsize=7)
        numbers.append(pd.DataFrame({"quantity": name, "scaled_rank": x, "ecdf_minus_uniform": diff,
                                     "band_lower": lower - x, "band_upper": upper - x}))
    for ax in axes.flat[len(quantities):]:
        ax.set_visible(False)
    n_sims = int(summary["simulations"].max()) if len(summary) else 0
    headline = (f"Ranks of all {len(quantities)} quantities are consistent with calibration"
                if not failing else
                f"{len(failing)} of {len(quantities)} quantities leave their band: {', '.join(failing[:4])}"
                + (" ..." if len(failing) > 4 else ""))
    fig.suptitle(f"{headline}\nSimulation-based calibration over {n_sims} simulations: ECDF of scaled ranks minus "
                 f"uniform, grey = simultaneous {prob:.0%} band", x=0.01, ha="left", fontsize=10)
    fig.supxlabel("Scaled rank of the true value among the posterior draws", fontsize=9)
    fig.supylabel("ECDF difference", fontsize=9)
    fig.tight_layout()
    return PlotResult(fig, pd.concat(numbers, ignore_index=True) if numbers else pd.DataFrame())
