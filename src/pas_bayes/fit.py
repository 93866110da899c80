"""Sampling, and run folders: a fit on disk that describes itself.

A run folder holds::

    posterior.zarr          the ArviZ DataTree (posterior, sample_stats,
                            observed_data, constant_data)
    spec.json               the spec exactly as fitted (ModelSpec.to_dict)
    spec.toml               the spec file as the user wrote it, when there was one
    exclusions.csv          rows left out, by reason, adding up to the input
    item_missingness.csv    answered / non-substantive counts per year and item
    driver_scaling.csv      how composite drivers were standardised
    wards.csv               ward id, name, borough and respondents modelled
    loo.csv, loo_wards.csv  PSIS-LOO per respondent and leaving out one ward
                            (unweighted models; see pas_bayes.comparison)
    parameter_diagnostics.csv  R-hat, bulk and tail ESS of every posterior
                            element, computed once from the stored draws
    provenance.json         data file and SHA-256, spec digest, seed, sampler
                            settings, package versions, timings, command line

The folder is written under a temporary name beside its destination and
renamed into place when complete, so a crash never leaves half a run, and an
existing run is replaced only when the caller asks (``force=True``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import xarray as xr

from pas_bayes.atomic import refuse_existing
from pas_bayes.chunk_files import read_whole_array
from pas_bayes.comparison import loo_tables
from pas_bayes.compile_apart import compile_apart_wanted, compile_in_child
from pas_bayes.compiled_models import compiled_for, model_key
from pas_bayes.diagnostics import (
    divergences,
    parameter_diagnostics,
    parameter_table,
    read_parameter_table,
    sampler_attempts,
)
from pas_bayes.errors import RunFolderError
from pas_bayes.memory import one_block_at_a_time, release_freed_memory
from pas_bayes.model import build_model, centred_groupings, restore_ward_effects, stored_variables
from pas_bayes.spec import ModelSpec, spec_from_dict, table_digest
from pas_bayes.survey import SurveyData

POSTERIOR = "posterior.zarr"
#: Every posterior element's R-hat and ESS, written by the fit (see :func:`parameter_table`).
PARAMETER_DIAGNOSTICS = "parameter_diagnostics.csv"
RUN_FILES = (POSTERIOR, "spec.json", "exclusions.csv", "provenance.json")
VERSIONED = ("pas_bayes", "pymc", "pytensor", "arviz", "arviz-base", "arviz-stats", "arviz-plots",
             "nutpie", "numpy", "pandas", "xarray", "scipy", "zarr", "matplotlib", "numba")


@dataclass
class Run:
    """A fitted run loaded from its folder."""

    path: Path
    spec: Any  # ModelSpec, or DashboardSpec when kind == "dashboard"
    idata: xr.DataTree
    provenance: dict[str, Any]
    exclusions: pd.DataFrame
    wards: pd.DataFrame
    kind: str = "survey"
    #: R-hat and ESS of every element, as the fit computed them (``None``: an older run
    #: folder without ``parameter_diagnostics.csv``; :func:`~pas_bayes.diagnostics.diagnose`
    #: then computes them).
    per_parameter: pd.DataFrame | None = None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_provenance(spec: Any, idata: xr.DataTree, wall: float, command: list[str] | None) -> dict[str, Any]:
    """The provenance every run records, whatever it fitted: spec, seed, sampler, timings, versions."""
    return {
        "spec_name": spec.name,
        "spec_source": spec.source,
        "spec_sha256": spec.digest(),
        "seed": spec.sampler.seed,
        "sampler": {**spec.sampler.__dict__},
        # More than one when the first attempt diverged or more chains were added
        # (sample_until_clean): each with its target acceptance, divergences and times.
        "sampler_attempts": sampler_attempts(idata),
        # More than sampler.chains when the ESS fell just short (sampler.more_chains_below_ess).
        "chains_kept": int(idata["posterior"].sizes.get("chain", 0)),
        "sampling_seconds": float(idata.posterior.attrs.get("sampling_time", float("nan"))),
        "wall_seconds": round(wall, 2),
        "versions": package_versions(),
        "platform": platform.platform(),
        "command": command if command is not None else sys.argv,
    }


def sample_posterior(model: pm.Model, spec: Any, *, progressbar: bool = True,
                     var_names: list[str] | None = None, trace_store: Path | None = None,
                     reuse_key: str | None = None) -> xr.DataTree:
    """Draw from the posterior with the spec's sampler settings.

    nutpie (Rust NUTS over a numba-compiled log-density, or a JAX one with
    ``sampler.backend = "jax"``: the route for a GPU) is the default; PyMC's own NUTS is
    the alternative (``sampler.name = "pymc"``), and ``"advi"`` an approximate preview.
    ``spec`` is any spec with a ``sampler`` (:class:`~pas_bayes.spec.SamplerOptions`). The
    seed is always explicit, so a run is repeatable on the same machine and versions.

    Parameters
    ----------
    var_names
        Limit the stored posterior to those variables (default: all).
    trace_store
        nutpie only: stream the draws into a zarr store at this (new) folder as they are
        made, instead of holding them in memory; the returned tree then reads the
        posterior from there lazily, so the draws never sit in memory all at once.
    reuse_key
        nutpie on Numba only: the model's :func:`~pas_bayes.compiled_models.model_key`.
        When the last model compiled in this process had the same key it is sampled
        again without compiling (a refit with other sampler settings).

    Returns
    -------
    xarray.DataTree
        posterior, sample_stats, observed_data and constant_data groups.
    """
    s = spec.sampler
    # numba's fast-math lets LLVM reorder floating-point sums, and the order it picks can
    # depend on where an array happens to sit in memory: the same seed then gave draws that
    # differed (by 1e-7 and growing) between a sweep's worker and a single fit. Exact IEEE
    # order costs about 8% of sampling time and makes a seed's draws the same everywhere.
    with model, pytensor.config.change_flags(numba__fastmath=False):
        if s.name == "nutpie":
            return _sample_nutpie(model, s, progressbar=progressbar, var_names=var_names,
                                  trace_store=trace_store, reuse_key=reuse_key)
        if s.name == "advi":
            return _approximate_advi(model, s, progressbar=progressbar, var_names=var_names,
                                     trace_store=trace_store)
        return pm.sample(
            draws=s.draws, tune=s.tune, chains=s.chains, cores=s.cores, random_seed=s.seed,
            nuts_sampler=s.name, nuts={"target_accept": s.target_accept},
            # numba/nutpie threads exist in this process: fork would risk deadlocks.
            progressbar=progressbar, model=model, var_names=var_names, mp_ctx="forkserver",
        )


#: Samplers whose draws can diverge (``advi`` is a preview: it has no trajectories).
NUTS_SAMPLERS = ("nutpie", "pymc")


def sample_until_clean(model: pm.Model, spec: Any, *, progressbar: bool = True,
                       var_names: list[str] | None = None, trace_store: Path | None = None,
                       reuse_key: str | None = None) -> xr.DataTree:
    """:func:`sample_posterior`, sampled again if it diverged, and given more chains if its ESS fell just short.

    A divergence means a trajectory met curvature its step could not follow, so the draws
    may under-explore that region; the remedy is a smaller step (a higher target
    acceptance), which Stan and brms leave to the user. Here the second attempt is made
    at ``sampler.retry_target_accept`` from the start with the same seed and the compiled
    model reused, and the first attempt's draws are discarded, not mixed in. A second
    attempt that still diverges is kept and fails the divergence check as any fit would.

    Draws without divergences whose smallest bulk or tail ESS is below
    ``sampler.more_chains_below_ess`` get more chains (:func:`_chains_to_add`), sampled
    with another seed and kept with the first: independent chains, each with its own
    warm-up, are what R-hat and ESS are made for, and the slowest SD's ESS grows with
    them in proportion. A fit far short gets none (it needs longer chains).

    Nothing is hidden: the posterior's ``sampler_attempts`` attribute records each attempt
    (target acceptance, divergences, times; ``added_chains``, ``seed`` and ``because`` for
    more chains), the diagnostics report them, and ``sampling_time`` / ``compile_time``
    are all attempts together.

    Parameters
    ----------
    model, spec, progressbar, var_names, reuse_key
        As :func:`sample_posterior`.
    trace_store
        As :func:`sample_posterior`; a retry streams to a sibling folder (``<name>.retry``),
        and the first attempt's store is deleted before it starts; more chains stream to
        ``<name>.more`` (both stores are then read).

    Returns
    -------
    xarray.DataTree
        The kept draws: the last attempt's, with the added chains' after them.
    """
    s = spec.sampler
    idata = sample_posterior(model, spec, progressbar=progressbar, var_names=var_names,
                             trace_store=trace_store, reuse_key=reuse_key)
    first = divergences(idata)
    retry = getattr(s, "retry_target_accept", 0.0)
    attempts = [{**sampler_attempts(idata)[0], "target_accept": s.target_accept}]
    if first and s.name in NUTS_SAMPLERS and retry > s.target_accept:
        print(f"pas_bayes: {first} divergent transitions at target acceptance {s.target_accept}; "
              f"sampling again at {retry} (the first attempt's draws are discarded)", file=sys.stderr)
        # The first attempt's lazily read draws live in its store: let go of them, then of the store.
        del idata
        release_freed_memory()
        if trace_store is not None:
            shutil.rmtree(trace_store, ignore_errors=True)
            trace_store = trace_store.with_name(trace_store.name + ".retry")
        spec = spec.with_sampler(target_accept=retry)
        idata = sample_posterior(model, spec, progressbar=progressbar, var_names=var_names,
                                 trace_store=trace_store, reuse_key=reuse_key)
        attempts.append({**sampler_attempts(idata)[0], "target_accept": retry})
    if s.name in NUTS_SAMPLERS and not divergences(idata):
        idata = _more_chains_if_short(idata, model, spec, attempts, progressbar=progressbar,
                                      var_names=var_names, trace_store=trace_store, reuse_key=reuse_key)
    idata["posterior"].attrs.update({
        "target_accept": spec.sampler.target_accept,
        **({"sampler_attempts": json.dumps(attempts),
            "sampling_time": sum(a["sampling_seconds"] for a in attempts),
            "compile_time": sum(a["compile_seconds"] for a in attempts)} if len(attempts) > 1 else {})})
    return idata


def lowest_ess(idata: xr.DataTree) -> tuple[float, str, str]:
    """The smallest bulk or tail ESS among the posterior's elements without a ward dimension.

    Returns
    -------
    tuple
        ``(ess, "bulk" or "tail", parameter)``; ``(inf, "", "")`` when nothing is left to check.
    """
    post = idata["posterior"].to_dataset()
    # In this thread: a pool's threads would each keep a malloc arena of what they freed, and
    # at five years that stayed resident (40 MB more for the rest of the fit, 133 MB while it ran).
    per = parameter_diagnostics(post[[n for n, da in post.data_vars.items() if "ward" not in da.dims]], threads=1)
    if per.empty:
        return float("inf"), "", ""
    kind = "bulk" if per["ess_bulk"].min() <= per["ess_tail"].min() else "tail"
    row = per.loc[per[f"ess_{kind}"].idxmin()]
    return float(row[f"ess_{kind}"]), kind, str(row["parameter"])


def _chains_to_add(ess: float, needed: int, chains: int, cores: int) -> int:
    """How many chains lift ``ess`` (of ``chains``) 10% past ``needed``: whole rounds of ``cores``, at most ``chains``.

    0 when ``ess`` is enough, or when even ``chains`` more would not be (ESS grows about in
    proportion to the chains: a fit that far short needs longer chains, not more).
    """
    if ess >= needed:
        return 0
    wanted = int(np.ceil(chains * (1.1 * needed / max(ess, 1e-9) - 1)))
    rounded = int(np.ceil(wanted / max(cores, 1)) * max(cores, 1))
    return min(rounded, chains) if wanted <= chains else 0


def _more_chains_if_short(idata: xr.DataTree, model: pm.Model, spec: Any, attempts: list[dict[str, Any]], *,
                          progressbar: bool, var_names: list[str] | None, trace_store: Path | None,
                          reuse_key: str | None) -> xr.DataTree:
    """``idata`` with :func:`_chains_to_add` more chains when its lowest ESS is short (recorded in ``attempts``)."""
    s = spec.sampler
    needed = getattr(s, "more_chains_below_ess", 0)
    if needed <= 0:
        return idata
    ess, kind, parameter = lowest_ess(idata)
    chains = idata["posterior"].sizes["chain"]
    add = _chains_to_add(ess, needed, chains, s.cores)
    if not add:
        return idata
    # Another seed drawn from this one: the added chains are as repeatable as the first.
    seed = int(np.random.SeedSequence(s.seed).spawn(2)[1].generate_state(1)[0] % 2**31)
    because = f"{kind} ESS {ess:.0f} ({parameter}) below {needed} after {chains} chains"
    print(f"pas_bayes: {because}; sampling {add} more chains (seed {seed}) to keep with them", file=sys.stderr)
    more_store = None if trace_store is None else trace_store.with_name(trace_store.name + ".more")
    more = sample_posterior(model, spec.with_sampler(chains=add, seed=seed), progressbar=progressbar,
                            var_names=var_names, reuse_key=reuse_key, trace_store=more_store)
    attempts.append({**sampler_attempts(more)[0], "target_accept": s.target_accept, "added_chains": add,
                     "seed": seed, "because": because})
    return with_more_chains(idata, more)


def with_more_chains(idata: xr.DataTree, more: xr.DataTree) -> xr.DataTree:
    """``idata`` with ``more``'s chains after its own (numbered on from them), posterior and sample_stats.

    The data groups and every attribute are ``idata``'s; large variables stay lazily read blocks.
    """
    out = idata.copy()
    offset = idata["posterior"].sizes["chain"]
    for group in ("posterior", "sample_stats"):
        if group not in idata.children or group not in more.children:
            continue
        first, added = idata[group].to_dataset(), more[group].to_dataset()
        # (nutpie's store gives the chains no coordinate values: numbered here, on both.)
        first = first.assign_coords(chain=np.arange(offset))
        added = added.assign_coords(chain=offset + np.arange(added.sizes["chain"]))
        both = xr.concat([first, added[list(first.data_vars)]], dim="chain", data_vars="minimal",
                         coords="minimal", compat="override", join="exact", combine_attrs="override")
        # Blocks (and the one-chunk encoding of small variables) for the longer chain axis.
        out[group] = xr.DataTree(_in_blocks(both))
    return out


def _sample_nutpie(model: pm.Model, s: Any, *, progressbar: bool, var_names: list[str] | None,
                   trace_store: Path | None, reuse_key: str | None = None) -> xr.DataTree:
    """nutpie called directly (what ``pm.sample(nuts_sampler="nutpie")`` does, plus streaming)."""
    import nutpie
    from pymc.util import get_random_generator

    compile_clock = time.time()
    compiled_apart = reused = False
    if s.backend == "jax":
        from pas_bayes.likelihood import register_jax

        register_jax()
        compiled = nutpie.compile_pymc_model(model, var_names=var_names, backend="jax", gradient_backend="jax")
    else:
        def compile_numba() -> Any:
            nonlocal compiled_apart
            # A first compile's memory stays with the process that did it: a child takes it away.
            if compile_apart_wanted(len(model.coords.get("obs", ())), s.backend):
                compiled_apart = compile_in_child(model, var_names)
            return nutpie.compile_pymc_model(model, var_names=var_names, backend="numba")

        compiled, reused = compiled_for(reuse_key, compile_numba)
    compile_time = time.time() - compile_clock
    # What compiling freed (graph rewrites, LLVM's work) goes back before the chains start.
    release_freed_memory()
    store = None
    if trace_store is not None:
        trace_store.mkdir(parents=True)
        store = nutpie.zarr_store.LocalStore(str(trace_store))
    # pm.sample turns the seed into per-chain seeds and gives nutpie the first: the same
    # here, so a seed gives the draws it gave through pm.sample.
    seed = int(get_random_generator(s.seed).spawn(s.chains)[0].integers(2**30))
    clock = time.time()
    idata = nutpie.sample(compiled, draws=s.draws, tune=max(s.tune, 1), chains=s.chains, cores=s.cores,
                          seed=seed, save_warmup=False, progress_bar=progressbar,
                          target_accept=s.target_accept, adaptation=s.adaptation, zarr_store=store)
    sampling_time = time.time() - clock
    if store is not None:
        # The store also holds what nutpie's in-memory trace drops on conversion (every
        # draw's gradient and unconstrained position, the warm-up): keep what that keeps,
        # as an ordinary tree whose variables load from the store on first use.
        stats = idata["sample_stats"].to_dataset()
        stats = stats[[k for k, v in stats.data_vars.items() if v.dims == ("chain", "draw")]]
        # The store's posterior also holds every transformed value (sd_log__, *_zerosum__),
        # which the in-memory trace leaves out: keep the model's own variables only.
        rv_names = {v.name for v in (*model.free_RVs, *model.deterministics)}
        transformed = {v.name for v in model.value_vars} - rv_names
        post = idata["posterior"].to_dataset()
        post = post.drop_vars([k for k in post.data_vars if k in transformed])
        post = post.drop_vars([c for c in ("unconstrained_parameter",) if c in post.coords])
        # The statistics are small: loaded, each to be written as one chunk.
        post = _small_read_directly(post, trace_store / "posterior")
        stats = _small_read_directly(stats, trace_store / "sample_stats")
        idata = xr.DataTree.from_dict({"posterior": _in_blocks(post), "sample_stats": _in_blocks(stats)})
    _add_data_groups(idata, model)
    idata["posterior"].attrs.update({"sampling_time": sampling_time, "compile_time": compile_time,
                                     "tuning_steps": s.tune,
                                     "compiled_in_child_first": int(compiled_apart),
                                     "compiled_model_reused": int(reused),
                                     "inference_library": "nutpie",
                                     "inference_library_version": nutpie.__version__})
    return idata


def _small_read_directly(ds: xr.Dataset, folder: Path) -> xr.Dataset:
    """``ds``'s small variables (as :func:`_in_blocks` loads them) read from their chunk files.

    Through xarray, nutpie's 16-draw chunks cost about 17 s for a default fit's small
    variables; straight from the files about 2 s (:mod:`pas_bayes.chunk_files`).
    """
    out = ds.copy()
    for name, da in ds.data_vars.items():
        if _held_in_memory(da) and (folder / name / "zarr.json").is_file():
            values = read_whole_array(folder / name)
            # Only where xarray would decode nothing (the same dtype and shape as it reads them).
            if values.dtype == da.dtype and values.shape == da.shape:
                out[name] = da.copy(data=values)
    return out


def _add_data_groups(idata: xr.DataTree, model: pm.Model) -> None:
    """The model's data (design, index maps) and observations, as ``pm.sample`` stores them."""
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, dict_to_dataset, find_observations
    from pytensor.graph import ancestors
    from pytensor.tensor.sharedvar import SharedVariable

    coords, dims = coords_and_dims_for_inferencedata(model)
    # What PyMC's find_constants returns, without copying every array out of the model
    # (its get_value()): at 242,000 respondents the design and index maps are 40 MB that
    # would be held twice. Nothing writes to the model's own arrays.
    generative = set(ancestors(model.basic_RVs + model.deterministics + model.potentials))
    value_vars = set(model.rvs_to_values.values())
    constants = {var.name: var.get_value(borrow=True) if isinstance(var, SharedVariable) else var.data
                 for var in model.data_vars if var not in value_vars or var in generative}
    for group, values in (("constant_data", constants), ("observed_data", find_observations(model))):
        idata[group] = xr.DataTree(dict_to_dataset(values, inference_library=pm, coords=coords, dims=dims,
                                                   sample_dims=[]))


