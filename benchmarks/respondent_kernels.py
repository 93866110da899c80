"""The respondents' part of a gradient: the model's PyTensor graphs against hand-written Numba loops.

At five years almost all of a gradient is per respondent (``where_time_goes.py``: the
model's parameters alone take a few dozen microseconds). Per respondent the gradient
gathers the ward's intercept and slopes and takes their product with the design row,
adds the demographic cell's intercept, evaluates the Bernoulli-logit likelihood and its
slope, and scatters slope x design row back onto the ward's coefficients (and the slope
onto the cell). This script times that part alone on synthetic arrays of the benchmark's
shape (680 wards, 8 terms, 80 cells), in one run:

* ``pytensor, ward terms a run at a time``: as :func:`pas_bayes.model.build_model` now
  writes it (respondents in ward order, :mod:`pas_bayes.ward_terms`), with the same cell
  intercept and fused likelihood;
* ``pytensor``: the expressions the model used before, the ward table's gather, the cell
  intercept and fused likelihood (rebuilt here on the synthetic arrays), compiled by
  PyTensor's Numba back end (which fuses the gather into the product and the scatter into
  the gradient's product), its data as constants and as shared variables (as in a fit);
* ``numba, three passes``: a gather-and-dot loop, the likelihood loop of
  :mod:`pas_bayes.likelihood` (its loop body restated in ``_likelihood``, over the package's
  own ``exp`` and ``log``), a scatter loop;
* ``numba, one pass``: the three in one loop over blocks of respondents (the likelihood
  over each block, then the block's scatter, a ward's gradient summed locally while its
  respondents last), so each design row is read while it is still in cache;
* ``numba, ward segments``: the ward terms, likelihood and sums as one hand-written
  kernel over the same runs (respondents in ward order, the design term by term): a ward's
  coefficients are constants over its run, its predictor a few vectorised multiply-adds,
  its likelihood the package's loop, its gradient one dot product a term (sums reordered
  there, ``fastmath`` ``reassoc``), the log-likelihood summed in the kernel. Once with the
  respondents in ward order, and once from and to the file's order (each respondent's
  offset gathered through the ordering, their log-likelihood and slope written back), what
  the model would need if the reader kept the file's order.

The synthetic respondents are in random order, as a survey file holds them (the reader
puts them in ward order), over 680 wards at a year and 1,311 at 60,000 (five years span
two ward boundary vintages). Each value and gradient is checked against the PyTensor graph before timing. Writes
``results/respondent_kernels.csv`` and ``.md``.

    .venv/bin/python benchmarks/respondent_kernels.py [--respondents 12800,60000] [--repeats 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
from numba import njit
from results_table import markdown_table

from pas_bayes.likelihood import _exp_neg, _log1p_unit, bernoulli_logit
from pas_bayes.ward_terms import _run_dot, ward_runs, ward_terms

ROOT = Path(__file__).resolve().parents[1]
TERMS, CELLS = 8, 80
#: Wards at the benchmark's sizes: a year's survey has about 680, five years' about 1,311 (two
#: boundary vintages); any other size gets a year's.
WARDS = {12800: 680, 60000: 1311}


def arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Respondents in random ward order (as the synthetic survey holds them), a design with a column of ones."""
    rng = np.random.default_rng(seed)
    wards = WARDS.get(n, 680)
    return {"design": np.column_stack([np.ones(n), rng.normal(size=(n, TERMS - 1))]),
            "ward": rng.integers(0, wards, n), "cell": rng.integers(0, CELLS, n),
            "y": (rng.random(n) < 0.6).astype(float),
            "coef": rng.normal(0.0, 0.3, (wards, TERMS)), "cell_effect": rng.normal(0.0, 0.3, CELLS)}


def pytensor_runs_graph(a: dict[str, np.ndarray]):
    """The model as it now writes this part: respondents in ward order, the design term by term,
    :func:`pas_bayes.ward_terms.ward_terms` a ward's run at a time, the same cell intercept and
    fused likelihood; data as shared variables, as in a fit."""
    order = np.argsort(a["ward"], kind="stable")
    run_ward, run_start = ward_runs(a["ward"][order])
    coef, cell = pt.matrix("coef"), pt.vector("cell_effect")
    design_t = pytensor.shared(np.ascontiguousarray(a["design"][order].T))
    eta = ward_terms(coef, design_t, pytensor.shared(run_ward), pytensor.shared(run_start),
                     n_wards=a["coef"].shape[0]) + cell[pytensor.shared(a["cell"][order])]
    logp = bernoulli_logit(pytensor.shared(a["y"][order]), eta)[0].sum()
    with pytensor.config.change_flags(numba__fastmath=False):
        f = pytensor.function([coef, cell], [logp, *pt.grad(logp, [coef, cell])], mode="NUMBA")
    return lambda: f(a["coef"], a["cell_effect"])


