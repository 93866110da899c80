"""The approximate preview (``--sampler advi``): close enough to NUTS to preview, and labelled everywhere."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pas_bayes.cli import main
from pas_bayes.diagnostics import diagnose
from pas_bayes.fit import approximation, load_run

from .conftest import ROOT


@pytest.fixture(scope="module")
def advi_run(tmp_path_factory, small_survey):
    run = tmp_path_factory.mktemp("advi") / "preview"
    assert main(["fit", str(ROOT / "models" / "confidence.toml"), "--data", str(small_survey), "--out", str(run),
                 "--sampler", "advi", "--draws", "300", "--chains", "2", "--seed", "5", "--no-progress"]) == 0
    return run


def test_preview_is_near_the_nuts_fit_of_the_same_survey(advi_run, small_run):
    """London effects within a NUTS posterior SD of NUTS's; the draws laid out as chains x draws."""
    approx = load_run(advi_run).idata["posterior"]
    nuts = load_run(small_run).idata["posterior"]
    assert approx["beta"].shape == (2, 300, 7)
    # Made and written a block of draws at a time (100, 100, 100): every draw in its place,
    # none left at the store's fill value or written twice.
    assert np.unique(approx["beta"].values[..., 0]).size == 600
    assert np.unique(approx["z_ward_slope"].values[:, :, 0, 0]).size == 600
    error = np.abs(approx["beta"].mean(("chain", "draw")) - nuts["beta"].mean(("chain", "draw")))
    assert float((error / nuts["beta"].std(("chain", "draw"))).max()) < 1.0


def test_mean_field_draws_are_pymcs_approximation():
    """The NumPy draws have the moments of PyMC's own draws from the same fitted approximation,
    variable by variable (a wrong scale transform of ``rho`` or a misplaced slice fails)."""
    import pymc as pm

    from pas_bayes.fit import _mean_field_draws

    with pm.Model():
        a = pm.Normal("a", 1.0, 0.5, shape=3)
        pm.HalfNormal("s", 2.0)
        pm.Normal("y", a.sum(), 1.0, observed=np.array([0.3, 2.0, 1.1]))
        approx = pm.fit(n=3000, method="advi", random_seed=1, progressbar=False)
    ours = _mean_field_draws(approx, 40_000, np.random.default_rng(2))
    theirs = approx.sample_dict_fn(40_000, random_seed=3)
    assert set(ours) == set(theirs) == {"a", "s_log__"}
    for name in ours:
        assert ours[name].shape == theirs[name].shape
        sd = theirs[name].std(axis=0)
        np.testing.assert_allclose(ours[name].mean(axis=0), theirs[name].mean(axis=0), atol=0.03 * sd.max())
        np.testing.assert_allclose(ours[name].std(axis=0), sd, rtol=0.03)
    # The approximation is not its prior: the scales were fitted, so the check above has teeth.
    assert not np.allclose(ours["a"].std(axis=0), 1.0, rtol=0.1)


def test_preview_says_it_is_approximate_in_every_output(advi_run, capsys, tmp_path):
    run = load_run(advi_run)
    how = approximation(run.idata)
    assert how and "ADVI" in how
    provenance = json.loads((advi_run / "provenance.json").read_text())
    assert provenance["approximate"] == how and provenance["loo"].startswith("not computed: an approximate fit")
    report = diagnose(run.idata, provenance["loo"])
    assert not report.passed and report.checks[0].name == "APPROXIMATE inference"
    assert "APPROXIMATE PREVIEW" in report.to_text()
    assert main(["effects", str(advi_run), "--out", str(tmp_path / "effects.csv")]) == 0
    table = pd.read_csv(tmp_path / "effects.csv")
    assert (table["inference"] == f"approximate: {how}").all()

    from pas_bayes.figures import build_figures
    from pas_bayes.summaries import summarise_run

    figures = build_figures(summarise_run(run, max_draws=200), drivers=("visibility",))
    for result in figures.values():
        assert (result.numbers["inference"] == f"approximate: {how}").all()
        assert any("APPROXIMATE PREVIEW" in t.get_text() for t in result.figure.texts)
    from pas_bayes.report import build_report

    html_text = build_report(summarise_run(run, max_draws=200), drivers=("visibility",))
    assert "APPROXIMATE PREVIEW, not for publication" in html_text


def test_nuts_runs_are_not_marked(small_run):
    run = load_run(small_run)
    assert approximation(run.idata) is None
    assert all(c.name != "APPROXIMATE inference" for c in diagnose(run.idata).checks)
