"""Figures for policy readers, one module per figure; each returns a PlotResult."""

from pas_bayes.plots.borough_slopes import plot_borough_slopes
from pas_bayes.plots.diagnostics_figure import plot_diagnostics
from pas_bayes.plots.london_effects import plot_london_effects

__all__ = ["plot_borough_slopes", "plot_diagnostics", "plot_london_effects"]
