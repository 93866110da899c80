"""Reusing the last compiled model: only for the same model on the same survey."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pas_bayes.compiled_models import compiled_for, forget_compiled, model_key
from pas_bayes.spec import spec_from_dict


def _spec(**model):
    return spec_from_dict({"model": {"name": "k", "drivers": ["engagement", "visibility"], **model},
                           "sampler": {"draws": 50, "seed": 1}})


def _frame(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": rng.integers(0, 2, n), "engagement": rng.normal(size=n),
                         "ward": pd.Categorical(rng.choice(["a", "b"], n))})


def test_the_key_ignores_sampler_settings_but_not_the_model_the_data_or_the_back_end():
    spec, frame = _spec(), _frame()
    key = model_key(spec, frame, ["beta"])
    assert key == model_key(spec.with_sampler(draws=900, seed=7, target_accept=0.95, chains=2), frame, ["beta"])
    changed = frame.copy()
    changed.loc[3, "engagement"] += 1e-9
    recoded = frame.copy()
    recoded["ward"] = recoded["ward"].cat.rename_categories(["b", "a"])
    others = [model_key(_spec(ward_slopes=["visibility"]), frame, ["beta"]),
              model_key(spec, changed, ["beta"]), model_key(spec, recoded, ["beta"]),
              model_key(spec, frame.iloc[1:], ["beta"]), model_key(spec, frame, ["beta", "sd"]),
              model_key(spec.with_sampler(backend="jax"), frame, ["beta"])]
    assert key not in others and len(set(others)) == len(others)


def test_only_the_last_model_is_kept_and_none_keeps_nothing():
    forget_compiled()
    made = []

    def compile_model():
        made.append(object())
        return made[-1]

    first, reused = compiled_for("a", compile_model)
    assert not reused and compiled_for("a", compile_model) == (first, True)
    second, reused = compiled_for("b", compile_model)
    assert not reused and second is not first
    assert compiled_for("a", compile_model)[1] is False  # "a" was dropped for "b"
    assert compiled_for(None, compile_model)[1] is False and compiled_for(None, compile_model)[1] is False
    assert len(made) == 5
    forget_compiled()
