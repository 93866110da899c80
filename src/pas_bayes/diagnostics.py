"""Convergence checks, each with its threshold, its worst parameters and what to do.

The thresholds are those of Vehtari et al. (2021, "Rank-normalization,
folding, and localization") and Betancourt (2017): split R-hat below 1.01,
bulk and tail ESS of at least 400 (100 per chain for 4 chains), no divergent
transitions, E-BFMI of at least 0.3 in every chain, and no draw that stopped
at the sampler's maximum tree depth. They are computed with ArviZ
(``arviz_stats``) over every posterior variable, group effects included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from pas_bayes.convergence import rhat_ess_in_blocks
from pas_bayes.memory import one_block_at_a_time

RHAT_MAX = 1.01
ESS_MIN = 400
EBFMI_MIN = 0.3


@dataclass(frozen=True)
class Check:
    """One diagnostic: its value, threshold, verdict, worst offenders and advice."""

    name: str
    value: float
    threshold: str
    passed: bool
    worst: tuple[str, ...] = ()
    advice: str = ""
    #: False for checks that warn without failing the run (the reliability of LOO is not convergence).
    blocking: bool = True

    @property
    def status(self) -> str:
        return "pass" if self.passed else ("FAIL" if self.blocking else "WARN")


@dataclass(frozen=True)
class DiagnosticsReport:
    """All checks of one run."""

    checks: tuple[Check, ...]
    per_parameter: pd.DataFrame = field(repr=False)

    @property
    def passed(self) -> bool:
        """True when every convergence check passes (warnings do not count)."""
        return all(c.passed for c in self.checks if c.blocking)

    def table(self) -> pd.DataFrame:
        """One row per check: check, value, threshold, status, worst, what to do."""
        return pd.DataFrame([{
            "check": c.name, "value": c.value, "threshold": c.threshold,
            "status": c.status, "worst": ", ".join(c.worst),
            "what to do": "" if c.passed else c.advice,
        } for c in self.checks])

    def to_text(self) -> str:
        """A readable report for a terminal."""
        lines = []
        for c in self.checks:
            status = c.status
            lines.append(f"[{status}] {c.name:<28} {_fmt(c.value):>10}   (needs {c.threshold})")
            if c.worst:
                lines.append(f"         worst: {', '.join(c.worst)}")
            if not c.passed:
                lines.append(f"         what to do: {c.advice}")
        verdict = ("All checks pass." if self.passed else
                   "Some checks FAIL: treat the estimates as provisional until they pass.")
        if any(c.name.startswith("APPROXIMATE") for c in self.checks):
            verdict = "APPROXIMATE PREVIEW (not MCMC): for a first look only; refit with NUTS before use."
        return "\n".join([*lines, "", verdict])


def divergences(idata: xr.DataTree) -> int:
    """The number of divergent transitions among the kept draws (0 when the sampler records none)."""
    if "sample_stats" not in idata.children or "diverging" not in idata["sample_stats"].data_vars:
        return 0
    return int(idata["sample_stats"]["diverging"].sum())


def sampler_attempts(idata: xr.DataTree) -> list[dict[str, Any]]:
    """Every attempt that made this posterior, first to last (one, unless a retry or more chains were needed).

    Each is ``{"target_accept", "divergences", "sampling_seconds", "compile_seconds"}``; an
    attempt that added chains to the one before it also has ``added_chains``, ``seed`` and
    ``because``. The posterior holds the draws of the last attempt that added none, and of
    every attempt after it.
    """
    attrs = idata["posterior"].attrs
    recorded = attrs.get("sampler_attempts")
    if recorded:
        return json.loads(recorded) if isinstance(recorded, str) else list(recorded)
    return [{"target_accept": attrs.get("target_accept"), "divergences": divergences(idata),
             "sampling_seconds": float(attrs.get("sampling_time", float("nan"))),
             "compile_seconds": float(attrs.get("compile_time", float("nan")))}]


def _earlier_attempts(idata: xr.DataTree) -> tuple[str, ...]:
    """What the attempts before the kept one found (a fit sampled again after divergences)."""
    attempts = sampler_attempts(idata)
    # The kept draws start at the last attempt that added no chains to the one before it.
    base = max((i for i, a in enumerate(attempts) if not a.get("added_chains")), default=0)
    return tuple(f"attempt {i + 1} at target acceptance {a['target_accept']}: {a['divergences']} divergent, "
                 f"its draws discarded; these draws are attempt {base + 1}'s at {attempts[base]['target_accept']}"
                 for i, a in enumerate(attempts[:base]))


def _added_chains(idata: xr.DataTree) -> tuple[str, ...]:
    """What the attempts that added chains were for (a fit whose ESS fell just short)."""
    return tuple(f"attempt {i + 1} added {a['added_chains']} chains (seed {a['seed']}, {a['divergences']} "
                 f"divergent) because the {a['because']}"
                 for i, a in enumerate(sampler_attempts(idata)) if a.get("added_chains"))


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "n/a"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"


def _label(var: str, coords: dict[str, object]) -> str:
    if not coords:
        return var
    return f"{var}[{', '.join(str(v) for v in coords.values())}]"


def _flatten(tree: xr.DataTree, column: str) -> pd.DataFrame:
    """Per-element values of a DataTree of statistics as rows (variable, parameter, coords, value)."""
    rows = []
    ds = tree.to_dataset() if isinstance(tree, xr.DataTree) else tree
    for var, da in ds.data_vars.items():
        if da.ndim == 0:
            rows.append({"variable": var, "parameter": var, "coords": {}, column: float(da)})
            continue
        for index, value in da.to_series().items():
            keys = index if isinstance(index, tuple) else (index,)
            coords = dict(zip(da.dims, keys, strict=True))
            rows.append({"variable": var, "parameter": _label(var, coords), "coords": coords,
                         column: float(value)})
    return pd.DataFrame(rows)


#: Draws of one posterior variable held in memory at once for its R-hat and ESS (each
#: parameter's statistics use only its own draws, so a large variable is taken in blocks).
BLOCK_BYTES = 8 * 2**20


def _posterior_blocks(post: xr.Dataset) -> Iterator[xr.Dataset]:
    """The posterior as in-memory Datasets of about :data:`BLOCK_BYTES` of draws each
    (more where one stored chunk's width along the blocked dimension holds more).

    ``post`` may hold its large variables as dask arrays or as xarray's lazily indexed
    arrays (opened with ``chunks=None``: a block is then one read of the store, several
    times faster than dask's one read per stored chunk). A ward effect kept out of the
    trace (``ward_slope_dev = z_ward_slope * sd_ward_slope``) comes in the block after its
    ``z`` draws' block, computed from them in place once their statistics are done: those
    draws are read once, not twice, and held once (at five years with six chains a block is
    32 MB).
    """
    from pas_bayes.model import RECOMPUTED

    derived = {name: parts for name, parts in RECOMPUTED.items() if all(p in post.data_vars for p in parts)}
    from_z = {z: (name, sd) for name, (z, sd) in derived.items()}
    scales = {sd: post[sd].compute() for _, sd in from_z.values()}

    def with_derived(block: xr.Dataset, name: str) -> Iterator[xr.Dataset]:
        yield block
        if name in from_z:
            effect, sd = from_z[name]
            z = block[name]
            # A variable held in memory computes to its own array (or a view of it): that one
            # is not changed. (Not `.data`: of a lazily read variable that loads all of it.)
            if getattr(post[name].variable, "_in_memory", True):
                z = z.copy()
            z *= scales[sd]
            yield xr.Dataset({effect: z.rename(effect)})

    for name, da in post.data_vars.items():
        if name in derived:
            continue
        if da.nbytes <= BLOCK_BYTES or da.ndim <= 2:
            yield from with_derived(post[[name]].compute(), name)
            continue
        dim = next(d for d in da.dims if d not in ("chain", "draw"))
        step = max(1, int(da.sizes[dim] * BLOCK_BYTES // da.nbytes))
        chunk = (da.chunks[da.dims.index(dim)][0] if da.chunks is not None
                 else da.encoding.get("preferred_chunks", {}).get(dim))
        if chunk:
            # Whole stored chunks a block (32 wards): a block that cut through a chunk would
            # read that chunk again for the next block (at a year, every ward chunk three times).
            step = max(chunk, step // chunk * chunk)
        for start in range(0, da.sizes[dim], step):
            yield from with_derived(xr.Dataset({name: da.isel({dim: slice(start, start + step)}).compute()}), name)


def _block_diagnostics(block: xr.Dataset, threads: int | None = None) -> pd.DataFrame:
    # ArviZ's statistics, a block of elements in one pass (pas_bayes.convergence): ArviZ's own
    # functions run element by element (107 s against 26 s for a year's 11,659 elements).
    stats: dict[str, dict[str, xr.DataArray]] = {"r_hat": {}, "ess_bulk": {}, "ess_tail": {}}
    for name, da in block.data_vars.items():
        da = da.transpose("chain", "draw", ...)
        element = da.isel(chain=0, draw=0, drop=True)
        draws = da.values.reshape(da.sizes["chain"], da.sizes["draw"], -1)
        values = rhat_ess_in_blocks(draws, threads=threads)
        # Elements fixed by construction (see parameter_diagnostics) are marked by NaN in all
        # three: their ESS would otherwise read as the draw count.
        fixed = np.ptp(draws, axis=(0, 1)) == 0
        for value in values:
            value[fixed] = np.nan
        for column, value in zip(stats, values, strict=True):
            stats[column][name] = element.copy(data=value.reshape(element.shape))
    rhat, bulk, tail = (_flatten(xr.Dataset(stats[c]), c) for c in stats)
    keys = ["variable", "parameter"]
    return rhat.merge(bulk.drop(columns="coords"), on=keys).merge(tail.drop(columns="coords"), on=keys)


def parameter_diagnostics(idata: xr.DataTree | xr.Dataset, *, threads: int | None = None) -> pd.DataFrame:
    """R-hat, bulk ESS and tail ESS of every posterior element.

    Computed a variable (or, for a large one, a block of its elements) at a time, so a
    lazily read posterior is never held in memory all at once.

    Parameters
    ----------
    idata
        A DataTree with a ``posterior`` group, or the posterior Dataset itself.
    threads
        Threads computing blocks side by side (default: the cores this process may run on,
        at most 4; see :func:`~pas_bayes.convergence.rhat_ess_in_blocks`).

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``parameter`` (name with coordinates), ``coords``
        (a dict for ``.sel``), ``r_hat``,
        ``ess_bulk``, ``ess_tail``.
    """
    post = idata["posterior"].to_dataset() if isinstance(idata, xr.DataTree) else idata
    # One block after another (dask's threads would each keep a malloc arena of freed blocks).
    with one_block_at_a_time():
        parts = [_block_diagnostics(block, threads) for block in _posterior_blocks(post)]
    per = pd.concat(parts, ignore_index=True)
    # In the posterior's order of variables, a ward effect computed from its z after the rest.
    order = {name: k for k, name in enumerate([*post.data_vars, *sorted(set(per["variable"]) - set(post.data_vars))])}
    per = per.sort_values("variable", key=lambda v: v.map(order), kind="stable")
    # Elements fixed by construction (the unit diagonal of a correlation matrix, the zeros of its
    # Cholesky factor) do not vary from draw to draw; they are not parameters and are left out.
    # (Chains each stuck at a different value give R-hat inf: kept. One chain gives R-hat NaN
    # and a real ESS: kept.)
    return per.dropna(subset=["r_hat", "ess_bulk", "ess_tail"], how="all").reset_index(drop=True)


def parameter_table(per: pd.DataFrame) -> pd.DataFrame:
    """:func:`parameter_diagnostics`'s table for a CSV file: ``coords`` as JSON text."""
    def plain(value: object) -> object:
        return value.item() if isinstance(value, np.generic) else value

    out = per.copy()
    out["coords"] = [json.dumps({k: plain(v) for k, v in c.items()}) for c in per["coords"]]
    return out


def read_parameter_table(path: str | Path) -> pd.DataFrame:
    """A table written from :func:`parameter_table`, as :func:`parameter_diagnostics` returns it."""
    numbers = dict.fromkeys(["r_hat", "ess_bulk", "ess_tail"], float)  # float even when empty
    per = pd.read_csv(path, dtype={"variable": str, "parameter": str, "coords": str, **numbers},
                      keep_default_na=False, na_values={"r_hat": ["", "NaN", "nan"], "ess_bulk": ["", "NaN", "nan"],
                                                        "ess_tail": ["", "NaN", "nan"]})
    per["coords"] = [json.loads(c) for c in per["coords"]]
    return per


def _stat(idata: xr.DataTree, *names: str) -> xr.DataArray | None:
    stats = idata["sample_stats"]
    for name in names:
        if name in stats.data_vars:
            return stats[name]
    return None


def _worst(frame: pd.DataFrame, column: str, *, largest: bool, n: int = 5) -> tuple[str, ...]:
    ordered = frame.nlargest(n, column) if largest else frame.nsmallest(n, column)
    return tuple(f"{p} ({v:.3f})" if column == "r_hat" else f"{p} ({v:.0f})"
                 for p, v in zip(ordered["parameter"], ordered[column], strict=True))


def diagnose(idata: xr.DataTree, loo: dict | None = None,
             per_parameter: pd.DataFrame | None = None) -> DiagnosticsReport:
    """Run every convergence check on a fitted posterior.

    Parameters
    ----------
    idata
        A DataTree with ``posterior`` and ``sample_stats`` groups (pymc or nutpie).
    loo
        The run's PSIS-LOO summary (``provenance["loo"]``), when it has one: adds a
        (warning, not failing) check of the Pareto k of each respondent and ward.
    per_parameter
        :func:`parameter_diagnostics` of this posterior, when already computed (a run
        folder's ``parameter_diagnostics.csv``); otherwise computed here.

    Returns
    -------
    DiagnosticsReport
        ``.passed`` is true only when every check passes.
    """
    per = parameter_diagnostics(idata) if per_parameter is None else per_parameter
    checks = []

    approximate = idata["posterior"].attrs.get("approximate")
    if approximate:
        # Always failing: R-hat and ESS below describe independent draws from the approximation,
        # which say nothing about how far the approximation is from the posterior.
        checks.append(Check(
            "APPROXIMATE inference", float("nan"), "MCMC draws", False, worst=(str(approximate),),
            advice="a preview only: mean-field ADVI ignores posterior correlations and usually "
            "understates uncertainty (its error against NUTS: benchmarks/results/speed_vs_peers.md); "
            "refit with the default sampler before any number or figure is used",
        ))
    diverging = _stat(idata, "diverging")
    n_draws = int(diverging.size) if diverging is not None else 0
    if diverging is not None:
        n_div = int(diverging.sum())
        by_chain = diverging.sum("draw").values.tolist()
        checks.append(Check(
            "divergent transitions", float(n_div), "0", n_div == 0,
            worst=((f"per chain {by_chain}",) if n_div else ()) + _earlier_attempts(idata),
            advice="raise sampler.target_accept (0.95, then 0.99); if they persist, the posterior has "
            "a funnel or a prior is too wide: look at the sd_* parameters in the rank plots",
        ))

    r_max = float(per["r_hat"].max())
    checks.append(Check(
        "R-hat (max)", r_max, f"< {RHAT_MAX}", r_max < RHAT_MAX, _worst(per, "r_hat", largest=True),
        advice="chains disagree: run longer (--tune and --draws 2000) and check the rank plots of "
        "the worst parameters; a multimodal or unidentified parameter needs a tighter prior",
    ))
    for column, label in (("ess_bulk", "bulk ESS (min)"), ("ess_tail", "tail ESS (min)")):
        low = float(per[column].min())
        checks.append(Check(
            label, low, f">= {ESS_MIN}", low >= ESS_MIN, _worst(per, column, largest=False) + _added_chains(idata),
            advice="too few effective draws for stable intervals: increase --draws (ESS grows "
            "with draws), or --chains; low ESS in an sd_* parameter points to a funnel",
        ))

    energy = _stat(idata, "energy")
    if energy is not None:
        bfmi = np.atleast_1d(np.asarray(az.bfmi(idata)["energy"]))
        low = float(bfmi.min())
        checks.append(Check(
            "E-BFMI (min over chains)", low, f">= {EBFMI_MIN}", low >= EBFMI_MIN,
            (f"per chain {np.round(bfmi, 3).tolist()}",),
            advice="the sampler explores the energy distribution poorly: usually a heavy-tailed "
            "or funnel-shaped posterior; tighten the sd_* priors or reparametrise",
        ))

    saturated = _stat(idata, "maxdepth_reached", "reached_max_treedepth")
    if saturated is not None:
        share = float(saturated.mean())
        checks.append(Check(
            "tree depth saturation", share, "0 draws at max depth", share == 0.0,
            (f"{int(saturated.sum())} of {n_draws} draws",) if share else (),
            advice="trajectories were cut short, so sampling was inefficient (not biased): "
            "check for strongly correlated parameters, or raise the maximum tree depth",
        ))
    if isinstance(loo, dict):
        for level, summary in loo.items():
            bad = int(summary.get("k_bad", 0) + summary.get("k_very_bad", 0))
            checks.append(Check(
                f"Pareto k > 0.7 ({level}s)", float(bad), "0 for a reliable PSIS-LOO", bad == 0,
                (f"{bad} of {summary.get('n')} {level}s, {summary.get('k_very_bad', 0)} above 1",) if bad else (),
                advice=("LOO terms of those " + level + "s are unreliable, so `pas-bayes compare` differences "
                        "are less certain than their SE says: compare with --by ward"
                        if level == "respondent" else
                        "some wards are too influential for importance sampling: treat small ELPD "
                        "differences as inconclusive, or refit leaving those wards out (k-fold)"),
                blocking=False,
            ))
    return DiagnosticsReport(tuple(checks), per)