def pytensor_graph(a: dict[str, np.ndarray], shared: bool):
    coef, cell = pt.matrix("coef"), pt.vector("cell_effect")
    wrap = pytensor.shared if shared else pt.constant
    design, ward, cell_idx, y = (wrap(a[k]) for k in ("design", "ward", "cell", "y"))
    eta = (design * coef[ward]).sum(axis=1) + cell[cell_idx]
    logp = bernoulli_logit(y, eta)[0].sum()
    with pytensor.config.change_flags(numba__fastmath=False):
        f = pytensor.function([coef, cell], [logp, *pt.grad(logp, [coef, cell])], mode="NUMBA")
    return lambda: f(a["coef"], a["cell_effect"])


@njit(error_model="numpy", fastmath={"contract"}, inline="always")
def _likelihood(y: float, e: float) -> tuple[float, float]:
    t = _exp_neg(min(abs(e), 745.0))
    upper, lower = (t, 1.0) if e > 0 else (1.0, t)
    return y * e - max(e, 0.0) - _log1p_unit(t), (y * upper - (1.0 - y) * lower) / (1.0 + t)


@njit(error_model="numpy", fastmath={"contract"})
def three_passes(design, ward, cell, y, coef, cell_effect):
    n, k = design.shape
    eta = np.empty(n)
    for i in range(n):
        s = cell_effect[cell[i]]
        for j in range(k):
            s += design[i, j] * coef[ward[i], j]
        eta[i] = s
    slope = np.empty(n)
    lp = np.empty(n)
    # Summed after the loop: a running sum in it would keep the loop scalar (no reordering
    # of floating-point additions without fast-math).
    for i in range(n):
        lp[i], slope[i] = _likelihood(y[i], eta[i])
    total = lp.sum()
    g_coef = np.zeros(coef.shape)
    g_cell = np.zeros(cell_effect.shape[0])
    for i in range(n):
        for j in range(k):
            g_coef[ward[i], j] += slope[i] * design[i, j]
        g_cell[cell[i]] += slope[i]
    return total, g_coef, g_cell


@njit(error_model="numpy", fastmath={"contract"})
def one_pass(design, ward, cell, y, coef, cell_effect):
    n, k = design.shape
    block = 256
    eta = np.empty(block)
    slope = np.empty(block)
    lp = np.empty(n)
    acc = np.zeros(k)
    g_coef = np.zeros(coef.shape)
    g_cell = np.zeros(cell_effect.shape[0])
    current = ward[0] if n else 0
    for start in range(0, n, block):
        m = min(block, n - start)
        for b in range(m):
            i = start + b
            s = cell_effect[cell[i]]
            for j in range(k):
                s += design[i, j] * coef[ward[i], j]
            eta[b] = s
        for b in range(m):
            lp[start + b], slope[b] = _likelihood(y[start + b], eta[b])
        for b in range(m):
            i = start + b
            if ward[i] != current:  # the ward's sums go out once, when its respondents end
                for j in range(k):
                    g_coef[current, j] += acc[j]
                    acc[j] = 0.0
                current = ward[i]
            for j in range(k):
                acc[j] += slope[b] * design[i, j]
            g_cell[cell[i]] += slope[b]
    for j in range(k):
        g_coef[current, j] += acc[j]
    return lp.sum(), g_coef, g_cell


