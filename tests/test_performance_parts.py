"""The pieces that make the default fit fast and lean give the same answers as the plain ones.

The fused Bernoulli-logit likelihood against exact values and PyMC's Bernoulli (value
and gradient; the whole model's log-likelihood against PyMC's in
``test_model_options``), draws streamed to zarr against draws held in memory, ward effects
recomputed on reading against ``z * sd``, and PSIS-LOO taken a
chunk of respondents at a time against ArviZ on the whole matrix.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from arviz_stats import loo

from pas_bayes.chunk_files import read_whole_array
from pas_bayes.comparison import loo_tables, pointwise_log_likelihood
from pas_bayes.fit import load_run, sample_posterior
from pas_bayes.likelihood import bernoulli_logit, bernoulli_logit_logp
from pas_bayes.model import build_model, restore_ward_effects, stored_variables
from pas_bayes.predictions import load_posterior
from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation
from pas_bayes.spec import ModelSpec, SpecError
from pas_bayes.survey import read_survey


@pytest.fixture(scope="module")
def survey_path(tmp_path_factory):
    settings = SimulationSettings(seed=23, per_borough=30)
    return write_simulation(simulate_survey(settings), tmp_path_factory.mktemp("perf"), settings)


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE", "JAX"])
def test_fused_likelihood_equals_pymc_bernoulli_in_value_and_gradient(mode):
    if mode == "JAX":
        from pas_bayes.likelihood import register_jax

        register_jax()
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.6).astype("int64")
    eta_value = np.concatenate([rng.normal(0, 3, 396), [-40.0, 40.0, 0.0, 1e-12]])
    eta = pt.vector("eta")
    ours = bernoulli_logit_logp(pt.as_tensor(y), eta)
    theirs = pm.logp(pm.Bernoulli.dist(logit_p=eta), y)
    f = pytensor.function([eta], [ours, theirs, pytensor.grad(ours.sum(), eta),
                                  pytensor.grad(theirs.sum(), eta)], mode=mode)
    lp, lp_pymc, g, g_pymc = f(eta_value)
    # Exact values from NumPy/SciPy (PyMC's graph is only exact once rewritten, as in NUMBA mode).
    from scipy.special import expit
    assert np.allclose(lp, y * eta_value - np.logaddexp(0, eta_value), rtol=1e-12, atol=1e-13)
    assert np.allclose(g, y - expit(eta_value), rtol=1e-12, atol=1e-13)
    if mode == "NUMBA":
        assert np.allclose(lp, lp_pymc, rtol=1e-12, atol=1e-13)
        assert np.allclose(g, g_pymc, rtol=1e-12, atol=1e-13)
    assert np.isfinite(lp).all()


def test_fused_likelihood_is_exact_to_rounding_over_the_whole_range():
    """The Numba loop's own exp and log (written out to vectorise) against long-double NumPy, -800 to 800."""
    rng = np.random.default_rng(11)
    # Dense where answers are (|eta| < 10), every binade out to where exp underflows, the
    # points where the reductions switch (k changes at odd multiples of ln(2) / 2; log's
    # branch at t = sqrt(2) - 1) and their neighbours, and the tiny and zero values.
    binades = 2.0 ** np.arange(-60, 10)
    switches = np.concatenate([(np.arange(1, 2200, 2) * np.log(2) / 2), [-np.log(np.sqrt(2) - 1)]])
    eta_value = np.concatenate([rng.uniform(-10, 10, 20000), binades, -binades, switches, -switches,
                                np.nextafter(switches, 0), -np.nextafter(switches, 0),
                                [0.0, -0.0, 5e-324, 744.0, -744.0, 746.0, -746.0, 800.0, -800.0]])
    y = (rng.random(eta_value.size) < 0.5).astype("float64")
    eta = pt.vector("eta")
    f = pytensor.function([eta], list(bernoulli_logit(pt.as_tensor(y), eta)), mode="NUMBA")
    lp_value, slope_value = f(eta_value)
    # The truth in 80-bit long doubles, in forms without cancellation.
    e = eta_value.astype(np.longdouble)
    exact_lp = np.where(y == 1, -np.log1p(np.exp(-e)), -np.log1p(np.exp(e)))
    exact_slope = np.where(y == 1, 1 / (1 + np.exp(e)), -1 / (1 + np.exp(-e)))
    # A few units in the last place (absolute below the smallest normal double, where the
    # answers themselves are subnormal).
    for ours, exact in ((lp_value, exact_lp), (slope_value, exact_slope)):
        error = np.abs(ours - exact)
        allowed = np.maximum(4 * np.finfo(float).eps * np.abs(exact), 4 * np.finfo(float).tiny)
        assert np.all(error <= allowed), eta_value[error > allowed][:5]


