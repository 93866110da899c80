import numpy as np
import pandas as pd
import pytest

from pas_bayes.effects import EFFECT_COLUMNS, driver_effects
from pas_bayes.fit import load_run
from pas_bayes.predictions import draws, load_posterior, marginal_effect_draws


@pytest.fixture(scope="module")
def run(small_run):
    return load_run(small_run)


@pytest.fixture(scope="module")
def effects(run):
    return driver_effects(run.idata, max_draws=300)


def test_layout_and_row_counts(run, effects):
    post = run.idata["posterior"]
    n_d, n_b, n_w = post.sizes["driver"], post.sizes["borough"], post.sizes["ward"]
    assert list(effects.columns) == list(EFFECT_COLUMNS)
    for scale in ("logit", "pp"):
        rows = effects[effects["scale"] == scale]
        assert rows["level"].value_counts().to_dict() == {"london": n_d, "borough": n_d * n_b, "ward": n_d * n_w}
    assert (effects.loc[effects.level == "london", ["borough", "ward"]] == "").all().all()
    assert (effects["q05"] <= effects["q50"]).all() and (effects["q50"] <= effects["q95"]).all()


def test_ward_slope_is_london_plus_borough_plus_ward_deviation(run, effects):
    post = run.idata["posterior"]
    ward = str(post["ward"].values[5])
    row = effects[(effects.level == "ward") & (effects.ward == ward) & (effects.driver == "visibility")
                  & (effects.scale == "logit")].iloc[0]
    borough = row["borough"]
    by_hand = (draws(run.idata, "beta")[:, list(post["driver"].values).index("visibility")]
               + post["borough_slope_dev"].sel(borough=borough, driver="visibility").values.ravel()
               + post["ward_slope_dev"].sel(ward=ward, ward_driver="visibility").values.ravel())
    assert row["mean"] == pytest.approx(by_hand.mean())
    assert row["q95"] == pytest.approx(np.quantile(by_hand, 0.95))


def test_ward_borough_is_the_borough_the_data_put_it_in(run, effects, small_survey):
    raw = pd.read_csv(small_survey, dtype=str, keep_default_na=False)
    truth = raw.drop_duplicates("ward").set_index("ward")["C2"]
    wards = effects[(effects.level == "ward") & (effects.scale == "logit")]
    assert (wards["borough"].to_numpy() == truth.loc[wards["ward"]].to_numpy()).all()


def test_borough_total_matches_stored_deterministic(run, effects):
    stored = run.idata["posterior"]["borough_slope"].sel(borough="Croydon", driver="engagement").values
    row = effects[(effects.level == "borough") & (effects.borough == "Croydon") & (effects.driver == "engagement")
                  & (effects.scale == "logit")]
    assert row["mean"].iloc[0] == pytest.approx(stored.mean())


def test_pp_rows_are_average_marginal_effects_with_the_logit_sign(effects):
    logit = effects[effects.scale == "logit"].set_index(["level", "borough", "ward", "driver"])
    pp = effects[effects.scale == "pp"].set_index(["level", "borough", "ward", "driver"]).loc[logit.index]
    london_pp = pp.xs("london", level="level")
    assert (np.sign(london_pp["q50"]) == np.sign(logit.xs("london", level="level")["q50"])).all()
    # A probability change of +1 SD or yes vs no is bounded by 100 points, and here far below it.
    assert (pp["mean"].abs() < 60).all()
    # A change of beta in log-odds moves a probability by at most beta / 4.
    beta = logit.loc[("london", "", "", "engagement"), "mean"]
    assert 0 < pp.loc[("london", "", "", "engagement"), "mean"] < 100 * beta / 4


def test_pp_rows_average_each_respondents_change(run, effects):
    post = load_posterior(run.idata, max_draws=300)
    per_draw = 100 * marginal_effect_draws(post, "visibility")
    row = effects[(effects.scale == "pp") & (effects.level == "borough") & (effects.borough == "Lambeth")
                  & (effects.driver == "visibility")].iloc[0]
    members = post.borough_idx == post.boroughs.index("Lambeth")
    assert row["mean"] == pytest.approx(per_draw[:, members].mean())
