"""Figures for policy readers, one module per figure; each returns a PlotResult."""

from pas_bayes.plots.borough_map import plot_borough_choropleth, plot_borough_tile_map
from pas_bayes.plots.borough_slopes import plot_borough_slopes
from pas_bayes.plots.demographic_gaps import plot_demographic_gaps
from pas_bayes.plots.diagnostics_figure import plot_diagnostics
from pas_bayes.plots.london_effects import plot_london_effects
from pas_bayes.plots.ppc_borough import plot_ppc_by_borough
from pas_bayes.plots.ward_effects import plot_ward_effects, plot_ward_extremes

__all__ = [
    "plot_borough_choropleth", "plot_borough_slopes", "plot_borough_tile_map", "plot_demographic_gaps",
    "plot_diagnostics", "plot_london_effects", "plot_ppc_by_borough", "plot_ward_effects", "plot_ward_extremes",
]