def test_power_of_two_from_exponent_bits_is_ldexp_over_every_k():
    """``p * 2**-k`` built from exponent bits equals ``ldexp`` exactly, subnormal results included."""
    import numba

    from pas_bayes.likelihood import _times_pow2_neg

    @numba.njit
    def scaled(p, k):
        out = np.empty(p.size)
        for i in range(p.size):
            out[i] = _times_pow2_neg(p[i], k[i])
        return out

    rng = np.random.default_rng(5)
    # exp(r) on |r| <= ln(2) / 2 lies in [0.707, 1.415]; every k the reduction can give.
    k = np.repeat(np.arange(0, 1076), 20)
    p = rng.uniform(0.70, 1.42, k.size)
    got = scaled(p, k.astype(float))
    assert np.array_equal(got, np.ldexp(p, -k)), k[got != np.ldexp(p, -k)][:5]
    assert (got[k > 1022] < np.finfo(float).tiny).all()  # the subnormal range was reached


def test_fused_likelihood_second_output_has_a_true_gradient():
    """Differentiating the slope output too (second order) matches finite differences."""
    eta = pt.vector("eta")
    y = pt.as_tensor(np.array([1.0, 0.0, 1.0]))
    _, slope = bernoulli_logit(y, eta)
    f = pytensor.function([eta], pytensor.grad(slope.sum(), eta), mode="FAST_COMPILE")
    x = np.array([-1.0, 0.3, 2.0])
    p = 1 / (1 + np.exp(-x))
    assert np.allclose(f(x), -p * (1 - p))


def test_streamed_draws_equal_draws_held_in_memory(survey_path, tmp_path, monkeypatch):
    import pas_bayes.fit as fit

    direct = []  # the small variables read straight from the store's chunk files
    monkeypatch.setattr(fit, "read_whole_array", lambda path: direct.append(path.name) or read_whole_array(path))
    spec = ModelSpec(name="x", demographics=("sex",)).with_sampler(draws=40, tune=40, chains=2, seed=9)
    frame = read_survey(survey_path, spec).frame
    model = build_model(spec, frame)
    names = stored_variables(model)
    assert "ward_intercept" not in names and "z_ward_intercept" in names
    held = sample_posterior(model, spec, progressbar=False, var_names=names)
    streamed = sample_posterior(model, spec, progressbar=False, var_names=names, trace_store=tmp_path / "t.zarr")
    # The store also holds every transformed value (sd_log__, ...): the tree keeps the model's own.
    assert set(streamed["posterior"].data_vars) == set(held["posterior"].data_vars)
    for var in held["posterior"].data_vars:
        assert np.array_equal(held["posterior"][var].values, streamed["posterior"][var].values), var
    assert np.array_equal(held["sample_stats"]["diverging"].values, streamed["sample_stats"]["diverging"].values)
    assert {"beta", "sd_ward_intercept", "diverging", "energy"} <= set(direct)
    assert set(streamed.children) >= {"posterior", "sample_stats", "constant_data", "observed_data"}
    # The data groups are the model's own arrays, not copies (40 MB at 242,000 respondents).
    assert np.shares_memory(streamed["constant_data"]["design"].values, model["design"].get_value(borrow=True))
    assert set(streamed["constant_data"].data_vars) == {v.name for v in model.data_vars}
    # Through pm.sample the same seed gives the same draws: one seed, one answer, whichever path.
    with model, pytensor.config.change_flags(numba__fastmath=False):
        via_pymc = pm.sample(draws=40, tune=40, chains=2, cores=2, random_seed=9, nuts_sampler="nutpie",
                             nuts={"target_accept": spec.sampler.target_accept}, progressbar=False, var_names=names)
    assert np.array_equal(via_pymc["posterior"]["beta"].values, held["posterior"]["beta"].values)


