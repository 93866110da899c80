"""ModelSpec: what to fit, read from a TOML spec file.

A spec holds everything that decides a run: the outcome, drivers,
demographics, which drivers vary by ward, the priors (as data), the data file
and its reading options, codebook overrides and sampler settings. It is
written into every run folder, so a run can be repeated from its folder alone.

Priors are plain tables ``{dist = "HalfNormal", sigma = 0.3}``, in the spirit of
pymc-extras ``Prior``: serialisable, so a spec file can hold them and a run
folder records them.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pas_bayes.codebook import Codebook
from pas_bayes.errors import SpecError

#: Distributions a prior may name, with the parameters each accepts.
PRIOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "StudentT": ("nu", "mu", "sigma"),
    "HalfNormal": ("sigma",),
    "HalfStudentT": ("nu", "sigma"),
    "Exponential": ("lam",),
    "HalfCauchy": ("beta",),
    "LogNormal": ("mu", "sigma"),
    "LKJ": ("eta",),
}

#: The model's parameters that take a prior, with the default of each.
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    # London log-odds of a positive answer for someone at the driver means, 0 on binary drivers.
    "intercept": {"dist": "Normal", "mu": 0.0, "sigma": 1.5},
    # London effect of +1 SD (composite) or yes vs no (binary) on the log-odds.
    "driver_effect": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    # Spread of borough intercepts: 0.5 allows boroughs from ~35% to ~65% around 50%.
    "borough_intercept_sd": {"dist": "HalfNormal", "sigma": 0.5},
    # Spread of borough deviations in each driver effect.
    "borough_slope_sd": {"dist": "HalfNormal", "sigma": 0.3},
    "ward_intercept_sd": {"dist": "HalfNormal", "sigma": 0.3},
    "ward_slope_sd": {"dist": "HalfNormal", "sigma": 0.2},
    # Spread of each demographic's random intercepts.
    "demographic_sd": {"dist": "HalfNormal", "sigma": 0.5},
    # Ordinal models only: the K-1 ordered cut-points of the cumulative logit (log-odds).
    "cutpoints": {"dist": "Normal", "mu": 0.0, "sigma": 3.0},
    # Correlated varying effects only: LKJ prior on the correlation matrix (eta > 1 shrinks
    # towards no correlation; 2 keeps |r| > 0.8 unlikely with 8 coefficients).
    "correlation": {"dist": "LKJ", "eta": 2.0},
    # Spread of a driver's slope across the levels of a demographic (demographic_slopes).
    "demographic_slope_sd": {"dist": "HalfNormal", "sigma": 0.3},
    # Several years: spread of the year intercepts, and of a driver's effect across years.
    "year_sd": {"dist": "HalfNormal", "sigma": 0.3},
    "year_slope_sd": {"dist": "HalfNormal", "sigma": 0.2},
}

FAMILIES = ("bernoulli", "cumulative")
CORRELATED_LEVELS = ("borough", "ward")
WEIGHTINGS = ("none", "pseudo", "savitsky_williams")

SAMPLERS = ("nutpie", "pymc", "advi")
ADAPTATIONS = ("diag", "low_rank", "draw_diag", "flow")


def prior_from_table(name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one prior table and return it as a plain dict.

    Raises
    ------
    SpecError
        When the family is unknown, a parameter is not accepted, or a scale is not positive.
    """
    table = dict(table)
    family = table.pop("dist", None)
    if family not in PRIOR_FAMILIES:
        raise SpecError(f"[priors.{name}]: dist {family!r} is not supported; use one of "
                        f"{sorted(PRIOR_FAMILIES)}")
    allowed = PRIOR_FAMILIES[family]
    bad = set(table) - set(allowed)
    if bad or set(allowed) - set(table):
        raise SpecError(f"[priors.{name}]: {family} takes exactly {list(allowed)}, got {sorted(table)}")
    for key in ("sigma", "lam", "beta", "nu", "eta"):
        if key in table and not float(table[key]) > 0:
            raise SpecError(f"[priors.{name}]: {key} must be > 0, got {table[key]!r}")
    if (name == "correlation") != (family == "LKJ"):
        raise SpecError(f"[priors.{name}]: " + ("the correlation prior must be LKJ, e.g. "
                        "{ dist = \"LKJ\", eta = 2.0 }" if name == "correlation" else
                        "LKJ is a prior for the correlation matrix only"))
    if name.endswith("_sd") and family in ("Normal", "StudentT"):
        raise SpecError(f"[priors.{name}]: a standard deviation needs a positive family "
                        "(HalfNormal, HalfStudentT, Exponential, HalfCauchy)")
    return {"dist": family, **{k: float(v) for k, v in table.items()}}


