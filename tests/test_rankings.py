import numpy as np

from pas_bayes.rankings import rank_draws, rank_table


def test_rank_one_is_the_largest():
    assert rank_draws(np.array([[0.1, 0.5, 0.3]])).tolist() == [[3, 1, 2]]


def test_a_clearly_larger_place_is_first_with_certainty_and_a_close_pair_shares():
    rng = np.random.default_rng(1)
    s = 4000
    samples = np.column_stack([rng.normal(10, 0.5, s), rng.normal(5, 1, s), rng.normal(5, 1, s),
                               rng.normal(0, 0.5, s)])
    table = rank_table(samples, np.full(s, 4.0), ["big", "a", "b", "small"], top=1).set_index("place")
    assert table.loc["big", "prob_top"] == 1.0
    assert (table.loc["big", "rank_q05"], table.loc["big", "rank_q95"]) == (1, 1)
    assert table.loc["small", "rank_q05"] == 4 and table.loc["small", "prob_above_reference"] == 0.0
    # Two places with the same distribution: each is second about half the time, rank interval 2-3.
    assert abs(table.loc["a", "rank_mean"] - table.loc["b", "rank_mean"]) < 0.1
    assert (table.loc["a", "rank_q05"], table.loc["a", "rank_q95"]) == (2, 3)
    assert 0.8 < table.loc["a", "prob_above_reference"] < 0.9  # P(N(5,1) > 4) = 0.84
