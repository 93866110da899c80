"""End to end through the command line: simulate -> fit -> diagnose -> effects -> plot."""

import pandas as pd
import pytest

from pas_bayes.cli import main

from .conftest import ROOT


def test_effects_command_writes_the_contract_columns(small_run, tmp_path):
    out = tmp_path / "effects.csv"
    assert main(["effects", str(small_run), "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["level", "borough", "ward", "driver", "scale", "mean", "sd",
                                   "q05", "q50", "q95"]
    assert set(table["level"]) == {"london", "borough", "ward"}
    assert set(table["scale"]) == {"logit", "pp"}
    assert {"engagement", "visibility", "informed"} <= set(table["driver"])
    assert main(["effects", str(small_run), "--out", str(out)]) == 2


def test_small_fit_recovers_the_sign_and_order_of_the_strongest_drivers(small_run, small_survey, tmp_path):
    """Even 1,920 respondents and short chains put engagement first and crime problems below zero."""
    out = tmp_path / "effects.csv"
    main(["effects", str(small_run), "--out", str(out)])
    london = pd.read_csv(out, keep_default_na=False).query("level == 'london' and scale == 'logit'").set_index("driver")
    truth = (pd.read_csv(small_survey.parent / "truth_effects.csv", keep_default_na=False)
             .query("outcome == 'confidence' and level == 'london'").set_index("driver")["value"])
    assert london["mean"].idxmax() == "engagement"
    inside = (london["q05"] - 0.1 <= truth) & (truth <= london["q95"] + 0.1)
    assert inside.sum() >= 6, pd.concat([london[["q05", "q95"]], truth], axis=1)


def test_simulate_command_writes_survey_and_truth(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--seed", "4", "--per-borough", "12"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"pas_synthetic_FY23-24.csv", "truth.json",
                                                    "truth_effects.csv"}
    assert "384 respondents" in capsys.readouterr().out


def test_bad_data_exits_2_with_the_message(tmp_path, small_survey, capsys):
    raw = pd.read_csv(small_survey, dtype=str, keep_default_na=False).drop(columns=["Q65"])
    bad = tmp_path / "bad.csv"
    raw.to_csv(bad, index=False)
    status = main(["fit", str(ROOT / "models" / "confidence.toml"), "--data", str(bad),
                   "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and "bad.csv" in err and "Q65" in err and "What to do" in err
    assert not (tmp_path / "run").exists()


def test_fit_refuses_an_existing_run_before_reading_anything(small_run, capsys):
    status = main(["fit", str(ROOT / "models" / "confidence.toml"), "--out", str(small_run)])
    assert status == 2 and "--force" in capsys.readouterr().err


def test_module_entry_point_runs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pas_bayes", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "simulate" in done.stdout


@pytest.mark.parametrize("args", [["diagnose", "nowhere"], ["effects", "nowhere", "--out", "x.csv"]])
def test_missing_run_folder_exits_2(args, capsys):
    assert main(args) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_policy_commands_answer_from_a_run(small_run, tmp_path, capsys):
    assert main(["scenario", str(small_run), "--borough", "croydon", "--driver", "visibility", "--to", "0.4",
                 "--out", str(tmp_path / "scenario.csv")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("In Croydon, if the share of residents seeing officers patrol at least weekly went from")
    assert "90% interval" in out
    row = pd.read_csv(tmp_path / "scenario.csv").iloc[0]
    assert row["target"] == 0.4 and row["change_pp_q05"] <= row["change_pp_mean"] <= row["change_pp_q95"]
    assert main(["scenario", str(small_run), "--driver", "visibility", "--to", "4"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err

    assert main(["rankings", str(small_run), "--out", str(tmp_path / "r.csv"), "--driver", "visibility"]) == 0
    ranks = pd.read_csv(tmp_path / "r.csv")
    assert len(ranks) == 32 and {"prob_above_london", "prob_top5", "rank_q05", "rank_q95"} <= set(ranks.columns)
    assert ranks["prob_top5"].sum() == pytest.approx(5.0)
    assert main(["rankings", str(small_run), "--out", str(tmp_path / "w.csv"), "--wards"]) == 0
    wards = pd.read_csv(tmp_path / "w.csv")
    assert {"prob_above_borough", "prob_top5_in_borough", "respondents"} <= set(wards.columns)

    assert main(["gaps", str(small_run), "--out", str(tmp_path / "g.csv")]) == 0
    assert "Black" in capsys.readouterr().out
    gaps = pd.read_csv(tmp_path / "g.csv")
    assert set(gaps["demographic"]) == {"ethnicity", "age", "sex"}
