import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from pas_bayes.fit import load_run
from pas_bayes.predictions import (
    Posterior,
    average_marginal_effects,
    average_over,
    group_means,
    load_posterior,
    marginal_effect_draws,
    select_draws,
)


def hand_posterior(X, *, slope=1.0, intercept=0.0, borough_idx=None, demo_effect=None, demo_idx=None, draws=1):
    """A posterior whose values are chosen by hand: one borough, one ward unless told."""
    n, d = X.shape
    borough_idx = np.zeros(n, dtype=int) if borough_idx is None else borough_idx
    n_b = int(borough_idx.max()) + 1
    slopes = np.broadcast_to(np.asarray(slope, dtype=float), (draws, n_b, d)).copy()
    demo = {} if demo_effect is None else {"g": np.tile(np.asarray(demo_effect, float), (draws, 1))}
    return Posterior(
        drivers=[f"d{j}" for j in range(d)], boroughs=[f"b{j}" for j in range(n_b)],
        wards=[f"w{j}" for j in range(n_b)],
        X=X.astype(float), X_centre=np.zeros(d), y=np.zeros(n), borough_idx=borough_idx, ward_idx=borough_idx,
        ward_borough_idx=np.arange(n_b), demographic_idx={} if demo_idx is None else {"g": demo_idx},
        demographic_levels={} if demo_effect is None else {"g": [f"l{j}" for j in range(len(demo_effect))]},
        intercept=np.full(draws, intercept), borough_intercept=np.zeros((draws, n_b)),
        ward_intercept=np.zeros((draws, n_b)), borough_slope=slopes, ward_slope_dev=np.zeros((draws, n_b, d)),
        demographic_effect=demo)


def test_binary_and_composite_contrasts_match_the_formula():
    X = np.array([[0.0, -1.0], [1.0, 0.5], [0.0, 2.0]])
    post = hand_posterior(X, slope=[0.8, 0.5], intercept=-0.2)
    eta = -0.2 + X @ np.array([0.8, 0.5])
    binary = marginal_effect_draws(post, "d0")[0]
    expected = expit(eta - 0.8 * X[:, 0] + 0.8) - expit(eta - 0.8 * X[:, 0])
    assert binary == pytest.approx(expected)
    composite = marginal_effect_draws(post, "d1")[0]
    assert composite == pytest.approx(expit(eta + 0.5) - expit(eta))


def test_group_means_match_pandas():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 50))
    index = rng.integers(0, 4, size=50)
    index[index == 3] = 2  # group 3 left empty on purpose
    got = group_means(values, index, 4)
    expected = pd.DataFrame(values.T).groupby(index).mean().T.to_numpy()
    assert got[:, :3] == pytest.approx(expected)
    assert np.isnan(got[:, 3]).all()


def test_all_driver_pass_equals_one_driver_at_a_time(small_run):
    post = load_posterior(load_run(small_run).idata, max_draws=120)
    together = average_marginal_effects(post)
    for d, driver in enumerate(post.drivers):
        alone = average_over(marginal_effect_draws(post, driver), post)
        assert together["borough"][:, :, d] == pytest.approx(alone["borough"])
        assert together["ward"][:, :, d] == pytest.approx(alone["ward"])


def test_linear_predictor_reproduces_the_model(small_run):
    """eta from the stored parts equals a direct sum for one respondent and one draw."""
    run = load_run(small_run)
    post = load_posterior(run.idata, max_draws=10)
    assert post.X_centre == pytest.approx(post.X.mean(axis=0))
    eta = post.eta(slice(0, 1))[0]
    i = 17
    b, w = post.borough_idx[i], post.ward_idx[i]
    manual = (post.intercept[0] + post.borough_intercept[0, b] + post.ward_intercept[0, w]
              + (post.X[i] - post.X_centre) @ (post.borough_slope[0, b] + post.ward_slope_dev[0, w])
              + sum(post.demographic_effect[g][0, post.demographic_idx[g][i]] for g in post.demographic_effect))
    assert eta[i] == pytest.approx(manual)


def test_draw_selection_is_even_and_bounded():
    assert select_draws(4, 10, 100).tolist() == list(range(40))
    picked = select_draws(4, 1000, 100)
    assert picked.size == 100 and picked[0] == 0 and picked[-1] == 3999
