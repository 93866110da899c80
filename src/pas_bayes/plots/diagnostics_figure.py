"""Diagnostics overview: R-hat and ESS of every parameter, and rank plots of the worst ones."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from pas_bayes.diagnostics import ESS_MIN, RHAT_MAX, DiagnosticsReport
from pas_bayes.plots._style import OKABE_ITO, PlotResult

_CHAIN_COLOURS = [OKABE_ITO[c] for c in ("blue", "orange", "green", "purple", "sky", "vermillion")]


def plot_diagnostics(idata: xr.DataTree, report: DiagnosticsReport, *, n_worst: int = 4,
                     bins: int = 20) -> PlotResult:
    """Histograms of R-hat and bulk ESS over all parameters, with thresholds, and rank plots.

    A rank plot pools the draws of all chains, ranks them, and shows each
    chain's histogram of ranks: with good mixing every chain is flat around
    the dashed line; a chain above or below it in part of the range has not
    explored the same distribution. The parameters shown are those with the
    highest R-hat.

    Returns
    -------
    PlotResult
        The figure; the numbers are the rank-histogram counts of the parameters
        shown plus one row per threshold check.
    """
    per = report.per_parameter
    # Half the panels for the highest R-hat, half for the lowest bulk ESS (often a group SD).
    worst = pd.concat([per.nlargest(n_worst - n_worst // 2, "r_hat"), per.nsmallest(n_worst, "ess_bulk")])
    worst = worst.drop_duplicates("parameter").head(n_worst)
    fig = plt.figure(figsize=(11, 3.2 + 2.4 * int(np.ceil(n_worst / 2))))
    grid = fig.add_gridspec(1 + int(np.ceil(n_worst / 2)), 2, hspace=0.6, wspace=0.25)

    ax = fig.add_subplot(grid[0, 0])
    ax.hist(per["r_hat"], bins=40, color=OKABE_ITO["blue"])
    ax.axvline(RHAT_MAX, color=OKABE_ITO["vermillion"], linestyle="--", label=f"threshold {RHAT_MAX}")
    n_bad = int((per["r_hat"] >= RHAT_MAX).sum())
    ax.set_title(f"R-hat: {n_bad} of {len(per)} parameters at or above {RHAT_MAX}", fontsize=10, loc="left")
    ax.set_xlabel("split R-hat (rank-normalised)")
    ax.legend(frameon=False, fontsize=8)

    ax = fig.add_subplot(grid[0, 1])
    ess = per[["ess_bulk", "ess_tail"]].clip(lower=1)
    edges = np.geomspace(ess.min().min(), ess.max().max() * 1.01, 40)
    ax.hist(ess["ess_bulk"], bins=edges, color=OKABE_ITO["blue"], alpha=0.7, label="bulk")
    ax.hist(ess["ess_tail"], bins=edges, color=OKABE_ITO["orange"], alpha=0.6, label="tail")
    ax.set_xscale("log")
    ax.axvline(ESS_MIN, color=OKABE_ITO["vermillion"], linestyle="--", label=f"threshold {ESS_MIN}")
    n_low = int((ess.min(axis=1) < ESS_MIN).sum())
    ax.set_title(f"Effective sample size: {n_low} parameters below {ESS_MIN}", fontsize=10, loc="left")
    ax.set_xlabel("ESS (log scale)")
    ax.legend(frameon=False, fontsize=8)

    rows = []
    for k, record in enumerate(worst.itertuples(index=False)):
        ax = fig.add_subplot(grid[1 + k // 2, k % 2])
        values = idata["posterior"][record.variable].sel(record.coords).values  # (chain, draw)
        ranks = rankdata(values.reshape(-1)).reshape(values.shape)
        edges_r = np.linspace(0, ranks.size, bins + 1)
        expected = values.shape[1] / bins
        for c in range(values.shape[0]):
            counts, _ = np.histogram(ranks[c], bins=edges_r)
            ax.stairs(counts, np.arange(bins + 1), color=_CHAIN_COLOURS[c % len(_CHAIN_COLOURS)],
                      label=f"chain {c}", linewidth=1.3)
            rows += [{"kind": "rank_histogram", "parameter": record.parameter, "chain": c, "bin": b,
                      "count": int(n), "expected": expected} for b, n in enumerate(counts)]
        ax.axhline(expected, color=OKABE_ITO["black"], linestyle="--", linewidth=0.8)
        ax.set_ylim(0, expected * 2)
        ax.set_title(f"Rank plot, {record.parameter}\n(R-hat {record.r_hat:.3f}, bulk ESS {record.ess_bulk:.0f})",
                     fontsize=9, loc="left")
        ax.set_xticks([])
        if k == 0:
            ax.legend(frameon=False, fontsize=7, ncol=4)
    verdict = "All convergence checks pass" if report.passed else "Some convergence checks FAIL"
    fig.suptitle(f"{verdict}: chains agree when every rank histogram is flat", x=0.06, ha="left",
                 fontsize=12)
    checks = report.table().assign(kind="check")
    numbers = pd.concat([checks, pd.DataFrame(rows)], ignore_index=True)
    return PlotResult(fig, numbers)
