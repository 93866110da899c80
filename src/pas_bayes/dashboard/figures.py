"""Figures of a dashboard run, each with the CSV of its numbers (written by ``figures.write_figures``).

* ``borough_trends``: every borough's rolling-year rate with 50% / 90% bands over
  the published points (held-out quarters marked);
* ``london_check``: the London trend implied by the borough fit against the
  published London series it never saw;
* ``latest_change``: each borough's change over the latest year, coloured by
  the probability that it fell;
* ``driver_associations``: between-borough and over-time associations of the
  drivers with the outcome, in points per SD;
* ``coverage``: nominal vs observed coverage of predictive intervals.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.dashboard.summaries import LONDON_CHECK, DashboardSummary, measure_label, outcome_label
from pas_bayes.plots._style import OKABE_ITO, PlotResult, percent

FELL = 0.9


def plot_borough_trends(table: pd.DataFrame, change: pd.DataFrame, outcome: str) -> PlotResult:
    """Small multiples: one panel per borough, bands of the rate, published points."""
    boroughs = [a for a in table["area"].unique() if a != "London"]
    n_col = 8
    n_row = int(np.ceil(len(boroughs) / n_col))
    fig, axes = plt.subplots(n_row, n_col, figsize=(2.1 * n_col, 1.9 * n_row + 0.8), sharex=True, sharey=True,
                             squeeze=False)
    london = table[table["area"] == "London"]
    x_all = np.arange(len(london))
    p_lower = change.set_index("area")["p_lower"]
    for ax, name in zip(axes.flat, boroughs, strict=False):
        t = table[table["area"] == name]
        x = np.arange(len(t))
        ax.plot(x_all, 100 * london["q50"], color=OKABE_ITO["grey"], linewidth=0.8)
        ax.fill_between(x, 100 * t["q05"], 100 * t["q95"], color=OKABE_ITO["blue"], alpha=0.25, linewidth=0)
        ax.fill_between(x, 100 * t["q25"], 100 * t["q75"], color=OKABE_ITO["blue"], alpha=0.45, linewidth=0)
        fit = t["fitted"].to_numpy(bool)
        ax.plot(x[fit], 100 * t["published"][fit], ".", color=OKABE_ITO["black"], markersize=2.5)
        ax.plot(x[~fit], 100 * t["published"][~fit], "D", color=OKABE_ITO["vermillion"], markersize=2.5)
        fell = p_lower.get(name, 0.0) > FELL
        ax.set_title(f"{name}{' (fell)' if fell else ''}", fontsize=7.5, loc="left",
                     color=OKABE_ITO["vermillion"] if fell else "black")
        ax.tick_params(labelsize=6.5)
        ax.grid(alpha=0.25)
    for ax in list(axes.flat)[len(boroughs):]:
        ax.axis("off")
    quarters = london["quarter"].tolist()
    ticks = [i for i, q in enumerate(quarters) if q.endswith("Q4")][::2]
    for ax in axes[-1]:
        ax.set_xticks(ticks, [quarters[i][:4] for i in ticks])
    n_fell = int((change[change["area"] != "London"]["p_lower"] > FELL).sum())
    latest, earlier = change["latest"].iloc[0], change["earlier"].iloc[0]
    fig.suptitle(f"Share who {outcome_label(outcome)} (%), rolling year: {n_fell} of {len(boroughs)} boroughs "
                 f"very likely fell from {earlier} to {latest} (probability over {FELL:.0%})\n"
                 "Bands: 50% and 90% credible intervals of the borough's true rate; dots: published values; "
                 "diamonds: quarters held out of the fit; grey: London", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return PlotResult(fig, table)


def plot_london_check(table: pd.DataFrame, coverage90: float | None, outcome: str) -> PlotResult:
    """London's fitted trend and predictive band over the published London values."""
    t = table[table["area"] == "London"].reset_index(drop=True)
    x = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.fill_between(x, 100 * t["pred_q05"], 100 * t["pred_q95"], color=OKABE_ITO["sky"], alpha=0.3, linewidth=0,
                    label="90% interval for a published value")
    ax.fill_between(x, 100 * t["q05"], 100 * t["q95"], color=OKABE_ITO["blue"], alpha=0.45, linewidth=0,
                    label="90% interval of London's true rate")
    ax.plot(x, 100 * t["q50"], color=OKABE_ITO["blue"], linewidth=1.2)
    fit = t["fitted"].to_numpy(bool)
    ax.plot(x[fit], 100 * t["published"][fit], "o", color=OKABE_ITO["black"], markersize=3.5,
            label="published London (MPS) value, not used in the fit")
    if (~fit).any():
        ax.plot(x[~fit], 100 * t["published"][~fit], "D", color=OKABE_ITO["vermillion"], markersize=4,
                label="held-out quarter")
    ticks = [i for i, q in enumerate(t["quarter"]) if q.endswith("Q4")]
    ax.set_xticks(ticks, [t["quarter"][i][:4] for i in ticks])
    ax.set_ylabel(f"% who {outcome_label(outcome)}")
    covered = ("" if coverage90 is None else
               f":\n{coverage90:.0%} of the published values lie inside the 90% band of London's true rate")
    ax.set_title(f"The London trend rebuilt from the 32 boroughs follows MOPAC's published London series{covered}",
                 loc="left", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return PlotResult(fig, t)


def plot_latest_change(change: pd.DataFrame, outcome: str) -> PlotResult:
    """Each borough's change over the latest year (points) with its 90% interval and P(fell)."""
    t = change.iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.24 * len(t) + 1.6))
    y = np.arange(len(t))
    colours = [OKABE_ITO["vermillion"] if p > FELL else OKABE_ITO["blue"] if p < 1 - FELL else OKABE_ITO["grey"]
               for p in t["p_lower"]]
    ax.hlines(y, t["change_q05"], t["change_q95"], color=colours, linewidth=1.5)
    ax.scatter(t["change_q50"], y, color=colours, zorder=3, s=16)
    ax.axvline(0, color=OKABE_ITO["black"], linewidth=0.8)
    ax.set_yticks(y, [f"{a}  (P fell {percent(p)})" for a, p in zip(t["area"], t["p_lower"], strict=True)],
                  fontsize=7)
    ax.set_xlabel(f"Change in % who {outcome_label(outcome)}, {t['earlier'].iloc[0]} to {t['latest'].iloc[0]} "
                  "(percentage points, median and 90% interval)")
    n_fell = int((change[change["area"] != "London"]["p_lower"] > FELL).sum())
    n_rose = int((change[change["area"] != "London"]["p_lower"] < 1 - FELL).sum())
    ax.set_title(f"Over the latest year {n_fell} boroughs very likely fell and {n_rose} very likely rose "
                 f"(vermillion: P(fell) > {FELL:.0%}; blue: P(rose) > {FELL:.0%})", loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return PlotResult(fig, change)


def plot_associations(table: pd.DataFrame, outcome: str) -> PlotResult:
    """Between-borough and over-time associations of each driver, points per SD, with intervals."""
    t = table[(table["area"] == "London") & (table["scale"] == "pp")].reset_index(drop=True)
    drivers = list(dict.fromkeys(t["driver"]))
    fig, ax = plt.subplots(figsize=(8.5, 0.7 * len(drivers) + 2.0))
    for offset, (level, colour) in zip((0.15, -0.15), (("between boroughs", OKABE_ITO["orange"]),
                                                       ("within borough, over time", OKABE_ITO["blue"])),
                                       strict=True):
        rows = t[t["level"] == level].set_index("driver").reindex(drivers)
        y = np.arange(len(drivers)) + offset
        ax.hlines(y, rows["q05"], rows["q95"], color=colour, linewidth=1.5, label=level)
        ax.plot(rows["q50"], y, "o", color=colour, markersize=5)
    ax.axvline(0, color=OKABE_ITO["black"], linewidth=0.8)
    ax.set_yticks(np.arange(len(drivers)), [measure_label(d) for d in drivers])
    ax.set_xlabel(f"Points of % who {outcome_label(outcome)} per SD of the driver (median, 90% interval)")
    within = t[t["level"] == "within borough, over time"]
    best = within.loc[within["p_positive"].idxmax()] if len(within) else None
    headline = (f"Boroughs where '{measure_label(best['driver'])}' rose more than London's also rose more "
                f"(probability {percent(best['p_positive'])})" if best is not None and best["p_positive"] > 0.9
                else "No driver's change over time clearly goes with a borough's change in the outcome")
    ax.set_title(f"{headline}\nAssociations between published borough figures, not effects on individuals",
                 loc="left", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return PlotResult(fig, table)


def plot_coverage(table: pd.DataFrame) -> PlotResult:
    """Observed coverage of predictive intervals against their nominal level, per check."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color=OKABE_ITO["grey"], linewidth=0.8, label="nominal")
    colours = [OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["purple"]]
    for colour, (check, rows) in zip(colours, table.groupby("check", sort=False), strict=False):
        # Binomial 90% band of a perfectly calibrated interval with this many values.
        n = rows["n"].to_numpy()
        se = np.sqrt(rows["nominal"] * (1 - rows["nominal"]) / n)
        ax.errorbar(rows["nominal"], rows["empirical"], yerr=1.645 * se, fmt="o-", color=colour, capsize=2,
                    label=f"{check} (n = {n[0]})")
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0.2, 1.02)
    ax.set_xlabel("Nominal level of the predictive interval")
    ax.set_ylabel("Share of published values inside it")
    # The headline reads only checks with enough values to say anything (a 4-quarter London
    # series cannot); it says which way the intervals err rather than asserting calibration.
    big = table[table["n"] >= 30]
    excess = float((big["empirical"] - big["nominal"]).mean()) if len(big) else float("nan")
    if np.isnan(excess):
        verdict = "Too few values to judge the intervals' coverage"
    elif excess > 0.05:
        verdict = f"Intervals are conservative: they cover {100 * excess:.0f} points more than nominal on average"
    elif excess < -0.05:
        verdict = f"Intervals are too narrow: they cover {100 * -excess:.0f} points less than nominal on average"
    else:
        verdict = "Intervals cover published values at about their nominal rate"
    ax.set_title(f"{verdict}\n(checks with at least 30 values; bars: 90% range for calibrated intervals)",
                 loc="left", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return PlotResult(fig, table)


def dashboard_figures(summary: DashboardSummary) -> dict[str, PlotResult]:
    """Every dashboard figure of a run, by file stem, from its summaries (computed once)."""
    outcome, cover = summary.post.outcome, summary.cover
    london90 = cover[(cover["check"] == LONDON_CHECK) & (cover["nominal"] == 0.9)]
    out = {
        "borough_trends": plot_borough_trends(summary.trends, summary.change, outcome),
        "london_check": plot_london_check(summary.trends,
                                          float(london90["empirical"].iloc[0]) if len(london90) else None, outcome),
        "latest_change": plot_latest_change(summary.change, outcome),
    }
    if len(summary.assoc):
        out["driver_associations"] = plot_associations(summary.assoc, outcome)
    if len(cover):
        out["coverage"] = plot_coverage(cover)
    return out
