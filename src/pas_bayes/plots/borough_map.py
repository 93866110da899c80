"""London borough maps of one driver's effect: a built-in tile grid, or real boundaries.

Uncertainty is drawn, not hidden: boroughs whose 90% interval includes London's
median effect are shown washed out and hatched ("cannot be told apart from
London"), so only the boroughs the data can separate carry full colour.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, to_rgba
from matplotlib.patches import Patch, Rectangle

from pas_bayes.errors import PASDataError
from pas_bayes.geography import BOROUGH_ABBREVIATIONS, TILE_GRID, normalise_borough
from pas_bayes.plots._style import OKABE_ITO, PlotResult, interval_rows
from pas_bayes.plots.borough_slopes import mark_against
from pas_bayes.rankings import rank_table

CMAP = plt.get_cmap("cividis")


def _borough_numbers(ame_borough: np.ndarray, ame_london: np.ndarray, boroughs: list[str],
                     driver: str) -> pd.DataFrame:
    rows = interval_rows(ame_borough)
    ranks = rank_table(ame_borough, ame_london, boroughs).set_index("place").loc[boroughs]
    return pd.DataFrame({
        "borough": boroughs, "driver": driver, "pp_mean": rows["mean"], "pp_q05": rows["q05"],
        "pp_q95": rows["q95"], "prob_above_london": ranks["prob_above_reference"].to_numpy(),
        "prob_top5": ranks["prob_top"].to_numpy(), "mark": mark_against(rows, ame_london),
        "london_pp_median": float(np.median(ame_london)),
    })


def _norm(numbers: pd.DataFrame) -> Normalize:
    """Colour scale over the boroughs' range, so differences between boroughs are visible."""
    low, high = float(numbers["pp_mean"].min()), float(numbers["pp_mean"].max())
    return Normalize(vmin=low, vmax=high if high > low else low + 1.0)


def _fill(value: float, mark: str, norm: Normalize) -> tuple[float, float, float, float]:
    colour = np.array(to_rgba(CMAP(norm(value))))
    if mark == "unclear":
        colour[:3] = 0.45 * colour[:3] + 0.55  # value-suppressed: washed toward white
    return tuple(colour)


def _title(numbers: pd.DataFrame, label: str) -> str:
    above = numbers[numbers["mark"] == "above"].sort_values("pp_mean", ascending=False)["borough"].tolist()
    if above:
        return (f"{label} matters most in {', '.join(above[:3])}{' and others' if len(above) > 3 else ''}\n"
                f"(full colour: 90% interval clear of London; washed out and hatched: cannot be told apart)")
    return f"{label}: no borough clearly differs from London\n(washed out and hatched: cannot be told apart)"


def _legend_and_colourbar(fig: plt.Figure, ax: plt.Axes, norm: Normalize, outcome_phrase: str) -> None:
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=CMAP), ax=ax, shrink=0.7, pad=0.02)
    bar.set_label(f"Change in share who {outcome_phrase}\n(percentage points, mean)", fontsize=8)
    ax.legend(handles=[Patch(facecolor="white", edgecolor=OKABE_ITO["grey"], hatch="///",
                             label="cannot be told apart from London")],
              loc="upper left", bbox_to_anchor=(0.0, 0.0), frameon=False, fontsize=8)


