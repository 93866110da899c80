"""The Bernoulli-logit likelihood as one fused operation: each answer's log-probability and its slope.

Every gradient evaluation of the binary model spends most of its time here: for
each of ~12,800 respondents a year, ``log P(y | eta) = y * eta - log(1 + exp(eta))``
and its derivative ``y - logistic(eta)``. Built from PyTensor's element-wise ops
this is several passes over the respondents (the forward value, then the
gradient graph recomputing the exponential), and PyMC's own Bernoulli also forms
the probability, both of its logs and a bounds check. :class:`BernoulliLogit`
computes the value and the derivative in one loop, with one ``exp`` and one
``log`` per respondent; the gradient of the log-density then costs one
multiply. This is the same idea as Stan's ``bernoulli_logit_glm``. Measured in
``benchmarks/where_time_goes.py``; a test checks value and gradient against
PyMC's Bernoulli.

Implementations are given for PyTensor's Python (``perform``), Numba (the default
linker, which nutpie and PyMC's NUTS compile with) and JAX (:func:`register_jax`) back ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

_KERNEL_VERSION = 2


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


@register_funcify_default_op_cache_key(BernoulliLogit)
def _numba_bernoulli_logit(op: BernoulliLogit, node: Apply, **kwargs: Any) -> Any:
    @numba_njit
    def terms(y: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = eta.shape[0]
        lp = np.empty(n, dtype=eta.dtype)
        slope = np.empty(n, dtype=eta.dtype)
        for i in range(n):
            e = eta[i]
            t = np.exp(-abs(e))
            # log(1 + t) rather than log1p(t): t lies in (0, 1], so the absolute error is at
            # most one rounding of 1 + t (1e-16 per respondent), and libm's log is 2.5x
            # faster than its log1p here.
            log_term = np.log(1.0 + t)
            if e > 0:
                lp[i] = y[i] * e - e - log_term
                slope[i] = y[i] - 1.0 / (1.0 + t)
            else:
                lp[i] = y[i] * e - log_term
                slope[i] = y[i] - t / (1.0 + t)
        return lp, slope

    # PyTensor caches compiled kernels by Op and props, not by source: bump this number
    # whenever the loop above changes, or an older compiled kernel is reused.
    return terms, _KERNEL_VERSION


def register_jax() -> None:
    """Teach PyTensor's JAX back end the fused likelihood (imports JAX, so only when asked).

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


def bernoulli_logit_logp(value: pt.TensorVariable, eta: pt.TensorVariable) -> pt.TensorVariable:
    """Each respondent's ``log P(value | logit eta)`` (0/1 answers), through :class:`BernoulliLogit`."""
    return bernoulli_logit(pt.cast(value, eta.dtype), eta)[0]
