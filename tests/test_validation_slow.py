"""The recovery suite (slow): each scenario's sweep, fitted through Dask, must recover its truth.

Run with ``bash scripts/test.sh -m slow -k scenario`` (about 40 minutes on 2 cores).
Each scenario is the sweep spec in ``validation/`` (5 simulated surveys of 100
respondents a borough, or 400 for ``strong_one_400``, the full confidence model); ``docs/validation.md`` reports
the same sweeps. The bounds are the nominal rates with room for the sampling
error of 5 fits (the estimates of one fit share its data, so they are not
independent draws): 90% intervals must cover 80-99% of borough slopes and at
least 70% of London effects, 50% intervals 35-70% of borough slopes; where the truth
has no borough variation at all, coverage may be higher (see ``_coverage_is_nominal``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pas_bayes.sweep import load_sweep_spec, run_sweep

pytestmark = pytest.mark.slow
VALIDATION = Path(__file__).resolve().parents[1] / "validation"


def _scenario(tmp_path: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    out = tmp_path / name
    outcome = run_sweep(load_sweep_spec(VALIDATION / f"sweep_recovery_{name}.toml"), out, workers=1, progress=None)
    assert not outcome.failed, outcome.failed
    summary = out / "summary"
    card = pd.read_csv(summary / "recovery_scorecard.csv", keep_default_na=False, na_values=["", "NaN"])
    params = pd.read_csv(summary / "recovery_parameters.csv", keep_default_na=False, na_values=["NaN"])
    runs = pd.read_csv(summary / "runs.csv")
    print(card.to_string())
    print(runs[["task", "diagnostics", "failing_checks"]].to_string())
    return card.set_index(["kind", "driver"]), params, runs


def _coverage_is_nominal(card: pd.DataFrame, *, conservative: bool = False) -> None:
    """Intervals cover at about their nominal rates.

    ``conservative``: the truth has no borough variation at all, an SD of exactly 0 on
    the boundary of its prior. Bayesian intervals are calibrated on average over the
    prior, not at such a point: there the SD posterior stays away from 0 and the borough
    intervals are wider than they need be, so coverage may exceed the nominal rate (but
    must not fall below it).
    """
    assert card.loc[("london_effect", "all"), "coverage90"] >= 0.7
    cov90, cov50 = card.loc[("borough_slope", "all"), "coverage90"], card.loc[("borough_slope", "all"), "coverage50"]
    if conservative:
        assert cov90 >= 0.85 and cov50 >= 0.4
    else:
        assert 0.8 <= cov90 <= 0.99
        assert 0.35 <= cov50 <= 0.7


def test_scenario_equal_makes_almost_no_false_claims(tmp_path):
    card, params, _ = _scenario(tmp_path, "equal")
    _coverage_is_nominal(card, conservative=True)
    dev = card.loc[("borough_deviation", "all")]
    assert dev["null_deviations"] == 5 * 32 * 7
    # A 90% interval per borough would wrongly exclude 0 for 10% of boroughs if nothing were
    # pooled; the hierarchy shrinks null deviations together, so far fewer claims are made.
    assert dev["false_positive_rate"] <= 0.05
    # The data teach the model that little varies: on average the zero SDs' 95% upper bounds
    # lie well below their priors' 95% quantiles (HalfNormal(s): 1.96 s; s from
    # models/confidence.toml). Not every one does: a rare yes/no driver ("very well
    # informed") says little about its borough variation at 100 a borough.
    prior_sigma = {"sd_borough_slope": 0.3, "sd_ward_slope": 0.2}
    zero = params[params["boundary"].astype(bool)]
    assert len(zero) == 5 * (7 + 2)
    assert zero["q95"].mean() < 0.75 * (1.96 * zero["parameter"].map(prior_sigma)).mean()


def test_scenario_strong_one_ranks_the_boroughs_of_the_varying_driver(tmp_path):
    card, _, _ = _scenario(tmp_path, "strong_one")
    _coverage_is_nominal(card)
    # At 100 a borough the SD of 0.6 is under-estimated (about 25% low; docs/validation.md),
    # but the boroughs' order is still recovered.
    assert card.loc[("borough_slope", "visibility"), "slope_correlation"] >= 0.6


def test_scenario_strong_one_at_full_size_recovers_the_variation_too(tmp_path):
    card, _, _ = _scenario(tmp_path, "strong_one_400")
    _coverage_is_nominal(card)
    assert card.loc[("borough_slope", "visibility"), "slope_correlation"] >= 0.8
    assert 0.8 <= card.loc[("borough_slope", "visibility"), "coverage90"] <= 0.99
    assert card.loc[("sd", "sd_borough_slope[visibility]"), "coverage90"] >= 0.75


def test_scenario_few_named_finds_the_named_boroughs_without_false_alarms(tmp_path):
    card, params, _ = _scenario(tmp_path, "few_named")
    _coverage_is_nominal(card, conservative=True)
    dev = params[(params["kind"] == "borough_deviation") & (params["driver"] == "visibility")]
    named = dev[dev["truth"] > 0]
    assert set(named["borough"]) == {"Croydon", "Hackney", "Ealing"}
    # At 100 respondents a borough a +0.9 deviation in three boroughs is shrunk hard (the
    # 90% intervals rarely exclude 0), but the ranking still puts them near the top.
    assert card.loc[("borough_deviation", "visibility"), "auc_positive_vs_null"] >= 0.8
    assert card.loc[("borough_deviation", "all"), "false_positive_rate"] <= 0.05


def test_scenario_null_driver_is_found_null(tmp_path):
    card, params, _ = _scenario(tmp_path, "null_driver")
    _coverage_is_nominal(card)
    informed = params[(params["kind"] == "london_effect") & (params["driver"] == "informed")]
    assert ((informed["q05"] < 0) & (informed["q95"] > 0)).sum() >= 4  # 0 inside the 90% interval
    assert card.loc[("borough_deviation", "informed"), "false_positive_rate"] <= 0.05


def test_scenario_ordinal_recovers_effects_and_cutpoint_spacing(tmp_path):
    card, _, _ = _scenario(tmp_path, "ordinal")
    _coverage_is_nominal(card)
    assert card.loc[("cutpoint_spacing", "all"), "coverage90"] >= 0.7
