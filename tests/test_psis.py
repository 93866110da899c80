"""The block-at-a-time PSIS-LOO gives ArviZ's pointwise ELPD and Pareto k."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from arviz_stats import loo

from pas_bayes.psis import good_k, psis_loo_points
from pas_bayes.psis import relative_ess as _r_eff  # the r_eff ArviZ's loo takes


def _arviz(log_lik: np.ndarray, posterior: xr.Dataset) -> tuple[np.ndarray, np.ndarray, float]:
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    ll = xr.DataArray(log_lik.reshape(chains, draws, -1), dims=("chain", "draw", "point"))
    tree = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": xr.Dataset({"y": ll})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = loo(tree, pointwise=True, var_name="y")
    return result.elpd_i.values, result.pareto_k.values, float(result.good_k)


@pytest.mark.parametrize("chains, draws", [(4, 1000), (2, 50)])
def test_block_psis_equals_arviz_point_by_point(chains, draws):
    """Light and heavy tails (k from below 0 to above 1), autocorrelated draws (r_eff < 1),
    and few draws (the tail then a fifth of them): the same ELPD and k as ArviZ."""
    rng = np.random.default_rng(11)
    n_samples = chains * draws
    # AR(1) draws: relative ESS well under 1, so the tail length depends on r_eff.
    z = np.zeros((chains, draws, 3))
    for t in range(1, draws):
        z[:, t] = 0.7 * z[:, t - 1] + rng.normal(size=(chains, 3))
    posterior = xr.Dataset({"beta": (("chain", "draw", "d"), z)})
    eta = rng.normal(0.4, 0.8, 150)[None, :] + rng.normal(0, 0.4, (n_samples, 150))
    log_lik = -np.logaddexp(0, -eta)
    # Points the posterior fits badly: a few draws with far higher likelihood give heavy tails.
    log_lik[:, :30] -= rng.standard_exponential((n_samples, 30)) * np.linspace(0.5, 8, 30)
    ours, ours_k = psis_loo_points(log_lik, r_eff=_r_eff(posterior))
    theirs, theirs_k, their_good_k = _arviz(log_lik, posterior)
    assert np.nanmax(theirs_k) > 0.7 and np.nanmin(theirs_k) < 0.3  # the cases above are all there
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours_k, theirs_k, rtol=1e-9, atol=1e-10)
    assert good_k(n_samples) == pytest.approx(their_good_k)


def test_a_point_whose_tail_cannot_be_fitted_is_left_unsmoothed_as_arviz_does():
    """Most draws at one value and a few above it: the tail's first quartile equals its
    minimum, so k is NaN and the raw importance ratios are used (ArviZ: the same)."""
    rng = np.random.default_rng(3)
    posterior = xr.Dataset({"beta": (("chain", "draw"), rng.normal(size=(2, 500)))})
    log_lik = rng.normal(-0.7, 0.1, (1000, 4))
    log_lik[:, 0] = -1.0
    log_lik[:7, 0] = -3.0 - rng.random(7)
    ours, ours_k = psis_loo_points(log_lik, r_eff=_r_eff(posterior))
    theirs, theirs_k, _ = _arviz(log_lik, posterior)
    assert np.isnan(theirs_k[0]) and np.isnan(ours_k[0])
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    np.testing.assert_allclose(ours_k[1:], theirs_k[1:], rtol=1e-9)
