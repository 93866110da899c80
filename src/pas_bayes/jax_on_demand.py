"""JAX is imported only when the JAX back end is asked for (``sampler.backend = "jax"``).

With JAX installed, ``import arviz_base`` registers a lazy, not yet executed ``jax``
module in ``sys.modules`` (for its NumPyro converter). SciPy's array-API helpers then see
``"jax" in sys.modules`` and, in the first ``scipy.special.logsumexp`` (PSIS-LOO calls
it), look up ``jax.Array`` on that stand-in, which imports all of JAX: 130 MB of every
fit's memory, measured, for a back end the fit does not use. Removing the unexecuted
stand-in keeps SciPy from seeing it; ``import jax`` still works as usual, and ArviZ's
NumPyro converter imports JAX itself when it is used.

(When NumPyro is missing, ArviZ's lazy lookup of it walks every loaded module through
``inspect`` and so executes the JAX stand-in at once: NumPyro is installed beside JAX for
that reason, in the ``jax`` and ``test`` extras.)
"""

from __future__ import annotations

import importlib.util
import sys


def forget_unloaded_jax() -> bool:
    """Drop a lazy ``jax`` stand-in that nothing has executed yet; True when one was dropped."""
    module = sys.modules.get("jax")
    # importlib's lazy module keeps its own class until first use, then becomes an ordinary
    # module: the type (read without touching the module's attributes) says which it is.
    if module is None or type(module).__name__ != "_LazyModule":
        return False
    del sys.modules["jax"]
    return True


def load_arviz_without_jax() -> None:
    """Import ArviZ's base package and drop the JAX stand-in it registers (when JAX is installed)."""
    if importlib.util.find_spec("jax") is None:
        return
    import arviz_base  # noqa: F401  (registers the stand-in)

    forget_unloaded_jax()