#: Draws per block of a large posterior variable, in memory and in the run folder's zarr chunks.
DRAW_BLOCK = 250
#: Draws made at a time from an approximation (every value variable of a block of draws,
#: drawn, transformed and kept, is in memory at once: about 17 MB each at five years).
APPROX_DRAW_BLOCK = 100
#: Wards per block of a large per-ward variable: PSIS-LOO and the diagnostics read a few dozen
#: wards at a time, and then read only those wards' chunks, not every ward's.
WARD_BLOCK = 32
#: Variables smaller than this are held in memory; larger ones (every draw's ward effects)
#: stay on disk as dask arrays read a block at a time.
IN_MEMORY_BYTES = 16 * 2**20


def _held_in_memory(da: xr.DataArray) -> bool:
    """Whether :func:`_in_blocks` loads ``da`` whole (small, or not per draw) rather than by block."""
    return da.nbytes < IN_MEMORY_BYTES or "draw" not in da.dims


def _one_chunk(da: xr.DataArray) -> xr.DataArray:
    """``da`` to be written as one zarr chunk (a variable held in memory is read whole).

    The encoding it was read with would otherwise be written again: nutpie's chunks of 16
    draws made the run folder's small variables thousands of chunks, and reading them
    back (PSIS-LOO, every summary) cost about 3 ms a chunk.
    """
    # (zarr chunks are at least 1 long, also along an empty dimension.)
    da.encoding = {"chunks": tuple(max(1, n) for n in da.shape)} if da.ndim else {}
    return da


