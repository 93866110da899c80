"""Everything a policy reader sees about one run, computed once.

:func:`summarise_run` loads the posterior arrays, computes the average marginal
effects (pp) and, on first use, rankings, demographic gaps and the posterior
predictive check. Figures and the report read from here; nothing here refits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from pas_bayes.diagnostics import DiagnosticsReport, diagnose
from pas_bayes.effects import group_marginal_effects, marginal_effects
from pas_bayes.fit import Run
from pas_bayes.gaps import demographic_gaps
from pas_bayes.ppc import replicated_shares
from pas_bayes.predictions import Posterior, load_posterior
from pas_bayes.rankings import borough_rankings, ward_rankings

#: How each binary driver reads in a sentence.
BINARY_PHRASES = {"visibility": "seeing officers patrol at least weekly",
                  "informed": "feeling very well informed about local policing"}

#: How each outcome's positive answer reads in a sentence ("the share who ...").
OUTCOME_PHRASES = {
    "confidence": "say the local police do a good job",
    "trust": "agree the Met is an organisation they can trust",
}


def outcome_phrase(spec) -> str:
    """How a spec's positive answer reads in a sentence: "say the local police do a good job"."""
    return OUTCOME_PHRASES.get(spec.outcome, spec.codebook().outcomes[spec.outcome].label.lower())


@dataclass
class RunSummary:
    """A run with its probability-scale summaries (computed lazily, once)."""

    run: Run
    post: Posterior
    ame: dict[str, np.ndarray]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def outcome_phrase(self) -> str:
        """How a positive answer reads: "say the local police do a good job"."""
        return outcome_phrase(self.run.spec)

    def label(self, driver: str) -> str:
        """The name of a driver a policy reader knows."""
        return self.labels.get(driver, driver)

    @cached_property
    def borough_rankings(self) -> pd.DataFrame:
        return borough_rankings(self.ame, self.post)

    @cached_property
    def ward_rankings(self) -> pd.DataFrame:
        return ward_rankings(self.ame, self.post)

    @cached_property
    def gaps(self) -> pd.DataFrame:
        return demographic_gaps(self.post)[0]

    @cached_property
    def group_effects(self) -> pd.DataFrame:
        """Effects (points) by year or demographic level, where the model lets them vary."""
        return group_marginal_effects(self.post)

    @cached_property
    def ppc(self) -> pd.DataFrame:
        return replicated_shares(self.post, seed=self.run.spec.sampler.seed)

    @cached_property
    def diagnostics(self) -> DiagnosticsReport:
        return diagnose(self.run.idata, self.run.provenance.get("loo"), self.run.per_parameter)

    def ward_names(self) -> list[str]:
        """Ward names in the posterior's ward order (the ids where names are unknown)."""
        names = dict(zip(self.run.wards["ward"], self.run.wards["ward_name"], strict=True))
        return [names.get(w) or w for w in self.post.wards]

    def driver_ame(self, driver: str) -> tuple[np.ndarray, np.ndarray]:
        """Draws of one driver's AME: London (S,) and boroughs (S, B)."""
        d = self.post.drivers.index(driver)
        return self.ame["london"][:, 0, d], self.ame["borough"][:, :, d]


def summarise_run(run: Run, *, max_draws: int = 1000) -> RunSummary:
    """Load a run's posterior for predictions and compute its average marginal effects."""
    post = load_posterior(run.idata, max_draws=max_draws)
    book = run.spec.codebook()
    return RunSummary(run=run, post=post, ame=marginal_effects(post),
                      labels={name: d.label for name, d in book.drivers.items()})
