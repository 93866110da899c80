import numpy as np
import pytest
from scipy.special import expit

from pas_bayes.gaps import demographic_gaps
from pas_bayes.ppc import replicated_shares

from .test_predictions import hand_posterior


def test_gap_is_the_probability_difference_between_levels():
    X = np.zeros((6, 1))
    post = hand_posterior(X, slope=0.0, intercept=0.3, demo_effect=[0.2, -0.6, 0.0],
                          demo_idx=np.array([0, 0, 1, 1, 2, 2]))
    table, draws = demographic_gaps(post)
    row = table.set_index("level").loc["l1"]
    assert row["reference"] == "l0" and row["respondents"] == 2
    assert row["mean"] == pytest.approx(100 * (expit(0.3 - 0.6) - expit(0.3 + 0.2)))
    assert row["prob_below_reference"] == 1.0
    assert set(draws) == {("g", "l1"), ("g", "l2")}


def test_replicated_shares_match_a_certain_model():
    """When the model is certain (|eta| huge), every replication equals the observed data."""
    X = np.zeros((8, 1))
    post = hand_posterior(X, slope=0.0, intercept=0.0, borough_idx=np.array([0, 0, 0, 0, 1, 1, 1, 1]), draws=5)
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)
    post.borough_intercept[:] = np.array([50.0, -50.0])
    object.__setattr__(post, "y", y)
    table = replicated_shares(post, seed=1).set_index("level")
    assert table.loc["b0", "observed_pct"] == 100 and table.loc["b0", "replicated_mean"] == 100
    assert table.loc["b1", "replicated_q95"] == 0 and table.loc["b1", "ppp"] == 1.0
