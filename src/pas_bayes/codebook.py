"""PAS question codes, answer labels, non-substantive codes and the item -> driver map.

The labels are the text the respondent-level PAS files store (they hold labels,
not numeric codes). The default map follows MOPAC's FY 23-24 drivers of
confidence, as transcribed in the project design notes (PAS.md); those item
lists come from public transcriptions of the questionnaire, so every part of
the codebook can be overridden from the ``[codebook]`` table of a spec file
(see :meth:`Codebook.with_overrides`) without touching this module.

Orientation: every driver score is oriented so that its name reads true.
``security`` is high for people who feel safe; ``crime_problems`` is high for
people who see *more* crime problems in their area (so its effect on
confidence is expected to be negative).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pas_bayes.errors import SpecError

#: Answers that carry no opinion. Each is kept apart in the exclusions report.
NON_SUBSTANTIVE: tuple[str, ...] = ("Don't know", "Refused", "-", "Not Asked")


def normalise_label(text: str) -> str:
    """Fold a label for matching: case, curly quotes, dashes and spacing.

    Real files drift in these ways between years ("Don’t know", "Strongly
    Agree", double spaces), none of which change the meaning.
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-")
    return re.sub(r"\s+", " ", text.strip()).casefold()


_NON_SUBSTANTIVE_KEYS = {normalise_label(v): v for v in NON_SUBSTANTIVE}
# Blank cells are how some exports write "-": treat them the same way.
_NON_SUBSTANTIVE_KEYS[""] = "-"


def non_substantive(label: str) -> str | None:
    """Return the canonical non-substantive code for ``label``, or None."""
    return _NON_SUBSTANTIVE_KEYS.get(normalise_label(label))


@dataclass(frozen=True)
class Scale:
    """An answer scale: its labels in questionnaire order and a score for each.

    Parameters
    ----------
    name
        Short key used by items (``"agree"``).
    labels
        Labels as the files store them, first printed first.
    scores
        One number per label; higher means more of what the scale measures
        (more agreement, more worry, more often).
    aliases
        Other spellings that mean a label, e.g. ``{"1 Not at all well": "1"}``.
    """

    name: str
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.scores):
            raise SpecError(
                f"scale {self.name!r}: {len(self.labels)} labels but {len(self.scores)} scores; "
                "give one score per label"
            )

    def lookup(self) -> dict[str, str]:
        """Map every normalised spelling to its canonical label."""
        table = {normalise_label(lab): lab for lab in self.labels}
        table.update({normalise_label(a): lab for a, lab in self.aliases.items()})
        return table

    def score_of(self) -> dict[str, float]:
        """Map each canonical label to its score."""
        return dict(zip(self.labels, self.scores, strict=True))


@dataclass(frozen=True)
class Item:
    """One survey question used as a driver indicator or an outcome.

    ``reverse`` flips the item's score when it enters a driver composite, so that
    e.g. worry items count toward *feeling safe* in reverse.
    """

    code: str
    scale: str
    wording: str = ""
    reverse: bool = False


@dataclass(frozen=True)
class Driver:
    """A driver of confidence: a standardised composite of items, or a yes/no item.

    Parameters
    ----------
    name
        Key used everywhere downstream (``"engagement"``).
    label
        Name a policy reader sees ("Police Local Engagement & Treatment").
    kind
        ``"composite"`` (mean of answered, standardised items, then standardised
        again: effects are per standard deviation) or ``"binary"`` (1 when the
        single item's answer is in ``positive``: effects are yes vs no).
    items
        Item codes.
    positive
        For binary drivers, the labels that count as yes.
    """

    name: str
    label: str
    kind: str
    items: tuple[str, ...]
    positive: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("composite", "binary"):
            raise SpecError(
                f"driver {self.name!r}: kind {self.kind!r} is not known; use 'composite' or 'binary'"
            )
        if self.kind == "binary" and (len(self.items) != 1 or not self.positive):
            raise SpecError(
                f"driver {self.name!r}: a binary driver needs exactly one item and a "
                "non-empty 'positive' list of labels"
            )
        if not self.items:
            raise SpecError(f"driver {self.name!r}: give at least one item")


