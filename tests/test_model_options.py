"""Model options without sampling: specs, ordinal answers, weights, year designs, LOO arithmetic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from arviz_stats import loo as az_loo
from arviz_stats.loo import compare as az_compare
from scipy.special import expit

from pas_bayes.codebook import Codebook
from pas_bayes.comparison import compare_pointwise
from pas_bayes.errors import SpecError
from pas_bayes.model import build_model, design_weights, model_coords
from pas_bayes.simulate import SimulationSettings, simulate_survey, ward_vintage, write_simulation
from pas_bayes.spec import ModelSpec, load_spec, spec_from_dict
from pas_bayes.survey import read_survey

from .conftest import ROOT

OPTION_SPECS = ["confidence_ordinal", "trust_ordinal", "confidence_correlated", "confidence_ethnicity_slopes",
                "confidence_years", "confidence_weighted", "confidence_weighted_sw"]


@pytest.fixture(scope="module")
def survey_path(tmp_path_factory):
    settings = SimulationSettings(seed=21, per_borough=30)
    return write_simulation(simulate_survey(settings), tmp_path_factory.mktemp("opt"), settings)


@pytest.mark.parametrize("name", OPTION_SPECS)
def test_every_option_spec_loads_and_builds_on_its_data(name):
    spec = load_spec(ROOT / "models" / f"{name}.toml")
    survey = read_survey(spec.data_path(), spec)
    model = build_model(spec, survey.frame)
    assert np.isfinite(model.compile_logp()(model.initial_point()))


@pytest.mark.parametrize("changes, message", [
    ({"family": "probit"}, "family"),
    ({"correlated": ["region"]}, "correlated"),
    ({"correlated": ["ward"], "ward_slopes": []}, "need ward_slopes"),
    ({"demographic_slopes": {"religion": ["engagement"]}}, "not one of the demographics"),
    ({"demographic_slopes": {"ethnicity": ["height"]}}, "must list drivers"),
    ({"year_slopes": ["height"]}, "year_slopes"),
    ({"weights": "raked"}, "weights"),
    ({"priors": {"correlation": {"dist": "Normal", "mu": 0, "sigma": 1}}}, "must be LKJ"),
    ({"priors": {"driver_effect": {"dist": "LKJ", "eta": 2}}}, "correlation matrix only"),
])
def test_bad_model_options_are_refused_with_what_to_do(changes, message):
    table = {"model": {"name": "x", **{k: v for k, v in changes.items() if k != "priors"}},
             "priors": changes.get("priors", {})}
    with pytest.raises(SpecError, match=message):
        spec_from_dict(table)


def test_options_survive_the_round_trip_through_a_run_folder_table():
    spec = ModelSpec(name="x", family="cumulative", correlated=("borough",),
                     demographic_slopes={"ethnicity": ("engagement",)}, year_slopes=("engagement",),
                     weights="savitsky_williams")
    again = spec_from_dict(spec.to_dict())
    assert again == spec and again.digest() == spec.digest()


def test_answer_order_puts_positive_answers_on_top():
    book = Codebook.default()
    labels, first = book.answer_order("confidence")
    assert labels == ("Very poor", "Poor", "Fair", "Good", "Excellent") and first == 3
    labels, first = book.answer_order("trust")
    assert labels[first:] == ("Tend to agree", "Strongly agree") or set(labels[first:]) == set(
        book.outcomes["trust"].positive)


def test_reader_keeps_the_full_answer_consistent_with_the_binary_outcome(survey_path):
    spec = ModelSpec(name="x", family="cumulative")
    frame = read_survey(survey_path, spec).frame
    _, first = spec.codebook().answer_order("confidence")
    assert frame["answer"].between(0, 4).all()
    assert ((frame["answer"] >= first).astype(int) == frame["confidence"]).all()


def test_cumulative_model_intercept_is_the_log_odds_of_a_positive_answer(survey_path):
    """P(answer >= first positive) under the cumulative likelihood = expit(intercept + eta)."""
    spec = ModelSpec(name="x", family="cumulative", demographics=(), ward_slopes=())
    frame = read_survey(survey_path, spec).frame
    model = build_model(spec, frame)
    point = model.initial_point()
    point["cutpoints_ordered__"] = np.array([-2.0, np.log(1.5), np.log(1.0), np.log(2.0)])
    # At the initial point every borough deviation is 0, so beta is the boroughs' average.
    assert not point["z_borough_slope_mean"].any()
    point["beta_borough_mean"] = np.full(7, 0.3)
    def value(var):
        (out,) = model.replace_rvs_by_values([var])
        return model.compile_fn(out, inputs=model.value_vars, on_unused_input="ignore")(point)

    cut, intercept = value(model["cutpoints"]), value(model["intercept"])
    assert np.allclose(cut, [-2.0, -0.5, 0.5, 2.5]) and intercept == pytest.approx(-0.5)
    # Log-likelihood of one respondent by hand: cumulative logit at eta = x . beta (centred x).
    x = frame[list(spec.drivers)].to_numpy() - frame[list(spec.drivers)].to_numpy().mean(axis=0)
    eta = x @ np.full(7, 0.3)
    upper = np.append(cut, np.inf)[frame["answer"]]
    lower = np.insert(cut, 0, -np.inf)[frame["answer"]]
    by_hand = np.log(expit(upper - eta) - expit(lower - eta)).sum()
    loglik = model.compile_fn(model.observedlogp, inputs=model.value_vars, on_unused_input="ignore")(point)
    assert np.isfinite(by_hand)
    assert loglik == pytest.approx(by_hand, rel=1e-6)


def test_design_weights_split_the_weight_into_parts_whose_product_is_the_weight(survey_path):
    frame = read_survey(survey_path, ModelSpec(name="x")).frame
    coords = model_coords(ModelSpec(name="x"), frame)
    b = frame["borough"].map({v: i for i, v in enumerate(coords["borough"])}).to_numpy()
    w = frame["ward"].map({v: i for i, v in enumerate(coords["ward"])}).to_numpy()
    parts = design_weights(frame, "savitsky_williams", b, w)
    product = parts["borough"][b] * parts["ward"][w] * parts["respondent"]
    scaled = frame["weight"].to_numpy() / frame["weight"].mean()
    # Equal up to one constant (each part is scaled to average 1 at its own level).
    ratio = product / scaled
    assert np.allclose(ratio, ratio[0])
    assert parts["borough"].mean() == pytest.approx(1.0)
    ward_borough = b[np.unique(w, return_index=True)[1]]
    assert np.allclose(np.bincount(ward_borough, parts["ward"]) / np.bincount(ward_borough), 1.0)
    assert np.allclose(np.bincount(w, parts["respondent"]) / np.bincount(w), 1.0)
    pseudo = design_weights(frame, "pseudo", b, w)["respondent"]
    assert pseudo.mean() == pytest.approx(1.0) and np.allclose(pseudo, scaled)


@pytest.mark.parametrize("weights", ["pseudo", "savitsky_williams"])
def test_equal_weights_give_the_unweighted_log_density(survey_path, weights):
    spec = ModelSpec(name="x", correlated=("borough",))
    frame = read_survey(survey_path, spec).frame.assign(weight=1.7)
    plain = build_model(spec, frame)
    weighted = build_model(replace(spec, weights=weights), frame)
    point = plain.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + 0.1 * rng.standard_normal(np.shape(v)) for k, v in point.items()}
    assert weighted.compile_logp()(point) == pytest.approx(plain.compile_logp()(point), rel=1e-9)


def test_savitsky_williams_weights_a_group_prior_by_its_weight(survey_path):
    """A borough's prior density counts w_b times: the log density moves by sum_b (w_b - 1) log p(effects_b)."""
    spec = ModelSpec(name="x", weights="savitsky_williams", demographics=(), ward_slopes=())
    frame = read_survey(survey_path, spec).frame.assign(weight=1.0)
    first = frame["borough"] == frame["borough"].iloc[0]
    heavy = frame.assign(weight=np.where(first, 3.0, 1.0))
    base, weighted = build_model(spec, frame), build_model(spec, heavy)
    coords = model_coords(spec, heavy)
    parts = design_weights(heavy, "savitsky_williams",
                           heavy["borough"].map({v: i for i, v in enumerate(coords["borough"])}).to_numpy(),
                           heavy["ward"].map({v: i for i, v in enumerate(coords["ward"])}).to_numpy())
    assert parts["borough"][0] > 1.0 and np.allclose(parts["ward"], 1.0) and np.allclose(parts["respondent"], 1.0)
    point = base.initial_point()
    rng = np.random.default_rng(1)
    point = {k: v + 0.2 * rng.standard_normal(np.shape(v)) for k, v in point.items()}
    sd0 = np.exp(point["sd_borough_intercept_log__"])
    sd = np.exp(point["sd_borough_slope_log__"])
    effects = base.replace_rvs_by_values([base["borough_intercept"], base["borough_slope_dev"]])
    a, u = base.compile_fn(effects, inputs=base.value_vars, on_unused_input="ignore")(point)
    z0, z = a / sd0, u / sd
    # Density of the centred effects (a_b, u_b) = (sd0 z0, sd z) per borough.
    log_prior = (-0.5 * z0**2 - 0.5 * (z**2).sum(axis=1) - 4.0 * np.log(2 * np.pi)
                 - np.log(sd0) - np.log(sd).sum())
    extra = weighted.compile_logp()(point) - base.compile_logp()(point)
    assert extra == pytest.approx(((parts["borough"] - 1.0) * log_prior).sum(), rel=1e-6)


