import numpy as np
import pandas as pd
import pytest

from pas_bayes.cli import main
from pas_bayes.errors import RunFolderError
from pas_bayes.fit import load_run
from pas_bayes.geography import BOROUGH_NAMES, TILE_GRID
from pas_bayes.plots import plot_borough_choropleth, plot_borough_slopes, plot_borough_tile_map
from pas_bayes.summaries import summarise_run

from .conftest import SHARED, need_shared

STEMS = ("london_driver_effects", "borough_slopes_engagement", "borough_slopes_visibility", "borough_map_engagement",
         "borough_map_visibility", "ward_extremes_engagement", "ward_extremes_visibility", "demographic_gaps",
         "ppc_by_borough", "ppc_by_demographic", "diagnostics")


@pytest.fixture(scope="module")
def figures(small_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    assert main(["plot", str(small_run), "--out", str(out), "--borough", "croydon"]) == 0
    return out


@pytest.fixture(scope="module")
def summary(small_run):
    return summarise_run(load_run(small_run), max_draws=300)


def test_each_figure_has_its_numbers_beside_it(figures):
    for stem in (*STEMS, "wards_croydon_engagement", "wards_croydon_visibility"):
        png, csv = figures / f"{stem}.png", figures / f"{stem}.csv"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert len(pd.read_csv(csv)) > 0, stem


def test_london_figure_numbers_are_the_average_marginal_effects(figures):
    numbers = pd.read_csv(figures / "london_driver_effects.csv").set_index("driver")
    assert numbers["pp_mean"].is_monotonic_decreasing
    assert numbers["prob_strongest"].sum() == pytest.approx(1.0)
    assert numbers.index[0] == "engagement"
    assert ((numbers["pp_q05"] <= numbers["pp_q50"]) & (numbers["pp_q50"] <= numbers["pp_q95"])).all()
    assert (np.sign(numbers["pp_q50"]) == np.sign(numbers["logit_q50"])).all()


def test_borough_plot_title_names_the_clear_boroughs(summary):
    london, borough = summary.driver_ame("visibility")
    boost = borough.copy()
    boost[:, summary.post.boroughs.index("Lambeth")] += 40.0  # make one borough stand out beyond doubt
    result = plot_borough_slopes(boost, london, boroughs=summary.post.boroughs, driver="visibility",
                                 label="Visibility", outcome_phrase="x")
    numbers = result.numbers
    assert numbers["borough"].iloc[0] == "Lambeth" and numbers["mark"].iloc[0] == "above"
    assert numbers["prob_top5"].iloc[0] == 1.0 and numbers["rank_q95"].iloc[0] == 1
    assert "matters most in Lambeth" in result.figure.axes[0].get_title(loc="left")


def test_tile_map_places_every_borough_once(summary):
    london, borough = summary.driver_ame("engagement")
    result = plot_borough_tile_map(borough, london, boroughs=summary.post.boroughs, driver="engagement",
                                   label="Engagement", outcome_phrase="x")
    numbers = result.numbers
    assert sorted(numbers["borough"]) == sorted(BOROUGH_NAMES)
    assert len(set(zip(numbers["tile_column"], numbers["tile_row"], strict=True))) == 32
    assert set(TILE_GRID) == set(BOROUGH_NAMES)
    assert set(numbers["mark"]) <= {"above", "below", "unclear"}


def test_choropleth_reads_the_real_boundaries(summary):
    path = need_shared(SHARED / "geography" / "London_Boroughs.gpkg")
    london, borough = summary.driver_ame("visibility")
    result = plot_borough_choropleth(borough, london, boroughs=summary.post.boroughs, driver="visibility",
                                     label="Visibility", outcome_phrase="x", boundaries=path)
    assert len(result.numbers) == 32
    drawn = sum(len(ax.collections) for ax in result.figure.axes)
    assert drawn >= 32


def test_figures_are_not_overwritten_without_force(figures, small_run, summary):
    london, borough = summary.driver_ame("engagement")
    with pytest.raises(RunFolderError):
        plot_borough_slopes(borough, london, boroughs=summary.post.boroughs, driver="engagement", label="E",
                            outcome_phrase="x").save(figures / "borough_slopes_engagement")
    assert main(["plot", str(small_run), "--out", str(figures), "--drivers", "informed"]) == 2
    assert main(["plot", str(small_run), "--out", str(figures), "--drivers", "luck"]) == 2


def test_probabilities_are_never_printed_as_certainties():
    from pas_bayes.plots._style import percent

    assert percent(1.0) == "over 99.9%" and percent(0.0) == "under 0.1%" and percent(0.874) == "87%"
    assert percent(0.996) == "99.6%" and percent(0.004) == "0.4%"