@dataclass(frozen=True)
class Outcome:
    """A survey outcome, dichotomised the way MOPAC publishes it."""

    name: str
    item: str
    label: str
    positive: tuple[str, ...]


@dataclass(frozen=True)
class Demographic:
    """A demographic column modelled as a random intercept."""

    name: str
    column: str
    label: str
    levels: tuple[str, ...] = ()


AGREE = ("Strongly agree", "Tend to agree", "Neither agree nor disagree", "Tend to disagree",
         "Strongly disagree")

_DEFAULT_SCALES: dict[str, Scale] = {
    "agree": Scale("agree", AGREE, (5, 4, 3, 2, 1)),
    "good_job": Scale("good_job", ("Excellent", "Good", "Fair", "Poor", "Very poor"), (5, 4, 3, 2, 1)),
    "well_1_7": Scale(
        "well_1_7",
        tuple(str(i) for i in range(1, 8)),
        tuple(float(i) for i in range(1, 8)),
        aliases={"1 Not at all well": "1", "7 Very well": "7", "Not at all well": "1",
                 "Very well": "7", **{f"{i}.0": str(i) for i in range(1, 8)}},
    ),
    "confident": Scale(
        "confident",
        ("Very confident", "Fairly confident", "Not very confident", "Not at all confident"),
        (4, 3, 2, 1),
    ),
    "safe": Scale("safe", ("Very safe", "Fairly safe", "A bit unsafe", "Very unsafe"), (4, 3, 2, 1)),
    "worry": Scale(
        "worry", ("Very worried", "Fairly worried", "Not very worried", "Not at all worried"),
        (4, 3, 2, 1),
    ),
    "problem": Scale("problem", ("A major problem", "A minor problem", "Not a problem at all"),
                     (3, 2, 1)),
    "patrol_frequency": Scale(
        "patrol_frequency",
        ("At least daily", "At least weekly", "At least fortnightly", "At least monthly",
         "Less often", "Never"),
        (6, 5, 4, 3, 2, 1),
    ),
    "informed": Scale(
        "informed", ("Very well informed", "Fairly well informed", "Not at all informed"), (3, 2, 1)
    ),
}

_DEFAULT_ITEMS: dict[str, Item] = {
    i.code: i
    for i in (
        Item("Q60", "good_job", "How good a job are the police in your area doing?"),
        Item("NQ135BD", "agree", "The MPS is an organisation that I can trust."),
        Item("Q62TG", "agree", "They listen to the concerns of local people."),
        Item("Q62E", "agree", "They understand the issues that affect this community."),
        Item("Q62F", "agree", "They are dealing with the things that matter to this community."),
        Item("Q62C", "agree", "They treat everyone fairly regardless of who they are."),
        Item("Q62H", "agree", "They are helpful."),
        Item("Q62TJ", "agree", "They are easy to contact."),
        Item("Q62A", "agree", "They can be relied on to be there when you need them."),
        Item("Q79B", "well_1_7", "How well do the MPS respond to emergencies promptly?"),
        Item("Q79D", "well_1_7", "How well do the MPS tackle gun crime?"),
        Item("NQ79D", "well_1_7", "How well do the MPS tackle knife crime?"),
        Item("Q79E", "well_1_7", "How well do the MPS support victims and witnesses?"),
        Item("Q79G", "well_1_7", "How well do the MPS tackle drug dealing and drug use?"),
        Item("Q79I", "well_1_7", "How well do the MPS respond to hate crime?"),
        Item("Q79J", "well_1_7", "How well do the MPS respond to violence against women and girls?"),
        Item("NQ135BH", "agree", "Police in your area are sufficiently held accountable."),
        Item("XQ122B", "confident", "Confident the MPS deal fairly with complaints."),
        Item("NQ135BF", "agree", "Police in your area reflect the local community."),
        Item("Q21", "safe", "How safe do you feel walking alone in this area after dark?"),
        Item("Q13", "worry", "How worried are you about crime in this area?", reverse=True),
        Item("Q15", "worry", "How worried are you about anti-social behaviour?", reverse=True),
        Item("Q39A_2", "problem", "Is knife crime a problem in this area?"),
        Item("NQ44A", "problem", "Is hate crime a problem in this area?"),
        Item("Q65", "patrol_frequency", "How often do you see the police patrolling in this area?"),
        Item("Q131", "informed", "How well informed do you feel about what local police have done?"),
    )
}