def test_several_years_get_year_effects_and_wards_from_both_boundary_sets(tmp_path):
    settings = SimulationSettings(seed=4, per_borough=20, years=("FY 21-22", "FY 22-23"))
    path = write_simulation(simulate_survey(settings), tmp_path, settings)
    assert path.name == "pas_synthetic_FY21-22_to_FY22-23.csv"
    assert [ward_vintage(y) for y in settings.years] == [2018, 2022]
    spec = ModelSpec(name="x", year_slopes=("engagement",))
    frame = read_survey(path, spec).frame
    coords = model_coords(spec, frame)
    assert coords["year"] == ["FY 21-22", "FY 22-23"]
    wards_by_year = frame.groupby("financial_year")["ward"].agg(set)
    assert not wards_by_year.iloc[0] & wards_by_year.iloc[1]  # synthetic 2018 and 2022 codes differ
    model = build_model(spec, frame)
    assert {"year_intercept", "year_slope_dev"} <= set(model.named_vars)


def test_pointwise_comparison_matches_arviz_compare():
    """compare_pointwise's ELPD differences and SEs equal arviz_stats.compare's on the same log-likelihoods."""
    rng = np.random.default_rng(3)
    n, chains, draws = 300, 2, 500
    y = rng.normal(size=n)
    trees, tables = {}, {}
    for name, shift in (("good", 0.0), ("bad", 0.4)):
        mu = rng.normal(shift, 0.05, size=(chains, draws, 1))
        ll = -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)
        tree = xr.DataTree.from_dict({
            "posterior": xr.Dataset({"mu": (("chain", "draw"), mu[..., 0])}),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)})})
        trees[name] = tree
        result = az_loo(tree, pointwise=True)
        tables[name] = pd.DataFrame({"row": np.arange(n), "elpd_loo": result.elpd_i.values,
                                     "pareto_k": result.pareto_k.values})
    ours = compare_pointwise(tables, "row").set_index("model")
    theirs = az_compare(trees, round_to="none")
    assert ours.index[0] == "good" and theirs.index[0] == "good"
    assert ours.loc["bad", "elpd_diff"] == pytest.approx(float(theirs.loc["bad", "elpd_diff"]), rel=1e-6)
    assert ours.loc["bad", "dse"] == pytest.approx(float(theirs.loc["bad", "dse"]), rel=1e-6)
    shuffled = tables["bad"].sample(frac=1.0, random_state=0)  # order of rows must not matter
    again = compare_pointwise({"good": tables["good"], "bad": shuffled}, "row").set_index("model")
    assert again.loc["bad", "elpd_diff"] == pytest.approx(ours.loc["bad", "elpd_diff"])


