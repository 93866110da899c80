import pytest

from pas_bayes.errors import PASDataError
from pas_bayes.geography import BOROUGHS, normalise_borough, read_ward_lookup

from .conftest import SHARED, WARDS_2022, need_shared


def test_thirty_two_boroughs_with_the_published_ward_totals():
    assert len(BOROUGHS) == 32
    assert sum(b.wards_2022 for b in BOROUGHS) == 679
    assert sum(b.wards_2018 for b in BOROUGHS) == 632


@pytest.mark.parametrize("raw, name", [
    ("Richmond Upon Thames", "Richmond upon Thames"),
    ("City of Westminster", "Westminster"),
    ("Barking & Dagenham", "Barking and Dagenham"),
    ("  hammersmith and  FULHAM ", "Hammersmith and Fulham"),
    ("E09000008", "Croydon"),
])
def test_borough_spellings_seen_in_pas_files_are_normalised(raw, name):
    assert normalise_borough(raw) == name


@pytest.mark.parametrize("raw", ["City of London", "Narnia", "E09000001"])
def test_places_outside_the_mps_are_not_boroughs(raw):
    assert normalise_borough(raw) is None


def test_ons_lookup_counts_match_the_borough_table():
    lookup = read_ward_lookup(need_shared(WARDS_2022))
    assert len(lookup) == 679
    counts = lookup.groupby("borough_name").size()
    assert all(counts[b.name] == b.wards_2022 for b in BOROUGHS)
    lookup18 = read_ward_lookup(need_shared(SHARED / "geography" / "london_wards_2018_to_borough_MPS32.csv"))
    counts18 = lookup18.groupby("borough_name").size()
    assert all(counts18[b.name] == b.wards_2018 for b in BOROUGHS)


def test_lookup_without_the_needed_columns_is_an_error(tmp_path):
    path = tmp_path / "lookup.csv"
    path.write_text("code,name\nE05000001,x\n")
    with pytest.raises(PASDataError, match=r"lookup.csv.*ward_code"):
        read_ward_lookup(path)
