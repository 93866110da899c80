import numpy as np
import pymc as pm
import pytest

from pas_bayes.model import build_model, model_coords
from pas_bayes.spec import ModelSpec, spec_from_dict
from pas_bayes.survey import read_survey


@pytest.fixture(scope="module")
def frame(small_survey):
    return read_survey(small_survey, ModelSpec(name="t")).frame


def test_every_variable_is_labelled(frame):
    spec = ModelSpec(name="t")
    model = build_model(spec, frame)
    dims = model.named_vars_to_dims
    assert dims["beta"] == ("driver",)
    assert dims["borough_slope"] == ("borough", "driver")
    assert dims["ward_slope_dev"] == ("ward", "ward_driver")
    assert dims["effect_ethnicity"] == ("ethnicity",)
    assert list(model.coords["driver"]) == list(spec.drivers)
    assert list(model.coords["ward_driver"]) == ["engagement", "visibility"]
    assert len(model.coords["borough"]) == 32
    assert set(model.coords["ward"]) == set(frame["ward"])
    assert "Black" in model.coords["ethnicity"]


def test_ward_borough_map_and_indices_match_the_frame(frame):
    spec = ModelSpec(name="t")
    model = build_model(spec, frame)
    coords = model_coords(spec, frame)
    ward_borough = model["ward_borough_idx"].get_value()
    ward_idx = model["ward_idx"].get_value()
    borough_idx = model["borough_idx"].get_value()
    assert (np.array(coords["borough"])[ward_borough[ward_idx]] == frame["borough"].to_numpy()).all()
    assert (np.array(coords["borough"])[borough_idx] == frame["borough"].to_numpy()).all()
    assert (np.array(coords["ward"])[ward_idx] == frame["ward"].to_numpy()).all()


def test_group_effects_are_non_centred(frame):
    model = build_model(ModelSpec(name="t"), frame)
    free = {v.name for v in model.free_RVs}
    assert {"z_borough_slope_dev", "z_ward_intercept", "z_ward_slope", "z_ethnicity"} <= free
    assert "borough_slope_dev" in {v.name for v in model.deterministics}
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_no_ward_slopes_means_no_ward_slope_parameters(frame):
    spec = spec_from_dict({"model": {"name": "t", "ward_slopes": [], "demographics": ["ethnicity"]}})
    model = build_model(spec, frame)
    assert "z_ward_slope" not in model.named_vars and "z_age" not in model.named_vars


def test_priors_come_from_the_spec(frame):
    spec = spec_from_dict({"model": {"name": "t", "drivers": ["engagement"], "ward_slopes": []},
                           "priors": {"driver_effect": {"dist": "Normal", "mu": 3.0, "sigma": 0.1},
                                      "borough_slope_sd": {"dist": "HalfNormal", "sigma": 2.0}}})
    model = build_model(spec, frame)
    prior = pm.sample_prior_predictive(draws=2000, model=model, random_seed=1, var_names=["beta", "sd_borough_slope"])
    beta = prior["prior"]["beta"].values.ravel()
    sd = prior["prior"]["sd_borough_slope"].values.ravel()
    assert beta.mean() == pytest.approx(3.0, abs=0.02) and beta.std() == pytest.approx(0.1, rel=0.1)
    assert sd.mean() == pytest.approx(2.0 * np.sqrt(2 / np.pi), rel=0.08)


def test_a_further_demographic_named_in_the_spec_gets_its_own_random_intercept(small_survey):
    """Any column can be a demographic: declare it under [codebook.demographics] and list it."""
    spec = spec_from_dict({
        "model": {"name": "t", "drivers": ["engagement"], "ward_slopes": [],
                  "demographics": ["ethnicity", "quarter"]},
        "codebook": {"demographics": {"quarter": {"column": "Quarter", "label": "Interview quarter"}}},
    })
    frame = read_survey(small_survey, spec).frame
    model = build_model(spec, frame)
    assert model.named_vars_to_dims["effect_quarter"] == ("quarter",)
    assert list(model.coords["quarter"]) == ["Q1", "Q2", "Q3", "Q4"]
    assert "sd_quarter" in model.named_vars



@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize("prior", [{"dist": "Normal", "mu": 0.2, "sigma": 1.0},
                                   {"dist": "StudentT", "nu": 4.0, "mu": -0.1, "sigma": 0.7}])
def test_london_effects_sampled_as_the_borough_average_keep_the_plain_prior(frame, prior, centred):
    """Sampling the boroughs' average apart is a change of variables: the log density of the
    new coordinates equals that of the plain ``beta ~ prior, z_b ~ Normal(0, 1)`` form at the
    same effects (``a_b ~ Normal(0, sd)`` when the boroughs are centred), up to one constant."""
    from scipy import stats

    model_table = {"name": "t", **({"centred": ["borough"]} if centred else {})}
    spec = spec_from_dict({"model": model_table, "priors": {"driver_effect": prior}})
    model = build_model(spec, frame)
    free = {v.name for v in model.free_RVs}
    assert {"beta_borough_mean", "intercept_borough_mean"} <= free and "beta" not in free
    parts = ("borough_intercept_dev", "borough_intercept_mean", "borough_slope_by_driver_dev",
             "borough_slope_by_driver_mean") if centred else \
        ("z_borough_intercept_dev", "z_borough_intercept_mean", "z_borough_slope_dev", "z_borough_slope_mean")
    assert set(parts) <= free and not {"borough_intercept", "borough_slope_dev"} & free
    changed = [model[n] for n in (*parts, "beta_borough_mean", "intercept_borough_mean")]
    new_terms = model.compile_logp(vars=changed)
    def at_point(*names):  # the variables' values at a point of the value variables
        outs = model.replace_rvs_by_values([model[n] for n in names])
        return model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")

    effects = at_point("beta", "intercept", "borough_intercept", "borough_slope_dev", "sd_borough_intercept",
                       "sd_borough_slope")
    family = stats.norm(prior["mu"], prior["sigma"]) if prior["dist"] == "Normal" else \
        stats.t(prior["nu"], prior["mu"], prior["sigma"])
    rng = np.random.default_rng(7)
    gaps = []
    for _ in range(5):
        point = {k: v + 0.5 * rng.standard_normal(np.shape(v)) for k, v in model.initial_point().items()}
        beta, alpha, a, u, sd0, sd = effects(point)
        plain = (family.logpdf(beta).sum() + stats.norm(0.0, 1.5).logpdf(alpha)
                 + stats.norm().logpdf(a / sd0).sum() + stats.norm().logpdf(u / sd).sum())
        if centred:  # the density of the effects themselves, not of their standardised z
            plain -= len(a) * np.log(sd0) + len(a) * np.log(sd).sum()
        gaps.append(new_terms(point) - plain)
    assert np.ptp(gaps) < 1e-8
    # The stored average is the boroughs' average effect.
    draw = effects(point)
    (average,) = at_point("beta_borough_mean")(point)
    assert np.allclose(average, (draw[0] + draw[3]).mean(axis=0))
