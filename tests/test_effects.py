import numpy as np
import pandas as pd
import pytest

from pas_bayes.effects import EFFECT_COLUMNS, draws, driver_effects
from pas_bayes.fit import load_run


@pytest.fixture(scope="module")
def run(small_run):
    return load_run(small_run)


@pytest.fixture(scope="module")
def effects(run):
    return driver_effects(run.idata)


def test_layout_and_row_counts(run, effects):
    post = run.idata["posterior"]
    n_d, n_b, n_w = post.sizes["driver"], post.sizes["borough"], post.sizes["ward"]
    assert list(effects.columns) == list(EFFECT_COLUMNS)
    assert effects["level"].value_counts().to_dict() == {"london": n_d, "borough": n_d * n_b, "ward": n_d * n_w}
    assert (effects["scale"] == "logit").all()
    assert (effects.loc[effects.level == "london", ["borough", "ward"]] == "").all().all()
    assert (effects["q05"] <= effects["q50"]).all() and (effects["q50"] <= effects["q95"]).all()


def test_ward_slope_is_london_plus_borough_plus_ward_deviation(run, effects):
    post = run.idata["posterior"]
    ward = str(post["ward"].values[5])
    row = effects[(effects.level == "ward") & (effects.ward == ward) & (effects.driver == "visibility")].iloc[0]
    borough = row["borough"]
    by_hand = (draws(run.idata, "beta")[:, list(post["driver"].values).index("visibility")]
               + post["borough_slope_dev"].sel(borough=borough, driver="visibility").values.ravel()
               + post["ward_slope_dev"].sel(ward=ward, ward_driver="visibility").values.ravel())
    assert row["mean"] == pytest.approx(by_hand.mean())
    assert row["q95"] == pytest.approx(np.quantile(by_hand, 0.95))


def test_ward_borough_is_the_borough_the_data_put_it_in(run, effects, small_survey):
    raw = pd.read_csv(small_survey, dtype=str, keep_default_na=False)
    truth = raw.drop_duplicates("ward").set_index("ward")["C2"]
    wards = effects[effects.level == "ward"]
    assert (wards["borough"].to_numpy() == truth.loc[wards["ward"]].to_numpy()).all()


def test_borough_total_matches_stored_deterministic(run, effects):
    stored = run.idata["posterior"]["borough_slope"].sel(borough="Croydon", driver="engagement").values
    row = effects[(effects.level == "borough") & (effects.borough == "Croydon") & (effects.driver == "engagement")]
    assert row["mean"].iloc[0] == pytest.approx(stored.mean())
