"""The policy report: one self-contained HTML file, every figure embedded.

Every sentence of the key findings is written from the run's numbers
(:class:`pas_bayes.summaries.RunSummary`), every number comes with its 90%
interval, and a "can these numbers be trusted" section shows the diagnostics,
the posterior predictive check and the exclusions in plain words.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes import __version__
from pas_bayes.atomic import atomic_write, atomic_write_text, refuse_existing
from pas_bayes.effects import effect_correlations
from pas_bayes.errors import QueryError
from pas_bayes.figures import MAP_DRIVERS, build_figures
from pas_bayes.fit import approximation
from pas_bayes.plots._style import PlotResult, percent
from pas_bayes.summaries import BINARY_PHRASES, RunSummary

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #1a1a1a; line-height: 1.5; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #0072B2; padding-bottom: 0.2em; }
.meta { color: #555; } .banner { background: #FFF4D6; border-left: 5px solid #E69F00; padding: 0.6em 1em; }
.findings li { margin-bottom: 0.5em; } figure { margin: 1.5em 0; } img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; } table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; } .pass { color: #009E73; font-weight: bold; }
.fail { color: #D55E00; font-weight: bold; }
@media print { body { max-width: none; } figure { break-inside: avoid; } }
"""

# Counts the figures the browser actually decoded, so a headless test can see they display.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  document.body.dataset.imagesLoaded = imgs.filter(function (i) { return i.naturalWidth > 0; }).length;
  document.body.dataset.imagesTotal = imgs.length;
});
"""


def _figure(result: PlotResult, caption: str) -> str:
    data = base64.b64encode(result.png_bytes()).decode("ascii")
    plt.close(result.figure)
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(frame: pd.DataFrame, digits: int = 1) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0, escape=True)


def _driver_sentence(summary: RunSummary, driver: str) -> str:
    if driver in BINARY_PHRASES:
        return BINARY_PHRASES[driver]
    return f"a one-standard-deviation better view of {summary.label(driver).lower()}"


def key_findings(summary: RunSummary, drivers: tuple[str, ...]) -> list[str]:
    """Plain-English findings written from the numbers, each with its uncertainty."""
    post, phrase = summary.post, summary.outcome_phrase
    london = summary.ame["london"][:, 0, :]
    means = london.mean(axis=0)
    top = int(np.argmax(means))
    p_top = float((london.argmax(axis=1) == top).mean())
    lo, hi = np.quantile(london[:, top], [0.05, 0.95])
    order = np.argsort(-means)
    out = [f"Across London, {summary.label(post.drivers[top])} matters most: "
           f"{_driver_sentence(summary, post.drivers[top])} goes with a {means[top]:.0f}-point higher chance that a "
           f"resident would {phrase} (90% interval {lo:.0f} to {hi:.0f}); the probability that it is the "
           f"strongest of the {len(post.drivers)} drivers is {percent(p_top)}. In order: "
           + ", ".join(f"{summary.label(post.drivers[i])} ({means[i]:+.0f})" for i in order) + "."]
    ranks = summary.borough_rankings
    for driver in drivers:
        table = ranks[ranks["driver"] == driver]
        london_d = summary.driver_ame(driver)[0]
        l_mean = float(london_d.mean())
        clear = table[(table["q05"] > float(np.median(london_d)))].sort_values("mean", ascending=False)
        if clear.empty:
            likely = table.sort_values("prob_top5", ascending=False).head(3)
            out.append(f"No borough's effect of {summary.label(driver).lower()} is clearly above London's "
                       f"({l_mean:.0f} points; no borough's 90% interval lies wholly above it). The boroughs most "
                       "likely to be among the five where it matters most are "
                       + ", ".join(f"{r.borough} ({r.mean:.0f} points, 90% interval {r.q05:.0f} to {r.q95:.0f}; "
                                   f"probability {percent(r.prob_top5)})" for r in likely.itertuples(index=False))
                       + ".")
            continue
        for row in clear.head(3).itertuples(index=False):
            out.append(f"In {row.borough}, {_driver_sentence(summary, driver)} is associated with a "
                       f"{row.mean:.0f}-point higher chance that a resident would {phrase} (90% interval "
                       f"{row.q05:.0f} to {row.q95:.0f}), against {l_mean:.0f} points across London; probability "
                       f"it exceeds London's effect {percent(row.prob_above_london)}, of being in the top five "
                       f"{percent(row.prob_top5)} (rank {row.rank_q05} to {row.rank_q95}).")
        below = table[table["q95"] < float(np.median(london_d))]
        if not below.empty:
            out.append(f"{summary.label(driver)} matters clearly less than across London in "
                       f"{', '.join(below['borough'])}.")
    gaps = summary.gaps
    if not gaps.empty:
        worst = gaps.sort_values("q50").iloc[0]
        out.append(f"After accounting for all the drivers, {worst['level']} residents remain {abs(worst['q50']):.0f} "
                   f"points less likely to {phrase} than {worst['reference']} residents (90% interval "
                   f"{abs(worst['q95']):.0f} to {abs(worst['q05']):.0f}; probability of a real gap "
                   f"{percent(worst['prob_below_reference'])}).")
    return out


def _trust_section(summary: RunSummary) -> str:
    report = summary.diagnostics
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{c.value:.3g}</td><td>{html.escape(c.threshold)}</td>"
        f"<td class='{'pass' if c.passed else 'fail'}'>{c.status}</td>"
        f"<td>{'' if c.passed else html.escape(c.advice)}</td></tr>" for c in report.checks)
    verdict = ("The sampler converged: every check passes, so the intervals below are reliable summaries of "
               "the model." if report.passed else
               "<b>Some convergence checks fail: treat every number in this report as provisional</b> until "
               "the run is repeated with the advice below.")
    boroughs = summary.ppc[summary.ppc["group"] == "borough"]
    outside = int(((boroughs["observed_pct"] < boroughs["replicated_q05"])
                   | (boroughs["observed_pct"] > boroughs["replicated_q95"])).sum())
    return (f"<p>{verdict}</p><table><tr><th>check</th><th>value</th><th>needs</th><th>status</th>"
            f"<th>what to do</th></tr>{rows}</table>"
            f"<p>Does the model reproduce the data? In {outside} of {len(boroughs)} boroughs the observed share "
            f"falls outside the 90% range of surveys replicated from the model (about "
            f"{0.1 * len(boroughs):.0f} expected by chance).</p>")


def _data_notes(summary: RunSummary) -> str:
    run = summary.run
    prov = run.provenance
    frame = run.wards
    per_borough = frame.groupby("borough")["respondents"].sum() if not frame.empty else pd.Series(dtype=int)
    notes = [
        f"Survey file: <code>{html.escape(Path(prov['data_file']).name)}</code> (SHA-256 "
        f"<code>{prov['data_sha256'][:12]}</code>), {prov['data_rows']:,} rows; {prov['rows_modelled']:,} "
        f"respondents modelled in {len(summary.post.boroughs)} boroughs and {len(summary.post.wards)} wards.",
    ]
    if not per_borough.empty:
        notes.append(f"Respondents per borough: {per_borough.min()} to {per_borough.max()}; per ward: "
                     f"{frame['respondents'].min()} to {frame['respondents'].max()} "
                     f"(median {frame['respondents'].median():.0f}).")
    notes.append(f"Model <code>{html.escape(run.spec.name)}</code>: outcome {html.escape(run.spec.outcome)}, "
                 f"{prov.get('chains_kept', prov['sampler']['chains'])} chains x {prov['sampler']['draws']} draws "
                 f"({prov['sampler']['name']}, "
                 f"seed {prov['seed']}); pas_bayes {html.escape(prov['versions'].get('pas_bayes', ''))}, "
                 f"PyMC {html.escape(prov['versions'].get('pymc', ''))}.")
    exclusions = run.exclusions.rename(columns={"reason": "rows left out, by first reason", "rows": "rows"})
    return "<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>" + _table(exclusions, 0)


def build_report(summary: RunSummary, *, drivers: tuple[str, ...] = MAP_DRIVERS,
                 boundaries: str | Path | None = None) -> str:
    """The whole report as one HTML string (drivers not in the run are left out)."""
    drivers = tuple(d for d in drivers if d in summary.post.drivers) or (summary.post.drivers[0],)
    # Every figure is open until embedded (each is closed right after): about 16 at once.
    with plt.rc_context({"figure.max_open_warning": 0}):
        figures = build_figures(summary, drivers=drivers, boundaries=boundaries)
    run = summary.run
    outcome = run.spec.codebook().outcomes[run.spec.outcome]
    synthetic = "synthetic" in Path(run.provenance["data_file"]).name.lower()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>What drives {html.escape(run.spec.outcome)} in the London police</title>",
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>",
        f"<h1>What drives {html.escape(run.spec.outcome)} in the police, borough by borough</h1>",
        f"<p class='meta'>{html.escape(outcome.label)} ({html.escape(outcome.item)}). Report made "
        f"{datetime.now(UTC):%d %B %Y} by pas_bayes {__version__} from run "
        f"<code>{html.escape(run.path.name)}</code>.</p>",
    ]
    how = approximation(run.idata)
    if how:
        parts.append("<p class='banner'><b>APPROXIMATE PREVIEW, not for publication.</b> These numbers come "
                     f"from {html.escape(how)}. Such approximations usually understate uncertainty; refit "
                     "with the default sampler (NUTS) before using any of them.</p>")
    if synthetic:
        parts.append("<p class='banner'>These results come from a <b>synthetic</b> survey made by pas_bayes to test "
                     "the method, not from real Public Attitude Survey responses.</p>")
    parts.append("<h2>Key findings</h2><ul class='findings'>"
                 + "".join(f"<li>{html.escape(s)}</li>" for s in key_findings(summary, drivers)) + "</ul>")
    parts.append("<p>Every figure is an association estimated from the survey, with its 90% interval: the range "
                 "that holds the effect with 90% probability under the model. Points are percentage points of "
                 "the share of residents.</p>")
    parts.append("<h2>Which drivers matter most in London</h2>")
    parts.append(_figure(figures["london_driver_effects"], "Each driver's effect across London, with intervals."))
    for driver in drivers:
        parts.append(f"<h2>Where {html.escape(summary.label(driver).lower())} matters most</h2>")
        parts.append(_figure(figures[f"borough_map_{driver}"],
                             f"{summary.label(driver)}: borough map (washed-out tiles cannot be told apart from "
                             "London)."))
        if f"borough_choropleth_{driver}" in figures:
            parts.append(_figure(figures[f"borough_choropleth_{driver}"], "The same on borough boundaries."))
        parts.append(_figure(figures[f"borough_slopes_{driver}"], f"{summary.label(driver)}: every borough, ranked."))
        table = summary.borough_rankings.query("driver == @driver").head(10)[
            ["borough", "mean", "q05", "q95", "prob_above_london", "prob_top5", "rank_q05", "rank_q95"]]
        table = table.assign(prob_above_london=100 * table["prob_above_london"], prob_top5=100 * table["prob_top5"])
        parts.append("<p>The ten boroughs with the best average rank. Probabilities in %; a rank interval "
                     "from 1 to 12 means the data cannot place the borough more precisely than that.</p>")
        parts.append(_table(table.rename(columns={
            "mean": "points", "q05": "90% low", "q95": "90% high", "prob_above_london": "P(above London)",
            "prob_top5": "P(top five)", "rank_q05": "rank from", "rank_q95": "rank to"}), 0))
        parts.append(_figure(figures[f"ward_extremes_{driver}"], f"{summary.label(driver)}: wards across London."))
    ward_keys = [k for k in figures if k.startswith("wards_")]
    if ward_keys:
        parts.append("<h2>Wards within a borough</h2>")
        parts += [_figure(figures[k], "Wards of one borough against the borough's own effect.") for k in ward_keys]
    correlations = effect_correlations(summary.run.idata)
    if not correlations.empty:
        parts.append("<h2>Do places where a driver matters more start higher or lower?</h2>")
        parts.append("<p>Correlations between each place's starting level (intercept) and its driver effects, "
                     "and between driver effects, with 90% intervals. With 32 boroughs these are uncertain: "
                     "an interval that spans 0 means the data cannot tell.</p>")
        shown = correlations.assign(order=correlations["q50"].abs()).sort_values("order", ascending=False)
        parts.append(_table(shown.head(12)[["level", "first", "second", "q50", "q05", "q95", "prob_positive"]]
                            .rename(columns={"q50": "correlation", "q05": "90% low", "q95": "90% high",
                                             "prob_positive": "P(> 0)"}), 2))
    if "driver_effects_by_group" in figures:
        parts.append("<h2>Where a driver matters more: by year or group</h2>")
        parts.append(_figure(figures["driver_effects_by_group"],
                             "Average effect in points among each year's or group's respondents."))
    parts.append("<h2>Which groups remain less positive</h2>")
    if "demographic_gaps" in figures:
        parts.append(_figure(figures["demographic_gaps"], "Gaps after accounting for the drivers."))
        gaps = summary.gaps[["demographic", "level", "reference", "respondents", "q50", "q05", "q95",
                             "prob_below_reference"]]
        parts.append(_table(gaps.assign(prob_below_reference=100 * gaps["prob_below_reference"]).rename(
            columns={"q50": "gap (points)", "q05": "90% low", "q95": "90% high",
                     "prob_below_reference": "P(lower than reference) %"}), 1))
    else:
        parts.append("<p>This model has no demographic effects (its spec lists no demographics), so it "
                     "cannot say which groups remain less positive.</p>")
    parts.append("<h2>Can these numbers be trusted?</h2>")
    parts.append(_trust_section(summary))
    parts.append(_figure(figures["ppc_by_borough"], "Observed share against replicated surveys, by borough."))
    if "ppc_by_demographic" in figures:
        parts.append(_figure(figures["ppc_by_demographic"],
                             "Observed share against replicated surveys, by demographic group."))
    parts.append(_figure(figures["diagnostics"], "Convergence diagnostics."))
    parts.append("<h2>Data notes</h2>")
    parts.append(_data_notes(summary))
    spec = summary.run.spec
    family = ("cumulative-logit (ordinal) regression of the full answer scale" if spec.family == "cumulative"
              else "logistic regression of the answer")
    options = [text for flag, text in (
        (spec.correlated, f"correlated (LKJ) intercepts and slopes by {' and '.join(spec.correlated)}"),
        (spec.demographic_slopes, "driver effects varying by " + ", ".join(spec.demographic_slopes)),
        (summary.post.years, f"{len(summary.post.years)} financial years with year effects"),
        (spec.weights != "none", f"survey weights ({spec.weights})")) if flag]
    parts.append(f"<h2>Method</h2><p>A hierarchical Bayesian {family} on {len(spec.drivers)} drivers, "
                 "whose effects vary by borough and by ward within borough, with random effects for "
                 f"{', '.join(spec.demographics) or 'no demographics'}"
                 f"{'; ' + '; '.join(options) if options else ''}. Composite drivers are standardised "
                 "(effects per standard deviation); patrol visibility and feeling informed are yes/no. "
                 "Effects in points are average marginal effects over the residents of each place. "
                 "Fitted with PyMC and nutpie; checked with ArviZ.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(summary: RunSummary, out: str | Path, *, force: bool = False,
                 boundaries: str | Path | None = None) -> Path:
    """Write the report atomically; an existing file is replaced only with ``force``."""
    return atomic_write_text(out, build_report(summary, boundaries=boundaries), force=force)


def chromium_flags(browser: str, profile: str | Path) -> list[str]:
    """Headless Chromium that touches no network (the report needs none)."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=5000"]


def export_pdf(report: str | Path, pdf: str | Path, *, force: bool = False) -> Path:
    """Print the HTML report to PDF with headless Chromium (Debian's ``chromium``).

    Raises
    ------
    QueryError
        When no Chromium is installed, or it fails to write the PDF.
    """
    import shutil
    import subprocess
    import tempfile

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise QueryError("no Chromium found for the PDF export. What to do: install Debian's chromium "
                         "(apt-get install chromium), or print report.html from any browser")
    pdf = Path(pdf)
    refuse_existing([pdf], force=force)
    with tempfile.TemporaryDirectory() as profile:
        def render(tmp: str) -> None:
            done = subprocess.run([*chromium_flags(browser, profile), f"--print-to-pdf={tmp}",
                                   "--no-pdf-header-footer", Path(report).resolve().as_uri()],
                                  capture_output=True, text=True, timeout=300)
            if not Path(tmp).stat().st_size:
                raise QueryError(f"Chromium wrote no PDF: {done.stderr[-500:]}")
        return atomic_write(pdf, render, force=True)