def test_run_folder_omits_ward_effects_and_reading_restores_them(small_run):
    stored = xr.open_datatree(small_run / "posterior.zarr", engine="zarr", consolidated=False)
    assert "ward_intercept" not in stored["posterior"].data_vars
    post = load_run(small_run).idata["posterior"]
    assert np.allclose(post["ward_intercept"].values,
                       post["z_ward_intercept"].values * post["sd_ward_intercept"].values[..., None])
    assert post["ward_slope_dev"].dims == ("chain", "draw", "ward", "ward_driver")
    assert np.allclose(post["ward_slope_dev"].values,
                       post["z_ward_slope"].values * post["sd_ward_slope"].values[:, :, None, :])


def test_chunked_loo_equals_arviz_on_the_whole_matrix(small_run):
    run = load_run(small_run)
    frame = read_survey(run.provenance["data_file"], run.spec).frame
    # Blocks of 3 wards' draws (the default holds about 80 wards a block), chunks of 7 respondents.
    per_ward = run.idata["posterior"].sizes["chain"] * run.idata["posterior"].sizes["draw"] * 8 * 8
    chunked = loo_tables(run.idata, frame, chunk=7, ward_block_bytes=3 * per_ward, threads=3)
    # Chunks computed side by side (and smaller: NumPy's vector sums then round in another
    # order) agree with one after another to rounding.
    one_thread = loo_tables(run.idata, frame, chunk=7, ward_block_bytes=3 * per_ward, threads=1)
    for a, b in ((chunked.respondents, one_thread.respondents), (chunked.wards, one_thread.wards)):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-14)
    whole = pointwise_log_likelihood(run.idata)
    tree = restore_ward_effects(run.idata.copy())
    ref = loo(xr_tree(whole, tree), pointwise=True, var_name="y")
    assert np.allclose(chunked.respondents["elpd_loo"], ref.elpd_i.values, atol=1e-8)
    assert np.allclose(chunked.respondents["pareto_k"], ref.pareto_k.values, atol=1e-8)
    total = chunked.summary["respondent"]
    assert total["elpd_loo"] == pytest.approx(float(ref.elpd), rel=1e-10)
    assert total["se"] == pytest.approx(float(ref.se), rel=1e-8)
    # p_loo: ArviZ forms the log pointwise predictive density its own way (agrees to 0.1%).
    assert total["p_loo"] == pytest.approx(float(ref.p), rel=1e-3)
    # Leaving out one ward: the same as summing each ward's respondents over the whole matrix.
    wards, ward_of = np.unique(frame["ward"].to_numpy(), return_inverse=True)
    flat = whole.values.reshape(-1, whole.sizes["obs"])
    by_ward = np.stack([flat[:, ward_of == w].sum(axis=1) for w in range(wards.size)], axis=1)
    ref_w = loo(xr_tree(xr.DataArray(by_ward.reshape(*whole.shape[:2], -1), dims=("chain", "draw", "ward")),
                        tree), pointwise=True, var_name="y")
    assert np.allclose(chunked.wards["elpd_loo"], ref_w.elpd_i.values, atol=1e-8)
    assert np.allclose(chunked.wards["pareto_k"], ref_w.pareto_k.values, atol=1e-8)


