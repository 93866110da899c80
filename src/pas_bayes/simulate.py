"""A synthetic PAS survey in the real file layout, from a known truth.

How a survey is made (all randomness from one ``numpy.random.Generator``):

1. Geography: 32 MPS boroughs, ``per_borough`` respondents each, spread over
   the borough's wards with unequal (Dirichlet) shares, as a real sample is.
   Wards come from an ONS lookup when one is given, otherwise synthetic codes
   with the real 2022 ward count of each borough.
2. Demographics: sex, age band and ethnicity, with each borough's ethnic mix
   drawn around London's.
3. Latent driver scores: five correlated continuous latents (engagement,
   effectiveness, accountability, security, crime problems) with borough
   shifts; patrol visibility and feeling informed depend on engagement.
4. Items: each item is an ordered-probit reading of its driver's latent (worry
   items read it in reverse) with realistic answer shares, plus
   non-substantive answers ("Don't know", "Refused", "-", and "Not Asked" for a
   split-sample module of Q79 items).
5. Outcomes: the hierarchical model itself. The driver values entering it are
   the composites the reader builds from the items (see
   :func:`pas_bayes.survey.standardised_composite`), so the truth is on the
   model's own scale: log-odds per SD, or yes vs no. A latent
   ``y* = eta + logistic noise`` is cut into the five Q60 / NQ135BD labels at
   fixed cut-points with the good/bad boundary at 0, so the binary headline
   follows the Bernoulli-logit model exactly and the five-point answer follows
   a cumulative-logit model with the same linear predictor.

The truth is written beside the survey (:func:`write_simulation`):
``truth.json`` holds every parameter; ``truth_effects.csv`` holds the total
driver slopes in the same tidy layout as ``pas-bayes effects`` (columns
``outcome, level, borough, ward, driver, scale, value``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from pas_bayes.atomic import atomic_write_text, refuse_existing
from pas_bayes.codebook import Codebook
from pas_bayes.geography import BOROUGHS, read_ward_lookup
from pas_bayes.survey import standardised_composite

TRUTH_FORMAT = "pas_bayes.truth/1"
CONTINUOUS = ("engagement", "effectiveness", "accountability", "security", "crime_problems")
DRIVERS = (*CONTINUOUS, "visibility", "informed")

# Answer shares on each scale, lowest score first (e.g. "Strongly disagree" first).
_SHARES = {
    "agree": (0.08, 0.14, 0.22, 0.40, 0.16),
    "well_1_7": (0.05, 0.07, 0.12, 0.22, 0.25, 0.18, 0.11),
    "confident": (0.12, 0.28, 0.45, 0.15),
    "safe": (0.07, 0.18, 0.50, 0.25),
    "worry": (0.20, 0.45, 0.25, 0.10),
    "problem": (0.45, 0.35, 0.20),
}
# Cut-points of y* for the five outcome labels (from the top): the 0 between the
# second and third is what makes "Excellent + Good" a logit model of eta.
OUTCOME_CUTPOINTS = (2.0, 0.0, -1.5, -3.0)


@dataclass(frozen=True)
class OutcomeTruth:
    """The true parameters of one outcome's model (log-odds scale)."""

    target_rate: float
    driver_effects: dict[str, float]
    borough_intercept_sd: float
    borough_slope_sd: dict[str, float]
    ward_intercept_sd: float
    ward_slope_sd: dict[str, float]
    demographic_effects: dict[str, dict[str, float]]
    #: Fixed borough slope deviations that replace the drawn ones, e.g.
    #: ``{"visibility": {"Croydon": 0.8}}``: a driver that matters more in a few named boroughs.
    borough_slope_fixed: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Several years: each year's shift of the log-odds (years not named: 0), and of a
    #: driver's effect, e.g. ``{"engagement": {"FY 21-22": -0.2, "FY 23-24": 0.2}}``.
    year_intercepts: dict[str, float] = field(default_factory=dict)
    year_slope_dev: dict[str, dict[str, float]] = field(default_factory=dict)
    #: A driver's effect by demographic level, e.g. ``{"ethnicity": {"engagement": {"Black": 0.4}}}``
    #: (levels not named: 0).
    demographic_slopes: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def _default_confidence() -> OutcomeTruth:
    return OutcomeTruth(
        target_rate=0.47,  # London "good job", FY 23-24 (Dec-23: 47%)
        driver_effects={"engagement": 0.90, "effectiveness": 0.50, "accountability": 0.30,
                        "security": 0.20, "crime_problems": -0.15, "visibility": 0.40,
                        "informed": 0.45},
        borough_intercept_sd=0.30,
        borough_slope_sd={"engagement": 0.20, "effectiveness": 0.08, "accountability": 0.08,
                          "security": 0.08, "crime_problems": 0.08, "visibility": 0.40,
                          "informed": 0.15},
        ward_intercept_sd=0.20,
        ward_slope_sd={"engagement": 0.15, "visibility": 0.20},
        demographic_effects={
            "ethnicity": {"White": 0.0, "Asian": 0.15, "Black": -0.50, "Mixed": -0.20,
                          "Other": 0.05},
            "age": {"16-24": 0.10, "25-34": -0.10, "35-44": -0.15, "45-54": -0.10,
                    "55-64": 0.00, "65+": 0.20},
            "sex": {"Male": -0.05, "Female": 0.05},
        },
        # Earlier years (used only when several are simulated) were more positive, and
        # engagement mattered a little less; FY 23-24 is the reference (0).
        year_intercepts={"FY 20-21": 0.45, "FY 21-22": 0.30, "FY 22-23": 0.10},
        year_slope_dev={"engagement": {"FY 20-21": -0.25, "FY 21-22": -0.20, "FY 22-23": -0.10}},
    )


