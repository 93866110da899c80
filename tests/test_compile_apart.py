"""Compiling in a forked child first: the fit's own compile then comes from the cache."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from pas_bayes.compile_apart import COMPILE_APART_FROM, compile_apart_wanted, compile_in_child


def test_only_large_surveys_on_numba_compile_apart() -> None:
    linux = sys.platform.startswith("linux")
    assert compile_apart_wanted(COMPILE_APART_FROM, "numba") is linux
    assert not compile_apart_wanted(COMPILE_APART_FROM - 1, "numba")
    assert not compile_apart_wanted(10 * COMPILE_APART_FROM, "jax")


def _cache_files() -> set[str]:
    from pytensor.link.numba import cache

    return {str(p) for p in cache.NUMBA_CACHE_PATH.rglob("*") if p.is_file()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork-based compile is Linux only")
def test_the_child_fills_the_cache_and_the_fit_compiles_from_it(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    import nutpie
    from pytensor.link.numba import cache

    # A cache of this test's own: the suite's other process writes to the shared one meanwhile,
    # and its files would read as this fit's. The child is forked, so it writes here too.
    monkeypatch.setattr(cache, "NUMBA_CACHE_PATH", tmp_path)

    # A constant no other graph has, so this model's pieces are not in the cache yet.
    unique = float(time.time_ns() % 10**9) / 7.0
    y = np.linspace(-1.0, 1.0, 50)
    with pm.Model(coords={"obs": np.arange(y.size)}) as model:
        mu = pm.Normal("mu", unique, 1.0)
        sd = pm.HalfNormal("sd", 1.0)
        pm.Normal("y", mu * 0.5 + unique, sd, observed=y, dims="obs")
    before = _cache_files()
    assert compile_in_child(model, None)
    after_child = _cache_files()
    assert after_child - before, "the child compiled nothing into the cache"
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    by_fit = _cache_files() - after_child
    # The whole-graph functions come from the child's cache; PyTensor's key for a join of
    # scalars (nutpie's flattening) differs between processes, so that small piece may be
    # compiled again.
    assert not [p for p in by_fit if "fgraph" in p], "the fit compiled its whole graph again"
    assert len(by_fit) <= len(after_child - before) // 4, sorted(by_fit)
    # And what came from the cache samples this model.
    trace = nutpie.sample(compiled, draws=20, tune=20, chains=1, seed=1, progress_bar=False)
    assert np.isfinite(trace["posterior"]["mu"].values).all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork-based compile is Linux only")
def test_a_failing_or_hanging_child_leaves_the_fit_to_compile_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    import nutpie

    from pas_bayes import compile_apart

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("compile failed")

    monkeypatch.setattr(nutpie, "compile_pymc_model", fails)
    assert compile_in_child(object(), None) is False

    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda *a, **k: time.sleep(60))
    monkeypatch.setattr(compile_apart, "CHILD_TIMEOUT_S", 0.5)
    clock = time.monotonic()
    assert compile_in_child(object(), None) is False
    assert time.monotonic() - clock < 30, "the hanging child was not killed at the time limit"


def _compile_apart_in_this_worker() -> tuple[bool, int]:
    """Run on a dask worker: compile a new model in a forked child; (child ok, cache files added)."""
    import time as clock

    import numpy as np
    import pymc as pm

    from pas_bayes.compile_apart import compile_in_child

    unique = float(clock.time_ns() % 10**9) / 11.0
    with pm.Model() as model:
        mu = pm.Normal("mu", unique, 1.0)
        pm.Normal("y", mu + unique, 1.0, observed=np.linspace(-1.0, 1.0, 20))
    before = _cache_files()
    ok = compile_in_child(model, None)
    return ok, len(_cache_files() - before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork-based compile is Linux only")
def test_a_sweep_worker_can_fork_the_compile_child() -> None:
    # A sweep's fits run in dask worker processes, which hold an event loop and other
    # threads when the compile child is forked: the child must still compile and exit.
    import cloudpickle

    from pas_bayes.sweep.runner import dask_client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with dask_client(None, 1) as client:
            ok, added = client.submit(_compile_apart_in_this_worker, pure=False).result(timeout=600)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert ok, "the compile child forked from a dask worker failed"
    assert added > 0, "the compile child forked from a dask worker compiled nothing into the cache"
