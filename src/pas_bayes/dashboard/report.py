"""One self-contained HTML report of a dashboard run, for policy readers.

Findings are written from the numbers: which boroughs' latest year is very
likely lower than the year before, how the London trend rebuilt from the
boroughs compares with the published one, how the drivers' movements go with
the outcome's (labelled as associations between aggregates), how well held-out
quarters were predicted, and whether the sampler converged.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from pas_bayes import __version__
from pas_bayes.atomic import atomic_write_text
from pas_bayes.dashboard.figures import FELL, dashboard_figures
from pas_bayes.dashboard.summaries import (
    HELDOUT_CHECK,
    LONDON_CHECK,
    RELATIVE_CHECK,
    measure_label,
    outcome_label,
    summarise_dashboard,
)
from pas_bayes.diagnostics import diagnose
from pas_bayes.fit import Run
from pas_bayes.plots._style import percent
from pas_bayes.report import CSS, SCRIPT, _figure, _table


def key_findings(run: Run, change: pd.DataFrame, cover: pd.DataFrame, assoc: pd.DataFrame,
                 claims: pd.DataFrame) -> list[str]:
    """Plain-language findings, each with its probability or interval."""
    phrase = outcome_label(run.spec.outcome)
    boroughs = change[change["area"] != "London"]
    london = change[change["area"] == "London"].iloc[0]
    latest, earlier = london["latest"], london["earlier"]
    out = [f"London: {100 * london['rate_latest']:.0f}% {phrase} in the year to {latest}, "
           f"{london['change_q50']:+.1f} points on the year to {earlier} (90% interval {london['change_q05']:+.1f} "
           f"to {london['change_q95']:+.1f}; probability of a fall {percent(london['p_lower'])})."]
    fell = boroughs[boroughs["p_lower"] > FELL]
    rose = boroughs[boroughs["p_lower"] < 1 - FELL]
    if len(fell):
        names = ", ".join(f"{r.area} ({r.change_q50:+.1f} points, P {percent(r.p_lower)})" for r in fell.itertuples())
        out.append(f"{len(fell)} of {len(boroughs)} boroughs very likely fell (probability over {FELL:.0%}): {names}.")
    else:
        top = boroughs.iloc[0]
        out.append(f"No borough's fall is clear (probability over {FELL:.0%}); the likeliest is {top['area']} "
                   f"({top['change_q50']:+.1f} points, P {percent(top['p_lower'])}). Year-on-year changes of "
                   "a few points are within what sampling ~400 residents a year produces.")
    if len(rose):
        out.append(f"{len(rose)} boroughs very likely rose: {', '.join(rose['area'])}.")
    lon = cover[(cover["check"] == LONDON_CHECK) & (cover["nominal"] == 0.9)]
    if len(lon):
        out.append(f"The London trend rebuilt from the boroughs (population-weighted) puts "
                   f"{lon['empirical'].iloc[0]:.0%} of MOPAC's published London values inside its 90% band; the "
                   "London series is not used in the fit, though it pools the same respondents.")
    for check, what in ((HELDOUT_CHECK, "borough values"), (RELATIVE_CHECK, "boroughs' gaps to London")):
        held = cover[(cover["check"] == check) & (cover["nominal"] == 0.9)]
        if len(held):
            out.append(f"Quarters held out of the fit: {held['empirical'].iloc[0]:.0%} of {held['n'].iloc[0]} "
                       f"{what} fell inside their 90% predictive intervals (given the quarters before them).")
    if len(claims):
        made = claims[claims["claim"] != "no claim"]
        if len(made):
            fell = made[made["claim"] == "fell"]
            base = float(claims["later_lower"].mean())
            out.append(f"Claims of a fall or rise at the end of the fit ({len(made)}) held in the following, unseen "
                       f"year in {int(made['holds'].sum())} of {len(made)} boroughs"
                       + (f" (falls: {int(fell['holds'].sum())} of {len(fell)}; for comparison, {base:.0%} of all "
                          "boroughs were lower a year later than a year before the claim, claim or not)"
                          if len(fell) else "") + ". A fall followed by a recovery counts as not holding.")
    within = assoc[(assoc["area"] == "London") & (assoc["scale"] == "pp")
                   & (assoc["level"] == "within borough, over time")]
    clear = within[(within["p_positive"] > 0.95) | (within["p_positive"] < 0.05)]
    for row in clear.itertuples():
        direction = "rose" if row.q50 > 0 else "fell"
        out.append(f"Boroughs where '{measure_label(row.driver)}' rose more than London's average {direction} more on "
                   f"this measure: {row.q50:+.1f} points per SD (90% interval {row.q05:+.1f} to {row.q95:+.1f}). "
                   "This is an association between published borough figures over time, not an effect on "
                   "individuals.")
    if len(within) and not len(clear):
        out.append("No single driver's change over time clearly goes with the outcome's change: the engagement "
                   "measures move together, so their separate shares cannot be told apart from these aggregates.")
    return out


def _diagnostics(run: Run) -> str:
    report = diagnose(run.idata)
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{c.value:.3g}</td><td>{html.escape(c.threshold)}</td>"
        f"<td class='{'pass' if c.passed else 'fail'}'>{'pass' if c.passed else 'FAIL'}</td>"
        f"<td>{html.escape(', '.join(c.worst)) if not c.passed else ''}</td>"
        f"<td>{'' if c.passed else html.escape(c.advice)}</td></tr>" for c in report.checks)
    verdict = ("Every convergence check passes." if report.passed else
               "<b>Some convergence checks fail: treat every number here as provisional.</b>")
    return (f"<p>{verdict}</p><table><tr><th>check</th><th>value</th><th>needs</th><th>status</th>"
            f"<th>worst</th><th>what to do</th></tr>{rows}</table>")


def build_dashboard_report(run: Run) -> str:
    """The report as one HTML string (figures embedded as PNG)."""
    summary = summarise_dashboard(run)
    change, cover, assoc, claims = summary.change, summary.cover, summary.assoc, summary.claims
    figures = dashboard_figures(summary)
    spec, prov = run.spec, run.provenance
    title = f"Borough trends in the share who {outcome_label(spec.outcome)}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>MOPAC Public Attitude Survey dashboard, {html.escape(prov['windows'][0])} to "
             f"{html.escape(prov['windows'][1])}, {prov['boroughs']} boroughs; file "
             f"{html.escape(Path(prov['data_file']).name)} (SHA-256 {prov['data_sha256'][:12]}); pas_bayes "
             f"{__version__}; run {html.escape(run.path.name)}.</p>"]
    if prov.get("held_out"):
        parts.append(f"<p class='banner'>The last {len(prov['held_out'])} quarters ({', '.join(prov['held_out'])}) "
                     "were held out of this fit to check its predictions; 'latest year' below means the last "
                     "fitted quarter.</p>")
    parts.append("<h2>Key findings</h2><ul class='findings'>")
    parts += [f"<li>{html.escape(f)}</li>" for f in key_findings(run, change, cover, assoc, claims)]
    parts.append("</ul>")
    parts.append("<h2>Is this borough's fall real or noise?</h2>")
    parts.append(_figure(figures["latest_change"], "Change over the latest year with its 90% interval."))
    parts.append(_table(change.assign(rate_latest=100 * change["rate_latest"], p_lower=100 * change["p_lower"])
                        .rename(columns={"rate_latest": "latest %", "change_q50": "change (points)",
                                         "change_q05": "90% low", "change_q95": "90% high",
                                         "p_lower": "P(lower) %"}), 1))
    parts.append(_figure(figures["borough_trends"], "Each borough's rolling-year rate with 50% and 90% bands."))
    if "driver_associations" in figures:
        parts.append("<h2>Do boroughs that improve on engagement also improve on this measure?</h2>")
        parts.append("<p>These are associations between published borough figures: between boroughs (are "
                     "boroughs with higher engagement scores higher on this measure?) and over time within a "
                     "borough (when a borough's engagement score moves more than London's, does this measure "
                     "move with it?). They are not effects on individual residents, and they do not show cause: "
                     "the respondent-level models of pas_bayes estimate individual-level driver effects.</p>")
        parts.append(_figure(figures["driver_associations"], "Associations, points per SD of the driver."))
        london_rows = assoc[(assoc["area"] == "London") & (assoc["scale"] == "pp")]
        parts.append(_table(london_rows[["level", "driver", "q50", "q05", "q95", "p_positive"]]
                            .assign(p_positive=100 * london_rows["p_positive"])
                            .rename(columns={"q50": "points per SD", "q05": "90% low", "q95": "90% high",
                                             "p_positive": "P(positive) %"}), 1))
    parts.append("<h2>Can these numbers be trusted?</h2>")
    parts.append(_diagnostics(run))
    parts.append(_figure(figures["london_check"], "London trend rebuilt from the boroughs vs published London."))
    if "coverage" in figures:
        parts.append(_figure(figures["coverage"], "Coverage of predictive intervals."))
        parts.append(_table(cover.assign(nominal=100 * cover["nominal"], empirical=100 * cover["empirical"]), 0))
    if len(claims):
        parts.append("<p>Claims checked against the year after the fit:</p>")
        parts.append(_table(claims.assign(p_lower=100 * claims["p_lower"]), 2))
    parts.append("<h2>Data notes</h2>")
    parts.append(_table(run.exclusions, 0))
    parts.append(f"<p>London series from {html.escape(prov.get('london_source', 'n/a'))}. "
                 + " ".join(html.escape(n) for n in prov.get("reader_notes", [])) + "</p>")
    parts.append("<h2>Method</h2><p>Each published value is the share over a rolling year of about "
                 f"{spec.n_window} residents a borough, so neighbouring quarters share three quarters of their "
                 "respondents. The model follows each borough's latent quarterly rate (London's random-walk "
                 "trend, the borough's level and its own random-walk movement around London's) and treats a "
                 "published value as the average of four quarterly samples: the overlap of rolling windows is "
                 "modelled exactly, not ignored, and a design effect per measure absorbs weighting and "
                 "clustering. Drivers are modelled the same way and enter as the borough's level "
                 "(between boroughs) and its movement (within borough), with slopes that vary by borough. "
                 "London is the population-weighted mean of the boroughs (Census 2021). Fitted with PyMC and "
                 "nutpie; checked with ArviZ.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_dashboard_report(run: Run, out: str | Path, *, force: bool = False) -> Path:
    """Write the dashboard report atomically; an existing file is replaced only with ``force``."""
    return atomic_write_text(out, build_dashboard_report(run), force=force)