_DEFAULT_DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        Driver("engagement", "Police Local Engagement & Treatment", "composite",
               ("Q62TG", "Q62E", "Q62F", "Q62C", "Q62H", "Q62TJ"),
               description="Police listen, understand, deal with what matters, are fair, helpful, "
               "easy to contact (higher = more positive)."),
        Driver("effectiveness", "Police Effectiveness", "composite",
               ("Q79B", "Q79D", "NQ79D", "Q79E", "Q79G", "Q79I", "Q79J", "Q62A"),
               description="How well the MPS deal with emergencies and crime (higher = better)."),
        Driver("accountability", "Police Accountability & Standards", "composite",
               ("NQ135BH", "XQ122B", "NQ135BF"),
               description="Police are held accountable and reflect the community (higher = more)."),
        Driver("security", "Personal Security & Local Safety", "composite", ("Q21", "Q13", "Q15"),
               description="Feels safe and unworried in the area (higher = safer)."),
        Driver("crime_problems", "Community Crime Problems", "composite", ("Q39A_2", "NQ44A"),
               description="Sees knife and hate crime as local problems (higher = MORE problems)."),
        Driver("visibility", "Local Patrol Visibility", "binary", ("Q65",),
               positive=("At least daily", "At least weekly"),
               description="Sees police patrolling at least weekly (1) or less often (0)."),
        Driver("informed", "Local Information Provision", "binary", ("Q131",),
               positive=("Very well informed",),
               description="Feels very well informed about local policing (1) or not (0)."),
    )
}

_DEFAULT_OUTCOMES: dict[str, Outcome] = {
    "confidence": Outcome("confidence", "Q60", "Police in the area do a good or excellent job",
                          ("Excellent", "Good")),
    "trust": Outcome("trust", "NQ135BD", "Agrees the MPS is an organisation they can trust",
                     ("Strongly agree", "Tend to agree")),
}

_DEFAULT_DEMOGRAPHICS: dict[str, Demographic] = {
    "ethnicity": Demographic("ethnicity", "NQ147r", "Ethnicity",
                             ("White", "Asian", "Black", "Mixed", "Other")),
    "age": Demographic("age", "Q136r", "Age band",
                       ("16-24", "25-34", "35-44", "45-54", "55-64", "65+")),
    "sex": Demographic("sex", "XQ135r", "Sex", ("Male", "Female")),
}