def _in_blocks(ds: xr.Dataset) -> xr.Dataset:
    """Small variables loaded, large ones as dask arrays in blocks of one chain x
    :data:`DRAW_BLOCK` draws (x :data:`WARD_BLOCK` wards for per-ward variables)."""
    out = {}
    # Loads run in this thread, whatever dask scheduler a caller (a sweep's Client) left as the default.
    with one_block_at_a_time():
        for name, da in ds.data_vars.items():
            if _held_in_memory(da):
                out[name] = _one_chunk(da.load())
                continue
            blocks = {"chain": 1, "draw": DRAW_BLOCK, **({"ward": WARD_BLOCK} if "ward" in da.dims else {})}
            source = da.encoding.get("preferred_chunks")
            if da.chunks is None and source:
                # Read each stored chunk once and cut it into blocks: a block read straight from
                # a store whose chunks hold every ward (nutpie's: 16 draws x all wards) reads
                # those chunks whole once per block of wards, 22 times over at a year.
                da = da.chunk({d: source.get(d, -1) for d in da.dims})
            out[name] = da.chunk(blocks)
            # The source's own zarr chunking would clash with these blocks when written.
            out[name].encoding = {}
    return xr.Dataset(out, coords=ds.coords, attrs=ds.attrs)


def open_posterior_tree(path: str | Path) -> xr.DataTree:
    """A run's posterior DataTree, small variables in memory and large ones read lazily by block."""
    # Read here, whatever scheduler the caller's Dask configuration names (a sweep's cluster).
    with one_block_at_a_time():
        return xr.open_datatree(str(path), engine="zarr", chunks={}).map_over_datasets(_in_blocks)


