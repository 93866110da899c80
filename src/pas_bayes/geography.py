"""The 32 MPS boroughs, borough-name normalisation and ward lookups.

Borough codes, names and ward counts are the ONS facts listed in the design
notes (PAS.md, from the ONS Code History Database): the City of London has its
own police force and is not in the PAS. Ward lists themselves are not bundled;
:func:`read_ward_lookup` reads an ONS lookup file in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pas_bayes.errors import PASDataError


@dataclass(frozen=True)
class Borough:
    """One MPS borough: ONS code, canonical name, wards on 2022 and 2018 boundaries."""

    code: str
    name: str
    wards_2022: int
    wards_2018: int


BOROUGHS: tuple[Borough, ...] = tuple(
    Borough(code, name, w22, w18)
    for code, name, w22, w18 in (
        ("E09000002", "Barking and Dagenham", 19, 17),
        ("E09000003", "Barnet", 24, 21),
        ("E09000004", "Bexley", 17, 17),
        ("E09000005", "Brent", 22, 21),
        ("E09000006", "Bromley", 22, 22),
        ("E09000007", "Camden", 20, 18),
        ("E09000008", "Croydon", 28, 28),
        ("E09000009", "Ealing", 24, 23),
        ("E09000010", "Enfield", 25, 21),
        ("E09000011", "Greenwich", 23, 17),
        ("E09000012", "Hackney", 21, 21),
        ("E09000013", "Hammersmith and Fulham", 21, 16),
        ("E09000014", "Haringey", 21, 19),
        ("E09000015", "Harrow", 22, 21),
        ("E09000016", "Havering", 20, 18),
        ("E09000017", "Hillingdon", 21, 22),
        ("E09000018", "Hounslow", 22, 20),
        ("E09000019", "Islington", 17, 16),
        ("E09000020", "Kensington and Chelsea", 18, 18),
        ("E09000021", "Kingston upon Thames", 19, 16),
        ("E09000022", "Lambeth", 25, 21),
        ("E09000023", "Lewisham", 19, 18),
        ("E09000024", "Merton", 20, 20),
        ("E09000025", "Newham", 24, 20),
        ("E09000026", "Redbridge", 22, 22),
        ("E09000027", "Richmond upon Thames", 18, 18),
        ("E09000028", "Southwark", 23, 23),
        ("E09000029", "Sutton", 20, 18),
        ("E09000030", "Tower Hamlets", 20, 20),
        ("E09000031", "Waltham Forest", 22, 20),
        ("E09000032", "Wandsworth", 22, 20),
        ("E09000033", "Westminster", 18, 20),
    )
)

BOROUGH_NAMES: tuple[str, ...] = tuple(b.name for b in BOROUGHS)

#: A tile-grid map of the 32 boroughs: (column, row), row 0 at the south. Made once by
#: assigning each borough's centroid (London_Boroughs.gpkg, EPSG:27700) to a cell of an
#: 8 x 6 grid with the least total squared distance, so neighbours stay neighbours.
TILE_GRID: dict[str, tuple[int, int]] = {
    "Barking and Dagenham": (6, 3), "Barnet": (2, 5), "Bexley": (6, 2), "Brent": (2, 4),
    "Bromley": (5, 0), "Camden": (3, 3), "Croydon": (4, 0), "Ealing": (1, 3), "Enfield": (4, 5),
    "Greenwich": (5, 2), "Hackney": (4, 4), "Hammersmith and Fulham": (2, 2), "Haringey": (3, 5),
    "Harrow": (1, 4), "Havering": (7, 4), "Hillingdon": (0, 3), "Hounslow": (1, 2), "Islington": (3, 4),
    "Kensington and Chelsea": (2, 3), "Kingston upon Thames": (2, 0), "Lambeth": (4, 1),
    "Lewisham": (5, 1), "Merton": (2, 1), "Newham": (5, 3), "Redbridge": (6, 4),
    "Richmond upon Thames": (1, 1), "Southwark": (4, 2), "Sutton": (3, 0), "Tower Hamlets": (4, 3),
    "Waltham Forest": (5, 4), "Wandsworth": (3, 1), "Westminster": (3, 2),
}

#: Three-letter labels for map tiles.
BOROUGH_ABBREVIATIONS: dict[str, str] = {
    "Barking and Dagenham": "BAR", "Barnet": "BRN", "Bexley": "BXL", "Brent": "BRT", "Bromley": "BRM",
    "Camden": "CMD", "Croydon": "CRD", "Ealing": "EAL", "Enfield": "ENF", "Greenwich": "GRN",
    "Hackney": "HCK", "Hammersmith and Fulham": "HMS", "Haringey": "HGY", "Harrow": "HRW",
    "Havering": "HVG", "Hillingdon": "HDN", "Hounslow": "HNS", "Islington": "ISL",
    "Kensington and Chelsea": "KNS", "Kingston upon Thames": "KTN", "Lambeth": "LAM", "Lewisham": "LSH",
    "Merton": "MRT", "Newham": "NWM", "Redbridge": "RDB", "Richmond upon Thames": "RCH",
    "Southwark": "SWK", "Sutton": "STN", "Tower Hamlets": "TOW", "Waltham Forest": "WTH",
    "Wandsworth": "WNS", "Westminster": "WST",
}
BOROUGH_BY_NAME: dict[str, Borough] = {b.name: b for b in BOROUGHS}

#: Usual residents at Census 2021 (ONS, rounded to the nearest hundred). MOPAC's London
#: (MPS) figures weight boroughs by population: with these weights the borough sheet of the
#: dashboard reproduces the published London series to within rounding (mean difference
#: under 0.1 points on every measure, against 0.1-0.7 points for an unweighted mean).
POPULATION_2021: dict[str, int] = {
    "Barking and Dagenham": 218_900, "Barnet": 389_300, "Bexley": 246_500, "Brent": 339_800,
    "Bromley": 330_000, "Camden": 210_100, "Croydon": 390_800, "Ealing": 367_100,
    "Enfield": 330_000, "Greenwich": 289_100, "Hackney": 259_200, "Hammersmith and Fulham": 183_200,
    "Haringey": 264_200, "Harrow": 261_200, "Havering": 262_000, "Hillingdon": 305_900,
    "Hounslow": 288_200, "Islington": 216_600, "Kensington and Chelsea": 143_400,
    "Kingston upon Thames": 168_000, "Lambeth": 317_600, "Lewisham": 300_600, "Merton": 215_200,
    "Newham": 351_100, "Redbridge": 310_300, "Richmond upon Thames": 195_200, "Southwark": 307_700,
    "Sutton": 209_600, "Tower Hamlets": 310_300, "Waltham Forest": 278_400, "Wandsworth": 327_500,
    "Westminster": 204_300,
}


def _key(name: str) -> str:
    text = name.replace("&", " and ").replace("-", " ").replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).strip().casefold()


# Spellings seen in PAS files and MOPAC workbooks over the years.
_ALIASES = {
    "city of westminster": "Westminster",
    "kingston": "Kingston upon Thames",
    "richmond": "Richmond upon Thames",
    "barking": "Barking and Dagenham",
    "hammersmith": "Hammersmith and Fulham",
    "kensington": "Kensington and Chelsea",
    "royal borough of kensington and chelsea": "Kensington and Chelsea",
    "royal borough of greenwich": "Greenwich",
}
_LOOKUP: dict[str, str] = {_key(b.name): b.name for b in BOROUGHS}
_LOOKUP.update({_key(b.code): b.name for b in BOROUGHS})
_LOOKUP.update({_key(k): v for k, v in _ALIASES.items()})


def normalise_borough(name: str) -> str | None:
    """Return the canonical MPS borough name for a spelling or ONS code, or None.

    Case, ``&``/``and``, hyphens and spacing are ignored, and known variants
    ("City of Westminster", "Richmond Upon Thames", "E09000033") are mapped.
    The City of London is not an MPS borough and returns None.
    """
    return _LOOKUP.get(_key(str(name)))


def read_ward_lookup(path: str | Path) -> pd.DataFrame:
    """Read an ONS ward -> borough lookup (``ward_code, ward_name, borough_code, borough_name``).

    Returns
    -------
    pandas.DataFrame
        One row per ward with canonical borough names, only the 32 MPS boroughs.

    Raises
    ------
    PASDataError
        When a column is missing or a borough is not an MPS borough.
    """
    path = Path(path)
    frame = pd.read_csv(path, dtype=str)
    need = ["ward_code", "ward_name", "borough_code", "borough_name"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise PASDataError(
            f"{path}: ward lookup lacks columns {missing} (found {list(frame.columns)}). "
            "What to do: give an ONS ward-to-borough lookup with those four columns."
        )
    frame = frame[need].copy()
    frame["borough_name"] = frame["borough_code"].map(normalise_borough)
    outside = frame["borough_name"].isna()
    if outside.all():
        raise PASDataError(f"{path}: no ward belongs to one of the 32 MPS boroughs. What to "
                           "do: check the file is a London ward lookup.")
    return frame.loc[~outside].reset_index(drop=True)
