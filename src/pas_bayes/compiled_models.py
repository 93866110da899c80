"""The last model compiled in this process, kept under what it was built from.

Refitting the same model on the same survey in one session (more draws, another seed, a
higher target acceptance after divergences) builds an identical graph, yet nutpie compiles
it again: its log-density wrapper is never cached, and PyTensor's rewrites and Numba's
typing run again even when the machine code comes from the cache (about 23 s of a
30 s refit of a 1,920-respondent survey on a 2-core machine, measured under cProfile).
The model is a pure function of the spec without its sampler settings and of the tidy
frame, so a digest of the two names the compiled model exactly; only the last one is
kept, so memory holds at most one compiled model that is not in use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from pas_bayes.spec import ModelSpec, SamplerOptions

_last: dict[str, Any] = {}


def model_key(spec: ModelSpec, frame: pd.DataFrame, var_names: Sequence[str] | None) -> str:
    """A digest of everything the compiled model depends on.

    Parameters
    ----------
    spec
        The spec; its sampler settings are left out, except the compile back end.
    frame
        The tidy frame the model is built from (values, index, column names and dtypes).
    var_names
        The variables the compiled model stores.

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    digest = hashlib.sha256()
    model_part = replace(spec, sampler=SamplerOptions(backend=spec.sampler.backend))
    digest.update(repr(model_part).encode())
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(repr(None if var_names is None else list(var_names)).encode())
    return digest.hexdigest()


def compiled_for(key: str | None, compile_model: Callable[[], Any]) -> tuple[Any, bool]:
    """The compiled model under ``key``, compiling (and keeping) it when it is not the last one.

    Parameters
    ----------
    key
        From :func:`model_key`; None compiles and keeps nothing (and drops the kept model).
    compile_model
        Compiles the model (called only when needed).

    Returns
    -------
    tuple
        The compiled model and whether it was reused.
    """
    if key is not None and key in _last:
        return _last[key], True
    # The previous model goes before this one is compiled, so two are never held at once.
    _last.clear()
    compiled = compile_model()
    if key is not None:
        _last[key] = compiled
    return compiled, False


def forget_compiled() -> None:
    """Drop the kept model (its memory goes back once nothing else holds it)."""
    _last.clear()
