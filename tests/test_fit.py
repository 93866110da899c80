import json
import shutil

import pytest

from pas_bayes.compiled_models import forget_compiled
from pas_bayes.errors import RunFolderError
from pas_bayes.fit import POSTERIOR, fit_run, load_run
from pas_bayes.spec import spec_from_dict
from pas_bayes.survey import file_sha256, read_survey


def test_run_folder_describes_itself(small_run, small_survey):
    run = load_run(small_run)
    for name in (POSTERIOR, "spec.json", "spec.toml", "exclusions.csv", "item_missingness.csv",
                 "driver_scaling.csv", "provenance.json"):
        assert (small_run / name).exists(), name
    prov = run.provenance
    assert prov["data_sha256"] == file_sha256(small_survey)
    assert prov["spec_sha256"] == run.spec.digest()
    assert prov["seed"] == 5 and prov["sampler"]["name"] == "nutpie"
    assert run.spec.centred == "auto" and prov["centred_groupings"] == []  # a small survey: none
    assert prov["sampler"]["draws"] == 300 and prov["sampler"]["chains"] == 2
    assert {"pymc", "arviz", "nutpie", "numpy", "python"} <= set(prov["versions"])
    assert prov["wall_seconds"] > 0 and prov["command"][:2] == ["pas-bayes", "fit"]
    # Where the wall time went: every phase timed, together no more than the whole.
    phases = prov["phase_seconds"]
    assert set(phases) == {"model_build", "compile", "sampling", "posterior_write", "psis_loo",
                           "parameter_diagnostics"}
    assert min(phases.values()) >= 0 and phases["sampling"] == round(prov["sampling_seconds"], 2)
    assert sum(phases.values()) <= prov["wall_seconds"] + 0.05
    assert run.exclusions["rows"].sum() == prov["data_rows"]
    assert set(run.idata.children) >= {"posterior", "sample_stats", "observed_data", "constant_data"}
    # Two chains, or more when their ESS fell just short (sampler.more_chains_below_ess).
    added = sum(a.get("added_chains", 0) for a in prov["sampler_attempts"])
    assert run.idata["posterior"].sizes["chain"] == prov["chains_kept"] == 2 + added
    assert run.idata["posterior"].sizes["draw"] == 300
    # One attempt unless it diverged (then the kept draws are the last attempt's) or chains were added.
    attempts = prov["sampler_attempts"]
    if not added:
        assert attempts[-1]["divergences"] == int(run.idata["sample_stats"]["diverging"].sum())
    assert len(attempts) == 1 + (attempts[0]["divergences"] > 0) + (added > 0)
    assert sum(a["sampling_seconds"] for a in attempts) == pytest.approx(prov["sampling_seconds"])


def test_an_existing_run_is_not_overwritten_and_nothing_is_sampled(small_run, small_survey):
    spec = load_run(small_run).spec
    survey = read_survey(small_survey, spec)
    before = (small_run / "provenance.json").read_text()
    with pytest.raises(RunFolderError, match="--force"):
        fit_run(spec, survey, small_run)
    assert (small_run / "provenance.json").read_text() == before


