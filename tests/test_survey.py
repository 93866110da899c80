import numpy as np
import pandas as pd
import pytest

from pas_bayes.errors import PASDataError
from pas_bayes.spec import ModelSpec, spec_from_dict
from pas_bayes.survey import INCLUDED, NOT_STATED, read_survey

SPEC = ModelSpec(name="test")


@pytest.fixture(scope="module")
def raw(small_survey) -> pd.DataFrame:
    return pd.read_csv(small_survey, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def survey(small_survey):
    return read_survey(small_survey, SPEC)


def write(frame: pd.DataFrame, path, **kwargs):
    frame.to_csv(path, index=False, **kwargs)
    return path


def test_exclusions_add_up_to_the_input_rows(survey, raw):
    table = survey.exclusions
    assert table["rows"].sum() == len(raw) == survey.n_input_rows
    assert table["reason"].iloc[-1] == INCLUDED
    assert table["rows"].iloc[-1] == len(survey.frame)
    assert (table["rows"] > 0).all()


def test_respondents_are_in_ward_order_and_keep_their_file_row(survey, raw):
    """Ward order (borough, ward, file row) for the model's ward runs; ``row`` still points at the file."""
    frame = survey.frame
    keys = list(zip(frame["borough"], frame["ward"], frame["row"], strict=True))
    assert keys == sorted(keys)
    assert frame["row"].is_unique
    file_wards = raw["ward"].to_numpy()[frame["row"].to_numpy() - 1]
    assert np.array_equal(file_wards, frame["ward"].to_numpy())
    assert not np.array_equal(frame["row"].to_numpy(), np.sort(frame["row"].to_numpy()))  # the file was not


def test_each_excluded_row_has_the_reason_its_answers_give(survey, raw):
    kept = set(survey.frame["row"])
    dk = raw.index[raw["Q60"] == "Don't know"] + 1
    assert not kept & set(dk)
    n_dk = int(survey.exclusions.set_index("reason").loc["outcome Q60 (confidence) is 'Don't know'", "rows"])
    assert n_dk == len(dk)


def test_outcome_is_excellent_or_good(survey, raw):
    labels = raw.set_index(np.arange(1, len(raw) + 1)).loc[survey.frame["row"], "Q60"]
    assert (survey.frame["confidence"].to_numpy() == labels.isin(["Excellent", "Good"]).to_numpy()).all()


def test_drivers_are_standardised_or_binary(survey, raw):
    frame = survey.frame
    for d in ("engagement", "effectiveness", "accountability", "security", "crime_problems"):
        assert abs(frame[d].mean()) < 1e-9 and abs(frame[d].std(ddof=0) - 1) < 1e-9
    assert set(frame["visibility"].unique()) <= {0.0, 1.0}
    labels = raw.set_index(np.arange(1, len(raw) + 1)).loc[frame["row"], "Q65"]
    assert (frame["visibility"].to_numpy() == labels.isin(["At least daily", "At least weekly"])).all()


def test_driver_names_read_true(survey, raw):
    """Feeling very safe raises the security score; seeing a major problem raises crime_problems."""
    frame = survey.frame.set_index("row")
    by_row = raw.set_index(np.arange(1, len(raw) + 1)).loc[frame.index]
    safe = frame["security"].groupby(by_row["Q21"].to_numpy()).mean()
    assert safe["Very safe"] > safe["Fairly safe"] > safe["A bit unsafe"] > safe["Very unsafe"]
    worry = frame["security"].groupby(by_row["Q13"].to_numpy()).mean()
    assert worry["Not at all worried"] > worry["Very worried"]
    problem = frame["crime_problems"].groupby(by_row["Q39A_2"].to_numpy()).mean()
    assert problem["A major problem"] > problem["Not a problem at all"]


def test_refused_demographics_are_kept_as_not_stated(survey, raw):
    refused = set(raw.index[raw["NQ147r"] == "Refused"] + 1)
    kept_refused = survey.frame[survey.frame["row"].isin(refused)]
    assert len(refused) > 0 and len(kept_refused) > 0
    assert (kept_refused["ethnicity"] == NOT_STATED).all()


def test_item_missingness_counts_each_code(survey, raw):
    table = survey.item_missingness.set_index("item")
    assert table.loc["Q79B", "Not Asked"] == (raw["Q79B"] == "Not Asked").sum()
    assert (table[["answered", "Don't know", "Refused", "-", "Not Asked"]].sum(axis=1) == table["rows"]).all()


def test_real_file_drift_is_absorbed(tmp_path, raw, survey):
    drift = raw.rename(columns={"C2": "Borough"}).copy()
    drift["Borough"] = drift["Borough"].replace({"Richmond upon Thames": "Richmond Upon Thames",
                                                 "Westminster": "City of Westminster"})
    drift["Q79B"] = drift["Q79B"].replace({"1": "1 Not at all well", "7": "7 Very well", "5": "5.0"})
    drift["Q62TG"] = drift["Q62TG"].str.upper()
    drift["Q60"] = drift["Q60"].replace({"Don't know": "Don’t know"})
    again = read_survey(write(drift, tmp_path / "drift.csv"), SPEC)
    pd.testing.assert_frame_equal(again.frame, survey.frame)
    pd.testing.assert_frame_equal(again.exclusions, survey.exclusions)


def test_parquet_xlsx_and_cp1252_give_the_same_frame(tmp_path, raw, survey):
    typed = raw.copy()
    typed["WT_Discrete"] = typed["WT_Discrete"].astype(float)
    typed.to_parquet(tmp_path / "s.parquet")
    assert read_survey(tmp_path / "s.parquet", SPEC).frame.equals(survey.frame)
    raw.iloc[:300].to_excel(tmp_path / "s.xlsx", index=False)
    assert len(read_survey(tmp_path / "s.xlsx", SPEC).exclusions) > 0
    cp = raw.copy()
    cp["Q60"] = cp["Q60"].replace({"Don't know": "Don’t know"})
    path = write(cp, tmp_path / "cp.csv", encoding="cp1252")
    with pytest.raises(PASDataError, match=r"cp\.csv.*not valid utf-8.*--encoding cp1252"):
        read_survey(path, SPEC)
    assert read_survey(path, SPEC, encoding="cp1252").frame.equals(survey.frame)


def test_financial_year_filter_counts_the_rows_it_leaves_out(tmp_path, raw):
    two = pd.concat([raw, raw.assign(FinancialYear="FY 22-23")], ignore_index=True)
    spec = spec_from_dict({"model": {"name": "x"}, "data": {"financial_years": ["FY 22-23"]}})
    got = read_survey(write(two, tmp_path / "two.csv"), spec)
    table = got.exclusions.set_index("reason")["rows"]
    assert table.filter(like="financial year").sum() == len(raw)
    assert table.sum() == 2 * len(raw)


@pytest.mark.parametrize("mutate, match", [
    (lambda f: f.drop(columns=["Q62E", "Q21"]), r"missing columns \['Q62E', 'Q21'\]"),
    (lambda f: f.drop(columns=["C2"]), r"no borough column.*\['C2', 'Borough'\]"),
    (lambda f: f.drop(columns=["ward"]), "no ward column"),
    (lambda f: f.assign(Q62C=f["Q62C"].where(f.index != 7, "Agree a lot")),
     r"column 'Q62C'; value 'Agree a lot'; first seen on data row 8.*\[codebook.scales.agree\]"),
    (lambda f: f.assign(C2=f["C2"].where(f.index != 3, "City of London")),
     r"column 'C2'; value 'City of London'; first seen on data row 4"),
    (lambda f: f.assign(C2=f["C2"].where(f.index != 0, "Croydon")), r"ward code found in more than one borough"),
    (lambda f: f.assign(WT_Discrete=f["WT_Discrete"].where(f.index != 5, "heavy")),
     r"column 'WT_Discrete'; value 'heavy'; first seen on data row 6"),
    (lambda f: f.iloc[:0], "no respondent rows"),
])
def test_bad_input_names_file_column_value_and_fix(tmp_path, raw, mutate, match):
    path = write(mutate(raw.copy()), tmp_path / "bad.csv")
    with pytest.raises(PASDataError, match=match) as info:
        read_survey(path, SPEC)
    assert "bad.csv" in str(info.value) and "What to do" in str(info.value)


def test_an_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(PASDataError, match=r"empty\.csv: the file is empty"):
        read_survey(path, SPEC)


def test_blank_geography_is_excluded_and_counted(tmp_path, raw):
    f = raw.copy()
    f.loc[[0, 1], "ward"] = ""
    f.loc[2, "C2"] = ""
    got = read_survey(write(f, tmp_path / "blank.csv"), SPEC)
    table = got.exclusions.set_index("reason")["rows"]
    assert table["ward missing (ward blank)"] == 2 and table["borough missing (C2 blank)"] == 1
    assert table.sum() == len(raw)


def test_ward_names_that_repeat_across_boroughs_are_two_wards(tmp_path, raw, survey):
    """Ten 2022 ward names repeat across boroughs: with names in the ward column, that is no error."""
    named = raw.copy()
    named["ward"] = named["ward_n"]
    first, second = named["C2"].unique()[:2]
    named.loc[named["C2"].isin([first, second]) & (named["ward"].str.endswith("ward 01")), "ward"] = "Village"
    got = read_survey(write(named, tmp_path / "names.csv"), SPEC)
    villages = sorted(got.frame.loc[got.frame["ward"].str.startswith("Village"), "ward"].unique())
    assert villages == [f"Village ({first})", f"Village ({second})"]
    assert len(got.frame) == len(survey.frame)
    spec = spec_from_dict({"model": {"name": "x"}, "data": {"ward_ids": "codes"}})
    with pytest.raises(PASDataError, match="Village"):
        read_survey(tmp_path / "names.csv", spec)
