import pytest

from pas_bayes.errors import SpecError
from pas_bayes.spec import DEFAULT_PRIORS, ModelSpec, load_spec, spec_from_dict

from .conftest import ROOT


@pytest.mark.parametrize("name, outcome", [("confidence", "confidence"), ("trust", "trust")])
def test_bundled_specs_load_and_point_at_the_bundled_survey(name, outcome):
    spec = load_spec(ROOT / "models" / f"{name}.toml")
    assert spec.outcome == outcome
    assert spec.data_path().resolve() == (ROOT / "data" / "pas_synthetic_FY23-24.csv").resolve()
    assert spec.sampler.name == "nutpie"
    assert spec.prior("borough_slope_sd") == {"dist": "HalfNormal", "sigma": 0.3}


def test_spec_round_trips_through_a_dict_with_the_same_digest():
    spec = load_spec(ROOT / "models" / "confidence.toml")
    again = spec_from_dict(spec.to_dict())
    assert again.digest() == spec.digest()
    assert again.to_dict() == spec.to_dict()


def test_digest_changes_with_any_setting():
    spec = ModelSpec(name="x")
    assert spec.with_sampler(seed=2).digest() != spec.digest()
    assert spec_from_dict({"model": {"name": "x"}, "priors": {
        "intercept": {"dist": "Normal", "mu": 0, "sigma": 2}}}).digest() != spec.digest()


def test_priors_not_given_keep_their_defaults():
    spec = spec_from_dict({"model": {"name": "x"},
                           "priors": {"ward_slope_sd": {"dist": "Exponential", "lam": 5}}})
    assert spec.prior("ward_slope_sd") == {"dist": "Exponential", "lam": 5.0}
    assert spec.prior("intercept") == DEFAULT_PRIORS["intercept"]


@pytest.mark.parametrize("table, match", [
    ({"model": {"name": "x", "outcome": "happiness"}}, "outcome 'happiness'"),
    ({"model": {"name": "x", "drivers": ["engagement", "luck"]}}, "driver 'luck'"),
    ({"model": {"name": "x", "drivers": ["engagement"], "ward_slopes": ["visibility"]}}, "ward_slopes"),
    ({"model": {"name": "x", "demographics": ["shoe_size"]}}, "shoe_size"),
    ({"model": {"name": "x"}, "priors": {"intercept": {"dist": "Cauchy", "alpha": 0, "beta": 1}}}, "Cauchy"),
    ({"model": {"name": "x"}, "priors": {"ward_slope_sd": {"dist": "Normal", "mu": 0, "sigma": 1}}},
     "positive family"),
    ({"model": {"name": "x"}, "priors": {"intercept": {"dist": "Normal", "mu": 0, "sigma": -1}}}, "> 0"),
    ({"model": {"name": "x"}, "priors": {"slope": {"dist": "Normal", "mu": 0, "sigma": 1}}}, "unknown"),
    ({"model": {"name": "x"}, "sampler": {"name": "gibbs"}}, "gibbs"),
    ({"model": {"name": "x"}, "sampler": {"drwas": 10}}, "drwas"),
    ({"model": {"name": "x"}, "sampler": {"adaptation": "dense"}}, "adaptation 'dense'"),
    ({"model": {"name": "x"}, "sampler": {"name": "pymc", "adaptation": "low_rank"}}, "nutpie's"),
    ({"model": {"name": "x"}, "sampler": {"retry_target_accept": 1.0}}, r"retry_target_accept must be .* \(got 1.0\)"),
    ({"model": {"name": "x"}, "sampler": {"retry_target_accept": 0.3}}, "or 0 for no retry"),
    ({"model": {"name": "x"}, "sampler": {"more_chains_below_ess": -1}}, r"must be 0 .* \(got -1\)"),
    ({"model": {"outcome": "trust"}}, "name"),
    ({"model": {"name": "x"}, "colour": "red"}, "colour"),
])
def test_bad_specs_are_refused_with_the_reason(table, match):
    with pytest.raises(SpecError, match=match):
        spec_from_dict(table)


def test_a_spec_file_that_is_not_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model\nname = 1")
    with pytest.raises(SpecError, match=r"bad\.toml"):
        load_spec(path)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.toml")