@dataclass(frozen=True)
class DataOptions:
    """Where the survey is and how to read it.

    ``ward_ids`` says whether the ward column holds codes (a code in two
    boroughs is an error) or names (a name in two boroughs is two wards);
    ``"auto"`` decides from the values. ``columns`` renames file columns to the codebook's names (e.g. a year
    whose file calls the borough column ``Borough`` is found without it, but
    ``{"Q60_new": "Q60"}`` would be needed for a renamed item).
    """

    path: str | None = None
    ward_column: str = "ward"
    ward_ids: str = "auto"
    financial_years: tuple[str, ...] = ()
    encoding: str = "utf-8"
    min_items_answered: int = 1
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerOptions:
    """How to sample: which NUTS implementation, how long, which seed.

    ``name = "advi"`` is not a sampler but a fast approximate preview: mean-field ADVI,
    ``advi_iterations`` steps, then ``chains x draws`` independent draws from the
    approximation. Every output of such a run says it is approximate, and its
    diagnostics fail by design (``pas_bayes.diagnostics``).
    """

    name: str = "nutpie"
    # nutpie's mass-matrix adaptation settles within a few hundred draws: 700 of warm-up and
    # 2,300 kept gave nearly twice the minimum ESS of 1,500 + 1,500 for the same sampling time;
    # 3,000 kept bring the slowest SD of five pooled years (a ward-slope SD whose posterior
    # reaches down to 0) past 400 in under 10 minutes (benchmarks/README.md, *Mixing*).
    draws: int = 3000
    tune: int = 700
    chains: int = 4
    cores: int = 2
    seed: int = 20240401
    #: A little above nutpie's and Stan's 0.8. Over twelve unseen one-year surveys, 0.8 gave 7
    #: divergences in 5 fits and 0.85 gave 2 in 1, for a median 0.95x the minimum ESS at the
    #: same 31 steps a draw; five pooled years at 0.85 were clean. At 0.9 the step is smaller
    #: still: none of the 13 surveys diverged, but the minimum ESS fell (a median 0.81x bulk,
    #: 0.75x tail; one survey's tail ESS 340, and five years' 273), so 11 of 13 one-year fits
    #: and five years are clean at 0.85 against 12 of 13 and not five years at 0.9
    #: (benchmarks/README.md, *Mixing*).
    target_accept: float = 0.85
    #: A NUTS fit whose draws diverged is sampled once more, from the start (the compiled
    #: model reused), at this target acceptance when it is above ``target_accept``; 0 turns
    #: the retry off. The divergences at 0.85 came in 2 of 14 unseen one-year surveys, 1 or 2
    #: in 12,000 draws, in no single place; every survey that ever diverged sampled cleanly at
    #: 0.9 (84,000 draws), which costs ESS on the surveys that never diverge (above), so 0.9 is
    #: for the retry only. Both attempts are recorded and shown (``sampler_attempts`` in the
    #: run's provenance, the divergence check of :func:`pas_bayes.diagnostics.diagnose`), and
    #: the sampling time is theirs together.
    retry_target_accept: float = 0.9
    #: A NUTS fit without divergences whose smallest bulk or tail ESS is below this gets
    #: more chains (another seed, the compiled model reused, each with its own warm-up),
    #: kept with the first ones, enough to lift that ESS about 10% past this in
    #: proportion, a whole round of ``cores`` chains at a time and at most ``chains`` more.
    #: ESS grows with the draws, so a fit just short of 400 is a matter of the run-to-run
    #: spread of the slowest SD (one of five five-year fits: tail ESS 381); one far short
    #: (more than twice the chains needed) gets none and fails the ESS check, because it
    #: needs longer chains (``draws``). Checked on every variable without a ward dimension
    #: (the slowest has always been an SD); the run folder's table covers every element.
    #: Recorded as an attempt like the divergence retry; 0 turns it off.
    more_chains_below_ess: int = 400
    advi_iterations: int = 30000
    #: How nutpie compiles the log-density: "numba" (CPU, the default) or "jax" (for a GPU,
    #: or many cores; needs ``pip install 'pas_bayes[jax]'``, or ``jax[cuda12]`` for a GPU).
    backend: str = "numba"
    #: nutpie's mass-matrix adaptation: "diag" (nutpie's default, from draw and gradient
    #: variances), "low_rank" (a diagonal plus the few directions along which the draws are
    #: most correlated), "draw_diag" or "flow" (experimental in nutpie).
    adaptation: str = "diag"