def _default_trust() -> OutcomeTruth:
    return OutcomeTruth(
        target_rate=0.69,  # London trust, Dec-23: 69%
        driver_effects={"engagement": 0.80, "effectiveness": 0.40, "accountability": 0.55,
                        "security": 0.15, "crime_problems": -0.10, "visibility": 0.25,
                        "informed": 0.35},
        borough_intercept_sd=0.30,
        borough_slope_sd={"engagement": 0.15, "effectiveness": 0.08, "accountability": 0.15,
                          "security": 0.08, "crime_problems": 0.08, "visibility": 0.30,
                          "informed": 0.15},
        ward_intercept_sd=0.20,
        ward_slope_sd={"engagement": 0.10, "visibility": 0.15},
        demographic_effects={
            "ethnicity": {"White": 0.0, "Asian": 0.20, "Black": -0.60, "Mixed": -0.25,
                          "Other": 0.05},
            "age": {"16-24": 0.15, "25-34": -0.05, "35-44": -0.10, "45-54": -0.10,
                    "55-64": 0.00, "65+": 0.25},
            "sex": {"Male": -0.05, "Female": 0.05},
        },
        year_intercepts={"FY 20-21": 0.60, "FY 21-22": 0.45, "FY 22-23": 0.05},
        year_slope_dev={"accountability": {"FY 20-21": -0.20, "FY 21-22": -0.15, "FY 22-23": 0.0}},
    )


#: Fields of :class:`OutcomeTruth` whose values are tables keyed by driver, level or year:
#: an override merges into them (``driver_effects = {informed = 0.0}`` changes one driver).
_MERGED_FIELDS = ("driver_effects", "borough_slope_sd", "ward_slope_sd")


