"""The block R-hat / ESS equal ArviZ's own, element by element."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr

from pas_bayes.convergence import rhat_ess


def _arviz(draws: np.ndarray, prob: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": (("chain", "draw", "p"), draws)})})
    tail = az.ess(tree, method="tail") if prob is None else az.ess(tree, method="tail", prob=prob)
    return (az.rhat(tree)["x"].values, az.ess(tree, method="bulk")["x"].values, tail["x"].values)


def _awkward_draws(n_chain: int, n_draw: int, seed: int) -> np.ndarray:
    """Parameters that exercise every branch: iid, strongly autocorrelated (long Geyer
    sequences), anti-correlated (negative lag 1), heavy-tailed, tied (discrete), chains
    stuck at different values, constant, a chain far off, and one NaN."""
    rng = np.random.default_rng(seed)
    cols = [rng.standard_normal((n_chain, n_draw))]
    for phi in (0.5, 0.95, 0.995, -0.7):
        e = rng.standard_normal((n_chain, n_draw))
        ar = np.empty_like(e)
        ar[:, 0] = e[:, 0]
        for t in range(1, n_draw):
            ar[:, t] = phi * ar[:, t - 1] + e[:, t]
        cols.append(ar)
    cols.append(rng.standard_cauchy((n_chain, n_draw)))
    cols.append(rng.poisson(1.5, (n_chain, n_draw)).astype(float))
    cols.append(np.repeat(np.arange(n_chain, dtype=float)[:, None], n_draw, axis=1))
    cols.append(np.full((n_chain, n_draw), 2.5))
    off = rng.standard_normal((n_chain, n_draw))
    off[0] += 3.0
    cols.append(off)
    cols.append(np.exp(rng.standard_normal((n_chain, n_draw))))
    with_nan = rng.standard_normal((n_chain, n_draw))
    with_nan[1, 7] = np.nan
    cols.append(with_nan)
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize(("n_chain", "n_draw", "seed"), [(4, 1000, 1), (4, 301, 2), (2, 40, 3), (8, 250, 4)])
def test_equal_to_arviz_on_awkward_parameters(n_chain: int, n_draw: int, seed: int) -> None:
    draws = _awkward_draws(n_chain, n_draw, seed)
    ours = rhat_ess(draws)
    theirs = _arviz(draws)
    for name, a, b in zip(("r_hat", "ess_bulk", "ess_tail"), ours, theirs, strict=True):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, err_msg=name)
    # The cases are what they claim: chains stuck apart give an enormous (or infinite) R-hat,
    # the parameter with a NaN draw NaN, iid draws an ESS near the number of draws.
    assert ours[0][7] > 1e3 and np.isnan(ours[1][-1])
    if n_draw >= 250:
        assert 0.7 < ours[1][0] / (n_chain * n_draw) < 1.4


def test_equal_to_arviz_with_a_given_tail_probability_and_one_chain() -> None:
    draws = _awkward_draws(4, 200, 5)
    for a, b in zip(rhat_ess(draws, prob=0.95), _arviz(draws, prob=0.95), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    one = draws[:1, :, :6]
    ours, theirs = rhat_ess(one), _arviz(one)
    assert np.isnan(ours[0]).all() and np.isnan(theirs[0]).all()
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-9)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-9)


def test_too_few_draws_or_a_wrong_shape() -> None:
    assert np.isnan(np.concatenate(rhat_ess(np.zeros((4, 3, 2))))).all()
    with pytest.raises(ValueError, match="shape"):
        rhat_ess(np.zeros((4, 100)))


def test_blocks_in_threads_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from pas_bayes import convergence

    draws = np.concatenate([_awkward_draws(4, 300, 6)] * 5, axis=2)  # 60 parameters
    whole = rhat_ess(draws)
    # Blocks of 7 parameters: the last one short, and each block's NaN rows in place.
    monkeypatch.setattr(convergence, "BLOCK_BYTES", 7 * 4 * 300 * 8)
    for threads in (1, 3):
        for a, b in zip(convergence.rhat_ess_in_blocks(draws, threads=threads), whole, strict=True):
            np.testing.assert_array_equal(a, b)