def test_an_edited_spec_is_detected(small_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_run, copy)
    spec = json.loads((copy / "spec.json").read_text())
    spec["priors"]["intercept"]["sigma"] = 9.0
    (copy / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(RunFolderError, match="does not match"):
        load_run(copy)


def test_incomplete_folders_are_refused(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(RunFolderError, match="missing"):
        load_run(tmp_path / "half")
    with pytest.raises(RunFolderError, match="no such run folder"):
        load_run(tmp_path / "nothing")


def test_pymc_sampler_and_force_replace(small_survey, tmp_path):
    """PyMC's own NUTS runs through the same path, and --force replaces a run atomically."""
    spec = spec_from_dict({"model": {"name": "tiny", "drivers": ["engagement", "visibility"],
                                     "ward_slopes": [], "demographics": ["sex"]},
                           "sampler": {"name": "pymc", "draws": 60, "tune": 60, "chains": 2, "seed": 3}})
    survey = read_survey(small_survey, spec)
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    fit_run(spec, survey, out, force=True, progressbar=False)
    run = load_run(out)
    assert not (out / "stale.txt").exists()
    assert run.provenance["sampler"]["name"] == "pymc"
    assert "diverging" in run.idata["sample_stats"].data_vars
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_same_seed_same_draws(small_survey, tmp_path):
    """An explicit seed makes a fit repeatable: two fits of the same spec and data agree draw for draw."""
    spec = spec_from_dict({"model": {"name": "tiny", "drivers": ["engagement", "visibility"],
                                     "ward_slopes": ["visibility"], "demographics": ["ethnicity"]},
                           "sampler": {"draws": 50, "tune": 80, "chains": 2, "seed": 12}})
    survey = read_survey(small_survey, spec)
    forget_compiled()
    first = load_run(fit_run(spec, survey, tmp_path / "a", progressbar=False)).idata
    # The refit samples the model compiled for the first (same spec and data): the same draws.
    second = load_run(fit_run(spec, survey, tmp_path / "b", progressbar=False)).idata
    assert (first["posterior"]["beta"].values == second["posterior"]["beta"].values).all()
    other = load_run(fit_run(spec.with_sampler(seed=13, draws=40), survey, tmp_path / "c", progressbar=False)).idata
    assert not (first["posterior"]["beta"][:, :40].values == other["posterior"]["beta"].values).all()
    reused = [t["posterior"].attrs["compiled_model_reused"] for t in (first, second, other)]
    assert reused == [0, 1, 1]
    # The sampler's store (deleted in a thread while the run folder is finished) is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_a_fit_failing_after_sampling_leaves_nothing_behind(small_survey, tmp_path, monkeypatch):
    import pas_bayes.fit as fit

    spec = spec_from_dict({"model": {"name": "tiny", "drivers": ["engagement"], "ward_slopes": [], "demographics": []},
                           # (No ESS check after sampling: the failure is to come while writing the run folder.)
                           "sampler": {"draws": 60, "tune": 30, "chains": 1, "seed": 3, "more_chains_below_ess": 0}})
    survey = read_survey(small_survey, spec)

    def broken(*args, **kwargs):
        raise RuntimeError("diagnostics failed")

    monkeypatch.setattr(fit, "parameter_diagnostics", broken)
    with pytest.raises(RuntimeError, match="diagnostics failed"):
        fit_run(spec, survey, tmp_path / "run", progressbar=False)
    assert list(tmp_path.iterdir()) == []  # no run folder, no partial folder, no sampler's store


def _funnel():
    """Neal's funnel, centred: with a short warm-up at a low target acceptance its neck diverges."""
    import pymc as pm

    with pm.Model() as model:
        v = pm.Normal("v", 0.0, 3.0)
        pm.Normal("x", 0.0, pm.math.exp(v / 2), shape=9)
    return model


def _funnel_spec(**sampler):
    from pas_bayes.spec import ModelSpec

    return ModelSpec(name="funnel").with_sampler(draws=500, tune=300, chains=2, seed=3, **sampler)


def test_divergent_draws_are_sampled_again_at_the_retry_target_and_both_attempts_recorded(tmp_path):
    from pas_bayes.diagnostics import diagnose, divergences, sampler_attempts
    from pas_bayes.fit import sample_posterior, sample_until_clean

    model = _funnel()
    spec = _funnel_spec(target_accept=0.6, retry_target_accept=0.95)
    alone = sample_posterior(model, spec, progressbar=False)
    assert divergences(alone) > 0  # the premise: at 0.6 this funnel diverges
    store = tmp_path / "trace.zarr"
    idata = sample_until_clean(model, spec, progressbar=False, trace_store=store)
    attempts = sampler_attempts(idata)
    assert [a["target_accept"] for a in attempts] == [0.6, 0.95]
    assert attempts[0]["divergences"] == divergences(alone)  # the same seed: the same first attempt
    assert attempts[1]["divergences"] == divergences(idata)  # the kept draws are the retry's
    attrs = idata["posterior"].attrs
    assert attrs["target_accept"] == 0.95
    assert attrs["sampling_time"] == pytest.approx(sum(a["sampling_seconds"] for a in attempts))
    assert attrs["compile_time"] == pytest.approx(sum(a["compile_seconds"] for a in attempts))
    # The first attempt's store is gone; the retry streamed to its own.
    assert not store.exists() and store.with_name("trace.zarr.retry").is_dir()
    assert not (idata["posterior"]["v"].values == alone["posterior"]["v"].values).all()
    # The diagnostics show the discarded attempt, whatever the retry found.
    check = diagnose(idata).table().set_index("check").loc["divergent transitions"]
    assert "attempt 1 at target acceptance 0.6: " + str(attempts[0]["divergences"]) in check["worst"]
    assert "attempt 2's at 0.95" in check["worst"]


@pytest.mark.parametrize("retry", [0.0, 0.6, 0.5])
def test_no_retry_when_it_is_off_or_not_above_the_target(retry):
    from pas_bayes.diagnostics import divergences, sampler_attempts
    from pas_bayes.fit import sample_until_clean

    idata = sample_until_clean(_funnel(), _funnel_spec(target_accept=0.6, retry_target_accept=retry),
                               progressbar=False)
    assert divergences(idata) > 0  # kept, and shown by the diagnostics as any divergence is
    assert sampler_attempts(idata) == [{"target_accept": 0.6, "divergences": divergences(idata),
                                        "sampling_seconds": idata["posterior"].attrs["sampling_time"],
                                        "compile_seconds": idata["posterior"].attrs["compile_time"]}]


def _normals():
    import pymc as pm

    with pm.Model() as model:
        pm.Normal("a", 0.0, 1.0, shape=4)
    return model


@pytest.mark.parametrize(("ess", "chains", "cores", "added"), [
    (400.0, 4, 2, 0),  # enough
    (381.0, 4, 2, 2),  # a round of two: 1 would do (4 * (440 / 381 - 1) = 0.6)
    (381.0, 4, 1, 1),
    (250.0, 4, 2, 4),  # 3.04 wanted, a whole round: 4
    (230.0, 4, 4, 4),
    (150.0, 4, 2, 0),  # 7.7 wanted: more than doubling, so longer chains are the remedy
])
def test_chains_are_added_in_whole_rounds_and_only_when_at_most_doubling_reaches_the_target(ess, chains, cores,
                                                                                             added):
    from pas_bayes.fit import _chains_to_add

    assert _chains_to_add(ess, 400, chains, cores) == added


def test_a_fit_just_short_of_the_ess_target_gets_more_chains_kept_with_the_first(tmp_path):
    import numpy as np
    import xarray as xr

    from pas_bayes.diagnostics import diagnose, divergences, sampler_attempts
    from pas_bayes.fit import lowest_ess, open_posterior_tree, sample_posterior, sample_until_clean, write_tree
    from pas_bayes.spec import ModelSpec

    model = _normals()
    spec = ModelSpec(name="normals").with_sampler(draws=150, tune=200, chains=2, cores=2, seed=3,
                                                  more_chains_below_ess=0)
    alone = sample_posterior(model, spec, progressbar=False)
    assert divergences(alone) == 0
    ess, kind, parameter = lowest_ess(alone)
    # A target half as high again as these draws' lowest ESS: 2 * (1.65 - 1) -> 2 chains more.
    needed = int(ess * 1.5)
    store = tmp_path / "trace.zarr"
    idata = sample_until_clean(model, spec.with_sampler(more_chains_below_ess=needed), progressbar=False,
                               trace_store=store)
    post = idata["posterior"]
    assert post.sizes["chain"] == 4 and list(post["chain"].values) == [0, 1, 2, 3]
    assert idata["sample_stats"].sizes["chain"] == 4
    # The first two chains are the fit's own (the same seed), the two more are new ones.
    np.testing.assert_array_equal(post["a"].values[:2], alone["posterior"]["a"].values)
    assert not np.isin(post["a"].values[2:], alone["posterior"]["a"].values).any()
    attempts = sampler_attempts(idata)
    assert len(attempts) == 2 and attempts[1]["added_chains"] == 2 and attempts[1]["seed"] != 3
    assert attempts[1]["because"] == f"{kind} ESS {ess:.0f} ({parameter}) below {needed} after 2 chains"
    assert post.attrs["sampling_time"] == pytest.approx(sum(a["sampling_seconds"] for a in attempts))
    assert store.is_dir() and store.with_name("trace.zarr.more").is_dir()
    # The added chains lift the lowest ESS (it grows with the chains), and the report says why they are there.
    assert lowest_ess(idata)[0] > ess
    ess_check = diagnose(idata).table().set_index("check").loc["bulk ESS (min)"]
    assert "attempt 2 added 2 chains (seed " in ess_check["worst"]
    # Written as a run folder's posterior and read back: every chain, as sampled.
    write_tree(idata, tmp_path / "posterior.zarr")
    back = open_posterior_tree(tmp_path / "posterior.zarr")
    xr.testing.assert_equal(back["posterior"]["a"].compute(), post["a"].compute())
    assert back["sample_stats"].sizes["chain"] == 4


def test_no_chains_are_added_when_it_is_off_or_the_ess_is_enough():
    from pas_bayes.diagnostics import sampler_attempts
    from pas_bayes.fit import lowest_ess, sample_until_clean
    from pas_bayes.spec import ModelSpec

    spec = ModelSpec(name="normals").with_sampler(draws=150, tune=200, chains=2, cores=2, seed=3)
    off = sample_until_clean(_normals(), spec.with_sampler(more_chains_below_ess=0), progressbar=False)
    ess = lowest_ess(off)[0]
    on = sample_until_clean(_normals(), spec.with_sampler(more_chains_below_ess=int(ess * 1.5)),
                            progressbar=False)
    assert on["posterior"].sizes["chain"] == 4  # the premise: the same fit with it on adds chains
    enough = sample_until_clean(_normals(), spec.with_sampler(more_chains_below_ess=int(ess)), progressbar=False)
    for idata in (off, enough):
        assert idata["posterior"].sizes["chain"] == 2 and len(sampler_attempts(idata)) == 1
