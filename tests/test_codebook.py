import pytest

from pas_bayes.codebook import NON_SUBSTANTIVE, Codebook, non_substantive, normalise_label
from pas_bayes.errors import SpecError


def test_default_codebook_has_the_seven_drivers_and_checks_clean():
    book = Codebook.default()
    book.check()
    assert list(book.drivers) == ["engagement", "effectiveness", "accountability", "security",
                                  "crime_problems", "visibility", "informed"]
    assert book.drivers["visibility"].positive == ("At least daily", "At least weekly")
    assert book.drivers["informed"].positive == ("Very well informed",)
    assert book.outcomes["confidence"].item == "Q60"
    assert book.outcomes["trust"].item == "NQ135BD"


def test_worry_items_are_reversed_so_security_reads_as_feeling_safe():
    book = Codebook.default()
    assert not book.items["Q21"].reverse
    assert book.items["Q13"].reverse and book.items["Q15"].reverse


@pytest.mark.parametrize("raw", ["Don’t know", " don't  KNOW ", "REFUSED", "-", "", "Not asked"])
def test_non_substantive_spellings_are_recognised(raw):
    assert non_substantive(raw) in NON_SUBSTANTIVE


def test_substantive_labels_are_not_taken_for_missing():
    assert non_substantive("Tend to agree") is None
    assert normalise_label("Strongly  Agree") == normalise_label("strongly agree")


def test_overrides_change_a_driver_and_add_an_item_without_code():
    book = Codebook.default().with_overrides({
        "items": {"Q39A_5": {"scale": "problem", "wording": "Gangs a problem?"}},
        "drivers": {"crime_problems": {"items": ["Q39A_2", "Q39A_5"]}},
        "scales": {"well_1_7": {"aliases": {"Extremely well": "7"}}},
    })
    assert book.drivers["crime_problems"].items == ("Q39A_2", "Q39A_5")
    assert book.drivers["crime_problems"].kind == "composite"
    assert book.scales["well_1_7"].lookup()["extremely well"] == "7"
    assert Codebook.default().drivers["crime_problems"].items == ("Q39A_2", "NQ44A")


@pytest.mark.parametrize("overrides, match", [
    ({"drivers": {"engagement": {"itmes": ["Q62A"]}}}, "unknown fields"),
    ({"drivers": {"engagement": {"items": ["NOPE"]}}}, "NOPE"),
    ({"items": {"Q62A": {"scale": "nope"}}}, "scale 'nope'"),
    ({"drivers": {"visibility": {"positive": ["Weekly"]}}}, "Weekly"),
    ({"colours": {}}, "unknown sections"),
    ({"drivers": {"new": {"items": ["Q65"]}}}, "incomplete"),
])
def test_bad_overrides_are_refused_with_the_reason(overrides, match):
    with pytest.raises(SpecError, match=match):
        Codebook.default().with_overrides(overrides)


def test_columns_for_lists_outcome_driver_items_and_demographics():
    cols = Codebook.default().columns_for("confidence", ["visibility", "security"], ["ethnicity"])
    assert cols == ["Q60", "Q65", "Q21", "Q13", "Q15", "NQ147r"]
