"""The Bernoulli-logit likelihood as one fused operation: each answer's log-probability and its slope.

Every gradient evaluation of the binary model spends most of its time here: for
each of ~12,800 respondents a year, ``log P(y | eta) = y * eta - log(1 + exp(eta))``
and its derivative ``y - logistic(eta)``. Built from PyTensor's element-wise ops
this is several passes over the respondents (the forward value, then the
gradient graph recomputing the exponential), and PyMC's own Bernoulli also forms
the probability, both of its logs and a bounds check. :class:`BernoulliLogit`
computes the value and the derivative in one loop, with one ``exp`` and one
``log`` per respondent; the gradient of the log-density then costs one
multiply. This is the same idea as Stan's ``bernoulli_logit_glm``. In the Numba
loop the ``exp`` and ``log`` are written out as arithmetic (libm's are calls, and a
loop of calls is not vectorised): with them, and without Python's zero-division
checks, the loop runs over 4 or 8 respondents at a time. Measured in
``benchmarks/where_time_goes.py``; tests check value and gradient against PyMC's
Bernoulli, and against long-double NumPy to a few units in the last place from -800 to 800.

Implementations are given for PyTensor's Python (``perform``), Numba (the default
linker, which nutpie and PyMC's NUTS compile with) and JAX (:func:`register_jax`) back ends.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytensor.tensor as pt
from numba import types
from numba.extending import intrinsic
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

_KERNEL_VERSION = 7


class BernoulliLogit(Op):
    """``(y, eta) -> (log P(y | logit eta), d/d eta of it)``, element by element, in one pass."""

    __props__ = ()

    def make_node(self, y: Any, eta: Any) -> Apply:
        eta = pt.as_tensor_variable(eta)
        y = pt.as_tensor_variable(y)
        if eta.ndim != 1 or y.ndim != 1:
            raise TypeError("BernoulliLogit takes vectors of answers and linear predictors")
        return Apply(self, [y, eta], [eta.type(), eta.type()])

    def perform(self, node: Apply, inputs: list[np.ndarray], outputs: list[list[Any]]) -> None:
        y, eta = inputs
        t = np.exp(-np.abs(eta))
        lp = y * eta - np.maximum(eta, 0.0) - np.log1p(t)
        s = np.where(eta > 0, 1.0 / (1.0 + t), t / (1.0 + t))
        dtype = node.outputs[0].dtype
        outputs[0][0] = np.asarray(lp, dtype=dtype)
        outputs[1][0] = np.asarray(y - s, dtype=dtype)

    def infer_shape(self, node: Apply, shapes: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [shapes[1], shapes[1]]

    def pullback(self, inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        y, eta = inputs
        slope = outputs[1]
        g_lp, g_slope = cotangents
        g_eta = None if isinstance(g_lp.type, DisconnectedType) else g_lp * slope
        if not isinstance(g_slope.type, DisconnectedType):
            # d slope / d eta = -p (1 - p), with p = y - slope.
            p = y - slope
            term = -g_slope * p * (1.0 - p)
            g_eta = term if g_eta is None else g_eta + term
        if g_eta is None:
            g_eta = pt.zeros_like(eta)
        return [grad_not_implemented(self, 0, y), g_eta]


bernoulli_logit = BernoulliLogit()


# exp(-a) and log(1 + t) written out as arithmetic so that LLVM vectorises the loop below
# (libm's exp and log are calls it cannot vectorise: at 60,000 respondents, five years, the
# loop took 1,040 us through libm and about 300 us written out, timed on its own; the whole
# gradient in benchmarks/where_time_goes.py). Both are the textbook reductions, accurate to
# a few units in the last place over the whole range (tested against long-double NumPy).
_LN2 = 0.6931471805599453
_LN2_HI = 6.93147180369123816490e-01  # Cody-Waite split of ln 2: k * _LN2_HI is exact for k < 2**11
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.4426950408889634
_SQRT2_M1 = 0.41421356237309503
#: 1 / k! for exp(r) on |r| <= ln(2) / 2: the Taylor remainder after r**13 is below 4e-18.
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13 = (
    1.0 / math.factorial(k) for k in range(14))
#: 1 / (2m + 1) for log(1 + u) = 2 atanh(s), s = u / (2 + u), |s| <= 0.172: the series
#: remainder after s**21 is below 1e-17.
_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8, _L9, _L10 = (1.0 / (2 * m + 1) for m in range(11))
#: LLVM may fuse a multiply and an add into one FMA (a single rounding), nothing more: no
#: reordering of sums (which made a seed's draws depend on where arrays sit in memory, the
#: reason fits run with PyTensor's fast-math off). Without it the loop has no FMA at all and
#: the two polynomials cost twice the instructions: at 60,000 respondents the loop took 308 us
#: against 182 us with it, the results within 2 units in the last place of each other.
_CONTRACT = {"contract"}  # a set: Numba refuses a frozenset
# The two polynomials below are written out step by step, not looped over a tuple of
# coefficients: the loop form ran the whole kernel about 1.3x slower (measured).


@intrinsic
def _bits_as_float(typingctx: Any, bits: Any) -> Any:
    """The float64 whose bit pattern is the int64 ``bits`` (LLVM's ``bitcast``, free in a vector)."""
    if bits != types.int64:
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@numba_njit(fastmath=_CONTRACT, error_model="numpy", inline="always")
def _times_pow2_neg(p: float, k: float) -> float:
    """``p * 2**-k`` for whole ``0 <= k <= 1075`` and ``p`` near 1, by two normal powers of two.

    Each factor is built from its exponent bits (``(1023 - j) << 52``): integer arithmetic
    and a bitcast, which LLVM vectorises without having to turn branches into selects. The
    earlier form, a chain of selects on ``k``'s bits, was vectorised on one machine and left
    scalar on another (``exp(-a)`` 35 ns a respondent there, 3 ns now; ``benchmarks/README.md``).
    Splitting ``k`` keeps both factors normal (``j <= 538``), so ``p * 2**-k1`` is exact and
    the second product rounds once, as ``ldexp`` does (their product first would round twice
    where ``2**-k`` is subnormal).
    """
    bits = np.int64(k)
    k1 = bits >> 1
    k2 = bits - k1
    return (p * _bits_as_float((1023 - k1) << 52)) * _bits_as_float((1023 - k2) << 52)


@numba_njit(fastmath=_CONTRACT, error_model="numpy", inline="always")
def _exp_neg(a: float) -> float:
    """``exp(-a)`` for ``0 <= a <= 745``: ``2**-k * exp(r)``, ``r = k ln 2 - a`` in [-ln2/2, ln2/2]."""
    k = np.floor(a * _INV_LN2 + 0.5)
    r = (k * _LN2_HI - a) + k * _LN2_LO
    p = _E13
    p = p * r + _E12
    p = p * r + _E11
    p = p * r + _E10
    p = p * r + _E9
    p = p * r + _E8
    p = p * r + _E7
    p = p * r + _E6
    p = p * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + _E1
    p = p * r + _E0
    return _times_pow2_neg(p, k)


@numba_njit(fastmath=_CONTRACT, error_model="numpy", inline="always")
def _log1p_unit(t: float) -> float:
    """``log(1 + t)`` for ``0 <= t <= 1`` (``ln 2 + log(1 + (t - 1) / 2)`` above sqrt(2) - 1)."""
    big = t > _SQRT2_M1
    u = (t - 1.0) * 0.5 if big else t
    s = u / (2.0 + u)  # from u itself, not 1 + u: exact for tiny t, as log1p is
    s2 = s * s
    q = _L10
    q = q * s2 + _L9
    q = q * s2 + _L8
    q = q * s2 + _L7
    q = q * s2 + _L6
    q = q * s2 + _L5
    q = q * s2 + _L4
    q = q * s2 + _L3
    q = q * s2 + _L2
    q = q * s2 + _L1
    q = q * s2 + _L0
    return 2.0 * s * q + (_LN2 if big else 0.0)


def terms_loop(fastmath: set[str] | bool = _CONTRACT) -> Any:
    """The Numba loop of :class:`BernoulliLogit`: ``terms(y, eta) -> (log-likelihoods, slopes)``.

    ``fastmath`` is the loop's LLVM flags (the written-out ``exp`` and ``log`` are inlined
    into it and take its flags): FMA contraction by default; ``False`` gives the loop without
    it, a row of ``benchmarks/where_time_goes.py``.
    """

    # error_model="numpy": Python's model checks every division for zero, and that branch
    # alone kept LLVM from vectorising the loop.
    @numba_njit(fastmath=fastmath, error_model="numpy")
    def terms(y: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # In the model's graph eta can arrive as a strided view; over a strided array the
        # loop is not vectorised, and one respondent at a time the written-out exp and
        # log are slower than libm's (measured: 2.3 ms against 0.26 ms at 60,000).
        # A contiguous copy costs one pass.
        eta = np.ascontiguousarray(eta)
        y = np.ascontiguousarray(y)
        n = eta.shape[0]
        lp = np.empty(n, dtype=eta.dtype)
        slope = np.empty(n, dtype=eta.dtype)
        for i in range(n):
            e = eta[i]
            # log(1 + exp(e)) = max(e, 0) + log(1 + exp(-|e|)); exp(-745) is 0 in doubles.
            t = _exp_neg(min(abs(e), 745.0))
            lp[i] = y[i] * e - max(e, 0.0) - _log1p_unit(t)
            # y - logistic(e) as y (1 - logistic) - (1 - y) logistic, each part formed without
            # cancellation (1 - 1 / (1 + t) would lose t's digits when e is large).
            upper, lower = (t, 1.0) if e > 0 else (1.0, t)
            slope[i] = (y[i] * upper - (1.0 - y[i]) * lower) / (1.0 + t)
        return lp, slope

    return terms


@register_funcify_default_op_cache_key(BernoulliLogit)
def _numba_bernoulli_logit(op: BernoulliLogit, node: Apply, **kwargs: Any) -> Any:
    # PyTensor caches compiled kernels by Op and props, not by source: bump this number
    # whenever the loop above changes, or an older compiled kernel is reused.
    return terms_loop(), _KERNEL_VERSION


def register_jax() -> None:
    """Teach PyTensor's JAX back end the fused likelihood and the ward terms of
    :mod:`pas_bayes.ward_terms` (imports JAX, so only when asked).

    Raises
    ------
    ImportError
        When JAX is not installed, saying how to install it.
    """
    try:
        import jax.numpy as jnp
        from pytensor.link.jax.dispatch import jax_funcify
    except ImportError as exc:
        raise ImportError("sampler.backend = 'jax' needs JAX: pip install 'pas_bayes[jax]' (CPU) or "
                          "'jax[cuda12]' (NVIDIA GPU)") from exc

    @jax_funcify.register(BernoulliLogit)
    def _jax_bernoulli_logit(op: BernoulliLogit, **kwargs: Any) -> Any:
        def terms(y: Any, eta: Any) -> tuple[Any, Any]:
            return y * eta - jnp.logaddexp(0.0, eta), y - 1.0 / (1.0 + jnp.exp(-eta))

        return terms

    from pas_bayes import ward_terms

    ward_terms.register_jax()


def bernoulli_logit_logp(value: pt.TensorVariable, eta: pt.TensorVariable) -> pt.TensorVariable:
    """Each respondent's ``log P(value | logit eta)`` (0/1 answers), through :class:`BernoulliLogit`."""
    return bernoulli_logit(pt.cast(value, eta.dtype), eta)[0]
