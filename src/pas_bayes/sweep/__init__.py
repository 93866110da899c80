"""Many fits at once on Dask: model x data x seed sweeps, and recovery and calibration simulations.

``pas-bayes sweep models/sweep_*.toml --out DIR`` runs every fit of a sweep spec
(:mod:`pas_bayes.sweep.spec`) as one Dask task each (:mod:`pas_bayes.sweep.task`),
on a local cluster or an existing one (:mod:`pas_bayes.sweep.runner`), resumes
where it stopped, and combines the results (:mod:`pas_bayes.sweep.summary`).
"""

from pas_bayes.sweep.runner import SweepOutcome, run_sweep
from pas_bayes.sweep.spec import SweepSpec, SweepTask, expand_tasks, load_sweep_spec
from pas_bayes.sweep.summary import open_sweep, write_summary

__all__ = ["SweepOutcome", "SweepSpec", "SweepTask", "expand_tasks", "load_sweep_spec", "open_sweep", "run_sweep",
           "write_summary"]
