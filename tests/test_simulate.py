import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from pas_bayes.codebook import Codebook
from pas_bayes.errors import RunFolderError
from pas_bayes.simulate import TRUTH_FORMAT, SimulationSettings, simulate_survey, write_simulation
from pas_bayes.spec import ModelSpec
from pas_bayes.survey import read_survey

from .conftest import BUNDLED, WARDS_2022, need_shared

REAL_LAYOUT = ["C2", "ward", "ward_n", "BOROUGHNEIGHBOURHOOD", "FinancialYear", "Quarter", "WT_Discrete",
               "Q60", "NQ135BD", "Q65", "Q131", "XQ135r", "Q136r", "NQ147r"]


def test_regenerating_the_bundled_sample_gives_the_same_files(tmp_path):
    settings = SimulationSettings(seed=2324, ward_lookup=str(need_shared(WARDS_2022)))
    path = write_simulation(simulate_survey(settings), tmp_path, settings)
    assert path.name == BUNDLED.name
    for name in (BUNDLED.name, "truth.json", "truth_effects.csv"):
        assert (tmp_path / name).read_bytes() == (BUNDLED.parent / name).read_bytes(), name


def test_survey_is_in_the_real_layout_with_text_labels(small_survey):
    raw = pd.read_csv(small_survey, dtype=str, keep_default_na=False)
    book = Codebook.default()
    assert set(REAL_LAYOUT) <= set(raw.columns)
    for code in ("Q60", "Q62TG", "Q21", "Q13", "Q39A_2", "Q65", "Q131", "XQ122B"):
        labels = set(book.scale_of(code).labels) | {"Don't know", "Refused", "-"}
        assert set(raw[code]) <= labels, code
        assert set(raw[code]) & {"Don't know", "Refused", "-"}, f"{code} has no non-substantive answers"
    assert (raw["Q79B"] == "Not Asked").mean() == pytest.approx(0.10, abs=0.03)
    assert (raw["BOROUGHNEIGHBOURHOOD"] == raw["C2"] + " - " + raw["ward_n"]).all()
    assert raw.groupby("C2").size().eq(60).all() and raw["C2"].nunique() == 32


def test_full_year_matches_the_published_shape():
    """400 a borough, real ward counts, London rates near MOPAC's FY 23-24 figures."""
    sim = simulate_survey(SimulationSettings(seed=3))
    raw = sim.survey
    assert len(raw) == 12_800
    good = raw["Q60"].isin(["Excellent", "Good"]).mean()
    trust = raw["NQ135BD"].isin(["Strongly agree", "Tend to agree"]).mean()
    assert good == pytest.approx(0.47, abs=0.03)
    assert trust == pytest.approx(0.67, abs=0.04)
    by_borough = raw.assign(g=raw["Q60"].isin(["Excellent", "Good"])).groupby("C2")["g"].mean()
    assert 0.25 < by_borough.min() < 0.45 and 0.5 < by_borough.max() < 0.75
    assert 600 <= sim.truth["n_wards_sampled"] <= 679


def test_truth_reproduces_the_outcome_through_the_readers_drivers(small_survey):
    """The truth is on the model's scale: eta built from the reader's frame predicts the outcome."""
    truth = json.loads((small_survey.parent / "truth.json").read_text())
    assert truth["format"] == TRUTH_FORMAT
    t = truth["outcomes"]["confidence"]
    frame = read_survey(small_survey, ModelSpec(name="t")).frame
    dev = pd.DataFrame(t["borough_slope_deviations"]).T
    eta = t["intercept"] + frame["borough"].map(t["borough_intercepts"]) + frame["ward"].map(t["ward_intercepts"])
    for d, beta in t["driver_effects"].items():
        eta += frame[d] * (beta + frame["borough"].map(dev[d]))
    for g, effects in t["demographic_effects"].items():
        eta += frame[g].map(effects).fillna(0.0)
    # Ward slopes are left out here: the ward part is small, so eta explains most but not all.
    p = expit(eta)
    y = frame["confidence"]
    loglik_true = np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    loglik_shuffled = np.mean(y * np.log(p.sample(frac=1, random_state=0).to_numpy())
                              + (1 - y) * np.log(1 - p.sample(frac=1, random_state=0).to_numpy()))
    assert p.mean() == pytest.approx(y.mean(), abs=0.03)
    assert loglik_true > loglik_shuffled + 0.15


def test_truth_effects_share_the_effects_table_layout(small_survey):
    table = pd.read_csv(small_survey.parent / "truth_effects.csv", keep_default_na=False)
    assert list(table.columns) == ["outcome", "level", "borough", "ward", "driver", "scale", "value"]
    london = table[(table.outcome == "confidence") & (table.level == "london")].set_index("driver")["value"]
    assert london["engagement"] == pytest.approx(0.9)
    assert london.idxmax() == "engagement"
    assert table[table.level == "borough"].groupby("outcome").size().eq(32 * 7).all()


def test_same_seed_same_survey_other_seed_other_survey():
    a = simulate_survey(SimulationSettings(seed=5, per_borough=20)).survey
    b = simulate_survey(SimulationSettings(seed=5, per_borough=20)).survey
    c = simulate_survey(SimulationSettings(seed=6, per_borough=20)).survey
    assert a.equals(b) and not a.equals(c)


def test_existing_files_are_not_overwritten(tmp_path):
    settings = SimulationSettings(seed=1, per_borough=8)
    sim = simulate_survey(settings)
    write_simulation(sim, tmp_path, settings)
    with pytest.raises(RunFolderError, match="--force"):
        write_simulation(sim, tmp_path, settings)
    write_simulation(sim, tmp_path, settings, force=True)