@njit(error_model="numpy", fastmath={"contract"})
def ward_segments(design_t, starts, cell, y, coef, cell_effect, order, cell_survey, to_survey_order):
    """``design_t``, ``cell``, ``y`` in ward order; ``starts[w]:starts[w + 1]`` is ward ``w``.

    ``to_survey_order``: the cell offset is formed in survey order (``cell_survey``, as the
    model's graph would hand it over), gathered through ``order`` (ward position -> survey
    position), and the log-likelihoods and slopes written back to survey order, where the
    graph would sum them and scatter the slopes onto the cells; otherwise all in ward order.
    """
    k, n = design_t.shape
    wards = starts.shape[0] - 1
    eta = np.empty(n)
    lp = np.empty(n)
    slope = np.empty(n)
    g_coef = np.empty((wards, k))
    if to_survey_order:
        offset = np.empty(n)
        for i in range(n):
            offset[i] = cell_effect[cell_survey[i]]
        for i in range(n):
            eta[i] = offset[order[i]]
    else:
        for i in range(n):
            eta[i] = cell_effect[cell[i]]
    for w in range(wards):
        a, b = starts[w], starts[w + 1]
        e = eta[a:b]
        for j in range(k):
            c = coef[w, j]
            row = design_t[j, a:b]
            for i in range(b - a):
                e[i] += row[i] * c
        ys, lps, s = y[a:b], lp[a:b], slope[a:b]
        for i in range(b - a):
            lps[i], s[i] = _likelihood(ys[i], e[i])
        for j in range(k):
            g_coef[w, j] = _run_dot(s, design_t[j, a:b])
    g_cell = np.zeros(cell_effect.shape[0])
    if to_survey_order:
        lp_survey = np.empty(n)
        slope_survey = np.empty(n)
        for i in range(n):
            lp_survey[order[i]] = lp[i]
            slope_survey[order[i]] = slope[i]
        for i in range(n):
            g_cell[cell_survey[i]] += slope_survey[i]
        return lp_survey.sum(), g_coef, g_cell
    for i in range(n):
        g_cell[cell[i]] += slope[i]
    return lp.sum(), g_coef, g_cell


def median_us(f, repeats: int) -> float:
    for _ in range(30):
        f()
    times = []
    for _ in range(5):
        clock = time.perf_counter()
        for _ in range(repeats // 5):
            f()
        times.append((time.perf_counter() - clock) / (repeats // 5) * 1e6)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", default="12800,60000")
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.respondents.split(",")):
        a = arrays(n)
        data = (a["design"], a["ward"], a["cell"], a["y"], a["coef"], a["cell_effect"])
        order = np.argsort(a["ward"], kind="stable")  # ward position -> survey position
        sorted_data = (np.ascontiguousarray(a["design"][order].T),
                       np.searchsorted(a["ward"][order], np.arange(a["coef"].shape[0] + 1)),
                       a["cell"][order], a["y"][order], a["coef"], a["cell_effect"], order, a["cell"])
        jobs = {"pytensor, data as constants": pytensor_graph(a, shared=False),
                "pytensor, data as shared variables (as the model was)": pytensor_graph(a, shared=True),
                "pytensor, ward terms a run at a time (as the model now is)": pytensor_runs_graph(a),
                "numba, three passes": lambda data=data: three_passes(*data),
                "numba, one pass over blocks of 256": lambda data=data: one_pass(*data),
                "numba, ward segments (respondents held in ward order)":
                    lambda d=sorted_data: ward_segments(*d, False),
                "numba, ward segments, from and to survey order": lambda d=sorted_data: ward_segments(*d, True)}
        reference = jobs["pytensor, data as constants"]()
        for name, f in jobs.items():
            got = f()
            for mine, theirs in zip(got, reference, strict=True):
                if not np.allclose(mine, theirs, rtol=1e-10, atol=1e-8):
                    sys.exit(f"{name} disagrees with the PyTensor graph at {n} respondents")
            rows.append({"respondents": n, "implementation": name, "us_per_gradient": median_us(f, args.repeats)})
    table = pd.DataFrame(rows)
    first = table.groupby("respondents")["us_per_gradient"].transform("first")
    table["ratio_to_pytensor_constants"] = (table["us_per_gradient"] / first).round(2)
    table["ns_per_respondent"] = (table["us_per_gradient"] * 1e3 / table["respondents"]).round(1)
    table["us_per_gradient"] = table["us_per_gradient"].round(1)
    out = ROOT / "benchmarks" / "results" / "respondent_kernels"
    table.to_csv(out.with_suffix(".csv"), index=False)
    command = "python " + " ".join(["benchmarks/respondent_kernels.py", *sys.argv[1:]])
    out.with_suffix(".md").write_text(f"# The respondents' part of one gradient (`{command}`)\n\n"
                                      + markdown_table(table) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