def test_loo_reading_whole_ward_regions_equals_reading_stored_chunks(small_run, monkeypatch):
    """The fit's PSIS-LOO reads a chain's every draw of 32 wards per dask chunk: the same tables, and
    blocks of whole chunks of wards (24 wards a block at the defaults would re-read chunks)."""
    import pas_bayes.comparison as comparison
    from pas_bayes.fit import POSTERIOR, WARD_BLOCK, open_posterior_by_ward

    run = load_run(small_run)
    frame = read_survey(run.provenance["data_file"], run.spec).frame
    by_ward = run.idata.copy()
    by_ward["posterior"] = xr.DataTree(open_posterior_by_ward(small_run / POSTERIOR))
    assert by_ward["posterior"]["z_ward_slope"].chunksizes["draw"] == (run.idata["posterior"].sizes["draw"],)
    blocks = []
    real = comparison.load_posterior
    monkeypatch.setattr(comparison, "load_posterior", lambda *a, **k: blocks.append(k["wards"]) or real(*a, **k))
    ours = loo_tables(restore_ward_effects(by_ward), frame)
    assert all(b.size % WARD_BLOCK == 0 and b[0] % WARD_BLOCK == 0 for b in blocks[:-1])
    reference = loo_tables(restore_ward_effects(run.idata.copy()), frame)
    pd.testing.assert_frame_equal(ours.respondents, reference.respondents)
    pd.testing.assert_frame_equal(ours.wards, reference.wards)


def test_ward_block_posterior_predicts_what_the_whole_posterior_does(small_run):
    run = load_run(small_run)
    full = load_posterior(run.idata, max_draws=200)
    wards = np.array([4, 0, 11])
    block = load_posterior(run.idata, max_draws=200, wards=wards)
    ward_idx = run.idata["constant_data"]["ward_idx"].values
    assert np.array_equal(block.rows, np.flatnonzero(np.isin(ward_idx, wards)))
    assert block.wards == [full.wards[w] for w in wards]
    assert np.allclose(block.eta(slice(None)), full.eta(slice(None))[:, block.rows], atol=1e-12)


def test_diagnostics_in_blocks_equal_arviz_on_the_whole_posterior(small_run, monkeypatch):
    import arviz as az

    import pas_bayes.diagnostics as diagnostics

    idata = load_run(small_run).idata
    whole = diagnostics.parameter_diagnostics(idata)
    # Blocks of a few elements: every large variable is then split along its first dimension.
    monkeypatch.setattr(diagnostics, "BLOCK_BYTES", 4_000)
    blocked = diagnostics.parameter_diagnostics(idata)
    assert list(blocked["parameter"]) == list(whole["parameter"])
    for column in ("r_hat", "ess_bulk", "ess_tail"):
        assert np.allclose(blocked[column], whole[column], rtol=1e-12), column
    ref = az.ess(idata["posterior"].to_dataset()[["ward_slope_dev"]].compute(),
                 method="bulk")["ward_slope_dev"].values.ravel()
    ours = blocked.loc[blocked["variable"] == "ward_slope_dev", "ess_bulk"].to_numpy()
    assert np.allclose(np.sort(ours), np.sort(ref), rtol=1e-12)


def test_large_variables_are_read_lazily_and_equal_the_stored_draws(small_run, monkeypatch):
    import pas_bayes.fit as fit

    monkeypatch.setattr(fit, "IN_MEMORY_BYTES", 10_000)
    lazy = load_run(small_run).idata["posterior"]
    monkeypatch.setattr(fit, "IN_MEMORY_BYTES", 2**40)
    held = load_run(small_run).idata["posterior"]
    assert lazy["z_ward_slope"].chunks is not None and held["z_ward_slope"].chunks is None
    assert lazy["ward_slope_dev"].chunks is not None  # recomputed lazily too
    assert lazy["sd_ward_intercept"].chunks is None  # small ones are in memory
    for var in held.data_vars:
        assert np.array_equal(lazy[var].values, held[var].values), var


