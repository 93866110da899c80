"""pas_bayes: Bayesian multilevel models of what drives confidence and trust in the London police."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pas_bayes")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from pas_bayes.jax_on_demand import load_arviz_without_jax as _load_arviz_without_jax

_load_arviz_without_jax()
