"""Parameter recovery on a full-size synthetic year (slow: about 5 minutes on 2 cores).

Run with ``bash scripts/test.sh -m slow``. The survey is made with a seed the
bundled data does not use, and synthetic ward codes, so the fit has never seen it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pas_bayes.diagnostics import diagnose
from pas_bayes.effects import driver_effects
from pas_bayes.fit import fit_run, load_run
from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation
from pas_bayes.spec import load_spec
from pas_bayes.survey import read_survey

from .conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recovery")
    settings = SimulationSettings(seed=777)
    path = write_simulation(simulate_survey(settings), folder / "data", settings)
    spec = load_spec(ROOT / "models" / "confidence.toml").with_sampler(seed=99)
    run_path = fit_run(spec, read_survey(path, spec), folder / "run", progressbar=False)
    run = load_run(run_path)
    truth = pd.read_csv(folder / "data" / "truth_effects.csv", keep_default_na=False).query("outcome == 'confidence'")
    return run, driver_effects(run.idata), truth


def test_london_effects_lie_in_their_90_percent_intervals(recovered):
    _, effects, truth = recovered
    london = effects[effects.level == "london"].set_index("driver")
    true = truth[truth.level == "london"].set_index("driver")["value"]
    inside = (london["q05"] <= true) & (true <= london["q95"])
    assert inside.all(), pd.concat([london[["q05", "mean", "q95"]], true], axis=1)


@pytest.mark.parametrize("driver, min_corr", [("engagement", 0.6), ("visibility", 0.6)])
def test_borough_slopes_correlate_with_the_truth(recovered, driver, min_corr):
    _, effects, truth = recovered
    est = effects[(effects.level == "borough") & (effects.driver == driver)].set_index("borough")["mean"]
    true = truth[(truth.level == "borough") & (truth.driver == driver)].set_index("borough")["value"]
    assert np.corrcoef(est, true.loc[est.index])[0, 1] > min_corr


def test_boroughs_where_visibility_matters_most_are_found(recovered):
    _, effects, truth = recovered
    est = effects[(effects.level == "borough") & (effects.driver == "visibility")].set_index("borough")["mean"]
    true = truth[(truth.level == "borough") & (truth.driver == "visibility")].set_index("borough")["value"]
    top_true = set(true.nlargest(5).index)
    top_est = set(est.nlargest(8).index)
    assert len(top_true & top_est) >= 3, (sorted(top_true), sorted(top_est))


def test_borough_slope_intervals_cover_at_about_their_rate(recovered):
    _, effects, truth = recovered
    est = effects[effects.level == "borough"].set_index(["borough", "driver"])
    true = truth[truth.level == "borough"].set_index(["borough", "driver"])["value"].loc[est.index]
    coverage = ((est["q05"] <= true) & (true <= est["q95"])).mean()
    assert 0.8 <= coverage <= 0.99, coverage


def test_diagnostics_are_clean(recovered):
    run, _, _ = recovered
    report = diagnose(run.idata)
    assert report.passed, report.to_text()
