"""Reading MOPAC's published PAS dashboard: borough x quarter rolling-year proportions.

MOPAC's "PAS_T&Cdashboard" workbook (London Datastore, dataset "mopac-surveys")
has a ``Borough`` sheet and an ``MPS`` (London) sheet in the same long layout::

    Date; Survey; Borough; Measure; Proportion; MPS

``Date`` is a quarter end and ``Proportion`` the share over the 12 months to
that date (about 400 respondents per borough). The reader takes the original
``.xlsx`` or CSV exports of either sheet, ``;``-separated with decimal commas
(as Excel writes them in a European locale) or ``,``-separated with points;
proportions given as percentages are recognised. Borough spellings are
normalised ("City of Westminster", "Richmond Upon Thames"), measure labels are
mapped to short keys (:data:`MEASURES`), dates become quarters. Anything the
reader cannot interpret is an error naming the file, column, value and row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pas_bayes.errors import data_error
from pas_bayes.geography import normalise_borough
from pas_bayes.survey import file_sha256


@dataclass(frozen=True)
class Measure:
    """A published dashboard measure: key, label as published, what it counts."""

    key: str
    label: str
    question: str
    description: str


MEASURES: tuple[Measure, ...] = (
    Measure("good_job", '"Good Job" local', "Q60", "police do a good job in the local area (excellent or good)"),
    Measure("trust", "Trust MPS", "NQ135BD", "the MPS is an organisation I can trust (agree)"),
    Measure("listen", "Listen to concerns", "Q62TG", "police listen to the concerns of local people (agree)"),
    Measure("relied_on", "Relied on to be there", "Q62A", "police can be relied on to be there when needed (agree)"),
    Measure("treat_fairly", "Treat everyone fairly", "Q62C", "police treat everyone fairly (agree)"),
    Measure("understand_issues", "Understand issues", "Q62E", "police understand local issues (agree)"),
    Measure("informed", "Informed local", "Q131", "feel very or fairly well informed about local police"),
    Measure("contact_ward_officer", "Contact ward officer", "NQ133A", "know how to contact the ward officer"),
)
MEASURE_BY_KEY: dict[str, Measure] = {m.key: m for m in MEASURES}

#: Borough-column values that mean "London as a whole".
LONDON_NAMES = frozenset({"mps", "london", "metropolitan police service", "met", "mps total", "total"})

_COLUMNS = {"date": "date", "survey": "survey", "borough": "borough", "measure": "measure",
            "proportion": "proportion", "mps": "london", "london": "london"}
_REQUIRED = ("date", "borough", "measure", "proportion")


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(text).casefold()).strip()


_MEASURE_LOOKUP = {_key(m.label): m.key for m in MEASURES} | {_key(m.key): m.key for m in MEASURES}
_MEASURE_LOOKUP |= {_key("Good Job local"): "good_job", _key("good job"): "good_job",
                    _key("Trust"): "trust", _key("Informed"): "informed"}


def measure_key(label: str) -> str:
    """The short key of a published measure label; unknown labels become a slug of themselves."""
    key = _key(label)
    return _MEASURE_LOOKUP.get(key, key.replace(" ", "_"))


@dataclass
class DashboardData:
    """A read dashboard.

    Attributes
    ----------
    frame
        One row per borough, quarter and measure: ``quarter`` (pandas Period),
        ``borough`` (canonical), ``measure`` (key), ``label``, ``proportion`` (0-1),
        ``london`` (the London value published beside it, when there is one),
        ``row`` (1-based data row in its file).
    london
        London series: ``quarter``, ``measure``, ``proportion``; from the MPS
        sheet when given, otherwise from the ``MPS`` column of the borough sheet.
    rows
        Every input row by what happened to it (``reason``, ``rows``), adding up
        to the rows read.
    """

    path: Path
    sha256: str
    frame: pd.DataFrame
    london: pd.DataFrame
    london_source: str
    rows: pd.DataFrame
    n_input_rows: int
    notes: list[str] = field(default_factory=list)

    @property
    def measures(self) -> list[str]:
        """Measure keys present, in the order of :data:`MEASURES` then any others."""
        found = set(self.frame["measure"])
        known = [m.key for m in MEASURES if m.key in found]
        return known + sorted(found - set(known))

    @property
    def quarters(self) -> pd.PeriodIndex:
        """Every quarter with a published value, in order."""
        return pd.period_range(self.frame["quarter"].min(), self.frame["quarter"].max(), freq="Q")


def _read_raw(path: Path, sheet: str | None) -> list[tuple[str, pd.DataFrame]]:
    """(sheet name, text frame) pairs from a CSV or a workbook."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        book = pd.read_excel(path, sheet_name=None, dtype=str)
        wanted = [s for s in book if _key(s) in ("borough", "mps", "london")] if sheet is None else [sheet]
        missing = [s for s in wanted if s not in book]
        if missing or not wanted:
            raise data_error(path, "no Borough or MPS sheet in the workbook", value=list(book),
                             fix="give the dashboard workbook, or name the sheet with --sheet")
        return [(s, book[s]) for s in wanted]
    if suffix not in (".csv", ".txt"):
        raise data_error(path, "unsupported file type", value=path.suffix,
                         fix="give the dashboard .xlsx or a CSV export of its Borough or MPS sheet")
    with path.open(encoding="utf-8-sig") as handle:
        header = handle.readline()
    sep = ";" if header.count(";") > header.count(",") else ","
    return [(path.name, pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig"))]


def _numbers(path: Path, values: pd.Series, column: str, rows: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.replace("%", "", regex=False).str.replace(",", ".", regex=False)
    out = pd.to_numeric(text.replace({"": None}), errors="coerce")
    bad = out.isna() & values.astype(str).str.strip().ne("")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise data_error(path, "a value is not a number", column=column, value=values.iloc[i],
                         row=int(rows.iloc[i]), fix="correct the cell, or leave it empty if not published")
    return out.to_numpy(dtype=float)


def _quarters(path: Path, values: pd.Series, rows: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip()
    parsed = pd.to_datetime(text, dayfirst=True, errors="coerce", format="mixed")
    # Month-year labels such as "Dec-23" (the Datastore's own CSV) parse to the 1st of the month.
    retry = parsed.isna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], format="%b-%y", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise data_error(path, "a date cannot be read", column="Date", value=values.iloc[i], row=int(rows.iloc[i]),
                         fix="dates must be quarter ends such as 31/12/2023 (day first)")
    off_quarter = ~parsed.dt.month.isin([3, 6, 9, 12])
    if off_quarter.any():
        i = int(np.flatnonzero(off_quarter.to_numpy())[0])
        raise data_error(path, "a date is not in a quarter-end month (Mar, Jun, Sep, Dec)", column="Date",
                         value=values.iloc[i], row=int(rows.iloc[i]),
                         fix="the dashboard publishes rolling-year values at quarter ends; check the file")
    return parsed.dt.to_period("Q")


def _tidy(path: Path, raw: pd.DataFrame, sheet: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Canonical long frame of one sheet, and counts of rows set aside by reason."""
    rename = {}
    for column in raw.columns:
        key = _key(column)
        if key in _COLUMNS and _COLUMNS[key] not in rename.values():
            rename[column] = _COLUMNS[key]
    frame = raw.rename(columns=rename)
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise data_error(path, f"sheet {sheet!r} lacks the columns {missing}", value=list(raw.columns),
                         fix="give the dashboard's Borough or MPS sheet (Date, Survey, Borough, Measure, "
                         "Proportion)")
    frame = frame.copy()
    frame["row"] = np.arange(1, len(frame) + 1)
    set_aside: dict[str, int] = {}
    blank = frame[list(_REQUIRED)].apply(lambda c: c.astype(str).str.strip().eq("")).all(axis=1)
    if blank.any():
        set_aside["blank line"] = int(blank.sum())
        frame = frame.loc[~blank]
    if "survey" in frame.columns:
        other = ~frame["survey"].astype(str).str.strip().str.casefold().isin(["pas", ""])
        if other.any():
            set_aside["survey other than PAS"] = int(other.sum())
            frame = frame.loc[~other]
    no_value = frame["proportion"].astype(str).str.strip().eq("")
    if no_value.any():
        set_aside["no value published"] = int(no_value.sum())
        frame = frame.loc[~no_value]

    out = pd.DataFrame({"row": frame["row"].to_numpy()})
    out["quarter"] = _quarters(path, frame["date"], frame["row"]).to_numpy()
    out["label"] = frame["measure"].astype(str).str.strip().str.strip('"').str.replace('""', '"').to_numpy()
    out["measure"] = [measure_key(v) for v in frame["measure"]]
    out["proportion"] = _numbers(path, frame["proportion"], "Proportion", frame["row"])
    out["london"] = (_numbers(path, frame["london"], "MPS", frame["row"]) if "london" in frame.columns
                     else np.nan)
    names = frame["borough"].astype(str).str.strip()
    is_london = names.str.casefold().isin(LONDON_NAMES).to_numpy()
    boroughs = names.map(normalise_borough)
    unknown = boroughs.isna().to_numpy() & ~is_london
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise data_error(path, "not one of the 32 MPS boroughs", column="Borough", value=names.iloc[i],
                         row=int(frame["row"].iloc[i]),
                         fix="check the spelling; the City of London is not in the PAS (own police force)")
    out["borough"] = np.where(is_london, "London", boroughs.fillna("London").to_numpy())
    return out, set_aside


def _as_proportion(path: Path, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    values = frame[["proportion", "london"]].to_numpy(dtype=float)
    if np.nanmax(values) > 1.0 + 1e-9:
        if np.nanmax(values) > 100.0 + 1e-9:
            i = int(np.nanargmax(frame["proportion"].to_numpy()))
            raise data_error(path, "a proportion is above 100", column="Proportion",
                             value=float(frame["proportion"].iloc[i]), row=int(frame["row"].iloc[i]),
                             fix="values must be proportions (0-1) or percentages (0-100)")
        frame = frame.assign(proportion=frame["proportion"] / 100.0, london=frame["london"] / 100.0)
        notes.append(f"{path.name}: values read as percentages and divided by 100")
    below = frame["proportion"] < 0
    if below.any():
        i = int(np.flatnonzero(below.to_numpy())[0])
        raise data_error(path, "a proportion is negative", column="Proportion",
                         value=float(frame["proportion"].iloc[i]), row=int(frame["row"].iloc[i]),
                         fix="correct the cell")
    return frame


def _deduplicate(path: Path, frame: pd.DataFrame, keys: list[str], set_aside: dict[str, int]) -> pd.DataFrame:
    repeated = frame.duplicated(keys, keep=False)
    if not repeated.any():
        return frame
    spread = frame.loc[repeated].groupby(keys)["proportion"].agg(lambda v: v.max() - v.min())
    if (spread > 1e-9).any():
        first = spread[spread > 1e-9].index[0]
        rows = frame.loc[repeated].set_index(keys).loc[[first], "row"].tolist()
        raise data_error(path, f"the same borough, quarter and measure appear with different values {first}",
                         column="Proportion", row=int(rows[0]),
                         fix=f"keep one of rows {rows} (the file should have one value per cell)")
    set_aside["exact repeat of an earlier row"] = int(frame.duplicated(keys).sum())
    return frame.drop_duplicates(keys)


def read_dashboard(path: str | Path, *, london_path: str | Path | None = None,
                   sheet: str | None = None) -> DashboardData:
    """Read the dashboard's Borough sheet (and its London series).

    Parameters
    ----------
    path
        The dashboard workbook (``.xlsx``: Borough and MPS sheets are both read)
        or a CSV export of its Borough sheet.
    london_path
        A CSV export of the MPS sheet. Without it, London comes from the MPS
        sheet of a workbook or else from the ``MPS`` column beside each borough row.
    sheet
        One workbook sheet to read instead of looking for Borough and MPS.

    Returns
    -------
    DashboardData

    Raises
    ------
    PASDataError
        For a missing column, unknown borough, unreadable date or number, a
        non-quarter-end date, a value above 100, or conflicting duplicates.
    """
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "no such file", fix="give the path of the dashboard workbook or its CSV export")
    notes: list[str] = []
    set_aside: dict[str, int] = {}
    sheets = _read_raw(path, sheet)
    n_input = sum(len(raw) for _, raw in sheets)
    frames = []
    for name, raw in sheets:
        tidy, aside = _tidy(path, raw, name)
        for reason, n in aside.items():
            set_aside[reason] = set_aside.get(reason, 0) + n
        frames.append(tidy)
    extra_london = []
    if london_path is not None:
        london_path = Path(london_path)
        if not london_path.is_file():
            raise data_error(london_path, "no such file", fix="give the CSV export of the dashboard's MPS sheet")
        for name, raw in _read_raw(london_path, None):
            tidy, aside = _tidy(london_path, raw, name)
            if (tidy["borough"] != "London").any():
                raise data_error(london_path, "the London file has borough rows", column="Borough",
                                 value=tidy.loc[tidy["borough"] != "London", "borough"].iloc[0],
                                 fix="give the MPS sheet's export as --london, the Borough sheet as FILE")
            extra_london.append(_as_proportion(london_path, tidy, notes))
    frame = _as_proportion(path, pd.concat(frames, ignore_index=True), notes)

    london_rows = frame["borough"] == "London"
    boroughs = _deduplicate(path, frame.loc[~london_rows], ["quarter", "borough", "measure"], set_aside)
    if boroughs.empty:
        raise data_error(path, "no borough rows", column="Borough",
                         fix="give the dashboard's Borough sheet (the MPS sheet alone has London only)")
    if extra_london:
        london = pd.concat(extra_london, ignore_index=True)
        source = f"{london_path.name} (MPS sheet)"
    elif london_rows.any():
        london = frame.loc[london_rows]
        source = f"{path.name} (MPS sheet)"
    else:
        london = boroughs.dropna(subset=["london"]).drop_duplicates(["quarter", "measure"]).assign(
            proportion=lambda f: f["london"])
        source = f"{path.name} (MPS column of the Borough sheet)"
    london = (london.drop_duplicates(["quarter", "measure"])[["quarter", "measure", "proportion"]]
              .sort_values(["measure", "quarter"]).reset_index(drop=True))

    rows = [{"reason": "borough value read", "rows": len(boroughs)},
            {"reason": "London (MPS) value, used to check the model, not to fit it", "rows": int(london_rows.sum())}]
    rows += [{"reason": reason, "rows": n} for reason, n in set_aside.items()]
    table = pd.DataFrame(rows)
    assert int(table["rows"].sum()) == n_input, (table, n_input)  # nothing is lost
    unknown = sorted(set(boroughs["measure"]) - set(MEASURE_BY_KEY))
    if unknown:
        notes.append(f"measures not in the known list, kept under their own names: {unknown}")
    frame_out = (boroughs.sort_values(["measure", "borough", "quarter"])
                 [["quarter", "borough", "measure", "label", "proportion", "london", "row"]].reset_index(drop=True))
    return DashboardData(path=path, sha256=file_sha256(path), frame=frame_out, london=london,
                         london_source=source, rows=table, n_input_rows=n_input, notes=notes)
