"""Reading MOPAC's published dashboard: the real files, the workbook layout, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pas_bayes.dashboard.read import MEASURES, read_dashboard
from pas_bayes.dashboard.simulate import DashboardSimulation, simulate_dashboard
from pas_bayes.errors import PASDataError
from tests.conftest import SHARED, need_shared

BOROUGH_CSV = SHARED / "pas_dashboard" / "PAS_borough_quarterly_2014Q4_2023Q4.csv"
MPS_CSV = SHARED / "pas_dashboard" / "PAS_Total_MPS_quarterly_2014Q4_2023Q4.csv"


def test_real_borough_sheet_reads_whole():
    data = read_dashboard(need_shared(BOROUGH_CSV), london_path=need_shared(MPS_CSV))
    frame = data.frame
    assert data.n_input_rows == 9312
    assert int(data.rows["rows"].sum()) == data.n_input_rows
    assert frame["borough"].nunique() == 32  # "Richmond Upon Thames" merged, "City of Westminster" mapped
    assert {"Richmond upon Thames", "Westminster"} <= set(frame["borough"])
    assert data.measures == [m.key for m in MEASURES]
    assert (str(data.quarters[0]), str(data.quarters[-1]), len(data.quarters)) == ("2014Q4", "2023Q4", 37)
    richmond = frame[(frame["borough"] == "Richmond upon Thames") & (frame["measure"] == "good_job")]
    assert len(richmond) == 37 and richmond["quarter"].is_unique
    trust = frame[frame["measure"] == "trust"]
    assert str(trust["quarter"].min()) == "2016Q1"  # trust is published from Mar-2016
    assert frame["proportion"].between(0, 1).all()
    # Published facts (PAS.md): London "good job" 47% at Dec-23; Croydon 38% and Harrow 61%.
    gj = frame[(frame["measure"] == "good_job") & (frame["quarter"] == pd.Period("2023Q4"))].set_index("borough")
    assert gj.loc["Croydon", "proportion"] == pytest.approx(0.38)
    assert gj.loc["Harrow", "proportion"] == pytest.approx(0.61)
    london = data.london[(data.london["measure"] == "good_job")].set_index("quarter")["proportion"]
    assert london[pd.Period("2023Q4")] == pytest.approx(0.47)
    # The MPS sheet and the MPS column beside each borough row publish the same London series.
    from_column = read_dashboard(BOROUGH_CSV).london
    merged = data.london.merge(from_column, on=["quarter", "measure"])
    assert len(merged) == len(data.london)
    np.testing.assert_allclose(merged["proportion_x"], merged["proportion_y"])


def _write(tmp_path, frame: pd.DataFrame, name: str = "borough.csv", **kwargs) -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False, **kwargs)
    return str(path)


@pytest.fixture(scope="module")
def sheets():
    borough, mps, _ = simulate_dashboard(DashboardSimulation(seed=3, n_boroughs=4, n_windows=10))
    return borough, mps


def test_workbook_with_both_sheets_reads_like_the_csv_exports(tmp_path, sheets):
    borough, mps = sheets
    book = tmp_path / "PAS_T&Cdashboard.xlsx"
    with pd.ExcelWriter(book) as writer:
        borough.to_excel(writer, sheet_name="Borough", index=False)
        mps.to_excel(writer, sheet_name="MPS", index=False)
    csv = _write(tmp_path, borough, sep=";", decimal=",")
    from_book, from_csv = read_dashboard(book), read_dashboard(csv)
    pd.testing.assert_frame_equal(from_book.frame.drop(columns="row"), from_csv.frame.drop(columns="row"))
    assert "MPS sheet" in from_book.london_source
    assert len(from_book.london) == len(mps)
    assert int(from_book.rows["rows"].sum()) == len(borough) + len(mps)


def test_comma_separated_percentages_are_recognised(tmp_path, sheets):
    borough, _ = sheets
    pct = borough.assign(Proportion=100 * borough["Proportion"], MPS=100 * borough["MPS"])
    data = read_dashboard(_write(tmp_path, pct))
    assert data.frame["proportion"].max() <= 1.0
    np.testing.assert_allclose(np.sort(data.frame["proportion"]), np.sort(borough["Proportion"]), atol=1e-9)
    assert any("percentages" in note for note in data.notes)


@pytest.mark.parametrize(("column", "value", "needle"), [
    ("Borough", "Gotham", "not one of the 32 MPS boroughs"),
    ("Borough", "City of London", "not one of the 32 MPS boroughs"),
    ("Date", "31/13/2020", "date cannot be read"),
    ("Date", "30/11/2020", "not in a quarter-end month"),
    ("Proportion", "n/a", "not a number"),
    ("Proportion", "-0.2", "negative"),
    ("Proportion", "140", "above 100"),
])
def test_bad_cells_name_file_column_value_and_row(tmp_path, sheets, column, value, needle):
    borough = sheets[0].copy()
    borough[column] = borough[column].astype(object)
    borough.loc[5, column] = value
    path = _write(tmp_path, borough)
    with pytest.raises(PASDataError) as info:
        read_dashboard(path)
    message = str(info.value)
    assert needle in message and "borough.csv" in message and "What to do" in message
    if needle != "above 100":
        assert value in message and "data row 6" in message


def test_missing_column_and_conflicting_duplicates_are_errors(tmp_path, sheets):
    borough = sheets[0]
    with pytest.raises(PASDataError, match="lacks the columns \\['measure'\\]"):
        read_dashboard(_write(tmp_path, borough.drop(columns="Measure")))
    twice = pd.concat([borough, borough.iloc[[3]].assign(Proportion=0.99)], ignore_index=True)
    with pytest.raises(PASDataError, match="different values"):
        read_dashboard(_write(tmp_path, twice, "twice.csv"))
    repeated = pd.concat([borough, borough.iloc[[3, 4]]], ignore_index=True)
    data = read_dashboard(_write(tmp_path, repeated, "repeated.csv"))
    assert dict(zip(data.rows["reason"], data.rows["rows"], strict=True))["exact repeat of an earlier row"] == 2
    assert int(data.rows["rows"].sum()) == len(repeated)


def test_other_surveys_and_blank_values_are_counted_not_lost(tmp_path, sheets):
    borough = sheets[0].copy()
    borough["Proportion"] = borough["Proportion"].astype(object)
    borough.loc[0, "Survey"] = "UCS"
    borough.loc[1, "Proportion"] = ""
    data = read_dashboard(_write(tmp_path, borough))
    reasons = dict(zip(data.rows["reason"], data.rows["rows"], strict=True))
    assert reasons["survey other than PAS"] == 1 and reasons["no value published"] == 1
    assert int(data.rows["rows"].sum()) == len(borough)