def open_posterior_by_ward(path: str | Path) -> xr.Dataset:
    """A run's ``posterior`` group for reading a block of wards at a time, every draw at once.

    Each dask chunk is one chain's every draw of :data:`WARD_BLOCK` wards (one zarr read of
    that region, which zarr splits into its stored chunks itself) rather than one stored
    chunk. PSIS-LOO of one five-year run folder, alternately: 33.7 s through a task a
    stored chunk, 27 s this way (+16 MB added peak), 23.5 s with every chain in one chunk
    (+41 MB: not taken, for the 242,000-respondent fit's margin under 1 GB). The other
    variables are left to xarray's lazy reading: whoever uses them reads the draws it keeps
    (:func:`~pas_bayes.comparison.loo_tables` reads its thinned draws once).
    """
    with one_block_at_a_time():
        ds = xr.open_dataset(str(path), engine="zarr", group="posterior", chunks=None)
        return ds.assign({name: da.chunk({"chain": 1, "draw": -1, "ward": WARD_BLOCK})
                          for name, da in ds.data_vars.items() if "ward" in da.dims})


def approximation(idata: xr.DataTree) -> str | None:
    """What approximated the posterior of a run (``None`` for MCMC draws)."""
    return idata["posterior"].attrs.get("approximate")


def _approximate_advi(model: pm.Model, s: Any, *, progressbar: bool, var_names: list[str] | None = None,
                      trace_store: Path | None = None) -> xr.DataTree:
    """Mean-field ADVI, then ``chains x draws`` independent draws laid out like chains.

    The draws are made :data:`APPROX_DRAW_BLOCK` at a time and only ``var_names`` are kept (as
    NUTS keeps them); with ``trace_store`` each block goes to that zarr store as it is made
    and the posterior is read back lazily, so the draws never sit in memory all at once
    (PyMC's ``Approximation.sample`` holds every variable of every draw three times over).
    """
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, dict_to_dataset
    from pymc.variational.callbacks import CheckParametersConvergence

    clock = time.time()
    approx = pm.fit(n=s.advi_iterations, method="advi", random_seed=s.seed, progressbar=progressbar,
                    callbacks=[CheckParametersConvergence(diff="absolute", tolerance=1e-3)])
    fitting_time = time.time() - clock
    # The optimiser's compiled step function is gone: what it freed goes back before drawing.
    release_freed_memory()
    names = var_names or [v.name for v in (*model.free_RVs, *model.deterministics)]
    # The kept variables as functions of the value variables (unconstrained, what ADVI draws).
    values = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                              inputs=model.value_vars, on_unused_input="ignore", point_fn=False)
    value_names = [v.name for v in model.value_vars]
    coords, dims = coords_and_dims_for_inferencedata(model)
    seeds = np.random.SeedSequence(s.seed).spawn(s.chains)
    chains = []
    for chain, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        blocks = []
        # A block of draws at a time: every value variable of a whole chain at once is
        # 260 MB at five years, and the kept variables as much again.
        for start in range(0, s.draws, APPROX_DRAW_BLOCK):
            stop = min(start + APPROX_DRAW_BLOCK, s.draws)
            sampled = _mean_field_draws(approx, stop - start, rng)
            block = None
            for i in range(stop - start):
                point = values(*(sampled[v][i] for v in value_names))
                if block is None:
                    block = {n: np.empty((1, stop - start, *np.shape(x)), dtype=np.asarray(x).dtype)
                             for n, x in zip(names, point, strict=True)}
                for n, x in zip(names, point, strict=True):
                    block[n][0, i] = x
            del sampled
            if trace_store is None:
                blocks.append(block)
                continue
            ds = dict_to_dataset(block, inference_library=pm, coords=coords, dims=dims)
            ds = ds.assign_coords(chain=[chain], draw=np.arange(start, stop))
            ds.attrs = {}
            if chain == 0 and start == 0:
                _zarr_template(ds, s.chains, s.draws).to_zarr(trace_store, mode="w", compute=False)
            region = {"chain": slice(chain, chain + 1), "draw": slice(start, stop)}
            ds.drop_vars([c for c in ds.coords if c not in ("chain", "draw")]).to_zarr(trace_store, region=region)
            del ds, block
            release_freed_memory()
        if trace_store is None:
            kept = {n: np.concatenate([b[n] for b in blocks], axis=1) for n in names}
            ds = dict_to_dataset(kept, inference_library=pm, coords=coords, dims=dims).assign_coords(chain=[chain])
            ds.attrs = {}
            chains.append(ds)
    post = xr.concat(chains, dim="chain") if trace_store is None else _in_blocks(xr.open_zarr(trace_store))
    post.attrs.update({"sampling_time": fitting_time, "compile_time": float("nan"),
                       "approximate": (f"mean-field ADVI, {len(approx.hist)} iterations (final ELBO "
                                       f"{-float(approx.hist[-1]):.1f}); {s.chains} x {s.draws} independent "
                                       "draws from the approximation, not from the posterior"),
                       "inference_library": "pymc ADVI"})
    # No sampler statistics: an empty group, as PyMC's own draws from an approximation have.
    idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset()})
    _add_data_groups(idata, model)
    return idata