@dataclass(frozen=True)
class ModelSpec:
    """Everything that decides a run. Build with :func:`load_spec` or directly.

    Parameters
    ----------
    name
        Short name, used in titles and run provenance.
    outcome
        ``"confidence"`` (Q60) or ``"trust"`` (NQ135BD), or one added in the codebook.
    drivers
        Driver names; every driver has a London effect and borough slopes.
    ward_slopes
        Drivers whose effect also varies by ward within borough.
    demographics
        Demographic random intercepts.
    family
        ``"bernoulli"``: logit of a positive answer (e.g. Q60 Excellent or Good);
        ``"cumulative"``: cumulative logit of the full answer scale.
    correlated
        Levels (``"borough"``, ``"ward"``) whose intercept and slopes are
        LKJ-correlated instead of independent.
    centred
        Groupings (``"borough"``, ``"ward"``, ``"year"`` or any of ``demographics``)
        whose effects are sampled centred (``a_b ~ Normal(0, sd)``) rather than
        non-centred (``z * sd``). Centred suits groups the data inform well (a year
        or an age band holds thousands of respondents); non-centred suits weakly
        informed ones (a ward has ~20). ``"auto"`` (the default) decides from the
        data: a small crossed grouping (year, a demographic) of 3 or more levels whose
        median level holds at least :data:`pas_bayes.model.CENTRED_FROM` respondents is
        centred, one of 2 levels (sex) from :data:`pas_bayes.model.CENTRED_FROM_TWO_LEVELS`
        a level (five years of the survey), the boroughs from
        :data:`pas_bayes.model.CENTRED_BOROUGH_FROM` respondents a borough, everything
        else non-centred. Either way the model (its prior and
        posterior) is the same; only the sampler's coordinates differ.
    demographic_slopes
        ``{group: [drivers]}``: those drivers' effects vary by the levels of the
        demographic ``group`` (which must be one of ``demographics``).
    year_slopes
        Drivers whose effect varies by financial year (several years in the data).
        Year intercepts are added whenever the data hold more than one year.
    weights
        ``"none"``; ``"pseudo"``: ``WT_Discrete`` weights the likelihood;
        ``"savitsky_williams"``: the weight is split into borough, ward-within-borough
        and respondent-within-ward parts that weight the group priors and the likelihood.
    priors
        One table per parameter in :data:`DEFAULT_PRIORS`.
    """

    name: str
    outcome: str = "confidence"
    drivers: tuple[str, ...] = ("engagement", "effectiveness", "accountability", "security",
                                "crime_problems", "visibility", "informed")
    ward_slopes: tuple[str, ...] = ("engagement", "visibility")
    demographics: tuple[str, ...] = ("ethnicity", "age", "sex")
    family: str = "bernoulli"
    correlated: tuple[str, ...] = ()
    centred: tuple[str, ...] | str = "auto"
    demographic_slopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    year_slopes: tuple[str, ...] = ()
    weights: str = "none"
    priors: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    data: DataOptions = field(default_factory=DataOptions)
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    codebook_overrides: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        book = self.codebook()
        if self.outcome not in book.outcomes:
            raise SpecError(f"spec {self.name!r}: outcome {self.outcome!r} is not in the codebook; "
                            f"known: {sorted(book.outcomes)}")
        for d in self.drivers:
            if d not in book.drivers:
                raise SpecError(f"spec {self.name!r}: driver {d!r} is not in the codebook; "
                                f"known: {sorted(book.drivers)}")
        if len(set(self.drivers)) != len(self.drivers) or not self.drivers:
            raise SpecError(f"spec {self.name!r}: drivers must be a non-empty list without repeats")
        for d in self.ward_slopes:
            if d not in self.drivers:
                raise SpecError(f"spec {self.name!r}: ward_slopes names {d!r}, which is not one of "
                                f"the drivers {list(self.drivers)}")
        for g in self.demographics:
            if g not in book.demographics:
                raise SpecError(f"spec {self.name!r}: demographic {g!r} is not in the codebook; "
                                f"known: {sorted(book.demographics)} (add one under "
                                "[codebook.demographics])")
        if self.family not in FAMILIES:
            raise SpecError(f"spec {self.name!r}: family {self.family!r} is not supported; use one "
                            f"of {FAMILIES}")
        for level in self.correlated:
            if level not in CORRELATED_LEVELS:
                raise SpecError(f"spec {self.name!r}: correlated names {level!r}; use any of "
                                f"{CORRELATED_LEVELS}")
        centrable = (*CORRELATED_LEVELS, "year", *self.demographics)
        if isinstance(self.centred, str) and self.centred != "auto":
            raise SpecError(f"spec {self.name!r}: centred = {self.centred!r}; give \"auto\" or a list "
                            f"of groupings from {list(centrable)} (an empty list: none)")
        for level in () if isinstance(self.centred, str) else self.centred:
            if level not in centrable:
                raise SpecError(f"spec {self.name!r}: centred names {level!r}; use any of "
                                f"{list(centrable)}")
            if level in self.correlated:
                raise SpecError(f"spec {self.name!r}: {level!r} is both centred and correlated; "
                                "correlated effects are always non-centred (z @ L.T * sd): drop it "
                                "from one of the two")
        if "ward" in self.correlated and not self.ward_slopes:
            raise SpecError(f"spec {self.name!r}: correlated ward effects need ward_slopes "
                            "(an intercept alone has nothing to correlate with)")
        for g, drivers in self.demographic_slopes.items():
            if g not in self.demographics:
                raise SpecError(f"spec {self.name!r}: demographic_slopes names {g!r}, which is not one "
                                f"of the demographics {list(self.demographics)}; add it there too")
            bad = [d for d in drivers if d not in self.drivers]
            if bad or not drivers:
                raise SpecError(f"spec {self.name!r}: demographic_slopes.{g} must list drivers of "
                                f"the model {list(self.drivers)}, got {list(drivers)}")
        bad = [d for d in self.year_slopes if d not in self.drivers]
        if bad:
            raise SpecError(f"spec {self.name!r}: year_slopes names {bad}, not drivers of the model "
                            f"{list(self.drivers)}")
        if self.weights not in WEIGHTINGS:
            raise SpecError(f"spec {self.name!r}: weights {self.weights!r} is not supported; use one "
                            f"of {WEIGHTINGS}")
        unknown = set(self.priors) - set(DEFAULT_PRIORS)
        if unknown:
            raise SpecError(f"spec {self.name!r}: [priors] has unknown entries {sorted(unknown)}; "
                            f"known: {sorted(DEFAULT_PRIORS)}")
        if self.sampler.name not in SAMPLERS:
            raise SpecError(f"spec {self.name!r}: sampler {self.sampler.name!r} is not supported; "
                            f"use one of {SAMPLERS}")
        if self.data.ward_ids not in ("auto", "codes", "names"):
            raise SpecError(f"spec {self.name!r}: data.ward_ids must be 'auto', 'codes' or 'names', "
                            f"got {self.data.ward_ids!r}")
        if self.data.min_items_answered < 1:
            raise SpecError(f"spec {self.name!r}: data.min_items_answered must be >= 1")
        if self.sampler.backend not in ("numba", "jax"):
            raise SpecError(f"spec {self.name!r}: sampler.backend {self.sampler.backend!r} is not supported; "
                            "use 'numba' or 'jax'")
        if self.sampler.backend == "jax" and self.sampler.name != "nutpie":
            raise SpecError(f"spec {self.name!r}: sampler.backend = 'jax' is a nutpie back end; set "
                            "sampler.name = 'nutpie' or drop the backend")
        if self.sampler.adaptation not in ADAPTATIONS:
            raise SpecError(f"spec {self.name!r}: sampler.adaptation {self.sampler.adaptation!r} is not "
                            f"supported; use one of {ADAPTATIONS}")
        if self.sampler.adaptation != "diag" and self.sampler.name != "nutpie":
            raise SpecError(f"spec {self.name!r}: sampler.adaptation is nutpie's; set sampler.name = "
                            "'nutpie' or drop the adaptation")
        if not 0.5 <= self.sampler.target_accept < 1:
            raise SpecError(f"spec {self.name!r}: sampler.target_accept must be in [0.5, 1)")
        if not (self.sampler.retry_target_accept == 0 or 0.5 <= self.sampler.retry_target_accept < 1):
            raise SpecError(f"spec {self.name!r}: sampler.retry_target_accept must be in [0.5, 1), "
                            f"or 0 for no retry after divergences (got {self.sampler.retry_target_accept})")

        if self.sampler.more_chains_below_ess < 0:
            raise SpecError(f"spec {self.name!r}: sampler.more_chains_below_ess must be 0 (never add chains) "
                            f"or a positive ESS (got {self.sampler.more_chains_below_ess})")

    def codebook(self) -> Codebook:
        """The default codebook with this spec's overrides applied."""
        return Codebook.default().with_overrides(self.codebook_overrides)

    def prior(self, name: str) -> dict[str, Any]:
        """The prior table for parameter ``name`` (spec value or default)."""
        return prior_from_table(name, self.priors.get(name, DEFAULT_PRIORS[name]))

    def data_path(self) -> Path | None:
        """The data file, resolved against the spec file's folder when relative."""
        if self.data.path is None:
            return None
        path = Path(self.data.path)
        if not path.is_absolute() and self.source is not None:
            path = Path(self.source).parent / path
        return path

    def with_sampler(self, **changes: Any) -> ModelSpec:
        """A copy with sampler settings changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, sampler=replace(self.sampler, **changes))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :func:`spec_from_dict` turns back into this spec."""
        out = asdict(self)
        out["priors"] = {k: self.prior(k) for k in DEFAULT_PRIORS}
        out.pop("source")
        return json.loads(json.dumps(out))

    def digest(self) -> str:
        """SHA-256 of the spec's content (not its file name): equal specs, equal digests."""
        return table_digest(self.to_dict())