@dataclass(frozen=True)
class Codebook:
    """Everything the reader needs to turn labels into numbers.

    Build the default with :meth:`default` and adapt it with
    :meth:`with_overrides` using the ``[codebook]`` table of a spec file.
    """

    scales: Mapping[str, Scale]
    items: Mapping[str, Item]
    drivers: Mapping[str, Driver]
    outcomes: Mapping[str, Outcome]
    demographics: Mapping[str, Demographic]

    @classmethod
    def default(cls) -> Codebook:
        """The codebook of the FY 23-24 MOPAC driver model."""
        return cls(
            scales=dict(_DEFAULT_SCALES),
            items=dict(_DEFAULT_ITEMS),
            drivers=dict(_DEFAULT_DRIVERS),
            outcomes=dict(_DEFAULT_OUTCOMES),
            demographics=dict(_DEFAULT_DEMOGRAPHICS),
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> Codebook:
        """Return a codebook with tables from a spec's ``[codebook]`` section applied.

        Parameters
        ----------
        overrides
            Keys ``scales``, ``items``, ``drivers``, ``outcomes``,
            ``demographics``; each maps a name to the fields of that entry, e.g.
            ``{"drivers": {"engagement": {"items": ["Q62TG", "Q62E"]}}}``.
            Fields not given keep their default; a new name adds an entry.

        Returns
        -------
        Codebook
            A new codebook; this one is unchanged.

        Raises
        ------
        SpecError
            On an unknown section or field, or an item that names an unknown scale.
        """
        kinds = {"scales": Scale, "items": Item, "drivers": Driver, "outcomes": Outcome,
                 "demographics": Demographic}
        unknown = set(overrides) - set(kinds)
        if unknown:
            raise SpecError(f"[codebook] has unknown sections {sorted(unknown)}; "
                            f"allowed: {sorted(kinds)}")
        tables: dict[str, dict[str, Any]] = {k: dict(getattr(self, k)) for k in kinds}
        for section, entries in overrides.items():
            cls = kinds[section]
            allowed = set(cls.__dataclass_fields__) - {"name", "code"}
            for name, fields in entries.items():
                bad = set(fields) - allowed
                if bad:
                    raise SpecError(f"[codebook.{section}.{name}] has unknown fields {sorted(bad)}; "
                                    f"allowed: {sorted(allowed)}")
                base = tables[section].get(name)
                merged = {} if base is None else copy.deepcopy(base.__dict__)
                merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
                merged["code" if cls is Item else "name"] = name
                try:
                    tables[section][name] = cls(**merged)
                except TypeError as exc:
                    raise SpecError(f"[codebook.{section}.{name}] is incomplete: {exc}") from exc
        book = Codebook(**tables)
        book.check()
        return book

    def answer_order(self, outcome: str) -> tuple[tuple[str, ...], int]:
        """An outcome's labels from least to most positive, and the index of the first positive one.

        Raises
        ------
        SpecError
            When the positive labels are not the top categories of the scale: a
            cumulative model needs "positive" to be one of its cut-points.
        """
        spec = self.outcomes[outcome]
        scale = self.scale_of(spec.item)
        ordered = tuple(lab for _, lab in sorted(zip(scale.scores, scale.labels, strict=True)))
        first = len(ordered) - len(spec.positive)
        if set(ordered[first:]) != set(spec.positive):
            raise SpecError(f"outcome {outcome!r}: positive labels {list(spec.positive)} are not the "
                            f"top of its scale {list(reversed(ordered))}; a cumulative model needs them to be")
        return ordered, first

    def check(self) -> None:
        """Raise :class:`SpecError` if an entry refers to something not defined."""
        for item in self.items.values():
            if item.scale not in self.scales:
                raise SpecError(f"item {item.code!r} uses scale {item.scale!r}, which is not "
                                f"defined; known scales: {sorted(self.scales)}")
        for driver in self.drivers.values():
            for code in driver.items:
                if code not in self.items:
                    raise SpecError(f"driver {driver.name!r} uses item {code!r}, which is not "
                                    "defined; add it under [codebook.items]")
            if driver.kind == "binary":
                self._check_labels(driver.items[0], driver.positive, f"driver {driver.name!r}")
        for outcome in self.outcomes.values():
            if outcome.item not in self.items:
                raise SpecError(f"outcome {outcome.name!r} uses item {outcome.item!r}, "
                                "which is not defined")
            self._check_labels(outcome.item, outcome.positive, f"outcome {outcome.name!r}")

    def _check_labels(self, code: str, labels: tuple[str, ...], owner: str) -> None:
        scale = self.scales[self.items[code].scale]
        missing = [lab for lab in labels if lab not in scale.labels]
        if missing:
            raise SpecError(f"{owner}: positive labels {missing} are not labels of scale "
                            f"{scale.name!r} {list(scale.labels)}")

    def scale_of(self, code: str) -> Scale:
        """The answer scale of item ``code``."""
        return self.scales[self.items[code].scale]

    def columns_for(self, outcome: str, drivers: list[str], demographics: list[str]) -> list[str]:
        """Survey columns needed to build the given outcome, drivers and demographics."""
        cols = [self.outcomes[outcome].item]
        for d in drivers:
            cols.extend(c for c in self.drivers[d].items if c not in cols)
        cols.extend(self.demographics[g].column for g in demographics)
        return cols
