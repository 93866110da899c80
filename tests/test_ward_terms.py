"""The ward terms applied a run of a ward's respondents at a time (pas_bayes.ward_terms)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pas_bayes.ward_terms import WardRunSums, ward_runs, ward_terms


def _problem(order: str, n: int = 2500, wards: int = 40, terms: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    ward = rng.integers(0, wards, n)
    if order == "ward":
        ward = np.sort(ward)
    design = np.column_stack([np.ones(n), rng.normal(size=(n, terms - 1))])
    return ward, design, rng


def test_runs_cover_every_respondent_once_in_order():
    ward = np.array([3, 3, 1, 1, 1, 3, 0])
    run_ward, run_start = ward_runs(ward)
    assert run_ward.tolist() == [3, 1, 3, 0]
    assert run_start.tolist() == [0, 2, 5, 6, 7]
    assert np.array_equal(np.repeat(run_ward, np.diff(run_start)), ward)
    run_ward, run_start = ward_runs(np.array([], dtype=int))
    assert run_ward.size == 0 and run_start.tolist() == [0]


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
@pytest.mark.parametrize("order", ["ward", "random"])
def test_ward_terms_equal_the_gathered_form_in_value_and_gradients(mode, order):
    """Against ``(design * coef[ward]).sum(1)``: value, gradient, and a gradient of a gradient."""
    ward, design, rng = _problem(order)
    wards, terms = 40, design.shape[1]
    run_ward, run_start = ward_runs(ward)
    coef = pt.matrix("coef")
    ours = ward_terms(coef, pytensor.shared(np.ascontiguousarray(design.T)), pytensor.shared(run_ward),
                      pytensor.shared(run_start), n_wards=wards)
    gathered = (pt.constant(design) * coef[ward]).sum(axis=1)
    weights = rng.normal(size=ward.size)

    def outputs(eta):
        # A log-density-like function whose gradient depends on coef, so the gradient of its
        # gradient goes through the sums' own derivative (the terms again).
        first = pytensor.grad((eta**2 * weights).sum(), coef)
        second = pytensor.grad((first**2).sum(), coef)
        return [eta, first, second]

    f = pytensor.function([coef], outputs(ours), mode=mode)
    g = pytensor.function([coef], outputs(gathered), mode="NUMBA")
    value = rng.normal(size=(wards, terms))
    for mine, theirs in zip(f(value), g(value), strict=True):
        assert np.allclose(mine, theirs, rtol=1e-11, atol=1e-11)


def test_sums_are_the_adjoint_of_the_terms_and_pass_a_numerical_gradient_check():
    ward, design, rng = _problem("ward", n=300, wards=12, terms=4)
    design_t = np.ascontiguousarray(design.T)
    run_ward, run_start = ward_runs(ward)
    coef, g = rng.normal(size=(12, 4)), rng.normal(size=ward.size)
    terms = pytensor.function([], ward_terms(pt.constant(coef), design_t, run_ward, run_start, n_wards=12),
                              mode="NUMBA")()
    sums = pytensor.function([], WardRunSums(12)(pt.constant(g), design_t, run_ward, run_start), mode="NUMBA")()
    assert np.dot(terms, g) == pytest.approx(np.sum(coef * sums), rel=1e-12)
    pytensor.gradient.verify_grad(lambda c: (ward_terms(c, design_t, run_ward, run_start, n_wards=12) ** 3).sum(),
                                  [coef], rng=rng, mode="FAST_COMPILE")
    pytensor.gradient.verify_grad(lambda v: (WardRunSums(12)(v, design_t, run_ward, run_start) ** 3).sum(),
                                  [g], rng=rng, mode="FAST_COMPILE")


def test_compiled_sums_are_the_same_wherever_the_arrays_sit_in_memory():
    """The run sums may reorder additions to vectorise; the order must not depend on addresses
    (a seed's draws would then differ between processes)."""
    ward, design, rng = _problem("ward", n=5000, wards=60)
    run_ward, run_start = ward_runs(ward)
    g_in, design_in = pt.vector("g"), pt.matrix("design_t")
    f = pytensor.function([g_in, design_in], WardRunSums(60)(g_in, design_in, run_ward, run_start), mode="NUMBA")
    g = rng.normal(size=ward.size)
    design_t = np.ascontiguousarray(design.T)
    reference = f(g, design_t)
    for shift in range(1, 8):  # every 8-byte offset within a 64-byte line
        buffer = np.empty(g.size + 8)
        moved_g = buffer[shift:shift + g.size]
        moved_g[:] = g
        big = np.empty(design_t.size + 8)
        moved_design = big[shift:shift + design_t.size].reshape(design_t.shape)
        moved_design[:] = design_t
        assert np.array_equal(f(moved_g, moved_design), reference), shift


def test_a_survey_read_for_the_model_is_one_run_a_ward(small_survey, monkeypatch):
    """The reader puts respondents in ward order, so the model's log-density applies each ward once."""
    from pytensor.graph.traversal import ancestors

    from pas_bayes import model as model_module
    from pas_bayes.model import build_model
    from pas_bayes.spec import ModelSpec
    from pas_bayes.survey import read_survey

    monkeypatch.setattr(model_module, "RUNS_FROM", 0)  # runs however short (this survey's are ~3)
    spec = ModelSpec(name="x")
    frame = read_survey(small_survey, spec).frame
    model = build_model(spec, frame)
    runs = {v.name: v.get_value() for v in ancestors([model.logp()]) if v.name in ("ward_run_ward", "ward_run_start")}
    assert len(runs["ward_run_ward"]) == len(model.coords["ward"]) == frame["ward"].nunique()
    assert np.array_equal(np.repeat(runs["ward_run_ward"], np.diff(runs["ward_run_start"])),
                          model["ward_idx"].get_value())


def test_short_runs_are_gathered_and_give_the_runs_log_density_and_gradient(small_survey, monkeypatch):
    """Below RUNS_FROM respondents a run the model gathers the ward table instead: the same model."""
    from pytensor.graph.traversal import ancestors

    from pas_bayes import model as model_module
    from pas_bayes.model import RUNS_FROM, build_model
    from pas_bayes.spec import ModelSpec
    from pas_bayes.survey import read_survey

    spec = ModelSpec(name="x")
    frame = read_survey(small_survey, spec).frame
    assert len(frame) < RUNS_FROM * frame["ward"].nunique()  # the premise: short runs

    def log_density(model):
        names = {v.name for v in ancestors([model.logp()])}
        ip = model.initial_point()
        rng = np.random.default_rng(1)
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in ip.items()}
        logp = model.compile_logp()(point)
        grad = model.compile_dlogp()(point)
        return names, logp, grad

    gathered_names, gathered_logp, gathered_grad = log_density(build_model(spec, frame))
    monkeypatch.setattr(model_module, "RUNS_FROM", 0)
    run_names, run_logp, run_grad = log_density(build_model(spec, frame))
    assert "ward_run_start" in run_names and "ward_run_start" not in gathered_names
    assert gathered_logp == pytest.approx(run_logp, rel=1e-12)
    np.testing.assert_allclose(gathered_grad, run_grad, rtol=1e-9, atol=1e-9)