def xr_tree(values, idata):
    return xr.DataTree.from_dict({"posterior": idata["posterior"].to_dataset()[["beta"]],
                                  "log_likelihood": xr.Dataset({"y": values})})


def test_centred_levels_are_named_effects_and_refused_with_correlation(survey_path):
    spec = ModelSpec(name="x", centred=("borough",))
    frame = read_survey(survey_path, spec).frame
    model = build_model(spec, frame)
    free = {v.name for v in model.free_RVs}
    # Centred, the boroughs' average still sampled apart (for the London effects).
    assert {"borough_intercept_dev", "borough_slope_by_driver_dev", "borough_slope_by_driver_mean"} <= free
    assert not {"z_borough_intercept_dev", "borough_intercept", "borough_slope_dev"} & free
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    with pytest.raises(SpecError, match="both centred and correlated"):
        dataclasses.replace(spec, correlated=("borough",))
    with pytest.raises(SpecError, match="centred names 'district'"):
        ModelSpec(name="x", centred=("district",))


def test_small_groupings_can_be_sampled_centred(survey_path):
    """``centred`` may name the year and demographics: their effects are then zero-sum normals
    with the group SD as their scale, the same prior as ``z * sd``."""
    spec = ModelSpec(name="x", demographics=("age", "sex"), demographic_slopes={"age": ("engagement",)},
                     centred=("age",))
    model = build_model(spec, read_survey(survey_path, spec).frame)
    free = {v.name for v in model.free_RVs}
    assert {"effect_age", "slope_dev_age_by_driver", "z_sex"} <= free
    assert not {"z_age", "z_age_slope", "effect_sex"} & free
    assert model["slope_dev_age"] in model.deterministics
    prior = pm.draw([model["sd_age"], model["effect_age"], model["slope_dev_age"]], draws=4000, random_seed=1)
    sd, effect, slope_dev = prior
    assert np.allclose(effect.sum(axis=1), 0.0, atol=1e-9) and np.allclose(slope_dev.sum(axis=1), 0.0, atol=1e-9)
    # Zero-sum normal over K levels with scale sd: each level's SD is sd * sqrt(1 - 1/K).
    k = effect.shape[1]
    assert np.std(effect / sd[:, None]) == pytest.approx(np.sqrt(1 - 1 / k), rel=0.05)
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    with pytest.raises(SpecError, match="centred names 'year_slope'"):
        ModelSpec(name="x", centred=("year_slope",))


def test_jax_route_gives_the_numba_log_density_and_samples_on_the_cpu(survey_path):
    """The JAX back end (the GPU route) computes the same density and samples the same posterior."""
    spec = ModelSpec(name="x", demographics=("sex",)).with_sampler(draws=300, tune=300, chains=2, seed=3)
    model = build_model(spec, read_survey(survey_path, spec).frame)
    from pymc.model.transform.optimization import freeze_dims_and_data

    from pas_bayes.likelihood import register_jax

    register_jax()
    frozen = freeze_dims_and_data(model)  # JAX needs static shapes (nutpie freezes them itself)
    rng = np.random.default_rng(4)
    point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in frozen.initial_point().items()}
    values = {mode: float(frozen.compile_logp(mode=mode)(point)) for mode in ("NUMBA", "JAX")}
    assert values["JAX"] == pytest.approx(values["NUMBA"], rel=1e-10)
    # nutpie differentiates this JAX log-density with JAX itself (gradient_backend="jax"), so equal
    # values give the gradient; the fused op's own JAX derivative is checked in the test above.

    jax_fit = sample_posterior(model, spec.with_sampler(backend="jax"), progressbar=False)
    numba_fit = sample_posterior(model, spec, progressbar=False)
    beta_j, beta_n = jax_fit["posterior"]["beta"], numba_fit["posterior"]["beta"]
    assert int(jax_fit["sample_stats"]["diverging"].sum()) == 0
    gap = np.abs(beta_j.mean(("chain", "draw")) - beta_n.mean(("chain", "draw")))
    assert float((gap / beta_n.std(("chain", "draw"))).max()) < 0.5


