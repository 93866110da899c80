"""Where sampling time goes: the cost of one gradient evaluation, model by model.

Sampling time = draws x (leapfrog steps per draw) x (cost of one log-density gradient).
Steps per draw come from the sampler (``steps_per_draw`` in ``speed_vs_peers``); this
script measures the other factor on the full-year benchmark survey, in one run, for
the plain baseline model and for pas_bayes's model with each of its changes undone in
turn, and writes ``benchmarks/results/where_time_goes.csv`` and ``.md``: microseconds
per evaluation (median of repeated timings of nutpie's compiled log-density and
gradient, fast-math off as in every fit) and the ratio to the plain model.

    .venv/bin/python benchmarks/where_time_goes.py [--per-borough 400] [--repeats 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def gradient_cost(model, repeats: int) -> tuple[float, int]:
    """Median microseconds per log-density + gradient evaluation, and the number of parameters."""
    import nutpie

    with pytensor.config.change_flags(numba__fastmath=False):
        compiled = nutpie.compile_pymc_model(model)
    point = np.random.default_rng(0).normal(0, 0.3, compiled.n_dim)
    f = compiled.logp_func
    for _ in range(50):
        f(point)
    times = []
    for _ in range(5):
        clock = time.perf_counter()
        for _ in range(repeats // 5):
            f(point)
        times.append((time.perf_counter() - clock) / (repeats // 5) * 1e6)
    return float(np.median(times)), compiled.n_dim


def _libm_bernoulli_logit_logp():
    """The fused likelihood as it was before its exp and log were written out: libm's, one
    respondent at a time (Python's zero-division checks too), for the side-by-side row."""
    import pytensor.tensor as pt
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

    from pas_bayes.likelihood import BernoulliLogit

    class LibmBernoulliLogit(BernoulliLogit):
        pass

    @register_funcify_default_op_cache_key(LibmBernoulliLogit)
    def _numba_libm(op, node, **kwargs):
        @numba_njit
        def terms(y, eta):
            n = eta.shape[0]
            lp = np.empty(n, dtype=eta.dtype)
            slope = np.empty(n, dtype=eta.dtype)
            for i in range(n):
                e = eta[i]
                t = np.exp(-abs(e))
                log_term = np.log(1.0 + t)
                if e > 0:
                    lp[i] = y[i] * e - e - log_term
                    slope[i] = y[i] - 1.0 / (1.0 + t)
                else:
                    lp[i] = y[i] * e - log_term
                    slope[i] = y[i] - t / (1.0 + t)
            return lp, slope

        return terms, 1

    op = LibmBernoulliLogit()
    return lambda value, eta: op(pt.cast(value, eta.dtype), eta)[0]


def _no_contraction_bernoulli_logit_logp():
    """The fused likelihood's loop compiled without FMA contraction (as it was before it was
    allowed): every multiply and add apart, for the side-by-side row."""
    import pytensor.tensor as pt
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    from pas_bayes.likelihood import BernoulliLogit, terms_loop

    class NoContractionBernoulliLogit(BernoulliLogit):
        pass

    @register_funcify_default_op_cache_key(NoContractionBernoulliLogit)
    def _numba_no_contraction(op, node, **kwargs):
        return terms_loop(fastmath=False), 1

    op = NoContractionBernoulliLogit()
    return lambda value, eta: op(pt.cast(value, eta.dtype), eta)[0]


def main() -> None:
    from plain_model import plain_model
    from results_table import markdown_table

    import pas_bayes.model as model_module
    from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-borough", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=8080)
    parser.add_argument("--out", default=None,
                        help="table path without suffix (default: results/where_time_goes[_<per-borough>])")
    args = parser.parse_args()
    spec = load_spec(ROOT / "benchmarks" / "specs" / "full_year.toml")
    settings = SimulationSettings(seed=args.seed, per_borough=args.per_borough)
    with tempfile.TemporaryDirectory() as tmp:
        frame = read_survey(write_simulation(simulate_survey(settings), tmp, settings), spec).frame

    def pymc_bernoulli_logp(value, eta):
        import pymc as pm

        return pm.logp(pm.Bernoulli.dist(logit_p=eta), value)

    rows = []
    us, n = gradient_cost(plain_model(frame), args.repeats)
    rows.append({"model": "plain PyMC model (baseline)", "us_per_gradient": us, "parameters": n})
    # pas_bayes's model as it is, then with one of its parts swapped back (the module attribute
    # build_model calls, and what it is replaced by), each a row of the same run.
    variants = [
        ("pas_bayes", None, None),
        ("pas_bayes with PyMC's Bernoulli instead of the fused likelihood",
         "bernoulli_logit_logp", pymc_bernoulli_logp),
        ("pas_bayes with the fused likelihood through libm's exp and log (not vectorised)",
         "bernoulli_logit_logp", _libm_bernoulli_logit_logp()),
        ("pas_bayes with its likelihood loop compiled without FMA contraction",
         "bernoulli_logit_logp", _no_contraction_bernoulli_logit_logp()),
        # The model applies the ward terms a run at a time from RUNS_FROM respondents a ward's
        # run on average, and gathers them below: each way forced, whatever the size.
        ("pas_bayes with its ward terms applied a ward's run at a time (pas_bayes.ward_terms)",
         "RUNS_FROM", 0),
        ("pas_bayes with its ward terms gathered per respondent, not applied a ward's run at a time",
         "RUNS_FROM", float("inf")),
        # The likelihood on one respondent, whose eta PyTensor then forms for that one alone: what
        # is left is the parameters' part (priors, transforms, ward and borough tables).
        ("pas_bayes without its respondents (the parameters' part alone)",
         "bernoulli_logit_logp", lambda value, eta: eta[:1] * 0.0),
    ]
    for label, attribute, replacement in variants:
        patch = (mock.patch.object(model_module, attribute, replacement) if attribute
                 else contextlib.nullcontext())
        with patch:
            us, n = gradient_cost(model_module.build_model(spec, frame), args.repeats)
        rows.append({"model": label, "us_per_gradient": us, "parameters": n})
    table = pd.DataFrame(rows)
    table["ratio_to_plain"] = (table["us_per_gradient"] / table["us_per_gradient"].iloc[0]).round(2)
    table["us_per_gradient"] = table["us_per_gradient"].round(1)
    # The full-year size keeps the plain name; other sizes get their own table beside it.
    stem = "where_time_goes" if args.per_borough == 400 else f"where_time_goes_{args.per_borough}"
    target = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / stem
    command = " ".join(["python benchmarks/where_time_goes.py", *sys.argv[1:]])
    table.to_csv(target.with_suffix(".csv"), index=False)
    target.with_suffix(".md").write_text(
        f"# Cost of one gradient evaluation, {len(frame):,} respondents "
        f"(`{command}`)\n\n"
        + markdown_table(table) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