def plot_borough_tile_map(ame_borough: np.ndarray, ame_london: np.ndarray, *, boroughs: list[str], driver: str,
                          label: str, outcome_phrase: str) -> PlotResult:
    """Tile-grid map of the 32 boroughs coloured by a driver's average marginal effect (pp).

    Needs no boundary file: the layout (:data:`pas_bayes.geography.TILE_GRID`)
    is built in. Each tile shows the borough's abbreviation, mean effect and 90% interval.
    """
    numbers = _borough_numbers(ame_borough, ame_london, boroughs, driver)
    norm = _norm(numbers)
    fig, ax = plt.subplots(figsize=(10, 7.2))
    for row in numbers.itertuples(index=False):
        col, line = TILE_GRID[row.borough]
        ax.add_patch(Rectangle((col, line), 0.94, 0.94, facecolor=_fill(row.pp_mean, row.mark, norm),
                               edgecolor="white" if row.mark != "unclear" else OKABE_ITO["grey"],
                               hatch="///" if row.mark == "unclear" else None, linewidth=1))
        dark = norm(row.pp_mean) < 0.55 and row.mark != "unclear"
        colour = "white" if dark else "black"
        ax.text(col + 0.47, line + 0.62, BOROUGH_ABBREVIATIONS[row.borough], ha="center", va="center",
                fontsize=10, fontweight="bold", color=colour)
        ax.text(col + 0.47, line + 0.36, f"{row.pp_mean:+.0f}", ha="center", va="center", fontsize=10,
                color=colour)
        ax.text(col + 0.47, line + 0.14, f"{row.pp_q05:.0f} to {row.pp_q95:.0f}", ha="center", va="center",
                fontsize=6.5, color=colour)
    ax.set_xlim(-0.1, 8.1)
    ax.set_ylim(-0.1, 6.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(_title(numbers, label), loc="left", fontsize=11)
    _legend_and_colourbar(fig, ax, norm, outcome_phrase)
    numbers["tile_column"] = numbers["borough"].map(lambda b: TILE_GRID[b][0])
    numbers["tile_row"] = numbers["borough"].map(lambda b: TILE_GRID[b][1])
    return PlotResult(fig, numbers.sort_values("pp_mean", ascending=False).reset_index(drop=True))


def read_boundaries(path: str | Path):
    """Read borough polygons (any format GDAL reads: GeoPackage, shapefile, GeoJSON).

    The borough is taken from the first column holding ONS codes or names that
    normalise to the 32 MPS boroughs (``gss_code``, ``name``...); the City of
    London and any other area are left off the map.

    Raises
    ------
    PASDataError
        When the file cannot be read or no column names the boroughs.
    """
    import geopandas as gpd

    path = Path(path)
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise PASDataError(f"{path}: cannot read boundaries ({exc}). What to do: give a GeoPackage, "
                           "shapefile or GeoJSON of London borough polygons") from exc
    for column in frame.columns:
        if column == "geometry":
            continue
        names = frame[column].astype(str).map(normalise_borough)
        if names.notna().sum() >= 32:
            return frame.assign(borough=names).dropna(subset=["borough"])
    raise PASDataError(f"{path}: no column names the 32 MPS boroughs (columns: {list(frame.columns)}). "
                       "What to do: give a file with a borough name or ONS code column")


def plot_borough_choropleth(ame_borough: np.ndarray, ame_london: np.ndarray, *, boroughs: list[str],
                            driver: str, label: str, outcome_phrase: str, boundaries: str | Path) -> PlotResult:
    """The same map on real borough boundaries read from ``boundaries``."""
    shapes = read_boundaries(boundaries)
    numbers = _borough_numbers(ame_borough, ame_london, boroughs, driver)
    norm = _norm(numbers)
    merged = shapes.merge(numbers, on="borough", how="inner")
    fig, ax = plt.subplots(figsize=(10, 7.5))
    for row in merged.itertuples(index=False):
        unclear = row.mark == "unclear"
        shapes_one = merged[merged["borough"] == row.borough]
        shapes_one.plot(ax=ax, facecolor=_fill(row.pp_mean, row.mark, norm),
                        edgecolor=OKABE_ITO["grey"] if unclear else "white", hatch="///" if unclear else None,
                        linewidth=0.8)
        point = row.geometry.representative_point()
        ax.annotate(f"{BOROUGH_ABBREVIATIONS[row.borough]}\n{row.pp_mean:+.0f}", (point.x, point.y),
                    ha="center", va="center", fontsize=7,
                    color="white" if norm(row.pp_mean) < 0.55 and not unclear else "black")
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(_title(numbers, label), loc="left", fontsize=11)
    _legend_and_colourbar(fig, ax, norm, outcome_phrase)
    return PlotResult(fig, numbers.sort_values("pp_mean", ascending=False).reset_index(drop=True))
