"""Malformed survey files: each gets a clear PASDataError or an exclusions report that adds up."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pas_bayes.errors import PASDataError
from pas_bayes.simulate import SimulationSettings, simulate_survey
from pas_bayes.spec import ModelSpec
from pas_bayes.survey import INCLUDED, read_survey

SPEC = ModelSpec(name="fuzz")
BASE = simulate_survey(SimulationSettings(seed=21, per_borough=2)).survey  # 64 rows
COLUMNS = list(BASE.columns)
ODD_VALUES = st.one_of(
    st.sampled_from(["", "-", "Refused", "Don't know", "Not Asked", "Good", "Never", "Very safe",
                     "7", "0", "3.5", "Croydon", "City of London", "NaN", "N/A", "  ", "Strongly agree"]),
    st.text(max_size=12),
)


@st.composite
def malformed(draw):
    frame = BASE.copy()
    for _ in range(draw(st.integers(0, 6))):
        row = draw(st.integers(0, len(frame) - 1))
        col = draw(st.sampled_from(COLUMNS))
        frame.iat[row, frame.columns.get_loc(col)] = draw(ODD_VALUES)
    if draw(st.booleans()):
        frame = frame.drop(columns=draw(st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True)))
    if draw(st.booleans()):
        frame = frame.iloc[: draw(st.integers(0, len(frame)))]
    return frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=malformed())
def test_malformed_files_error_clearly_or_add_up(frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "survey.csv"
    frame.to_csv(path, index=False)
    try:
        survey = read_survey(path, SPEC)
    except PASDataError as exc:
        message = str(exc)
        assert str(path) in message and "What to do" in message
        return
    table = survey.exclusions
    assert table["rows"].sum() == len(frame) == survey.n_input_rows
    assert table.loc[table["reason"] == INCLUDED, "rows"].item() == len(survey.frame)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\x00", b"C2,ward\n", b"\n\n"])
def test_unreadable_bytes_are_a_data_error(tmp_path, content):
    path = tmp_path / "survey.csv"
    path.write_bytes(content)
    with pytest.raises(PASDataError, match=r"survey\.csv"):
        read_survey(path, SPEC)


def test_base_frame_is_valid(tmp_path):
    path = tmp_path / "survey.csv"
    pd.DataFrame(BASE).to_csv(path, index=False)
    assert read_survey(path, SPEC).exclusions["rows"].sum() == len(BASE)