def _mean_field_draws(approx: Any, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` draws of every value variable from a fitted mean-field approximation.

    The approximation is a normal of mean ``mu`` and standard deviation ``softplus(rho)``
    on the flat vector of value variables, which ``ordering`` cuts into variables. Drawn
    here in NumPy rather than with ``approx.sample_dict_fn``, whose compiled sampler costs
    about 100 MB more of a five-year fit's peak memory for a multiply and an add.
    """
    (group,) = approx.groups
    mu = np.asarray(group.params_dict["mu"].get_value())
    sigma = np.logaddexp(0.0, np.asarray(group.params_dict["rho"].get_value()))
    flat = mu + sigma * rng.standard_normal((n, mu.size))
    return {name: flat[:, part].reshape((n, *shape)).astype(dtype)
            for name, part, shape, dtype in group.ordering.values()}


def _zarr_template(block: xr.Dataset, chains: int, draws: int) -> xr.Dataset:
    """A lazy all-chains, all-draws Dataset shaped like ``block`` (one chain, some draws), to
    lay out a zarr store that blocks of draws are then written into."""
    import dask.array

    out = {}
    for name, da in block.data_vars.items():
        shape = (chains, draws, *da.shape[2:])
        out[name] = (da.dims, dask.array.zeros(shape, dtype=da.dtype, chunks=(1, APPROX_DRAW_BLOCK, *da.shape[2:])))
    coords = {c: block.coords[c] for c in block.coords if c not in ("chain", "draw")}
    return xr.Dataset(out, coords={**coords, "chain": np.arange(chains), "draw": np.arange(draws)})


def fit_run(spec: ModelSpec, survey: SurveyData, out: str | Path, *, force: bool = False,
            progressbar: bool = True, command: list[str] | None = None, loo: bool = True) -> Path:
    """Build the model, sample it, and write a complete run folder atomically.

    Parameters
    ----------
    spec
        What to fit, with sampler settings already final (CLI overrides applied).
    survey
        The read survey (tidy frame, exclusions).
    out
        Run folder to create.
    force
        Replace ``out`` if it exists.
    command
        The command line, recorded in provenance.
    loo
        Compute pointwise PSIS-LOO for ``pas-bayes compare`` from the written draws, a
        block of wards at a time (about 30 s at a full year, 70 s at five); skipped for weighted models.

    Returns
    -------
    pathlib.Path
        The run folder.

    Raises
    ------
    RunFolderError
        When ``out`` exists and ``force`` is false (checked before sampling).
    """
    out = Path(out)
    refuse_existing([out], force=force)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    model = build_model(spec, survey.frame)
    # What reading the survey freed goes back to the system before sampling adds its own.
    release_freed_memory()
    phases = {"model_build": time.perf_counter() - clock}
    out.parent.mkdir(parents=True, exist_ok=True)
    # Draws stream to disk beside the run and are read back from there: memory stays flat
    # however long the chains. The folder goes once the run folder's posterior is written.
    trace_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.trace-"))
    # Deleting nutpie's store is some 40,000 files (9 s at five years): done in a thread
    # while PSIS-LOO and the diagnostics read the run folder, and waited for before returning.
    deleting = threading.Thread(target=shutil.rmtree, args=(trace_dir,), kwargs={"ignore_errors": True},
                                name="pas_bayes-trace-delete")
    try:
        store = trace_dir / "trace.zarr" if spec.sampler.name in ("nutpie", "advi") else None
        before = time.perf_counter()
        var_names = stored_variables(model)
        idata = sample_until_clean(model, spec, progressbar=progressbar, var_names=var_names, trace_store=store,
                                   reuse_key=model_key(spec, survey.frame, var_names))
        release_freed_memory()
        attrs = idata["posterior"].attrs
        phases["compile"] = float(attrs.get("compile_time", 0.0))
        phases["sampling"] = float(attrs.get("sampling_time", time.perf_counter() - before - phases["compile"]))
        return _write_fit(spec, survey, idata, out, force=force, command=command, loo=loo, started=started,
                          clock=clock, phases=phases, posterior_written=deleting.start)
    finally:
        if deleting.ident is not None:  # started
            deleting.join()
        shutil.rmtree(trace_dir, ignore_errors=True)  # what is left when the fit failed before that


def _write_fit(spec: ModelSpec, survey: SurveyData, idata: xr.DataTree, out: Path, *, force: bool,
               command: list[str] | None, loo: bool, started: datetime, clock: float,
               phases: dict[str, float] | None = None,
               posterior_written: Callable[[], None] | None = None) -> Path:
    if "observed_data" not in idata.children or not idata["observed_data"].data_vars:
        # A weighted model observes through a Potential; record the answers all the same.
        observed = idata["constant_data"].to_dataset()["y_observed"].rename(spec.outcome)
        idata["observed_data"] = xr.DataTree(observed.to_dataset())
    tables = {"exclusions.csv": survey.exclusions, "item_missingness.csv": survey.item_missingness,
              "driver_scaling.csv": survey.driver_scaling, "wards.csv": ward_table(survey.frame)}
    loo_summary: dict[str, Any] | str = ("not computed: a survey-weighted pseudo-likelihood is not a "
                                         "predictive density of the sample" if spec.weights != "none" else
                                         "not computed: fitted with --no-loo")
    approximate = approximation(idata)
    with_loo = False
    if approximate:
        loo_summary = "not computed: an approximate fit (importance sampling needs posterior draws)"
    elif spec.weights == "none" and loo:
        loo_summary, with_loo = "computing", True

    def derive(posterior: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        # From here on only the written run folder is read: the sampler's store can go.
        if posterior_written is not None:
            posterior_written()
        release_freed_memory()  # what writing the run folder freed
        timed, more, tables_out = dict(provenance["phase_seconds"]), {}, {}
        if with_loo:
            # From the draws as written, a block of wards at a time (the run folder's chunks
            # are blocks of wards; the trace store's hold every ward, so reading it by ward
            # would read it all once per block): the fit never holds every draw of every
            # ward's effects in memory. The data groups are the ones in hand, not read back
            # (the design twice is 50 MB at 242,000 respondents).
            begun = time.perf_counter()
            lazy = idata.copy()
            lazy["posterior"] = xr.DataTree(open_posterior_by_ward(posterior))
            result = loo_tables(restore_ward_effects(lazy), survey.frame)
            release_freed_memory()
            timed["psis_loo"] = round(time.perf_counter() - begun, 2)
            tables_out.update({"loo.csv": result.respondents, "loo_wards.csv": result.wards})
            more["loo"] = result.summary
        # R-hat and ESS of every element, once, for every later command to read: through
        # xarray's lazy indexing, a block of wards is one read of the store (dask's graph
        # read each stored chunk on its own, three times slower).
        begun = time.perf_counter()
        with xr.open_dataset(posterior, engine="zarr", group="posterior", chunks=None) as post:
            tables_out[PARAMETER_DIAGNOSTICS] = parameter_table(parameter_diagnostics(post))
        release_freed_memory()
        done = time.perf_counter()
        timed["parameter_diagnostics"] = round(done - begun, 2)
        return tables_out, {**more, "wall_seconds": round(done - clock, 2), "phase_seconds": timed}
    wall = time.perf_counter() - clock

    provenance = {
        "created": started.isoformat(timespec="seconds"),
        "data_file": str(survey.path.resolve()),
        "data_sha256": survey.sha256,
        "data_rows": survey.n_input_rows,
        "rows_modelled": len(survey.frame),
        # What centred = "auto" chose for these data (the same model either way).
        "centred_groupings": sorted(centred_groupings(spec, survey.frame)),
        **run_provenance(spec, idata, wall, command),
        "approximate": approximate,
        "loo": loo_summary,
        # Where the wall time went (seconds); the run folder's writing is added as it is timed.
        "phase_seconds": {k: round(v, 2) for k, v in (phases or {}).items()},
    }
    idata.attrs.update({"pas_bayes_spec_sha256": spec.digest(), "pas_bayes_data_sha256": survey.sha256})
    return write_run_folder(out, idata, spec.to_dict(), provenance, tables=tables, spec_source=spec.source,
                            force=force, derive=derive)


def write_tree(idata: xr.DataTree, path: Path) -> None:
    """Write ``idata`` as a new zarr store: its large (dask) variables a chain x draw block at a time.

    xarray writes the metadata and every in-memory variable; each dask variable's data is
    then computed a block of draws (all its wards) at a time and written with zarr, which
    splits the block into its stored chunks itself. Through ``to_zarr`` every stored chunk
    was a dask task of its own: a one-year posterior's ward effects took 7.4 s that way and
    4.2 s this way (``benchmarks/README.md``). The stored arrays are the same.
    """
    import zarr

    with one_block_at_a_time():
        idata.to_zarr(path, mode="w", compute=False)
        for node in idata.subtree:
            for name, da in node.dataset.data_vars.items():
                if da.chunks is None:
                    continue  # written by to_zarr
                # (The root's relative path is ".", which pathlib drops.)
                array = zarr.open_array(str(path / node.relative_to(idata) / name), mode="r+")
                if not {"chain", "draw"} <= set(da.dims):
                    array[...] = da.values
                    continue
                step = da.chunksizes["draw"][0]
                for c in range(da.sizes["chain"]):
                    for start in range(0, da.sizes["draw"], step):
                        where = {"chain": slice(c, c + 1), "draw": slice(start, start + step)}
                        array[tuple(where.get(d, slice(None)) for d in da.dims)] = da.isel(where).values


Derived = Callable[[Path], tuple[dict[str, pd.DataFrame], dict[str, Any]]]


def write_run_folder(out: Path, idata: xr.DataTree, spec_table: dict[str, Any], provenance: dict[str, Any], *,
                     tables: dict[str, pd.DataFrame], spec_source: str | None, force: bool,
                     derive: Derived | None = None) -> Path:
    """Write a run folder atomically: built under a temporary name, renamed into place when complete.

    Parameters
    ----------
    out
        The run folder.
    idata
        Posterior DataTree, stored as ``posterior.zarr``.
    spec_table
        The spec as a plain dict (``spec.json``).
    provenance
        ``provenance.json``.
    tables
        CSV files to write beside them, by file name.
    spec_source
        The spec file the user wrote, copied as ``spec.toml`` when there is one.
    force
        Replace an existing folder.
    derive
        Called with the written ``posterior.zarr`` before the folder is complete: more
        tables and provenance entries computed from the stored draws (PSIS-LOO).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        with warnings.catch_warnings():
            # zarr 3 warns that consolidated metadata is not in its spec; ArviZ reads it fine.
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            # Large variables are dask arrays: written a block at a time, one block after another.
            begun = time.perf_counter()
            write_tree(idata, tmp / POSTERIOR)
        write_seconds = round(time.perf_counter() - begun, 2)
        if derive is not None:
            more_tables, more_provenance = derive(tmp / POSTERIOR)
            tables, provenance = {**tables, **more_tables}, {**provenance, **more_provenance}
        if isinstance(provenance.get("phase_seconds"), dict):
            provenance = {**provenance, "phase_seconds": {**provenance["phase_seconds"],
                                                          "posterior_write": write_seconds}}
        (tmp / "spec.json").write_text(json.dumps(spec_table, indent=1) + "\n")
        if spec_source and Path(spec_source).is_file():
            shutil.copyfile(spec_source, tmp / "spec.toml")
        for name, table in tables.items():
            table.to_csv(tmp / name, index=False)
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
        refuse_existing([out], force=force)
        if out.exists():
            old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def ward_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Ward id, name, borough and respondents modelled, one row per ward in the data."""
    return (frame.groupby(["borough", "ward"], sort=False)
            .agg(ward_name=("ward_name", "first"), respondents=("row", "size")).reset_index()
            [["ward", "ward_name", "borough", "respondents"]])


def load_run_meta(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run folder's stored spec table and provenance, without opening its posterior.

    Raises
    ------
    RunFolderError
        When the folder or those files are missing.
    """
    path = Path(path)
    missing = [f for f in ("spec.json", "provenance.json") if not (path / f).is_file()]
    if missing:
        raise RunFolderError(f"{path}: not a run folder (no {', '.join(missing)}). What to do: give the "
                             "--out folder of a `pas-bayes fit`")
    return json.loads((path / "spec.json").read_text()), json.loads((path / "provenance.json").read_text())


def load_run(path: str | Path) -> Run:
    """Open a run folder written by :func:`fit_run`.

    Posterior variables under :data:`IN_MEMORY_BYTES` are read into memory; larger ones
    (every draw's ward effects in a big fit) stay dask arrays read a block at a time, so
    pass ``.compute()`` of what an ArviZ function is given when it needs them.

    Raises
    ------
    RunFolderError
        When the folder or one of its files is missing, or the posterior was
        not made from the spec stored beside it.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"{path}: no such run folder. What to do: give the --out folder of "
                             "a `pas-bayes fit`")
    missing = [f for f in RUN_FILES if not (path / f).exists()]
    if missing:
        raise RunFolderError(f"{path}: not a complete run folder, missing {missing}. What to do: "
                             "fit again (a run interrupted before its end leaves no folder)")
    table, provenance = load_run_meta(path)
    idata = restore_ward_effects(open_posterior_tree(path / POSTERIOR))
    # The digest of the stored table, not of a re-parsed spec: a field added to ModelSpec
    # later (with a default) must not make older runs unreadable.
    digest = table_digest(table)
    if idata.attrs.get("pas_bayes_spec_sha256") != digest or provenance.get("spec_sha256") != digest:
        raise RunFolderError(f"{path}: spec.json does not match the spec the posterior was fitted "
                             "with (was it edited?). What to do: restore it, or fit again")
    if table.get("kind") == "dashboard":
        from pas_bayes.dashboard.spec import dashboard_spec_from_dict

        return Run(path=path, spec=dashboard_spec_from_dict(table), idata=idata, provenance=provenance,
                   exclusions=pd.read_csv(path / "exclusions.csv"), wards=pd.DataFrame(), kind="dashboard")
    spec = spec_from_dict(table)
    wards_file = path / "wards.csv"
    wards = (pd.read_csv(wards_file, dtype={"ward": str, "ward_name": str}, keep_default_na=False)
             if wards_file.exists() else pd.DataFrame(columns=["ward", "ward_name", "borough", "respondents"]))
    stored = path / PARAMETER_DIAGNOSTICS
    return Run(path=path, spec=spec, idata=idata, provenance=provenance,
               exclusions=pd.read_csv(path / "exclusions.csv"), wards=wards,
               per_parameter=read_parameter_table(stored) if stored.is_file() else None)
