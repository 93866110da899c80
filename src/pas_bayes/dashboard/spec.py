"""What a dashboard trend model fits: outcome, drivers, sample size, held-out quarters, priors.

A dashboard spec is a TOML file like the respondent-level specs (``kind =
"dashboard"`` in ``[model]``), or built from the ``pas-bayes dashboard`` options.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pas_bayes.errors import SpecError
from pas_bayes.spec import SamplerOptions, prior_from_table, read_toml, table_digest

KIND = "dashboard"

#: Priors of the dashboard model (log-odds scale), each overridable in ``[priors]``.
DASHBOARD_PRIORS: dict[str, dict[str, Any]] = {
    # London log-odds at the first quarter.
    "intercept": {"dist": "Normal", "mu": 0.0, "sigma": 1.5},
    # Quarter-to-quarter change of London's log-odds (random walk): London "good job" fell
    # ~0.8 on the log-odds scale over nine years, ~0.02 a quarter on average.
    "london_step_sd": {"dist": "HalfNormal", "sigma": 0.15},
    # Spread of borough levels around London (0.5: boroughs from ~40% to ~60% around 50%).
    "borough_level_sd": {"dist": "HalfNormal", "sigma": 0.5},
    # Quarter-to-quarter change of a borough's own deviation from London's trend.
    "borough_step_sd": {"dist": "HalfNormal", "sigma": 0.1},
    # Log-odds of the outcome per SD of a driver's borough average (between boroughs).
    "between_effect": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
    # Log-odds of the outcome per SD of a driver's change over time within a borough.
    "within_effect": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
    # Spread of borough deviations in each within-borough slope.
    "within_slope_sd": {"dist": "HalfNormal", "sigma": 0.2},
    # Variance inflation over simple random sampling (weighting, clustering), per measure.
    "design_effect": {"dist": "LogNormal", "mu": 0.4, "sigma": 0.5},
}

DEFAULT_DRIVERS = ("listen", "relied_on", "treat_fairly", "understand_issues", "informed")


@dataclass(frozen=True)
class DashboardSpec:
    """Everything that decides a dashboard run.

    Parameters
    ----------
    name
        Short name for titles and provenance.
    outcome
        Measure key of the outcome (``good_job`` or ``trust``).
    drivers
        Measure keys of the drivers; each gets a between-borough effect and a
        within-borough (over time) slope that varies by borough.
    n_window
        Respondents per borough in a rolling 12-month window (about 400).
    holdout
        Latest quarters left out of the fit, to check predictions against.
    priors
        One table per entry of :data:`DASHBOARD_PRIORS`.
    """

    name: str = "dashboard"
    outcome: str = "good_job"
    drivers: tuple[str, ...] = DEFAULT_DRIVERS
    n_window: int = 400
    holdout: int = 0
    priors: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DASHBOARD_PRIORS))
    sampler: SamplerOptions = field(default_factory=lambda: SamplerOptions(draws=4000, tune=1500))
    source: str | None = None

    def __post_init__(self) -> None:
        if self.outcome in self.drivers:
            raise SpecError(f"dashboard spec {self.name!r}: the outcome {self.outcome!r} is also a driver")
        if len(set(self.drivers)) != len(self.drivers):
            raise SpecError(f"dashboard spec {self.name!r}: a driver is listed twice: {list(self.drivers)}")
        if self.n_window < 4:
            raise SpecError(f"dashboard spec {self.name!r}: n_window must be at least 4, got {self.n_window}")
        if self.holdout < 0:
            raise SpecError(f"dashboard spec {self.name!r}: holdout must be >= 0, got {self.holdout}")
        unknown = set(self.priors) - set(DASHBOARD_PRIORS)
        if unknown:
            raise SpecError(f"dashboard spec {self.name!r}: unknown priors {sorted(unknown)}; "
                            f"known: {sorted(DASHBOARD_PRIORS)}")

    @property
    def measures(self) -> tuple[str, ...]:
        """Outcome first, then drivers."""
        return (self.outcome, *self.drivers)

    def prior(self, name: str) -> dict[str, Any]:
        """The prior table of a parameter (spec value or default)."""
        return self.priors.get(name, DASHBOARD_PRIORS[name])

    def with_changes(self, **changes: Any) -> DashboardSpec:
        """A copy with model fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def with_sampler(self, **changes: Any) -> DashboardSpec:
        """A copy with sampler settings changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, sampler=replace(self.sampler, **changes))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :func:`dashboard_spec_from_dict` turns back into this spec."""
        out = asdict(self)
        out.pop("source")
        out["kind"] = KIND
        out["priors"] = {k: self.prior(k) for k in DASHBOARD_PRIORS}
        return json.loads(json.dumps(out))

    def digest(self) -> str:
        """SHA-256 of the spec's content."""
        return table_digest(self.to_dict())


def dashboard_spec_from_dict(table: dict[str, Any], *, source: str | None = None) -> DashboardSpec:
    """Build a :class:`DashboardSpec` from a TOML table or :meth:`DashboardSpec.to_dict`."""
    table = dict(table)
    where = source or "dashboard spec"
    model = dict(table.pop("model", {}))
    model.update({k: table.pop(k) for k in list(table)
                  if k in ("name", "outcome", "drivers", "n_window", "holdout", "kind")})
    if model.pop("kind", KIND) != KIND:
        raise SpecError(f"{where}: not a dashboard spec (kind must be {KIND!r})")
    unknown = (set(table) - {"priors", "sampler", "data"}) | (
        set(model) - {"name", "outcome", "drivers", "n_window", "holdout"})
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
    priors = {**DASHBOARD_PRIORS, **{k: prior_from_table(k, v) for k, v in table.get("priors", {}).items()}}
    try:
        sampler = SamplerOptions(**{"draws": 4000, "tune": 1500, **table.get("sampler", {})})
        return DashboardSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()},
                             priors=priors, sampler=sampler, source=source)
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from exc


def load_dashboard_spec(path: str | Path) -> DashboardSpec:
    """Read a dashboard spec TOML file."""
    return dashboard_spec_from_dict(read_toml(path, example="models/dashboard_confidence.toml"), source=str(path))
