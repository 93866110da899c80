"""Recovery scenarios and simulation-based calibration: the pieces, checked against known answers.

The full recovery suite and the 100-simulation SBC run are in ``validation/``
(``docs/validation.md`` has their results); the slow tests here run the
recovery scenarios end to end. These default tests check that a scenario
changes the truth it says it changes, that a survey drawn from the prior reads
back as drawn and can be remade alone, that ranks and the uniformity verdict
are right on cases with known answers, and that a recovery table joins each
estimate to its own true value.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pas_bayes.calibration import prior_survey, rank_table, sbc_ranks, sbc_summary
from pas_bayes.cli import main
from pas_bayes.errors import SpecError
from pas_bayes.recovery import parameter_recovery, recovery_scorecard
from pas_bayes.simulate import SimulationSettings, settings_from_record, simulate_survey, truth_with
from pas_bayes.spec import load_spec
from pas_bayes.survey import read_survey
from pas_bayes.sweep import expand_tasks, load_sweep_spec, write_summary
from pas_bayes.sweep.task import run_task

ROOT = Path(__file__).resolve().parents[1]
SBC_SPEC = ROOT / "models" / "sbc_small.toml"


def test_a_scenario_overrides_only_what_it_names():
    base = SimulationSettings().confidence
    t = truth_with(base, {"borough_slope_sd": {"all": 0.0, "visibility": 0.6}, "driver_effects": {"informed": 0.0},
                          "ward_slope_sd": {"all": 0.0},
                          "borough_slope_fixed": {"visibility": {"Croydon": 0.9}}})
    assert t.borough_slope_sd == {d: (0.6 if d == "visibility" else 0.0) for d in base.borough_slope_sd}
    assert t.driver_effects == {**base.driver_effects, "informed": 0.0}
    assert t.ward_slope_sd == {d: 0.0 for d in base.ward_slope_sd}  # "all" = the drivers with ward slopes
    assert t.borough_slope_fixed == {"visibility": {"Croydon": 0.9}}
    assert t.borough_intercept_sd == base.borough_intercept_sd


@pytest.mark.parametrize(("overrides", "message"), [
    ({"borough_slope": {}}, "not a field"),
    ({"driver_effects": {"patrols": 1.0}}, "no such driver"),
    ({"borough_slope_sd": {"visibility": -0.1}}, "cannot be negative"),
    ({"borough_slope_fixed": {"visibility": {"Gotham": 1.0}}}, "unknown boroughs"),
])
def test_bad_scenarios_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        truth_with(SimulationSettings().confidence, overrides)


def test_a_scenario_survey_follows_its_truth():
    settings = settings_from_record({"seed": 4, "per_borough": 12, "truth": {"confidence": {
        "borough_slope_sd": {"all": 0.0}, "borough_slope_fixed": {"visibility": {"Croydon": 0.9}}}}})
    truth = simulate_survey(settings).truth["outcomes"]["confidence"]
    devs = truth["borough_slope_deviations"]
    assert devs["Croydon"]["visibility"] == 0.9
    assert all(v == 0.0 for b, d in devs.items() for k, v in d.items() if (b, k) != ("Croydon", "visibility"))
    # The other outcome keeps the generator's own truth.
    other = simulate_survey(settings).truth["outcomes"]["trust"]["borough_slope_deviations"]
    assert any(abs(v) > 0 for d in other.values() for v in d.values())


def _sweep(folder: Path, spec: Path, simulations: str, draws: int = 60) -> Path:
    path = folder / "sweep.toml"
    path.write_text(f'name = "t"\nroot_seed = 9\nspecs = ["{spec}"]\n[simulations]\n{simulations}\n'
                    f"[sampler]\ndraws = {draws}\ntune = {draws}\nchains = 2\n[outputs]\nprobability_scale = false\n")
    return path


@pytest.mark.parametrize(("simulations", "message"), [
    ('count = 2\ntruth_from = "posterior"', "truth_from"),
    ('count = 2\ntruth_from = "prior"\n[simulations.truth.confidence]\ndriver_effects = { informed = 0.0 }',
     "drop one of them"),
    ("count = 2\n[simulations.truth.confidence]\nsd_borough = 1.0", "not a field"),
    ("count = 2\n[simulations.truth.fear]\ndriver_effects = { informed = 0.0 }", "confidence' and 'trust"),
])
def test_bad_simulation_tables_are_refused_with_what_to_do(tmp_path, simulations, message):
    with pytest.raises(SpecError, match=message):
        load_sweep_spec(_sweep(tmp_path, SBC_SPEC, simulations))


def test_scenario_and_prior_tasks_have_their_own_keys_and_plain_ones_keep_theirs(tmp_path):
    plain = expand_tasks(load_sweep_spec(_sweep(tmp_path, SBC_SPEC, "count = 2")))
    (tmp_path / "b").mkdir()
    prior = expand_tasks(load_sweep_spec(_sweep(tmp_path / "b", SBC_SPEC, 'count = 2\ntruth_from = "prior"')))
    assert "truth" not in plain[0].simulation and "truth_from" not in plain[0].simulation
    assert [t.seed for t in plain] == [t.seed for t in prior]  # the same fit seeds ...
    assert {t.key for t in plain}.isdisjoint(t.key for t in prior)  # ... but other tasks
    assert "--from-prior" in prior[0].fit_command("RUN") and "--prior-seed" in prior[0].fit_command("RUN")


@pytest.fixture(scope="module")
def prior_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sbc")
    prior_survey(load_spec(SBC_SPEC), SimulationSettings(seed=21, per_borough=15), folder, seed=22)
    return folder


def test_a_prior_survey_reads_back_as_drawn_and_changes_nothing_else(prior_folder):
    spec = load_spec(SBC_SPEC)
    path = next(prior_folder.glob("pas_synthetic_*.csv"))
    survey = read_survey(path, spec)
    draw = xr.open_zarr(prior_folder / "prior_draw.zarr", consolidated=False, chunks=None)
    record = json.loads((prior_folder / "sbc_simulation.json").read_text())
    assert record["rows_modelled"] == len(survey.frame)
    assert survey.frame[spec.outcome].mean() == pytest.approx(record["positive_share"])
    assert float(draw["sd_borough_intercept"].squeeze()) > 0 and draw["beta"].sizes["driver"] == 3
    original = simulate_survey(SimulationSettings(seed=21, per_borough=15)).survey
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    changed = [c for c in original.columns if not (original[c].astype(str).to_numpy() == written[c].to_numpy()).all()]
    assert changed == ["Q60"]
    kept = np.zeros(len(original), dtype=bool)
    kept[survey.frame["row"].to_numpy() - 1] = True
    assert (original["Q60"].astype(str).to_numpy()[~kept] == written["Q60"].to_numpy()[~kept]).all()
    assert set(written.loc[kept, "Q60"]) <= {"Good", "Fair"}


def test_the_command_line_remakes_a_prior_survey_byte_for_byte(prior_folder, tmp_path):
    status = main(["simulate", "--out", str(tmp_path), "--seed", "21", "--per-borough", "15",
                   "--from-prior", str(SBC_SPEC), "--prior-seed", "22"])
    assert status == 0
    name = next(prior_folder.glob("pas_synthetic_*.csv")).name
    assert (tmp_path / name).read_bytes() == (prior_folder / name).read_bytes()
    assert main(["simulate", "--out", str(tmp_path), "--seed", "21", "--per-borough", "15",
                 "--from-prior", str(SBC_SPEC), "--prior-seed", "22"]) == 2  # no overwrite without --force


def test_ordinal_specs_are_refused_for_calibration(tmp_path):
    with pytest.raises(SpecError, match="binary, unweighted"):
        prior_survey(load_spec(ROOT / "models" / "confidence_ordinal.toml"), SimulationSettings(seed=1, per_borough=5),
                     tmp_path, seed=1)


def _fake_posterior(prior: xr.Dataset, shift: float, n_draw: int = 200) -> xr.Dataset:
    """Draws of every variable of ``prior``, all equal to its value + shift (+ tiny noise)."""
    rng = np.random.default_rng(0)
    out = {}
    for name, da in prior.data_vars.items():
        values = np.repeat(da.values, n_draw, axis=1) + shift + 1e-6 * rng.normal(size=(1, n_draw, *da.shape[2:]))
        out[name] = (da.dims, np.concatenate([values, values]))
    return xr.Dataset(out, coords={k: v for k, v in prior.coords.items() if k not in ("chain", "draw")})


def test_ranks_are_at_the_ends_when_the_posterior_misses_the_truth(prior_folder):
    spec = load_spec(SBC_SPEC)
    survey = read_survey(next(prior_folder.glob("pas_synthetic_*.csv")), spec)
    prior = xr.open_zarr(prior_folder / "prior_draw.zarr", consolidated=False, chunks=None).load()
    idata = xr.DataTree.from_dict({
        "constant_data": xr.Dataset(),
        "observed_data": xr.Dataset({spec.outcome: ("obs", survey.frame[spec.outcome].to_numpy())})})
    import pymc as pm

    from pas_bayes.model import build_model

    with build_model(spec, survey.frame):
        constant = pm.sample_prior_predictive(draws=1, random_seed=1)["constant_data"].to_dataset()
    idata["constant_data"] = xr.DataTree(constant)
    for shift, expected in ((-5.0, 99), (5.0, 0)):
        idata["posterior"] = xr.DataTree(_fake_posterior(prior, shift))
        ranks = sbc_ranks(idata, prior, spec)
        params = {k: v for k, v in ranks.items() if k != "log_likelihood"}
        assert set(params.values()) == {expected}, params
        # Every draw is far from the truth, so the truth's log-likelihood is the highest.
        assert ranks["log_likelihood"] == 99


def test_uniform_ranks_pass_and_miscalibrated_ones_fail():
    rng = np.random.default_rng(3)
    n = 150
    records = [{"task": f"s{i}", "n_ranks": 100,
                "ranks": {"calibrated": int(rng.integers(0, 100)),
                          "too_narrow": int(rng.choice([rng.integers(0, 10), rng.integers(90, 100)])),
                          "biased": int(min(99, rng.integers(30, 130)))}} for i in range(n)]
    summary = sbc_summary(rank_table(records)).set_index("quantity")
    assert summary.loc["calibrated", "verdict"] == "pass"
    assert summary.loc["too_narrow", "verdict"] == "FAIL" and summary.loc["too_narrow", "sd_rank"] > 0.4
    assert summary.loc["biased", "verdict"] == "FAIL" and summary.loc["biased", "mean_rank"] > 0.6
    assert (summary["simulations"] == n).all()


def test_recovery_rows_pair_each_estimate_with_its_own_truth(small_run, small_survey):
    from pas_bayes.fit import load_run

    run = load_run(small_run)
    truth = json.loads((small_survey.parent / "truth.json").read_text())
    table = parameter_recovery(run.idata, truth, "confidence").assign(task="t")
    t = truth["outcomes"]["confidence"]
    row = table[(table["kind"] == "borough_slope") & (table["borough"] == "Hackney")
                & (table["driver"] == "visibility")].iloc[0]
    assert row["truth"] == pytest.approx(t["driver_effects"]["visibility"]
                                         + t["borough_slope_deviations"]["Hackney"]["visibility"])
    post = run.idata["posterior"]["borough_slope"].sel(borough="Hackney", driver="visibility")
    assert row["mean"] == pytest.approx(float(post.mean()))
    assert row["q05"] < row["q25"] < row["q50"] < row["q75"] < row["q95"]
    sd = table[(table["parameter"] == "sd_borough_slope") & (table["driver"] == "visibility")].iloc[0]
    assert sd["truth"] == t["borough_slope_sd"]["visibility"]
    gap = table[(table["kind"] == "demographic_gap") & (table["driver"] == "Black")].iloc[0]
    eff = t["demographic_effects"]["ethnicity"]
    assert gap["truth"] == pytest.approx(eff["Black"] - eff["White"])
    assert set(table["kind"]) == {"london_effect", "borough_slope", "borough_deviation", "sd", "demographic_gap"}


def test_the_scorecard_counts_coverage_and_false_claims_correctly():
    def row(kind, truth, q05, q25, q75, q95, driver="d", borough="b", task="t1"):
        return {"task": task, "kind": kind, "parameter": kind, "borough": borough, "driver": driver, "truth": truth,
                "mean": (q25 + q75) / 2, "sd": 1.0, "q05": q05, "q25": q25, "q50": (q25 + q75) / 2, "q75": q75,
                "q95": q95, "p_positive": 0.5, "boundary": kind == "sd" and truth == 0}

    table = pd.DataFrame([
        row("london_effect", 0.5, 0.0, 0.4, 0.6, 1.0),    # in 50 and 90
        row("london_effect", 0.5, 0.0, 0.1, 0.3, 1.0),    # in 90 only
        row("london_effect", 0.5, 0.6, 0.7, 0.8, 0.9),    # in neither
        row("borough_deviation", 0.0, 0.1, 0.2, 0.3, 0.4),   # null, claimed: a false positive
        row("borough_deviation", 0.0, -0.1, 0.0, 0.1, 0.2),  # null, not claimed
        row("borough_deviation", 0.8, 0.2, 0.5, 0.9, 1.2),   # real, detected
        row("sd", 0.0, 0.01, 0.02, 0.05, 0.1),               # at the boundary: not scored
        row("sd", 0.3, 0.1, 0.2, 0.4, 0.5),
    ])
    card = recovery_scorecard(table)
    london = card[(card["kind"] == "london_effect") & (card["driver"] == "all")].iloc[0]
    assert london["coverage50"] == pytest.approx(1 / 3) and london["coverage90"] == pytest.approx(2 / 3)
    dev = card[(card["kind"] == "borough_deviation") & (card["driver"] == "all")].iloc[0]
    assert dev["null_deviations"] == 2 and dev["false_positive_rate"] == pytest.approx(0.5)
    assert dev["real_deviations"] == 1 and dev["detected"] == 1.0
    sd = card[(card["kind"] == "sd") & (card["driver"] == "all")].iloc[0]
    assert sd["coverage90"] == 1.0 and sd["boundary_estimates"] == 1


def test_a_calibration_and_a_recovery_sweep_write_their_summaries(tmp_path):
    """Two tiny sweeps, task by task (the Dask path itself is tested in test_sweep.py).

    Each task compiles its own survey's graph, most of this test's time: so two SBC tasks and
    one recovery task, the fewest that exercise the summaries (the slow suite runs real sweeps).
    """
    for name, spec, sims in (("sbc", SBC_SPEC, 'count = 2\nper_borough = 10\ntruth_from = "prior"'),
                             ("rec", ROOT / "models" / "confidence.toml",
                              "count = 1\nper_borough = 10\n[simulations.truth.confidence]\n"
                              "driver_effects = { informed = 0.0 }\nborough_slope_sd = { informed = 0.0 }")):
        folder = tmp_path / name
        folder.mkdir()
        tasks = expand_tasks(load_sweep_spec(_sweep(folder, spec, sims, draws=50)))
        for task in tasks:
            run_task(task, str(folder / "out"), cores=1)
        summary = write_summary(folder / "out", tasks)
        if name == "sbc":
            ranks = pd.read_csv(summary / "sbc_ranks.csv")
            assert ranks["task"].nunique() == 2 and ranks["rank"].between(0, 99).all()
            assert {"log_likelihood", "beta[visibility]", "sd_ward_slope[engagement]"} <= set(ranks["quantity"])
            assert (summary / "sbc_ecdf.png").is_file() and (summary / "sbc_ecdf.csv").is_file()
            assert set(pd.read_csv(summary / "sbc_summary.csv")["verdict"]) <= {"pass", "FAIL"}
        else:
            params = pd.read_csv(summary / "recovery_parameters.csv", keep_default_na=False, na_values=["NaN"])
            informed = params[(params["kind"] == "borough_deviation") & (params["driver"] == "informed")]
            assert len(informed) == 32 and (informed["truth"] == 0).all()
            card = pd.read_csv(summary / "recovery_scorecard.csv")
            row = card[(card["kind"] == "borough_deviation") & (card["driver"] == "informed")].iloc[0]
            assert row["null_deviations"] == 32 and 0 <= row["false_positive_rate"] <= 1
