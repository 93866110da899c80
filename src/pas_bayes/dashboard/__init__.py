"""Borough trends from MOPAC's published PAS dashboard (public, borough x quarter aggregates).

Data flow: :mod:`~pas_bayes.dashboard.read` (file -> tidy frame) ->
:mod:`~pas_bayes.dashboard.model` (PyMC model) -> :mod:`~pas_bayes.dashboard.fit`
(run folder) -> :mod:`~pas_bayes.dashboard.summaries` (trends, falls,
associations, checks) -> :mod:`~pas_bayes.dashboard.figures` and
:mod:`~pas_bayes.dashboard.report`.
"""
