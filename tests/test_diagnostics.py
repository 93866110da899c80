import numpy as np
import pytest
import xarray as xr

from pas_bayes.cli import main
from pas_bayes.diagnostics import diagnose, parameter_diagnostics
from pas_bayes.fit import load_run


def _tree(posterior: dict, stats: dict) -> xr.DataTree:
    def ds(values):
        return xr.Dataset({k: (("chain", "draw", *([f"{k}_dim"] if v.ndim == 3 else [])), v)
                           for k, v in values.items()})
    return xr.DataTree.from_dict({"posterior": ds(posterior), "sample_stats": ds(stats)})


def _good(rng, chains=4, draws=500):
    return {"mu": rng.normal(size=(chains, draws)), "theta": rng.normal(size=(chains, draws, 3))}


def _stats(rng, chains=4, draws=500, diverging=0, depth_hits=0):
    div = np.zeros((chains, draws), dtype=bool)
    div.flat[:diverging] = True
    hit = np.zeros((chains, draws), dtype=bool)
    hit.flat[:depth_hits] = True
    return {"diverging": div, "energy": rng.normal(size=(chains, draws)), "maxdepth_reached": hit}


def test_well_mixed_chains_pass_every_check():
    rng = np.random.default_rng(0)
    report = diagnose(_tree(_good(rng), _stats(rng)))
    assert report.passed, report.to_text()
    assert set(report.table()["check"]) == {"divergent transitions", "R-hat (max)", "bulk ESS (min)",
                                            "tail ESS (min)", "E-BFMI (min over chains)",
                                            "tree depth saturation"}


def test_a_stuck_chain_fails_r_hat_and_names_the_parameter():
    rng = np.random.default_rng(1)
    post = _good(rng)
    post["theta"][2, :, 1] += 3.0
    report = diagnose(_tree(post, _stats(rng)))
    row = report.table().set_index("check").loc["R-hat (max)"]
    assert row["status"] == "FAIL" and "theta[1]" in row["worst"] and "run longer" in row["what to do"]
    assert not report.passed


def test_autocorrelated_draws_fail_ess():
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.normal(size=(4, 500)), axis=1) * 0.05
    report = diagnose(_tree({"mu": walk}, _stats(rng)))
    table = report.table().set_index("check")
    assert table.loc["bulk ESS (min)", "status"] == "FAIL"
    assert "mu" in table.loc["bulk ESS (min)", "worst"]


def test_divergences_low_bfmi_and_depth_saturation_fail():
    rng = np.random.default_rng(3)
    stats = _stats(rng, diverging=3, depth_hits=10)
    stats["energy"] = np.cumsum(rng.normal(size=(4, 500)), axis=1)  # random-walk energy: E-BFMI ~ 0
    table = diagnose(_tree(_good(rng), stats)).table().set_index("check")
    assert table.loc["divergent transitions", "value"] == 3
    assert table.loc["divergent transitions", "status"] == "FAIL"
    assert "target_accept" in table.loc["divergent transitions", "what to do"]
    assert table.loc["E-BFMI (min over chains)", "status"] == "FAIL"
    assert table.loc["tree depth saturation", "status"] == "FAIL"


def test_diagnose_command_prints_the_table_and_sets_exit_status(small_run, capsys):
    report = diagnose(load_run(small_run).idata)
    status = main(["diagnose", str(small_run)])
    out = capsys.readouterr().out
    assert "R-hat (max)" in out and "bulk ESS (min)" in out and "needs >= 400" in out
    assert status == (0 if report.passed else 1)
    assert report.per_parameter["parameter"].str.contains(r"borough_slope\[Croydon, visibility\]",
                                                           regex=True).any()


