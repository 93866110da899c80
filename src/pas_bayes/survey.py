"""Read a respondent-level PAS file (real layout) into a tidy, validated frame.

The one entry point is :func:`read_survey`. It

1. reads CSV, parquet or xlsx as text (the PAS files store answer labels);
2. finds the geography columns through known drift (``C2`` or ``Borough``;
   ``ward`` or ``ward_unique``) and normalises borough names;
3. checks every answer against its scale in the codebook: an unknown label is
   an error naming the file, column, value and row, never a silent NA;
4. builds the outcome (1 = positive answer), the drivers (composites are the
   mean of answered, standardised items, re-standardised over the analysis
   sample: effects are per SD; binary drivers are 0/1) and the demographics;
5. counts every row it leaves out by its first reason, in an exclusions report
   whose counts add up to the rows in the file.

Demographic answers that are non-substantive ("Refused", ...) are kept as a
level "Not stated" rather than dropping the respondent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pas_bayes.codebook import NON_SUBSTANTIVE, Codebook, non_substantive, normalise_label
from pas_bayes.errors import data_error
from pas_bayes.geography import BOROUGH_BY_NAME, normalise_borough
from pas_bayes.spec import ModelSpec

BOROUGH_COLUMNS = ("C2", "Borough")
WARD_FALLBACKS = ("ward", "ward_unique", "ward_code")
NOT_STATED = "Not stated"
INCLUDED = "included in the model"


@dataclass(frozen=True)
class SurveyData:
    """A survey file read and validated for one spec.

    Attributes
    ----------
    frame
        One row per respondent kept, in ward order (by borough, ward, then file row):
        ``row`` (data row in the file, 1-based),
        ``borough``, ``borough_code``, ``ward``, ``ward_name``,
        ``financial_year``, ``quarter``, ``weight``, the outcome (0/1, named as
        the spec's outcome), ``answer`` (the outcome's full answer as 0 = least
        positive ... K-1 = most positive, for cumulative models), one float
        column per driver and one text column per demographic.
    exclusions
        ``reason``, ``rows``: every input row once, the last line being the
        rows kept; the counts add up to ``n_input_rows``.
    item_missingness
        Per financial year and item: answered rows and each non-substantive code.
    driver_scaling
        Per composite driver, the mean and SD (of the mean item z-score) used to
        standardise it, so a score can be put back on the item scale, and what the
        missing-item rule did: respondents kept whose score used all its items or
        only some, and rows with fewer answered items than ``min_items_answered``.
    """

    path: Path
    sha256: str
    n_input_rows: int
    frame: pd.DataFrame
    exclusions: pd.DataFrame
    item_missingness: pd.DataFrame
    driver_scaling: pd.DataFrame


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cell_text(value: object) -> str:
    """One cell as stripped text; a whole float as an integer ("5.0" -> "5"); missing as ""."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _as_text(series: pd.Series) -> pd.Series:
    """Cells as stripped text, stored categorical: each distinct answer once, a code a cell.

    A PAS column holds a handful of distinct answers, so a survey of 250,000 respondents
    takes about 12 MB this way where text cells take 190 MB (and Python strings several
    times that); every per-column step below (label lookups, scores, checks) then works
    on the distinct answers rather than on every cell.
    """
    cells = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
    return _recode(cells, [_cell_text(v) for v in cells.cat.categories], missing="")


def _recode(cells: pd.Series, texts: list[str], *, missing: str) -> pd.Series:
    """Categorical ``cells`` with category ``i`` renamed ``texts[i]``, still categorical.

    Renamed categories may coincide (stripping merges "Good " and "Good", a lookup two
    spellings of one label): their cells then share one category. Missing cells
    (code -1) become ``missing``.
    """
    levels, merged = np.unique(np.array([*texts, missing], dtype=object), return_inverse=True)
    codes = cells.cat.codes.to_numpy()
    new_codes = merged[np.where(codes < 0, len(texts), codes)]
    values = pd.Categorical.from_codes(new_codes, categories=pd.Index(levels, dtype="str"))
    return pd.Series(values, index=cells.index, name=cells.name)