def truth_with(truth: OutcomeTruth, overrides: dict[str, Any], *, where: str = "truth") -> OutcomeTruth:
    """``truth`` with some of its fields replaced: a recovery scenario.

    ``driver_effects``, ``borough_slope_sd`` and ``ward_slope_sd`` merge driver by
    driver; every other field (``borough_slope_fixed``, ``borough_intercept_sd``, ...)
    is replaced whole. ``borough_slope_sd = {all = 0.0}`` sets every driver.

    Raises
    ------
    ValueError
        For a field or driver that does not exist, or a negative SD.
    """
    known = {f for f in OutcomeTruth.__dataclass_fields__}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"{where}: {key!r} is not a field of the truth; known: {sorted(known)}")
        if key in _MERGED_FIELDS:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key} must be a table of driver = value, e.g. {{ visibility = 0.5 }}")
            merged = dict(getattr(truth, key))
            for driver, v in value.items():
                if driver != "all" and driver not in DRIVERS:
                    raise ValueError(f"{where}: {key}.{driver}: no such driver; drivers: {list(DRIVERS)}")
                if key.endswith("_sd") and float(v) < 0:
                    raise ValueError(f"{where}: {key}.{driver} = {v}; an SD cannot be negative")
                # "all" of the ward slopes means the drivers that have one, not every driver.
                targets = (tuple(merged) if key == "ward_slope_sd" else DRIVERS) if driver == "all" else (driver,)
                for d in targets:
                    merged[d] = float(v)
            changes[key] = merged
        elif key == "borough_slope_fixed":
            for driver, fixed in value.items():
                if driver not in DRIVERS:
                    raise ValueError(f"{where}: borough_slope_fixed.{driver}: no such driver; drivers: {list(DRIVERS)}")
                unknown = sorted(set(fixed) - {b.name for b in BOROUGHS})
                if unknown:
                    raise ValueError(f"{where}: borough_slope_fixed.{driver}: unknown boroughs {unknown}")
            changes[key] = {d: {b: float(v) for b, v in fixed.items()} for d, fixed in value.items()}
        else:
            changes[key] = value
    return replace(truth, **changes)


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate. Defaults give one full financial year (12,800 respondents)."""

    def year_list(self) -> tuple[str, ...]:
        """The financial years simulated, in order."""
        return self.years or (self.financial_year,)

    seed: int = 2324
    per_borough: int = 400
    financial_year: str = "FY 23-24"
    #: Several financial years in one file (each with ``per_borough`` respondents a borough);
    #: empty: ``financial_year`` alone. Years before FY 22-23 use 2018 ward boundaries.
    years: tuple[str, ...] = ()
    ward_lookup: str | None = None
    ward_lookup_2018: str | None = None
    confidence: OutcomeTruth = field(default_factory=_default_confidence)
    trust: OutcomeTruth = field(default_factory=_default_trust)
    dont_know_rate: float = 0.03
    refused_rate: float = 0.005
    dash_rate: float = 0.005
    not_asked_rate: float = 0.10


def settings_from_record(record: dict[str, Any]) -> SimulationSettings:
    """Simulation settings from a sweep task's record (``seed``, ``per_borough``, years, ``truth``).

    ``truth`` maps an outcome (``confidence``, ``trust``) to overrides of its
    true parameters (:func:`truth_with`).

    Raises
    ------
    ValueError
        For an unknown outcome or field in ``truth``.
    """
    settings = SimulationSettings(seed=int(record["seed"]), per_borough=int(record["per_borough"]),
                                  financial_year=record.get("financial_year", "FY 23-24"),
                                  years=tuple(record.get("years") or ()))
    changes = {}
    for outcome, overrides in (record.get("truth") or {}).items():
        if outcome not in ("confidence", "trust"):
            raise ValueError(f"truth.{outcome}: the generator simulates 'confidence' and 'trust' only")
        changes[outcome] = truth_with(getattr(settings, outcome), overrides, where=f"truth.{outcome}")
    return replace(settings, **changes)


@dataclass
class Simulation:
    """A simulated survey and its truth."""

    survey: pd.DataFrame
    truth: dict[str, Any]
    truth_effects: pd.DataFrame


def _wards(settings: SimulationSettings, vintage: int) -> pd.DataFrame:
    """Ward code, name and borough on the 2018 or 2022 boundaries (ONS lookup, or synthetic codes)."""
    lookup_file = settings.ward_lookup if vintage == 2022 else settings.ward_lookup_2018
    if lookup_file is not None:
        lookup = read_ward_lookup(lookup_file)
        table = lookup.rename(columns={"borough_name": "borough"})[["ward_code", "ward_name", "borough"]]
    else:
        tag = "W" if vintage == 2022 else "V"
        suffix = "" if vintage == 2022 else " (2018)"
        rows = [{"ward_code": f"{b.code}{tag}{j:02d}", "ward_name": f"{b.name} ward {j:02d}{suffix}",
                 "borough": b.name}
                for b in BOROUGHS for j in range(1, (b.wards_2022 if vintage == 2022 else b.wards_2018) + 1)]
        table = pd.DataFrame(rows)
    return table.assign(vintage=vintage)


def ward_vintage(financial_year: str) -> int:
    """The ward boundaries a survey year uses: 2022 from FY 22-23 (May 2022 elections), else 2018."""
    return 2022 if _fy_start(financial_year) >= 2022 else 2018


def _ordinal(latent: np.ndarray, shares: tuple[float, ...]) -> np.ndarray:
    """Score 1..K of an ordered-probit reading of a standard-normal latent."""
    cuts = norm.ppf(np.cumsum(shares)[:-1])
    return np.searchsorted(cuts, latent) + 1


def _fy_start(financial_year: str) -> int:
    digits = "".join(ch for ch in financial_year if ch.isdigit())
    return 2000 + int(digits[:2]) if len(digits) >= 2 else 2023


def simulate_survey(settings: SimulationSettings | None = None) -> Simulation:
    """Simulate the PAS (one financial year, or several) in the real respondent-file layout.

    Parameters
    ----------
    settings
        Sizes, seed and the true parameters; defaults to a full year.

    Returns
    -------
    Simulation
        ``survey`` holds text labels exactly as a real file does; ``truth`` and
        ``truth_effects`` hold the parameters that made it.
    """
    settings = settings or SimulationSettings()
    rng = np.random.default_rng(settings.seed)
    book = Codebook.default()
    years = settings.year_list()
    vintages = [ward_vintage(y) for y in years]
    by_vintage = {v: _wards(settings, v) for v in sorted(set(vintages))}
    # A ward whose code is on both boundary sets (unchanged in 2022) is one ward with one effect.
    wards = pd.concat(by_vintage.values(), ignore_index=True).drop_duplicates("ward_code", ignore_index=True)
    boroughs = [b.name for b in BOROUGHS]
    n_b = len(boroughs)

    # Geography: each borough's sample spread unevenly over its wards (on the boundaries of
    # the year), the same wards keeping the same shares from year to year.
    borough_of = np.tile(np.repeat(np.arange(n_b), settings.per_borough), len(years))
    year_of = np.repeat(np.arange(len(years)), n_b * settings.per_borough)
    n = borough_of.size
    ward_of = np.empty(n, dtype=int)
    shares: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for t, vintage in enumerate(vintages):
        for b, name in enumerate(boroughs):
            if (vintage, b) not in shares:
                members = np.flatnonzero((wards["borough"].to_numpy() == name)
                                         & wards["ward_code"].isin(by_vintage[vintage]["ward_code"]).to_numpy())
                shares[vintage, b] = members, rng.dirichlet(np.full(members.size, 4.0))
            members, share = shares[vintage, b]
            ward_of[(borough_of == b) & (year_of == t)] = rng.choice(members, size=settings.per_borough, p=share)

    # Demographics.
    eth_levels = list(settings.confidence.demographic_effects["ethnicity"])
    eth_base = np.array([0.54, 0.21, 0.13, 0.06, 0.06])
    eth_mix = rng.dirichlet(eth_base * 30, size=n_b)
    ethnicity = np.array([eth_levels[rng.choice(5, p=eth_mix[b])] for b in borough_of])
    age_levels = list(settings.confidence.demographic_effects["age"])
    age = rng.choice(age_levels, size=n, p=[0.14, 0.20, 0.19, 0.16, 0.13, 0.18])
    sex = rng.choice(["Male", "Female"], size=n, p=[0.49, 0.51])

    # Latent driver scores, correlated, with borough shifts.
    corr = np.array([
        [1.0, 0.55, 0.50, 0.30, -0.20],
        [0.55, 1.0, 0.45, 0.30, -0.20],
        [0.50, 0.45, 1.0, 0.25, -0.15],
        [0.30, 0.30, 0.25, 1.0, -0.40],
        [-0.20, -0.20, -0.15, -0.40, 1.0],
    ])
    shift = rng.normal(0, 0.2, size=(n_b, 5))
    latent = rng.multivariate_normal(np.zeros(5), corr, size=n) + shift[borough_of]
    latent /= latent.std(axis=0)
    vis_borough = rng.normal(0, 0.4, size=n_b)
    visibility = rng.random(n) < expit(-0.9 + 0.4 * latent[:, 0] + vis_borough[borough_of])
    informed_hi = rng.random(n) < expit(-2.3 + 0.5 * latent[:, 0])
    informed_lo = rng.random(n) < 0.3

    columns: dict[str, Any] = {}
    item_scores: dict[str, dict[str, np.ndarray]] = {}
    for d, name in enumerate(CONTINUOUS):
        driver = book.drivers[name]
        item_scores[name] = {}
        for code in driver.items:
            item = book.items[code]
            scale = book.scales[item.scale]
            sign = -1.0 if item.reverse else 1.0
            reading = sign * 0.75 * latent[:, d] + np.sqrt(1 - 0.75**2) * rng.standard_normal(n)
            score = _ordinal(reading, _SHARES[scale.name])
            by_score = {int(s): lab for lab, s in zip(scale.labels, scale.scores, strict=True)}
            labels = np.array([by_score[s] for s in score], dtype=object)
            missing = _non_substantive(rng, n, settings, split_sample=code.startswith(("Q79", "NQ79")))
            labels[missing != ""] = missing[missing != ""]
            columns[code] = labels
            answered = missing == ""
            item_scores[name][code] = np.where(answered, sign * score, np.nan)

    q65 = np.where(visibility, rng.choice(["At least daily", "At least weekly"], size=n, p=[0.3, 0.7]),
                   rng.choice(["At least fortnightly", "At least monthly", "Less often", "Never"],
                              size=n, p=[0.15, 0.2, 0.35, 0.3])).astype(object)
    q131 = np.where(informed_hi, "Very well informed",
                    np.where(informed_lo, "Fairly well informed", "Not at all informed")).astype(object)
    for code, labels in (("Q65", q65), ("Q131", q131)):
        missing = _non_substantive(rng, n, settings, scale_down=3.0)
        labels[missing != ""] = missing[missing != ""]
        columns[code] = labels

    # Driver values as the reader will build them, over the rows it will keep.
    usable = np.ones(n, dtype=bool)
    for code in ("Q65", "Q131"):
        usable &= np.isin(columns[code], book.scales[book.items[code].scale].labels)
    for name in CONTINUOUS:
        usable &= pd.DataFrame(item_scores[name]).notna().any(axis=1).to_numpy()
    X = np.zeros((n, len(DRIVERS)))
    for d, name in enumerate(CONTINUOUS):
        score, _, _ = standardised_composite(pd.DataFrame(item_scores[name]), usable)
        X[:, d] = np.nan_to_num(score.to_numpy())
    X[:, 5] = np.isin(columns["Q65"], book.drivers["visibility"].positive)
    X[:, 6] = np.isin(columns["Q131"], book.drivers["informed"].positive)

    truth: dict[str, Any] = {"format": TRUTH_FORMAT, "seed": settings.seed,
                             "settings": _settings_record(settings), "drivers": list(DRIVERS),
                             "outcome_cutpoints": list(OUTCOME_CUTPOINTS), "outcomes": {}}
    effect_frames = []
    demographics = {"ethnicity": ethnicity, "age": age, "sex": sex}
    for outcome, code, scale_name in (("confidence", "Q60", "good_job"), ("trust", "NQ135BD", "agree")):
        spec: OutcomeTruth = getattr(settings, outcome)
        record, eta, effects = _outcome_draw(rng, spec, boroughs, wards, borough_of, ward_of, X,
                                             demographics, usable, (years, year_of))
        y_star = eta + rng.logistic(size=n)
        labels = np.array(book.scales[scale_name].labels, dtype=object)
        cat = np.searchsorted(-np.array(OUTCOME_CUTPOINTS), -y_star, side="left")
        out = labels[cat]
        missing = _non_substantive(rng, n, settings, scale_down=1.5)
        out[missing != ""] = missing[missing != ""]
        columns[code] = out
        record["code"] = code
        truth["outcomes"][outcome] = record
        effect_frames.append(effects.assign(outcome=outcome))

    demo_missing = rng.random(n) < 0.01
    survey = _layout(settings, rng, boroughs, wards, borough_of, (years, year_of), ward_of, columns,
                     {"NQ147r": np.where(demo_missing, "Refused", ethnicity),
                      "Q136r": age, "XQ135r": sex})
    truth_effects = pd.concat(effect_frames, ignore_index=True)[
        ["outcome", "level", "borough", "ward", "driver", "scale", "value"]]
    ward_table = wards.iloc[np.unique(ward_of)]
    truth["n_respondents"] = int(n)
    truth["n_wards_sampled"] = int(ward_table.shape[0])
    return Simulation(survey=survey, truth=truth, truth_effects=truth_effects)


def _non_substantive(rng: np.random.Generator, n: int, settings: SimulationSettings, *,
                     split_sample: bool = False, scale_down: float = 1.0) -> np.ndarray:
    """A column of "" (answered) or a non-substantive code."""
    u = rng.random(n)
    dk = settings.dont_know_rate / scale_down
    ref = settings.refused_rate / scale_down
    dash = settings.dash_rate / scale_down
    codes = np.full(n, "", dtype=object)
    codes[u < dk] = "Don't know"
    codes[(u >= dk) & (u < dk + ref)] = "Refused"
    codes[(u >= dk + ref) & (u < dk + ref + dash)] = "-"
    if split_sample:
        codes[rng.random(n) < settings.not_asked_rate] = "Not Asked"
    return codes


def _outcome_draw(rng, spec: OutcomeTruth, boroughs, wards, borough_of, ward_of, X, demographics,
                  usable, year_design):
    """Draw group effects for one outcome; return its truth record, eta and tidy slopes."""
    n_b, n_w, n_d = len(boroughs), len(wards), len(DRIVERS)
    beta = np.array([spec.driver_effects[d] for d in DRIVERS])
    a_b = rng.normal(0, spec.borough_intercept_sd, n_b)
    b_b = rng.normal(0, 1, (n_b, n_d)) * np.array([spec.borough_slope_sd.get(d, 0.0) for d in DRIVERS])
    for driver, fixed in spec.borough_slope_fixed.items():
        for borough, value in fixed.items():
            b_b[boroughs.index(borough), DRIVERS.index(driver)] = value
    a_w = rng.normal(0, spec.ward_intercept_sd, n_w)
    b_w = rng.normal(0, 1, (n_w, n_d)) * np.array([spec.ward_slope_sd.get(d, 0.0) for d in DRIVERS])
    demo = sum(np.array([spec.demographic_effects[g][v] for v in values])
               for g, values in demographics.items())
    slopes = beta + b_b[borough_of] + b_w[ward_of]
    years, year_of = year_design
    demo = demo + np.array([spec.year_intercepts.get(t, 0.0) for t in years])[year_of]
    year_dev = np.array([[spec.year_slope_dev.get(d, {}).get(t, 0.0) for d in DRIVERS] for t in years])
    slopes = slopes + year_dev[year_of]
    for g, by_driver in spec.demographic_slopes.items():
        dev = np.array([[by_driver.get(d, {}).get(v, 0.0) for d in DRIVERS] for v in demographics[g]])
        slopes = slopes + dev
    eta_no_intercept = a_b[borough_of] + a_w[ward_of] + (X * slopes).sum(axis=1) + demo
    # The London intercept that gives the target rate among respondents the model will see.
    lo, hi = -6.0, 6.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if expit(mid + eta_no_intercept[usable]).mean() < spec.target_rate:
            lo = mid
        else:
            hi = mid
    intercept = round((lo + hi) / 2, 6)
    eta = intercept + eta_no_intercept

    ward_borough = wards["borough"].to_numpy()
    ward_borough_idx = np.array([boroughs.index(b) for b in ward_borough])
    sampled = np.unique(ward_of)
    rows = [{"level": "london", "borough": "", "ward": "", "driver": d, "value": beta[j]}
            for j, d in enumerate(DRIVERS)]
    rows += [{"level": "borough", "borough": b, "ward": "", "driver": d, "value": beta[j] + b_b[i, j]}
             for i, b in enumerate(boroughs) for j, d in enumerate(DRIVERS)]
    rows += [{"level": "ward", "borough": ward_borough[w], "ward": wards["ward_code"].iat[w],
              "driver": d, "value": beta[j] + b_b[ward_borough_idx[w], j] + b_w[w, j]}
             for w in sampled for j, d in enumerate(DRIVERS)]
    effects = pd.DataFrame(rows).assign(scale="logit")
    record = {
        **asdict(spec),
        "intercept": intercept,
        "borough_intercepts": dict(zip(boroughs, a_b.round(6).tolist(), strict=True)),
        "borough_slope_deviations": {b: dict(zip(DRIVERS, b_b[i].round(6).tolist(), strict=True))
                                     for i, b in enumerate(boroughs)},
        "ward_intercepts": {wards["ward_code"].iat[w]: round(float(a_w[w]), 6) for w in sampled},
        "observed_rate": float(expit(eta[usable]).mean()),
    }
    return record, eta, effects


def _layout(settings, rng, boroughs, wards, borough_of, year_design, ward_of, items,
            demographics) -> pd.DataFrame:
    """Assemble the columns in the order and text form of a real PAS file."""
    n = borough_of.size
    years, year_of = year_design
    start = np.array([_fy_start(t) for t in years])[year_of]
    quarter = np.tile(np.repeat(np.arange(4), settings.per_borough // 4 + 1)[: settings.per_borough],
                      len(boroughs) * len(years))
    month_in_quarter = rng.integers(0, 3, size=n)
    month_index = quarter * 3 + month_in_quarter  # 0 = April
    month_names = ["Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan", "Feb", "Mar"]
    year = start + (month_index >= 9)
    day = rng.integers(1, 29, size=n)
    weight = rng.lognormal(0.0, 0.35, size=n)
    weight /= weight.mean()
    borough_name = np.array(boroughs, dtype=object)[borough_of]
    ward_code = wards["ward_code"].to_numpy()[ward_of]
    ward_name = wards["ward_name"].to_numpy()[ward_of]
    frame = pd.DataFrame({
        "MONTH": [f"Month {m + 1} ({month_names[m]} {y})" for m, y in zip(month_index, year, strict=True)],
        "interview_date": [f"{y}-{(m + 3) % 12 + 1:02d}-{d:02d}"
                           for m, y, d in zip(month_index, year, day, strict=True)],
        "FinancialYear": np.array(years, dtype=object)[year_of],
        "Quarter": [f"Q{q + 1}" for q in quarter],
        "C2": borough_name,
        "ward": ward_code,
        "ward_n": ward_name,
        "BOROUGHNEIGHBOURHOOD": [f"{b} - {w}" for b, w in zip(borough_name, ward_name, strict=True)],
        "WT_Discrete": [f"{w:.4f}" for w in weight],
    })
    for code in ("Q60", "NQ135BD"):
        frame[code] = items.pop(code)
    for code, values in items.items():
        frame[code] = values
    for code, values in demographics.items():
        frame[code] = values
    return frame


def _settings_record(settings: SimulationSettings) -> dict[str, Any]:
    record = asdict(settings)
    for outcome in ("confidence", "trust"):
        record.pop(outcome)
    for key in ("ward_lookup", "ward_lookup_2018"):
        if record[key] is not None:
            # The file's name and content, not its path: the same lookup gives the same truth anywhere.
            lookup = Path(record[key])
            record[key] = {"file": lookup.name, "sha256": hashlib.sha256(lookup.read_bytes()).hexdigest()}
    return record


def survey_filename(settings: SimulationSettings) -> str:
    """File name of the survey, e.g. ``pas_synthetic_FY23-24.csv`` or ``pas_synthetic_FY21-22_to_FY23-24.csv``."""
    years = [y.replace(" ", "") for y in settings.year_list()]
    return f"pas_synthetic_{years[0] if len(years) == 1 else years[0] + '_to_' + years[-1]}.csv"


def write_simulation(sim: Simulation, out_dir: str | Path, settings: SimulationSettings,
                     *, force: bool = False) -> Path:
    """Write the survey CSV, ``truth.json`` and ``truth_effects.csv`` into ``out_dir``.

    Each file is written to a temporary name and renamed, so a reader never
    sees half a file. Existing files are kept unless ``force``.

    Returns
    -------
    pathlib.Path
        The survey file's path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = {
        out / survey_filename(settings): sim.survey.to_csv(index=False, lineterminator="\n"),
        out / "truth.json": json.dumps(sim.truth, indent=1, sort_keys=True) + "\n",
        out / "truth_effects.csv": sim.truth_effects.to_csv(index=False, lineterminator="\n",
                                                            float_format="%.6f"),
    }
    refuse_existing(list(targets), force=force)
    for path, text in targets.items():
        atomic_write_text(path, text, force=True)
    return out / survey_filename(settings)
