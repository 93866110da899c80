"""Each respondent's ward intercept and slopes times their design row, one run of a ward's respondents at a time.

In the binary and cumulative models every respondent's linear predictor holds
``sum_k design[i, k] * coef[ward(i), k]``: the ward's intercept and its driver slopes
(London's, plus the borough's and the ward's deviations), added up per ward once
(:func:`pas_bayes.model.build_model`). Written as a gather (``coef[ward_idx]``) this
is, in every gradient, a respondents x terms table gathered, multiplied and summed,
and its gradient a product of the same size scattered back onto the wards: at five
years (60,000 respondents) most of a gradient's time.

The survey reader puts respondents in ward order (:func:`pas_bayes.survey.read_survey`),
so a ward's respondents are one run of consecutive rows, and the design is held term by
term (``(terms, respondents)``). Then, for each run, the ward's coefficients are
constants: its predictor is a few multiply-adds over contiguous rows of the design, and
its gradient one dot product per term over the same rows, both vectorised, with no
gather or scatter. Measured in ``benchmarks/respondent_kernels.py`` and
``benchmarks/where_time_goes.py``.

:class:`WardTerms` is ``(coef, design_t, run_ward, run_start) -> predictor`` and
:class:`WardRunSums` its adjoint, ``(g, design_t, run_ward, run_start) -> each
ward's sums of g x design``; each is the other's gradient, so any order of derivative is
exact. Any order of respondents is correct (a ward's respondents may form several runs;
their sums add up), only slower when runs are short (the model gathers instead below
:data:`pas_bayes.model.RUNS_FROM` respondents a run). The sums over a run let LLVM
reorder additions (``reassoc``), which vectorises them: the result is the same wherever
the arrays sit in memory (tested), so a seed gives the same draws in every process on a
machine, but it may differ in the last bits between CPUs with other vector widths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

_KERNEL_VERSION = 2


def ward_runs(ward_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive respondents of one ward: ``(run_ward, run_start)``.

    ``run_ward[r]`` is the ward of run ``r``, whose respondents are
    ``run_start[r]:run_start[r + 1]``; ``run_start`` ends at the number of respondents.

    Parameters
    ----------
    ward_idx
        Each respondent's ward index, in the model's order of respondents.
    """
    ward_idx = np.asarray(ward_idx, dtype=np.int64)
    if ward_idx.size == 0:
        return ward_idx, np.zeros(1, dtype=np.int64)
    starts = np.flatnonzero(np.diff(ward_idx)) + 1
    run_start = np.concatenate([[0], starts, [ward_idx.size]]).astype(np.int64)
    return ward_idx[run_start[:-1]], run_start


def _ward_of_each(run_ward: np.ndarray, run_start: np.ndarray) -> np.ndarray:
    return np.repeat(run_ward, np.diff(run_start))