def test_jax_backend_is_a_nutpie_option():
    with pytest.raises(SpecError, match="backend = 'jax' is a nutpie back end"):
        ModelSpec(name="x").with_sampler(name="pymc", backend="jax")
    with pytest.raises(SpecError, match="backend 'cuda' is not supported"):
        ModelSpec(name="x").with_sampler(backend="cuda")


def test_jax_is_not_imported_until_asked_for():
    """A fit's process does not carry JAX (130 MB) unless the JAX back end is used."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "import pas_bayes.fit, pas_bayes.comparison, nutpie, arviz\n"
            "from scipy.special import logsumexp\n"
            "logsumexp(np.ones((3, 4)), axis=0)\n"
            "assert 'jax._src' not in sys.modules, 'jax was imported'\n"
            "import jax.numpy as jnp\n"
            "assert float(jnp.ones(3).sum()) == 3.0\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_freed_heap_memory_goes_back_to_the_system():
    from pas_bayes.memory import release_freed_memory

    def rss_mb() -> int:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

    before = rss_mb()
    blocks = [bytearray(60_000) for _ in range(3000)]  # 180 MB in glibc's heap, not mmap'd
    kept = blocks[::50]  # a few survivors pin the heap, as a reader's results do
    del blocks
    held = rss_mb()
    release_freed_memory()
    after = rss_mb()
    assert len(kept) == 60 and held - before > 100
    assert held - after > 0.7 * (held - before), (before, held, after)


def test_survey_table_is_categorical_and_merges_cells_that_read_the_same(survey_path, tmp_path):
    from pas_bayes.survey import read_table

    table = read_table(survey_path)
    assert all(isinstance(dtype, pd.CategoricalDtype) for dtype in table.dtypes)
    # A code a cell (a byte or two) plus each distinct answer once: text cells took 20+.
    assert table.memory_usage(deep=True).sum() / table.size < 4
    raw = pd.read_csv(survey_path, dtype=str, keep_default_na=False)
    raw.loc[:2, "Q60"] = [" Good", "Good ", np.nan]
    raw.to_csv(tmp_path / "s.csv", index=False)
    q60 = read_table(tmp_path / "s.csv")["Q60"]
    assert q60[:3].tolist() == ["Good", "Good", ""]
    assert list(q60.cat.categories).count("Good") == 1
    assert (q60[3:] == raw["Q60"][3:]).all()


def test_auto_centres_small_groupings_the_data_inform_well(survey_path):
    """``centred = "auto"``: a year or demographic of 3+ levels whose median level has
    CENTRED_FROM respondents is centred, a 2-level one from CENTRED_FROM_TWO_LEVELS, boroughs
    from CENTRED_BOROUGH_FROM a borough; a thin one and wards are not."""
    from pas_bayes.model import CENTRED_BOROUGH_FROM, CENTRED_FROM, CENTRED_FROM_TWO_LEVELS, centred_groupings

    spec = ModelSpec(name="x")
    assert spec.centred == "auto"
    frame = read_survey(survey_path, spec).frame
    assert centred_groupings(spec, frame) == frozenset()  # 30 a borough: every level thin
    rng = np.random.default_rng(3)
    big = frame.sample(n=16 * CENTRED_FROM, replace=True, random_state=3).reset_index(drop=True)
    big["financial_year"] = rng.choice(["FY 21-22", "FY 22-23", "FY 23-24"], size=len(big))
    counts = big["ethnicity"].value_counts()
    assert counts.median() >= CENTRED_FROM > counts.min()  # thin levels do not stop it
    chosen = centred_groupings(spec, big)
    assert chosen == {"year", "ethnicity", "age"}  # not sex: 2 levels of about 8,000
    # Two levels of CENTRED_FROM_TWO_LEVELS or more (five years of the survey) are centred too.
    bigger = frame.sample(n=int(2.2 * CENTRED_FROM_TWO_LEVELS), replace=True, random_state=4)
    assert bigger["sex"].value_counts().min() >= CENTRED_FROM_TWO_LEVELS
    assert centred_groupings(spec, bigger) == {"ethnicity", "age", "sex"}
    free = {v.name for v in build_model(spec, big).free_RVs}
    assert {"year_intercept", "effect_age", "effect_ethnicity", "z_sex", "z_ward_intercept"} <= free
    # Boroughs from CENTRED_BOROUGH_FROM respondents a borough (not at five years' 2,000).
    for share, centred in ((0.5, False), (1.2, True)):
        many = frame.sample(n=int(share * 32 * CENTRED_BOROUGH_FROM), replace=True, random_state=5)
        assert ("borough" in centred_groupings(spec, many)) is centred
        assert "borough" not in centred_groupings(dataclasses.replace(spec, correlated=("borough",)), many)
    # A list in the spec is taken as it is; an empty one centres nothing.
    assert centred_groupings(dataclasses.replace(spec, centred=()), big) == frozenset()
    assert centred_groupings(dataclasses.replace(spec, centred=("sex",)), big) == {"sex"}
    with pytest.raises(SpecError, match="give \"auto\" or a list"):
        ModelSpec(name="x", centred="sometimes")


def test_loo_on_at_most_max_draws_is_loo_of_every_kth_draw_of_each_chain(small_run):
    run = load_run(small_run)
    frame = read_survey(run.provenance["data_file"], run.spec).frame
    post = run.idata["posterior"]
    total = post.sizes["chain"] * post.sizes["draw"]
    capped = loo_tables(run.idata, frame, max_draws=total // 3)
    thinned = run.idata.copy()
    thinned["posterior"] = xr.DataTree(post.to_dataset().isel(draw=slice(None, None, 3)))
    every = loo_tables(thinned, frame, max_draws=None)
    assert capped.summary["respondent"]["n_draws"] == total // 3 == every.summary["respondent"]["n_draws"]
    assert np.allclose(capped.respondents["elpd_loo"], every.respondents["elpd_loo"], atol=1e-10)
    assert np.allclose(capped.wards["pareto_k"], every.wards["pareto_k"], atol=1e-10)
    # The fit's own tree is left as it was.
    assert run.idata["posterior"].sizes["draw"] == post.sizes["draw"]
    full = loo_tables(run.idata, frame, max_draws=None)
    assert full.summary["respondent"]["n_draws"] == total
    assert not np.allclose(full.respondents["elpd_loo"], capped.respondents["elpd_loo"])


def test_blocks_from_a_store_of_whole_wards_read_each_stored_chunk_once(tmp_path, monkeypatch):
    """A trace store chunked by draws with every ward in a chunk (nutpie's layout), cut into
    blocks of wards for the run folder: each stored chunk is read once, not once per block of
    wards, and every value lands where it was."""
    import dask
    import zarr.storage

    import pas_bayes.fit as fit

    monkeypatch.setattr(fit, "IN_MEMORY_BYTES", 0)  # every variable large enough to be blocked
    rng = np.random.default_rng(4)
    values = rng.standard_normal((2, 64, 100, 3))
    ds = xr.Dataset({"z_ward_slope": (("chain", "draw", "ward", "ward_driver"), values)})
    ds.to_zarr(tmp_path / "trace.zarr", encoding={"z_ward_slope": {"chunks": (1, 16, 100, 3)}})
    reads: list[str] = []
    get = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        reads.append(key)
        return await get(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    lazy = xr.open_dataset(tmp_path / "trace.zarr", engine="zarr", chunks=None)
    assert lazy["z_ward_slope"].chunks is None  # read lazily, as nutpie's trace is
    monkeypatch.setattr(fit, "DRAW_BLOCK", 32)
    monkeypatch.setattr(fit, "WARD_BLOCK", 10)
    blocked = fit._in_blocks(lazy)
    assert blocked["z_ward_slope"].chunks[2] == (10,) * 10
    with dask.config.set(scheduler="synchronous"):
        assert np.array_equal(blocked["z_ward_slope"].values, values)
    chunk_reads = [k for k in reads if k.startswith("z_ward_slope/c/")]
    assert len(chunk_reads) == len(set(chunk_reads)) == 2 * 4  # 2 chains x 4 chunks of 16 draws


def test_small_variables_are_written_as_one_chunk_not_in_the_trace_stores(tmp_path):
    """A variable held in memory goes to the run folder as one chunk, whatever chunks it was
    read with (nutpie's 16 draws): reading it back is then one read, not one per 16 draws."""
    import zarr

    import pas_bayes.fit as fit

    rng = np.random.default_rng(5)
    values = rng.standard_normal((2, 64, 7))
    xr.Dataset({"beta": (("chain", "draw", "driver"), values)}).to_zarr(
        tmp_path / "trace.zarr", encoding={"beta": {"chunks": (1, 16, 7)}})
    lazy = xr.open_dataset(tmp_path / "trace.zarr", engine="zarr", chunks=None)
    assert lazy["beta"].encoding["chunks"] == (1, 16, 7)
    fit._in_blocks(lazy).to_zarr(tmp_path / "run.zarr")
    stored = zarr.open_array(tmp_path / "run.zarr" / "beta", mode="r")
    assert stored.chunks == (2, 64, 7)
    assert np.array_equal(stored[...], values)


def test_small_variables_load_whatever_dask_scheduler_was_left_as_the_default():
    """A sweep's Client can leave dask's default scheduler set to one no longer running."""
    import dask
    import dask.array as da

    from pas_bayes.fit import _in_blocks

    ds = xr.Dataset({"beta": (("chain", "draw"), da.ones((2, 10), chunks=(1, 5)))})
    with dask.config.set(scheduler="dask.distributed"):  # no Client active
        loaded = _in_blocks(ds)
    assert isinstance(loaded["beta"].data, np.ndarray) and loaded["beta"].values.sum() == 20


def test_writing_large_variables_a_block_at_a_time_stores_what_to_zarr_stores(tmp_path):
    import dask.array as dsk
    import zarr

    from pas_bayes.fit import write_tree

    rng = np.random.default_rng(8)
    z = rng.standard_normal((2, 23, 10, 3))
    posterior = xr.Dataset({
        "z_ward_slope": (("chain", "draw", "ward", "ward_driver"), dsk.from_array(z, chunks=(1, 5, 4, 3))),
        "beta": (("chain", "draw"), rng.standard_normal((2, 23))),
        "scale": (("ward",), dsk.from_array(np.arange(10.0), chunks=4)),
    }, coords={"ward": [f"w{i}" for i in range(10)]})
    tree = xr.DataTree.from_dict({"posterior": posterior,
                                  "constant_data": xr.Dataset({"X": (("obs",), np.ones(4))})})
    write_tree(tree, tmp_path / "ours.zarr")
    tree.to_zarr(tmp_path / "theirs.zarr", mode="w")
    ours, theirs = (xr.open_datatree(tmp_path / f"{n}.zarr", engine="zarr") for n in ("ours", "theirs"))
    xr.testing.assert_identical(ours, theirs)
    for name in ("z_ward_slope", "scale", "beta"):
        a = zarr.open_array(tmp_path / "ours.zarr" / "posterior" / name, mode="r")
        b = zarr.open_array(tmp_path / "theirs.zarr" / "posterior" / name, mode="r")
        assert a.chunks == b.chunks and np.array_equal(a[...], b[...]), name
    assert zarr.open_array(tmp_path / "ours.zarr" / "posterior" / "z_ward_slope", mode="r").chunks == (1, 5, 4, 3)