def test_the_run_folders_table_is_every_elements_diagnostics_recomputed_from_its_draws(small_run):
    """The fit stores R-hat and ESS once (read lazily, the ward effects made from their z
    draws); recomputed here from the whole posterior in memory, element by element with
    ArviZ's own functions, every row agrees, coordinates included."""
    import arviz as az

    from pas_bayes.fit import PARAMETER_DIAGNOSTICS

    run = load_run(small_run)
    assert (small_run / PARAMETER_DIAGNOSTICS).is_file()
    stored = run.per_parameter
    post = run.idata["posterior"].to_dataset().compute()
    assert {"ward_slope_dev", "z_ward_slope", "ward_intercept"} <= set(stored["variable"])
    # Every element of every variable, nothing dropped but the constant ones.
    n_elements = sum(int(np.prod([post.sizes[d] for d in da.dims if d not in ("chain", "draw")]))
                     for da in post.data_vars.values())
    assert len(stored) == n_elements
    recomputed = parameter_diagnostics(post)
    assert stored["parameter"].tolist() == recomputed["parameter"].tolist()
    for column in ("r_hat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(stored[column], recomputed[column], rtol=1e-12)
    tree = xr.DataTree.from_dict({"posterior": post})
    theirs = {"r_hat": az.rhat(tree), "ess_bulk": az.ess(tree, method="bulk"),
              "ess_tail": az.ess(tree, method="tail")}
    for row in stored.sample(40, random_state=1).itertuples(index=False):
        for column, tree_stat in theirs.items():
            value = float(tree_stat[row.variable].to_dataset()[row.variable].sel(row.coords))
            assert getattr(row, column) == pytest.approx(value, rel=1e-9), (row.parameter, column)
    assert diagnose(run.idata, per_parameter=stored).table().equals(diagnose(run.idata).table())


def test_pareto_k_warns_with_advice_without_failing_convergence():
    rng = np.random.default_rng(5)
    loo = {"respondent": {"n": 1000, "k_good": 990, "k_ok": 4, "k_bad": 5, "k_very_bad": 1},
           "ward": {"n": 100, "k_good": 100, "k_ok": 0, "k_bad": 0, "k_very_bad": 0}}
    report = diagnose(_tree(_good(rng), _stats(rng)), loo)
    table = report.table().set_index("check")
    assert table.loc["Pareto k > 0.7 (respondents)", "status"] == "WARN"
    assert "--by ward" in table.loc["Pareto k > 0.7 (respondents)", "what to do"]
    assert table.loc["Pareto k > 0.7 (wards)", "status"] == "pass"
    assert report.passed  # convergence is fine; LOO reliability is reported, not hidden
    assert "WARN" in report.to_text() and "6 of 1000 respondents, 1 above 1" in report.to_text()


def test_elements_fixed_by_construction_are_not_diagnosed():
    """A correlation matrix's unit diagonal has no R-hat; it must not hide or break the checks."""
    rng = np.random.default_rng(6)
    post = _good(rng)
    post["corr"] = np.ones((4, 500, 3))
    post["corr"][:, :, 1] = rng.uniform(-0.5, 0.5, size=(4, 500))
    report = diagnose(_tree(post, _stats(rng)))
    per = report.per_parameter
    assert not per[["r_hat", "ess_bulk"]].isna().any().any()
    assert (per["variable"] == "corr").sum() == 1 and report.passed


def test_one_chain_keeps_its_ess_and_an_empty_table_reads_back_as_numbers(tmp_path):
    """One chain has no R-hat, but its ESS is real; a fixed element is still left out."""
    from pas_bayes.diagnostics import parameter_table, read_parameter_table

    rng = np.random.default_rng(7)
    post = _good(rng, chains=1)
    post["corr"] = np.ones((1, 500, 3))
    post["corr"][:, :, 1] = rng.uniform(-0.5, 0.5, size=(1, 500))
    per = parameter_diagnostics(_tree(post, _stats(rng, chains=1)))
    assert len(per) == 1 + 3 + 1 and per["r_hat"].isna().all()
    assert (per["ess_bulk"] > 100).all() and (per["ess_tail"] > 100).all()
    report = diagnose(_tree(post, _stats(rng, chains=1)), per_parameter=per)
    assert not report.passed  # R-hat cannot be checked on one chain
    path = tmp_path / "parameter_diagnostics.csv"
    parameter_table(per.iloc[:0]).to_csv(path, index=False)
    empty = read_parameter_table(path)
    assert empty.empty and all(empty[c].dtype == float for c in ("r_hat", "ess_bulk", "ess_tail"))
    diagnose(_tree(post, _stats(rng, chains=1)), per_parameter=empty)  # no error on no rows


def test_ward_effects_made_from_z_in_place_leave_an_in_memory_posterior_unchanged(small_run, monkeypatch):
    """The diagnostics turn a block of z draws into ward effects in place: never the caller's own arrays."""
    import pas_bayes.diagnostics as diagnostics
    from pas_bayes.diagnostics import parameter_diagnostics

    post = load_run(small_run).idata["posterior"].to_dataset().compute()
    before = {name: post[name].values.copy() for name in ("z_ward_slope", "z_ward_intercept")}
    for block_bytes in (diagnostics.BLOCK_BYTES, 4_000):  # whole variables, then slices of them
        monkeypatch.setattr(diagnostics, "BLOCK_BYTES", block_bytes)
        per = parameter_diagnostics(post)
        assert {"ward_slope_dev", "ward_intercept"} <= set(per["variable"])
        for name, values in before.items():
            np.testing.assert_array_equal(post[name].values, values)


def test_diagnostics_of_a_lazily_read_posterior_never_load_a_whole_ward_variable(small_run, monkeypatch):
    """The fit reads its run folder lazily (xarray's cached lazy arrays): blocks of wards are read,
    and no variable is ever loaded whole (at five years z_ward_slope is 840 MB a fit)."""
    import xarray as xr

    import pas_bayes.diagnostics as diagnostics
    from pas_bayes.fit import POSTERIOR

    monkeypatch.setattr(diagnostics, "BLOCK_BYTES", 4_000)
    with xr.open_dataset(small_run / POSTERIOR, engine="zarr", group="posterior", chunks=None) as post:
        per = diagnostics.parameter_diagnostics(post)
        assert {"ward_slope_dev", "ward_intercept"} <= set(per["variable"])
        loaded = [name for name, da in post.data_vars.items() if "ward" in da.dims and da.variable._in_memory]
        assert loaded == []
