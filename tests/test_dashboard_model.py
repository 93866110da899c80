"""The dashboard trend model: exact rolling-window likelihood, recovery of a known truth, the run folder and CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal, norm

from pas_bayes.cli import main
from pas_bayes.dashboard.model import ROUNDING_VAR, _quarterly_plugin, whitened_rows
from pas_bayes.dashboard.spec import DashboardSpec, dashboard_spec_from_dict, load_dashboard_spec
from pas_bayes.dashboard.summaries import DashboardPosterior, coverage, dashboard_posterior, falls
from pas_bayes.errors import SpecError
from pas_bayes.fit import load_run
from tests.conftest import ROOT


def test_whitened_likelihood_is_the_rolling_window_multivariate_normal():
    rng = np.random.default_rng(0)
    n_w, n_window, deff = 9, 400, 1.7
    n_t = n_w + 3
    avg = np.zeros((n_w, n_t))
    for j in range(n_w):
        avg[j, j:j + 4] = 0.25
    y = np.round(rng.uniform(0.4, 0.7, size=(1, n_w)), 2)
    y[0, 4] = np.nan  # a quarter not published
    fitted = np.arange(n_w) < n_w - 1  # and one held out
    z, design, index = whitened_rows(y, fitted, avg, n_window)
    obs = ~np.isnan(y[0]) & fitted
    assert len(z) == obs.sum() and (index == 0).all()
    p = _quarterly_plugin(np.nan_to_num(y[0]), obs, n_t)
    a = avg[obs]
    cov = deff * ((a * p * (1 - p) / (n_window / 4)) @ a.T + ROUNDING_VAR * np.eye(len(a)))
    rates = (rng.uniform(0.4, 0.7, n_t), rng.uniform(0.4, 0.7, n_t))
    mvn = [multivariate_normal(a @ rate, cov).logpdf(y[0, obs]) for rate in rates]
    whitened = [norm(design @ rate, np.sqrt(deff)).logpdf(z).sum() for rate in rates]
    # The whitened form drops only the log-determinant, a constant: differences agree exactly.
    assert mvn[0] - mvn[1] == pytest.approx(whitened[0] - whitened[1], rel=1e-9)
    # Values sharing respondents are correlated: the overlap is in the covariance, not ignored.
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert 0.7 < corr < 0.76  # three of four quarters shared


def test_spec_round_trip_and_errors(tmp_path):
    spec = DashboardSpec(name="x", outcome="trust", drivers=("listen",), holdout=4)
    again = dashboard_spec_from_dict(spec.to_dict())
    assert again == spec and again.digest() == spec.digest()
    with pytest.raises(SpecError, match="also a driver"):
        DashboardSpec(outcome="listen", drivers=("listen",))
    with pytest.raises(SpecError, match="unknown priors"):
        DashboardSpec(priors={"nope": {}})
    path = tmp_path / "d.toml"
    path.write_text('[model]\nkind = "dashboard"\nname = "d"\noutcome = "trust"\nholdout = 2\n'
                    '[priors.borough_step_sd]\ndist = "HalfNormal"\nsigma = 0.05\n[sampler]\ndraws = 300\n')
    loaded = load_dashboard_spec(path)
    assert (loaded.outcome, loaded.holdout, loaded.sampler.draws) == ("trust", 2, 300)
    assert loaded.prior("borough_step_sd")["sigma"] == 0.05
    path.write_text('[model]\nkind = "survey"\nname = "d"\n')
    with pytest.raises(SpecError, match="not a dashboard spec"):
        load_dashboard_spec(path)
    for shipped in ("dashboard_confidence.toml", "dashboard_trust.toml"):
        assert load_dashboard_spec(ROOT / "models" / shipped).name


def test_falls_and_coverage_on_known_draws():
    rng = np.random.default_rng(1)
    n = 4000
    rate = np.empty((n, 2, 6))
    rate[:, 0, :] = 0.6 + 0.01 * rng.standard_normal((n, 6))
    rate[:, 0, 5] -= 0.05          # borough 0 clearly fell over the year to the last window
    rate[:, 1, :] = 0.5 + 0.01 * rng.standard_normal((n, 6))
    post = DashboardPosterior(boroughs=["Barnet", "Brent"], windows=pd.period_range("2020Q1", periods=6, freq="Q"),
                              fitted=np.ones(6, bool), published=np.full((2, 6), 0.5), rate=rate,
                              design_effect=np.ones(n), weights=np.array([0.5, 0.5]), n_window=400, outcome="good_job")
    table = falls(post).set_index("area")
    assert table.loc["Barnet", "p_lower"] > 0.99
    assert 0.3 < table.loc["Brent", "p_lower"] < 0.7
    assert table.loc["Barnet", "change_q50"] == pytest.approx(-5, abs=0.3)
    draws = rng.standard_normal((4000, 3000))
    cover = coverage(rng.standard_normal(3000), draws)
    np.testing.assert_allclose(cover["empirical"], cover["nominal"], atol=0.03)


@pytest.fixture(scope="module")
def dashboard_run(tmp_path_factory):
    """A synthetic 12-borough, 24-quarter dashboard with a known truth, fitted through the CLI."""
    folder = tmp_path_factory.mktemp("dashboard")
    assert main(["simulate-dashboard", "--out", str(folder / "sim"), "--boroughs", "12", "--quarters", "24",
                 "--seed", "7"]) == 0
    run = folder / "run"
    status = main(["dashboard", str(folder / "sim" / "borough.csv"), "--london", str(folder / "sim" / "mps.csv"),
                   "--drivers", "listen", "informed", "--holdout", "4", "--out", str(run), "--draws", "500",
                   "--tune", "500", "--seed", "3", "--no-progress"])
    assert status == 0
    return run, json.loads((folder / "sim" / "truth.json").read_text())


def test_dashboard_run_recovers_the_true_trends(dashboard_run):
    run_path, truth = dashboard_run
    run = load_run(run_path)
    assert run.kind == "dashboard" and run.spec.holdout == 4
    post = dashboard_posterior(run)
    true_rate = np.array(truth["rate"])
    assert post.rate.shape[1:] == true_rate.shape
    for level, low, high in ((0.9, 0.8, 0.98), (0.5, 0.38, 0.65)):
        lo, hi = np.quantile(post.rate, [(1 - level) / 2, (1 + level) / 2], axis=0)
        inside = float(((true_rate >= lo) & (true_rate <= hi)).mean())
        assert low <= inside <= high, (level, inside)
    london_lo, london_hi = np.quantile(post.london_rate, [0.05, 0.95], axis=0)
    # Neighbouring windows share respondents, so coverage over one London series is lumpy: check
    # it loosely, and check the error of the median directly.
    assert ((truth["london_rate"] >= london_lo) & (truth["london_rate"] <= london_hi)).mean() >= 0.75
    assert np.abs(np.median(post.london_rate, axis=0) - truth["london_rate"]).max() < 0.02
    deff = run.idata["posterior"]["design_effect"]
    lo, hi = np.quantile(deff.sel(measure="good_job").values, [0.01, 0.99])
    assert lo < truth["parameters"]["design_effect"] < hi
    between = run.idata["posterior"]["between_effect"].sel(driver="listen").values
    lo, hi = np.quantile(between, [0.05, 0.95])
    assert lo < truth["parameters"]["between_effect"]["listen"] < hi


def test_dashboard_run_folder_and_commands(dashboard_run, tmp_path, capsys):
    run_path, _ = dashboard_run
    rows = pd.read_csv(run_path / "exclusions.csv")
    assert int(rows["rows"].sum()) == 12 * 24 * 3  # every row of the file, by what happened to it
    assert rows.set_index("reason").filter(like="held out", axis=0)["rows"].iloc[0] == 12 * 4 * 3
    provenance = json.loads((run_path / "provenance.json").read_text())
    assert provenance["kind"] == "dashboard" and len(provenance["data_sha256"]) == 64
    assert main(["diagnose", str(run_path)]) in (0, 1)
    assert "R-hat" in capsys.readouterr().out
    assert main(["effects", str(run_path), "--out", str(tmp_path / "e.csv")]) == 0
    effects = pd.read_csv(tmp_path / "e.csv")
    assert set(effects["level"]) == {"between boroughs", "within borough, over time"}
    assert {"logit", "pp"} == set(effects["scale"])
    assert main(["plot", str(run_path), "--out", str(tmp_path / "fig")]) == 0
    for stem in ("borough_trends", "london_check", "latest_change", "driver_associations", "coverage"):
        assert (tmp_path / "fig" / f"{stem}.png").stat().st_size > 10_000
        assert len(pd.read_csv(tmp_path / "fig" / f"{stem}.csv")) > 0
    assert main(["report", str(run_path), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Key findings" in html and "not effects on individual" in html and html.count("<img") == 5
    assert main(["rankings", str(run_path), "--out", str(tmp_path / "x.csv")]) == 2
    assert "dashboard run" in capsys.readouterr().err
    # Refuses to overwrite, before any sampling.
    assert main(["dashboard", "x.csv", "--out", str(run_path)]) == 2


@pytest.mark.slow
def test_real_dashboard_fits_cleanly_and_predicts_held_out_year(tmp_path):
    """The published file, as a new user would fit it, with the last year held out (about 8 minutes)."""
    from pas_bayes.dashboard.summaries import HELDOUT_CHECK, LONDON_CHECK, checks, claims_check, london_series
    from pas_bayes.diagnostics import diagnose
    from tests.conftest import SHARED, need_shared

    folder = SHARED / "pas_dashboard"
    run_path = tmp_path / "real"
    assert main(["dashboard", str(need_shared(folder / "PAS_borough_quarterly_2014Q4_2023Q4.csv")),
                 "--london", str(folder / "PAS_Total_MPS_quarterly_2014Q4_2023Q4.csv"),
                 "--spec", str(ROOT / "models" / "dashboard_confidence.toml"), "--holdout", "4",
                 "--out", str(run_path), "--no-progress"]) == 0
    run = load_run(run_path)
    assert diagnose(run.idata).passed
    post = dashboard_posterior(run)
    cover = checks(post, london_series(run)).set_index(["check", "nominal"])["empirical"]
    assert cover[(LONDON_CHECK, 0.9)] >= 0.8
    held = cover[(HELDOUT_CHECK, 0.9)]
    assert 0.8 <= held <= 0.99, held
    assert 0.35 <= cover[(HELDOUT_CHECK, 0.5)] <= 0.7
    claims = claims_check(post)
    made = claims[claims["claim"] != "no claim"]
    assert len(made) == 0 or made["holds"].mean() >= 0.6


def test_between_effects_are_sampled_decorrelated_with_the_prior_unchanged():
    from pas_bayes.dashboard.model import between_rotation, build_dashboard_model
    from pas_bayes.dashboard.read import read_dashboard
    from pas_bayes.dashboard.simulate import DashboardSimulation, write_dashboard

    rng = np.random.default_rng(4)
    base = rng.normal(size=(20, 12))
    values = {"a": 0.5 + 0.05 * base, "b": 0.5 + 0.05 * base + 0.01 * rng.normal(size=(20, 12))}  # corr ~0.98
    scaling = pd.DataFrame({"driver": ["a", "b"], "between_sd": [1.0, 1.0], "within_sd": [1.0, 1.0]})
    r = between_rotation(values, scaling)
    assert r[1, 0] == 0 and (np.diag(r) > 0).all()

    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        paths = write_dashboard(DashboardSimulation(seed=2, n_boroughs=6, n_windows=10), folder)
        data = read_dashboard(paths["borough"])
    model, lay = build_dashboard_model(data, DashboardSpec(drivers=("listen", "informed")))
    point = model.initial_point()
    point["between_rotated"] = np.array([0.3, -0.2])
    between = np.linalg.solve(between_rotation({m: lay.values[m] for m in ("listen", "informed")}, lay.scaling),
                              point["between_rotated"])
    graph = model.replace_rvs_by_values([model["between_effect_prior"]])[0]
    potential = model.compile_fn(graph, inputs=model.value_vars, on_unused_input="ignore")(point)
    assert float(potential) == pytest.approx(norm(0, 0.5).logpdf(between).sum())


def test_outcome_published_later_than_the_drivers_fits_and_reports(tmp_path):
    """Trust is published from 2016 only: early windows of the outcome are missing, not zero."""
    from pas_bayes.dashboard.fit import fit_dashboard
    from pas_bayes.dashboard.read import read_dashboard
    from pas_bayes.dashboard.report import build_dashboard_report
    from pas_bayes.dashboard.simulate import DashboardSimulation, write_dashboard

    paths = write_dashboard(DashboardSimulation(seed=5, n_boroughs=6, n_windows=14), tmp_path / "sim")
    frame = pd.read_csv(paths["borough"], sep=";", dtype=str)
    early = frame["Measure"].str.contains("Good Job") & frame["Date"].isin(frame["Date"].unique()[:3])
    frame.loc[~early].to_csv(tmp_path / "late.csv", sep=";", index=False)
    data = read_dashboard(tmp_path / "late.csv", london_path=paths["mps"])
    spec = DashboardSpec(drivers=("listen", "informed"), holdout=4).with_sampler(draws=150, tune=150, chains=2)
    run = load_run(fit_dashboard(spec, data, tmp_path / "run", progressbar=False))
    post = dashboard_posterior(run)
    assert np.isnan(post.published[:, :3]).all() and not np.isnan(post.published[:, 3:]).any()
    assert np.isfinite(post.rate).all()
    assert "Key findings" in build_dashboard_report(run)
