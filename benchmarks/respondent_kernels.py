"""The respondents' part of a gradient: PyTensor's fused graph against hand-written Numba loops.

At five years almost all of a gradient is per respondent (``where_time_goes.py``: the
model's parameters alone take a few dozen microseconds). Per respondent the gradient
gathers the ward's intercept and slopes and takes their product with the design row,
adds the demographic cell's intercept, evaluates the Bernoulli-logit likelihood and its
slope, and scatters slope x design row back onto the ward's coefficients (and the slope
onto the cell). This script times that part alone on synthetic arrays of the benchmark's
shape (680 wards, 8 terms, 80 cells), in one run:

* ``pytensor``: the same expressions as :func:`pas_bayes.model.build_model`'s gather, cell
  intercept and fused likelihood (rebuilt here on the synthetic arrays), compiled by
  PyTensor's Numba back end (which fuses the gather into the product and the scatter into
  the gradient's product), its data as constants and as shared variables (as in a fit);
* ``numba, three passes``: a gather-and-dot loop, the likelihood loop of
  :mod:`pas_bayes.likelihood` (its loop body restated in ``_likelihood``, over the package's
  own ``exp`` and ``log``), a scatter loop;
* ``numba, one pass``: the three in one loop over blocks of respondents (the likelihood
  over each block, then the block's scatter, a ward's gradient summed locally while its
  respondents last), so each design row is read while it is still in cache.

Each value and gradient is checked against the PyTensor graph before timing. Writes
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

ROOT = Path(__file__).resolve().parents[1]
WARDS, TERMS, CELLS = 680, 8, 80


def arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Respondents in ward order (as a survey file usually holds them), a design with a column of ones."""
    rng = np.random.default_rng(seed)
    return {"design": np.column_stack([np.ones(n), rng.normal(size=(n, TERMS - 1))]),
            "ward": np.sort(rng.integers(0, WARDS, n)), "cell": rng.integers(0, CELLS, n),
            "y": (rng.random(n) < 0.6).astype(float),
            "coef": rng.normal(0.0, 0.3, (WARDS, TERMS)), "cell_effect": rng.normal(0.0, 0.3, CELLS)}


def pytensor_graph(a: dict[str, np.ndarray], shared: bool):
    coef, cell = pt.matrix("coef"), pt.vector("cell_effect")
    wrap = pytensor.shared if shared else pt.constant
    design, ward, cell_idx, y = (wrap(a[k]) for k in ("design", "ward", "cell", "y"))
    eta = (design * coef[ward]).sum(axis=1) + cell[cell_idx]
    logp = bernoulli_logit(y, eta)[0].sum()
    with pytensor.config.change_flags(numba__fastmath=False):
        f = pytensor.function([coef, cell], [logp, *pt.grad(logp, [coef, cell])], mode="NUMBA")
    return lambda: f(a["coef"], a["cell_effect"])


@njit(error_model="numpy", inline="always")
def _likelihood(y: float, e: float) -> tuple[float, float]:
    t = _exp_neg(min(abs(e), 745.0))
    upper, lower = (t, 1.0) if e > 0 else (1.0, t)
    return y * e - max(e, 0.0) - _log1p_unit(t), (y * upper - (1.0 - y) * lower) / (1.0 + t)


@njit(error_model="numpy")
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


@njit(error_model="numpy")
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
        jobs = {"pytensor, data as constants": pytensor_graph(a, shared=False),
                "pytensor, data as shared variables (as in a fit)": pytensor_graph(a, shared=True),
                "numba, three passes": lambda data=data: three_passes(*data),
                "numba, one pass over blocks of 256": lambda data=data: one_pass(*data)}
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