def table_digest(table: Mapping[str, Any]) -> str:
    """SHA-256 of a spec table as canonical JSON (the digest a run folder records)."""
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()


#: Model options beyond the core (see :class:`ModelSpec`).
MODEL_OPTIONS = ("family", "correlated", "centred", "demographic_slopes", "year_slopes", "weights")


def spec_from_dict(table: Mapping[str, Any], *, source: str | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from a spec-file table (or :meth:`ModelSpec.to_dict`)."""
    table = dict(table)
    where = source or "spec"
    known = {"name", "outcome", "drivers", "ward_slopes", "demographics", "priors", "data",
             "sampler", "codebook", "codebook_overrides", "model", *MODEL_OPTIONS}
    unknown = set(table) - known
    if unknown:
        raise SpecError(f"{where}: unknown top-level keys {sorted(unknown)}; known: {sorted(known)}")
    model = dict(table.pop("model", {}))
    model.update({k: table.pop(k) for k in list(table) if k in
                  ("name", "outcome", "drivers", "ward_slopes", "demographics", *MODEL_OPTIONS)})
    if "demographic_slopes" in model:
        slopes = model["demographic_slopes"]
        if not isinstance(slopes, Mapping):
            raise SpecError(f"{where}: demographic_slopes must be a table such as "
                            "{ ethnicity = [\"engagement\"] }")
        model["demographic_slopes"] = {str(g): tuple(v) if isinstance(v, list) else (v,)
                                       for g, v in slopes.items()}
    if "name" not in model:
        raise SpecError(f"{where}: give the model a name ([model] name = \"...\")")
    try:
        data = DataOptions(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in table.get("data", {}).items()})
        sampler = SamplerOptions(**table.get("sampler", {}))
    except TypeError as exc:
        raise SpecError(f"{where}: {exc} in [data] or [sampler]") from exc
    priors = {k: prior_from_table(k, v) for k, v in table.get("priors", {}).items()}
    overrides = table.get("codebook", table.get("codebook_overrides", {}))
    try:
        return ModelSpec(
            name=str(model.pop("name")),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()},
            priors={**DEFAULT_PRIORS, **priors},
            data=data,
            sampler=sampler,
            codebook_overrides=overrides,
            source=source,
        )
    except TypeError as exc:
        raise SpecError(f"{where}: {exc} in [model]") from exc


def load_spec(path: str | Path) -> ModelSpec:
    """Read a TOML spec file.

    Raises
    ------
    SpecError
        When the file is missing, is not valid TOML, or holds a value not allowed.
    """
    return spec_from_dict(read_toml(path, example="models/confidence.toml"), source=str(path))


def read_toml(path: str | Path, *, example: str) -> dict[str, Any]:
    """The table of a TOML spec file, or a :class:`SpecError` that says what to give instead."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: spec file not found. What to do: give a path to a .toml spec "
                        f"such as {example}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