def test_missing_item_rule_is_reported_per_driver(survey_path):
    lenient = read_survey(survey_path, ModelSpec(name="x"))
    strict = read_survey(survey_path, replace(ModelSpec(name="x"), data=replace(ModelSpec(name="x").data,
                                                                                 min_items_answered=3)))
    for survey in (lenient, strict):
        kept = len(survey.frame)
        table = survey.driver_scaling.set_index("driver")
        assert ((table["kept_all_items"] + table["kept_some_items"]) == kept).all()
        assert survey.exclusions["rows"].sum() == survey.n_input_rows
    eff_lenient = lenient.driver_scaling.set_index("driver").loc["security"]  # 3 items: all needed
    eff_strict = strict.driver_scaling.set_index("driver").loc["security"]
    assert eff_lenient["rows_below_minimum"] < eff_strict["rows_below_minimum"]
    assert eff_strict["kept_some_items"] == 0 and eff_lenient["kept_some_items"] > 0
    assert len(strict.frame) < len(lenient.frame)
    reasons = strict.exclusions["reason"].str.contains("fewer than 3 of its")
    assert reasons.any()


@pytest.mark.parametrize("family", ["bernoulli", "cumulative"])
def test_pointwise_log_likelihood_matches_pymc(survey_path, family):
    """The log-likelihood LOO uses (from the stored posterior) equals PyMC's for the same draws."""
    import pymc as pm

    from pas_bayes.comparison import pointwise_log_likelihood
    from pas_bayes.fit import sample_posterior

    spec = ModelSpec(name="x", family=family, demographics=("ethnicity",), demographic_slopes={
        "ethnicity": ("engagement",)}).with_sampler(draws=30, tune=30, chains=1, seed=2)
    frame = read_survey(survey_path, spec).frame
    model = build_model(spec, frame)
    idata = sample_posterior(model, spec, progressbar=False)
    ours = pointwise_log_likelihood(idata).values
    for rv in model.rvs_to_initial_values:  # PyMC's rebuild refuses explicit initial values
        model.rvs_to_initial_values[rv] = None
    theirs = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                       progressbar=False)[spec.outcome].values
    assert ours.shape == theirs.shape
    assert np.allclose(ours, theirs, atol=1e-6)
