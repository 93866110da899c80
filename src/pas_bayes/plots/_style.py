"""Shared look of pas_bayes figures and the one way they are written to disk.

Colours are the Okabe-Ito palette (safe for the common colour-vision
deficiencies). Every figure is saved as a PNG with a CSV of the plotted numbers
beside it, each written to a temporary name and renamed into place.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.atomic import atomic_write, refuse_existing

OKABE_ITO = {
    "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
    "grey": "#999999",
}


def save_figure(fig: plt.Figure, numbers: pd.DataFrame, path: str | Path, *, force: bool) -> Path:
    """Write ``fig`` as PNG and ``numbers`` as CSV with the same stem, atomically.

    Raises
    ------
    RunFolderError
        When either file exists and ``force`` is false.
    """
    png = Path(path).with_suffix(".png")
    csv = png.with_suffix(".csv")
    refuse_existing([png, csv], force=force)
    atomic_write(png, lambda p: fig.savefig(p, dpi=150, bbox_inches="tight", format="png"), force=True)
    atomic_write(csv, lambda p: numbers.to_csv(p, index=False, float_format="%.6g"), force=True)
    plt.close(fig)
    return png


def percent(probability: float) -> str:
    """A posterior probability as text, never a false certainty: "over 99.9%", "under 0.1%", "87%"."""
    if probability >= 0.999:
        return "over 99.9%"
    if probability <= 0.001:
        return "under 0.1%"
    if probability >= 0.995 or probability <= 0.005:
        return f"{100 * probability:.1f}%"  # 99.6% must not print as a certain-looking 100%
    return f"{100 * probability:.0f}%"


class PlotResult:
    """A drawn figure and the numbers it shows; keep composing ``figure`` or ``save`` it."""

    def __init__(self, figure: plt.Figure, numbers: pd.DataFrame) -> None:
        self.figure = figure
        self.numbers = numbers

    def mark_approximate(self, how: str) -> None:
        """Label the figure and its numbers as an approximate preview (``how``: what approximated)."""
        self.figure.text(0.5, 1.0, "APPROXIMATE PREVIEW (not MCMC): not for publication", ha="center",
                         va="bottom", fontsize=11, fontweight="bold", color="#b2182b")
        self.numbers = self.numbers.assign(inference=f"approximate: {how}")

    def png_bytes(self) -> bytes:
        """The figure as PNG bytes (for embedding); the figure stays open."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, dpi=110, bbox_inches="tight", format="png")
        return buffer.getvalue()

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write PNG + CSV (see :func:`save_figure`)."""
        return save_figure(self.figure, self.numbers, path, force=force)


def interval_rows(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and 5/25/50/75/95% quantiles over the first axis."""
    q = np.quantile(samples, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    return {"mean": samples.mean(axis=0), "q05": q[0], "q25": q[1], "q50": q[2], "q75": q[3], "q95": q[4]}


def draw_intervals(ax: plt.Axes, y: np.ndarray, rows: dict[str, np.ndarray], colour: str, *,
                   label: bool = False) -> None:
    """Thin 90% and thick 50% interval lines with a point at the median.

    ``label`` names the two line widths for a legend; pass it for one call only.
    """
    ax.hlines(y, rows["q05"], rows["q95"], color=colour, linewidth=1.2, label="90% interval" if label else None)
    ax.hlines(y, rows["q25"], rows["q75"], color=colour, linewidth=4, label="50% interval" if label else None)
    ax.plot(rows["q50"], y, "o", color="white", markeredgecolor=colour, markersize=5, zorder=3)