class WardTerms(Op):
    """``(coef (W, K), design_t (K, N), run_ward (R,), run_start (R + 1,)) -> (N,)``:
    ``sum_k design_t[k, i] * coef[ward of i, k]``, for ``n_wards`` wards (``W``)."""

    __props__ = ("n_wards",)

    def __init__(self, n_wards: int) -> None:
        self.n_wards = int(n_wards)

    def make_node(self, coef: Any, design_t: Any, run_ward: Any, run_start: Any) -> Apply:
        coef, design_t = pt.as_tensor_variable(coef), pt.as_tensor_variable(design_t)
        run_ward, run_start = pt.as_tensor_variable(run_ward), pt.as_tensor_variable(run_start)
        if coef.ndim != 2 or design_t.ndim != 2 or run_ward.ndim != 1 or run_start.ndim != 1:
            raise TypeError("WardTerms takes a (wards, terms) table, a (terms, respondents) design and two run vectors")
        return Apply(self, [coef, design_t, run_ward, run_start], [pt.vector(dtype=coef.dtype)])

    def perform(self, node: Apply, inputs: list[np.ndarray], outputs: list[list[Any]]) -> None:
        coef, design_t, run_ward, run_start = inputs
        ward_of = _ward_of_each(run_ward, run_start)
        outputs[0][0] = np.asarray((design_t.T * coef[ward_of]).sum(axis=1), dtype=node.outputs[0].dtype)

    def infer_shape(self, node: Apply, shapes: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(shapes[1][1],)]

    def pullback(self, inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        _, design_t, run_ward, run_start = inputs
        (g,) = cotangents
        return [WardRunSums(self.n_wards)(g, design_t, run_ward, run_start),
                grad_not_implemented(self, 1, design_t),
                grad_undefined(self, 2, run_ward), grad_undefined(self, 3, run_start)]


class WardRunSums(Op):
    """``(g (N,), design_t (K, N), run_ward, run_start) -> (n_wards, K)``: each ward's
    ``sum_i g[i] * design_t[k, i]`` over its respondents (the adjoint of :class:`WardTerms`)."""

    __props__ = ("n_wards",)

    def __init__(self, n_wards: int) -> None:
        self.n_wards = int(n_wards)

    def make_node(self, g: Any, design_t: Any, run_ward: Any, run_start: Any) -> Apply:
        g, design_t = pt.as_tensor_variable(g), pt.as_tensor_variable(design_t)
        run_ward, run_start = pt.as_tensor_variable(run_ward), pt.as_tensor_variable(run_start)
        if g.ndim != 1 or design_t.ndim != 2:
            raise TypeError("WardRunSums takes a vector over respondents and a (terms, respondents) design")
        return Apply(self, [g, design_t, run_ward, run_start], [pt.matrix(dtype=g.dtype)])

    def perform(self, node: Apply, inputs: list[np.ndarray], outputs: list[list[Any]]) -> None:
        g, design_t, run_ward, run_start = inputs
        out = np.zeros((self.n_wards, design_t.shape[0]), dtype=node.outputs[0].dtype)
        np.add.at(out, _ward_of_each(run_ward, run_start), (g * design_t).T)
        outputs[0][0] = out

    def infer_shape(self, node: Apply, shapes: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(self.n_wards, shapes[1][0])]

    def pullback(self, inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        _, design_t, run_ward, run_start = inputs
        (g_out,) = cotangents
        return [WardTerms(self.n_wards)(g_out, design_t, run_ward, run_start),
                grad_not_implemented(self, 1, design_t),
                grad_undefined(self, 2, run_ward), grad_undefined(self, 3, run_start)]


def ward_terms(coef: Any, design_t: Any, run_ward: Any, run_start: Any,
               n_wards: int | None = None) -> pt.TensorVariable:
    """Each respondent's ``sum_k design_t[k, i] * coef[ward of i, k]`` (:class:`WardTerms`).

    Parameters
    ----------
    coef
        ``(wards, terms)``: each ward's intercept and slopes; its number of rows must be
        known when the graph is built (it is the model's number of wards).
    design_t
        ``(terms, respondents)``, the design held term by term.
    run_ward, run_start
        From :func:`ward_runs` of the respondents' ward indices.
    n_wards
        The number of wards (rows of ``coef``), when ``coef`` has no static first dimension.
        The gradient's table has this many rows, fixed when the graph is built.
    """
    coef = pt.as_tensor_variable(coef)
    n_wards = n_wards if n_wards is not None else coef.type.shape[0]
    if n_wards is None:
        raise ValueError("ward_terms needs the number of wards: pass n_wards, or give coef a fixed first "
                         "dimension")
    coef = pt.specify_shape(coef, (n_wards, None))
    return WardTerms(n_wards)(coef, design_t, run_ward, run_start)


# Contraction (FMA) everywhere; the run sums alone may also reorder their additions.
@numba_njit(fastmath={"contract", "reassoc"}, error_model="numpy")
def _run_dot(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


@numba_njit(fastmath={"contract"}, error_model="numpy")
def _ward_terms_loop(coef: np.ndarray, design_t: np.ndarray, run_ward: np.ndarray,
                     run_start: np.ndarray) -> np.ndarray:
    design_t = np.ascontiguousarray(design_t)
    k, n = design_t.shape
    eta = np.zeros(n, dtype=coef.dtype)
    for r in range(run_ward.shape[0]):
        w, a, b = run_ward[r], run_start[r], run_start[r + 1]
        # Slices (not a range from a): their indices start at 0, so Numba's negative-index
        # handling drops out and the loops vectorise (measured 2.2x faster than range(a, b)).
        e = eta[a:b]
        for j in range(k):
            c = coef[w, j]
            row = design_t[j, a:b]
            for i in range(b - a):
                e[i] += row[i] * c
    return eta


@numba_njit(fastmath={"contract"}, error_model="numpy")
def _ward_run_sums_loop(g: np.ndarray, design_t: np.ndarray, run_ward: np.ndarray, run_start: np.ndarray,
                        n_wards: int) -> np.ndarray:
    design_t = np.ascontiguousarray(design_t)
    g = np.ascontiguousarray(g)
    k = design_t.shape[0]
    out = np.zeros((n_wards, k), dtype=g.dtype)
    for r in range(run_ward.shape[0]):
        w, a, b = run_ward[r], run_start[r], run_start[r + 1]
        run = g[a:b]
        for j in range(k):
            out[w, j] += _run_dot(run, design_t[j, a:b])
    return out


@register_funcify_default_op_cache_key(WardTerms)
def _numba_ward_terms(op: WardTerms, node: Apply, **kwargs: Any) -> Any:
    # PyTensor caches compiled kernels by Op and props, not by source: bump the version
    # whenever a loop here changes, or an older compiled kernel is reused.
    return _ward_terms_loop, _KERNEL_VERSION


@register_funcify_default_op_cache_key(WardRunSums)
def _numba_ward_run_sums(op: WardRunSums, node: Apply, **kwargs: Any) -> Any:
    n_wards = op.n_wards

    @numba_njit
    def sums(g: np.ndarray, design_t: np.ndarray, run_ward: np.ndarray, run_start: np.ndarray) -> np.ndarray:
        return _ward_run_sums_loop(g, design_t, run_ward, run_start, n_wards)

    return sums, _KERNEL_VERSION


def register_jax() -> None:
    """Teach PyTensor's JAX back end the ward terms and their sums (imports JAX, so only when asked)."""
    import jax
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    def ward_of_each(run_ward: Any, run_start: Any, n: int) -> Any:
        return jnp.repeat(run_ward, jnp.diff(run_start), total_repeat_length=n)

    @jax_funcify.register(WardTerms)
    def _jax_ward_terms(op: WardTerms, **kwargs: Any) -> Any:
        def terms(coef: Any, design_t: Any, run_ward: Any, run_start: Any) -> Any:
            ward_of = ward_of_each(run_ward, run_start, design_t.shape[1])
            return (design_t.T * coef[ward_of]).sum(axis=1)

        return terms

    @jax_funcify.register(WardRunSums)
    def _jax_ward_run_sums(op: WardRunSums, **kwargs: Any) -> Any:
        def sums(g: Any, design_t: Any, run_ward: Any, run_start: Any) -> Any:
            ward_of = ward_of_each(run_ward, run_start, design_t.shape[1])
            return jax.ops.segment_sum((g * design_t).T, ward_of, num_segments=op.n_wards)

        return sums
