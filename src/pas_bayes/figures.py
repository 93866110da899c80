"""Every figure of a run, written to one folder: the set `pas-bayes plot` and the report use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pas_bayes.errors import QueryError
from pas_bayes.fit import approximation
from pas_bayes.geography import normalise_borough
from pas_bayes.plots import (
    plot_borough_choropleth,
    plot_borough_slopes,
    plot_borough_tile_map,
    plot_demographic_gaps,
    plot_diagnostics,
    plot_london_effects,
    plot_ppc_by_borough,
    plot_ward_effects,
    plot_ward_extremes,
)
from pas_bayes.plots._style import PlotResult
from pas_bayes.plots.group_effects import plot_group_effects
from pas_bayes.predictions import draws
from pas_bayes.summaries import RunSummary

MAP_DRIVERS = ("engagement", "visibility")


def ward_figure(summary: RunSummary, borough: str, driver: str) -> PlotResult:
    """The wards of ``borough`` for ``driver`` against their borough."""
    post = summary.post
    borough = normalise_borough(borough) or borough
    if borough not in post.boroughs:
        raise QueryError(f"borough {borough!r} is not in this run; use one of {post.boroughs}")
    if driver not in post.drivers:
        raise QueryError(f"driver {driver!r} is not in this run; it has {post.drivers}")
    b = post.boroughs.index(borough)
    d = post.drivers.index(driver)
    members = np.flatnonzero(post.ward_borough_idx == b)
    names = summary.ward_names()
    counts = np.bincount(post.ward_idx, minlength=len(post.wards))
    return plot_ward_effects(summary.ame["ward"][:, members, d], summary.ame["borough"][:, b, d],
                             wards=[post.wards[w] for w in members], ward_names=[names[w] for w in members],
                             respondents=counts[members], borough=borough, driver=driver,
                             label=summary.label(driver), outcome_phrase=summary.outcome_phrase)


def build_figures(summary: RunSummary, *, drivers: tuple[str, ...] | None = None, ward_borough: str | None = None,
                  boundaries: str | Path | None = None) -> dict[str, PlotResult]:
    """Draw every figure of a run; keys are file stems.

    Parameters
    ----------
    drivers
        Drivers that get borough, map and ward figures (default: engagement and visibility,
        those of them in the run, else the run's first driver).
    ward_borough
        Borough for the within-borough ward plots (default: the borough where the
        first driver's effect is largest).
    boundaries
        A borough boundary file for a choropleth beside the tile map.
    """
    post = summary.post
    unknown = [d for d in drivers or () if d not in post.drivers]
    if unknown:
        raise QueryError(f"drivers {unknown} are not in this run; it has {post.drivers}")
    drivers = tuple(d for d in (drivers or MAP_DRIVERS) if d in post.drivers) or (post.drivers[0],)
    phrase = summary.outcome_phrase
    out: dict[str, PlotResult] = {
        "london_driver_effects": plot_london_effects(
            summary.ame["london"][:, 0, :], drivers=post.drivers, labels=summary.labels, outcome_phrase=phrase,
            logit_draws=draws(summary.run.idata, "beta")),
    }
    names = summary.ward_names()
    for driver in drivers:
        d = post.drivers.index(driver)
        london, borough = summary.driver_ame(driver)
        common = {"driver": driver, "label": summary.label(driver), "outcome_phrase": phrase}
        out[f"borough_slopes_{driver}"] = plot_borough_slopes(borough, london, boroughs=post.boroughs, **common)
        out[f"borough_map_{driver}"] = plot_borough_tile_map(borough, london, boroughs=post.boroughs, **common)
        if boundaries is not None:
            out[f"borough_choropleth_{driver}"] = plot_borough_choropleth(
                borough, london, boroughs=post.boroughs, boundaries=boundaries, **common)
        ward_labels = [f"{names[w]} ({post.boroughs[post.ward_borough_idx[w]]})" for w in range(len(post.wards))]
        out[f"ward_extremes_{driver}"] = plot_ward_extremes(summary.ame["ward"][:, :, d], london, wards=post.wards,
                                                            ward_labels=ward_labels, **common)
    first = drivers[0]
    chosen = ward_borough or post.boroughs[int(np.argmax(summary.driver_ame(first)[1].mean(axis=0)))]
    for driver in drivers:
        out[f"wards_{_slug(chosen)}_{driver}"] = ward_figure(summary, chosen, driver)
    if not summary.group_effects.empty:
        out["driver_effects_by_group"] = plot_group_effects(summary.group_effects, labels=summary.labels,
                                                            outcome_phrase=phrase)
    if not summary.gaps.empty:
        out["demographic_gaps"] = plot_demographic_gaps(summary.gaps, outcome_phrase=phrase)
    out["ppc_by_borough"] = plot_ppc_by_borough(summary.ppc, outcome_phrase=phrase)
    if (summary.ppc["group"] != "borough").any():
        out["ppc_by_demographic"] = plot_ppc_by_borough(summary.ppc, outcome_phrase=phrase, demographics=True)
    out["diagnostics"] = plot_diagnostics(summary.run.idata, summary.diagnostics)
    how = approximation(summary.run.idata)
    if how:
        for result in out.values():
            result.mark_approximate(how)
    return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def write_figures(figures: dict[str, PlotResult], out: str | Path, *, force: bool) -> list[Path]:
    """Save each figure as PNG + CSV in ``out``; returns the PNG paths."""
    return [result.save(Path(out) / stem, force=force) for stem, result in figures.items()]