def _text_column(series: pd.Series) -> pd.Series:
    """A column of the tidy frame as plain text (what every later step expects)."""
    return series.astype("str")


def read_table(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a survey table as text cells, whatever the file format.

    Every column comes back categorical (stripped text categories, "" for a blank
    cell), so a large survey costs a byte or two a cell.

    Parameters
    ----------
    path
        ``.csv`` (or ``.txt``), ``.parquet`` or ``.xlsx``.
    encoding
        Text encoding of a CSV file (a byte-order mark is accepted for UTF-8).

    Raises
    ------
    PASDataError
        When the file is missing, empty, of an unknown type or not in ``encoding``.
    """
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "file not found", fix="check the path (--data or [data] path)")
    if path.stat().st_size == 0:
        raise data_error(path, "the file is empty", fix="export the survey again")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
            # Categorical from the parser on: its peak is a few columns of text, not the file's.
            table = pd.read_csv(path, dtype="category", keep_default_na=False, encoding=enc)
        elif suffix == ".parquet":
            table = pd.read_parquet(path)
        elif suffix in (".xlsx", ".xlsm"):
            table = pd.read_excel(path, dtype=object)
        else:
            raise data_error(path, f"unknown file type {suffix!r}",
                             fix="give a .csv, .parquet or .xlsx file")
    except UnicodeDecodeError as exc:
        raise data_error(
            path, f"the file is not valid {encoding} text (byte {exc.object[exc.start:exc.end]!r} "
            f"at offset {exc.start})",
            fix="save it as UTF-8, or name its encoding with --encoding cp1252 "
            "(or data.encoding in the spec)",
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise data_error(path, "the file has no header row", fix="export the survey again") from exc
    if table.shape[0] == 0:
        raise data_error(path, "the file has a header but no respondent rows",
                         fix="check the export or the financial-year filter")
    table.columns = [str(c).strip() for c in table.columns]
    for i in range(table.shape[1]):  # one column at a time: no second copy of the table
        table.isetitem(i, _as_text(table.iloc[:, i]))
    return table


def standardised_composite(
    item_scores: pd.DataFrame, keep: np.ndarray
) -> tuple[pd.Series, float, float]:
    """A driver score: the mean of a respondent's answered items, standardised.

    Each item is first standardised over the kept rows (so a 1-7 item and a
    1-5 item weigh the same), the answered ones are averaged, and the average
    is standardised again over the kept rows: a driver effect is then "per SD".

    Parameters
    ----------
    item_scores
        One column per item, oriented scores, NaN where not answered.
    keep
        Boolean mask of the rows that form the analysis sample.

    Returns
    -------
    tuple
        The score of every row (NaN where no item was answered), and the mean
        and SD of the averaged item z-scores used to standardise it.
    """
    kept = item_scores[keep]
    z = (item_scores - kept.mean()) / kept.std(ddof=0).replace(0.0, 1.0)
    average = z.mean(axis=1)
    centre, scale = float(average[keep].mean()), float(average[keep].std(ddof=0))
    return (average - centre) / (scale if scale > 0 else 1.0), centre, scale


def _first_row(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _find_column(table: pd.DataFrame, path: Path, options: tuple[str, ...], what: str) -> str:
    for name in options:
        if name in table.columns:
            return name
    raise data_error(path, f"no {what} column: looked for {list(options)}",
                     fix=f"rename the {what} column, or map it with [data.columns] in the spec")


def _labels(table: pd.DataFrame, column: str, book: Codebook, path: Path) -> pd.Series:
    """Canonical label (or non-substantive code) of each cell; unknown labels raise."""
    scale = book.scale_of(column)
    lookup = scale.lookup()
    values = table[column]
    mapping: dict[str, str] = {}
    for raw in values.unique():
        canon = lookup.get(normalise_label(raw)) or non_substantive(raw)
        if canon is None:
            raise data_error(
                path, f"answer not on the {scale.name!r} scale", column=column, value=raw,
                row=_first_row(values == raw),
                fix=f"expected one of {list(scale.labels)} or {list(NON_SUBSTANTIVE)}; if the "
                "file uses another wording, add it as an alias under "
                f"[codebook.scales.{scale.name}] in the spec",
            )
        mapping[raw] = canon
    return _recode(values, [mapping.get(c, "") for c in values.cat.categories], missing="")


def ward_ids_are_codes(values: pd.Series) -> bool:
    """True when every non-blank ward identifier looks like a code (digits, no spaces).

    ONS codes (E05014053) and most survey ward ids qualify; ward names
    ("Village", "St Peter's") do not.
    """
    present = values[values != ""]
    return bool(len(present)) and bool(present.str.contains(r"\d").all() and not present.str.contains(r"\s").any())


def _ward_keys(ward: pd.Series, borough: pd.Series, column: str, ward_ids: str, path: Path) -> pd.Series:
    """Ward identifiers that nest in boroughs.

    A ward *code* found in two boroughs is an error in the data. A ward *name*
    can repeat across boroughs (ten 2022 ward names do, e.g. "Village" in
    Barking and Dagenham, and in Southwark), so a repeated name is kept apart
    as "Name (Borough)".
    """
    pairs = pd.DataFrame({"ward": ward, "borough": borough})[(ward != "") & (borough != "")]
    spread = pairs.drop_duplicates().groupby("ward")["borough"].nunique()
    repeated = spread[spread > 1].index
    if len(repeated) == 0:
        return ward
    as_codes = ward_ids_are_codes(ward) if ward_ids == "auto" else ward_ids == "codes"
    if as_codes:
        bad = repeated[0]
        places = sorted(pairs.loc[pairs["ward"] == bad, "borough"].unique())
        raise data_error(
            path, f"ward code found in more than one borough ({', '.join(places)})", column=column,
            value=bad, row=_first_row(ward == bad),
            fix="wards must nest in boroughs: correct the borough or ward of those rows; if this "
            "column holds ward names, not codes, set data.ward_ids = \"names\" in the spec",
        )
    ward, borough = _text_column(ward), _text_column(borough)
    qualified = ward + " (" + borough + ")"
    return ward.where(~ward.isin(repeated), qualified)


def _reason_series(n: int) -> pd.Series:
    return pd.Series(pd.NA, index=range(n), dtype=object)


def _quoted(text: str, labels: pd.Series) -> pd.Series:
    """``text 'label'`` for every cell of categorical ``labels``, built once per category."""
    return labels.cat.rename_categories([f"{text} '{c}'" for c in labels.cat.categories])


def _mark(reasons: pd.Series, mask: pd.Series, reason: pd.Series | str) -> None:
    """Give rows in ``mask`` their first reason for exclusion."""
    fresh = mask.to_numpy() & reasons.isna().to_numpy()
    if isinstance(reason, str):
        reasons[fresh] = reason
    else:
        reasons[fresh] = reason[fresh]


def read_survey(path: str | Path, spec: ModelSpec, *, encoding: str | None = None) -> SurveyData:
    """Read and validate a PAS respondent file for the model in ``spec``.

    Parameters
    ----------
    path
        Survey file in the real PAS layout.
    spec
        The model spec: which outcome, drivers and demographics to build, the
        codebook overrides and the reading options in ``spec.data``.
    encoding
        Overrides ``spec.data.encoding``.

    Returns
    -------
    SurveyData
        The tidy frame, the exclusions report and the item-missingness table.

    Raises
    ------
    PASDataError
        On a missing column, unknown label, unknown borough, a ward found in
        two boroughs, an empty or undecodable file, or an unreadable weight.
    """
    path = Path(path)
    book = spec.codebook()
    table = read_table(path, encoding=encoding or spec.data.encoding)
    table = table.rename(columns=dict(spec.data.columns))
    n = len(table)

    borough_col = _find_column(table, path, BOROUGH_COLUMNS, "borough")
    ward_options = (spec.data.ward_column, *(
        c for c in WARD_FALLBACKS if spec.data.ward_column == "ward" and c != "ward"))
    ward_col = _find_column(table, path, ward_options, "ward")
    needed = book.columns_for(spec.outcome, list(spec.drivers), list(spec.demographics))
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise data_error(
            path, f"missing columns {missing}", column=missing[0],
            fix="these items are needed by the spec's outcome, drivers and demographics: map "
            "renamed columns with [data.columns], or change the item lists under [codebook]",
        )
    reasons = _reason_series(n)

    year = table["FinancialYear"] if "FinancialYear" in table.columns else pd.Series("", index=table.index)
    if spec.data.financial_years:
        wanted = {normalise_label(y) for y in spec.data.financial_years}
        _mark(reasons, ~year.map(normalise_label).isin(wanted),
              f"financial year not in the spec's {list(spec.data.financial_years)}")

    borough_raw = table[borough_col]
    _mark(reasons, borough_raw == "", f"borough missing ({borough_col} blank)")
    borough = borough_raw.map(lambda v: normalise_borough(v) if v else "")
    unknown = borough.isna()
    if unknown.any():
        value = borough_raw[unknown].iloc[0]
        raise data_error(path, "not one of the 32 MPS boroughs", column=borough_col, value=value,
                         row=_first_row(unknown),
                         fix="correct the name (the City of London is not in the PAS); known "
                         f"names: {', '.join(BOROUGH_BY_NAME)}")

    ward = _ward_keys(table[ward_col], borough, ward_col, spec.data.ward_ids, path)
    _mark(reasons, ward == "", f"ward missing ({ward_col} blank)")

    outcome = book.outcomes[spec.outcome]
    y_label = _labels(table, outcome.item, book, path)
    y_missing = y_label.isin(NON_SUBSTANTIVE)
    _mark(reasons, y_missing,
          _quoted(f"outcome {outcome.item} ({spec.outcome}) is", y_label))

    drivers: dict[str, pd.Series] = {}
    answered_items: dict[str, pd.DataFrame] = {}
    labels_by_item: dict[str, pd.Series] = {}
    for name in spec.drivers:
        driver = book.drivers[name]
        for code in driver.items:
            if code not in labels_by_item:
                labels_by_item[code] = _labels(table, code, book, path)
        if driver.kind == "binary":
            code = driver.items[0]
            lab = labels_by_item[code]
            _mark(reasons, lab.isin(NON_SUBSTANTIVE),
                  _quoted(f"driver {name}: {code} is", lab))
            drivers[name] = lab.isin(driver.positive).astype(float)
        else:
            scores = {}
            for code in driver.items:
                lab = labels_by_item[code]
                item = book.items[code]
                score = lab.map(book.scale_of(code).score_of()).astype(float)
                scores[code] = -score if item.reverse else score
            answered_items[name] = pd.DataFrame(scores)
            count = answered_items[name].notna().sum(axis=1)
            k = min(spec.data.min_items_answered, len(driver.items))
            _mark(reasons, count < k,
                  f"driver {name}: fewer than {k} of its {len(driver.items)} items answered")

    weight = pd.Series(np.nan, index=table.index)
    if spec.weights != "none" and "WT_Discrete" not in table.columns:
        raise data_error(path, "no survey weight column WT_Discrete", column="WT_Discrete",
                         fix=f"the spec asks for weights = {spec.weights!r}: give a file with its "
                         "weights, map the weight column with [data.columns], or set weights = \"none\"")
    if "WT_Discrete" in table.columns:
        weight = pd.to_numeric(table["WT_Discrete"].replace("", np.nan), errors="coerce")
        bad = weight.isna() & (table["WT_Discrete"] != "")
        bad |= weight <= 0
        if bad.any():
            raise data_error(path, "survey weight is not a positive number", column="WT_Discrete",
                             value=table["WT_Discrete"][bad].iloc[0], row=_first_row(bad),
                             fix="correct the weight, or blank it if unknown")
        if spec.weights != "none":
            _mark(reasons, table["WT_Discrete"] == "",
                  f"survey weight WT_Discrete blank (the spec weights by it: {spec.weights})")

    keep = reasons.isna().to_numpy()
    # The full answer, least positive first (0, 1, ...): what a cumulative model fits.
    answer_scale = book.scale_of(outcome.item)
    order = sorted(answer_scale.labels, key=answer_scale.score_of().__getitem__)
    answer = y_label.map({lab: i for i, lab in enumerate(order)})
    scaling_rows = []
    for name, items in answered_items.items():
        drivers[name], centre, scale = standardised_composite(items, keep)
        # What the missing-item rule did: composites from every item, from some, and rows
        # this driver alone would have excluded (the exclusions report counts first reasons).
        count = items.notna().sum(axis=1).to_numpy()
        k = min(spec.data.min_items_answered, items.shape[1])
        scaling_rows.append({"driver": name, "mean_item_z": centre, "sd_item_z": scale,
                             "items": " ".join(items.columns), "min_items_answered": k,
                             "kept_all_items": int((keep & (count == items.shape[1])).sum()),
                             "kept_some_items": int((keep & (count < items.shape[1])).sum()),
                             "rows_below_minimum": int((count < k).sum())})

    def kept(values: pd.Series) -> pd.Series:
        # The tidy frame is built from the analysis sample's rows alone: no second copy.
        return values[keep].reset_index(drop=True)

    tidy = pd.DataFrame({
        "row": np.arange(1, n + 1)[keep],
        "borough": _text_column(kept(borough)),
        "borough_code": _text_column(kept(borough).map(lambda b: BOROUGH_BY_NAME[b].code if b else "")),
        "ward": _text_column(kept(ward)),
        "ward_name": _text_column(kept(table["ward_n"] if "ward_n" in table.columns else ward)),
        "financial_year": _text_column(kept(year)),
        "quarter": _text_column(kept(table["Quarter"])) if "Quarter" in table.columns else "",
        "weight": kept(weight),
        spec.outcome: kept(y_label.isin(outcome.positive).astype(int)),
        "answer": kept(answer.astype(float).fillna(-1).astype(int)),
        **{name: kept(score) for name, score in drivers.items()},
    })
    for g in spec.demographics:
        demo = book.demographics[g]
        known = {normalise_label(level): level for level in demo.levels}
        tidy[g] = _text_column(kept(table[demo.column]).map(
            lambda v, known=known: NOT_STATED if non_substantive(v) else known.get(normalise_label(v), v)))

    # Respondents in ward order (borough, ward, then their line in the file): the model
    # applies each ward's intercept and slopes over its run of respondents
    # (pas_bayes.ward_terms), which is fast only when a ward's respondents sit together.
    # ``row`` keeps every respondent's place in the file.
    tidy = tidy.sort_values(["borough", "ward", "row"], kind="stable", ignore_index=True)

    exclusions = (reasons.dropna().value_counts().rename_axis("reason").reset_index(name="rows")
                  .sort_values(["rows", "reason"], ascending=[False, True]))
    exclusions = pd.concat([exclusions, pd.DataFrame({"reason": [INCLUDED], "rows": [int(keep.sum())]})],
                           ignore_index=True)
    exclusions["rows"] = exclusions["rows"].astype(int)
    if exclusions["rows"].sum() != n:
        raise AssertionError("exclusions do not add up to the input rows")
    if not keep.any():
        raise data_error(path, "no respondent is left after exclusions",
                         fix="see the exclusions report: " + "; ".join(
                             f"{r.reason}: {r.rows}" for r in exclusions.itertuples()))

    return SurveyData(
        path=path,
        sha256=file_sha256(path),
        n_input_rows=n,
        frame=tidy,
        exclusions=exclusions,
        item_missingness=_item_missingness(year, {outcome.item: y_label, **labels_by_item}),
        driver_scaling=pd.DataFrame(scaling_rows),
    )


def _item_missingness(year: pd.Series, labels: dict[str, pd.Series]) -> pd.DataFrame:
    """Counts of answered and non-substantive cells per financial year and item."""
    rows = []
    years = year if isinstance(year.dtype, pd.CategoricalDtype) else year.astype("category")
    for code, lab in labels.items():
        for fy, group in lab.groupby(years, observed=True):
            counts = group.value_counts()
            row = {"financial_year": fy, "item": code, "rows": len(group)}
            row.update({c: int(counts.get(c, 0)) for c in NON_SUBSTANTIVE})
            row["answered"] = row["rows"] - sum(row[c] for c in NON_SUBSTANTIVE)
            rows.append(row)
    return pd.DataFrame(rows)
