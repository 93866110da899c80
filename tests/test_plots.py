import pandas as pd
import pytest

from pas_bayes.cli import main
from pas_bayes.effects import driver_effects
from pas_bayes.errors import RunFolderError
from pas_bayes.fit import load_run
from pas_bayes.plots import plot_borough_slopes
from pas_bayes.plots._style import to_percentage_points


@pytest.fixture(scope="module")
def figures(small_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    assert main(["plot", str(small_run), "--out", str(out)]) == 0
    return out


def test_each_figure_has_its_numbers_beside_it(figures):
    for stem in ("london_driver_effects", "borough_slopes_engagement", "borough_slopes_visibility",
                 "diagnostics"):
        png, csv = figures / f"{stem}.png", figures / f"{stem}.csv"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(pd.read_csv(csv)) > 0


def test_london_figure_numbers_are_the_posterior(figures, small_run):
    run = load_run(small_run)
    numbers = pd.read_csv(figures / "london_driver_effects.csv").set_index("driver")
    effects = driver_effects(run.idata)
    london = effects[effects.level == "london"].set_index("driver")
    assert numbers["logit_mean"].to_numpy() == pytest.approx(london.loc[numbers.index, "mean"].to_numpy(), rel=1e-5)
    base = float(run.idata["observed_data"]["confidence"].mean())
    assert numbers["base_rate"].iloc[0] == pytest.approx(base)
    # Largest first, and the percentage points follow the log-odds.
    assert numbers["pp_mean"].is_monotonic_decreasing
    assert (numbers["pp_q50"] > 0).to_numpy() == pytest.approx((numbers["logit_q50"] > 0).to_numpy())


def test_borough_plot_marks_and_title_follow_the_numbers(small_run):
    run = load_run(small_run)
    result = plot_borough_slopes(run.idata, "visibility", label="Visibility", outcome_label="x", base_rate=0.47)
    numbers = result.numbers
    assert len(numbers) == 32 and numbers["pp_mean"].is_monotonic_decreasing
    assert numbers["borough"].iloc[0] in result.figure.axes[0].get_title(loc="left")
    assert set(numbers["mark"]) <= {"above London", "below London", "not distinguishable"}
    assert ((numbers["prob_above_london"] >= 0) & (numbers["prob_above_london"] <= 1)).all()


def test_percentage_points_conversion():
    assert to_percentage_points(0.0, 0.47) == pytest.approx(0.0)
    assert to_percentage_points(100.0, 0.5) == pytest.approx(50.0)
    assert to_percentage_points(-0.5, 0.5) < 0


def test_figures_are_not_overwritten_without_force(figures, small_run):
    with pytest.raises(RunFolderError):
        load = load_run(small_run)
        plot_borough_slopes(load.idata, "engagement", label="E", outcome_label="x",
                            base_rate=0.5).save(figures / "borough_slopes_engagement")
    assert main(["plot", str(small_run), "--out", str(figures)]) == 2
    assert main(["plot", str(small_run), "--out", str(figures), "--force"]) == 0
