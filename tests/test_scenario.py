import numpy as np
import pytest
from scipy.special import expit

from pas_bayes.errors import QueryError
from pas_bayes.scenario import Scenario, describe, run_scenario

from .test_predictions import hand_posterior


def binary_world():
    X = np.zeros((10, 2))
    X[:3, 0] = 1.0  # 30% see officers weekly
    X[:, 1] = np.linspace(-1, 1, 10)
    return hand_posterior(X, slope=[1.0, 0.5], intercept=-0.5), X


def test_raising_a_yes_no_driver_converts_a_share_of_the_rest():
    post, X = binary_world()
    eta = -0.5 + X @ np.array([1.0, 0.5])
    gain_non_seers = (expit(eta + 1.0) - expit(eta))[3:]
    row = run_scenario(post, Scenario("d0", 1.0)).iloc[0]
    assert row["change_pp_mean"] == pytest.approx(100 * gain_non_seers.sum() / 10)
    half = run_scenario(post, Scenario("d0", 0.65)).iloc[0]  # half of the non-seers convert
    assert half["change_pp_mean"] == pytest.approx(row["change_pp_mean"] / 2)
    assert run_scenario(post, Scenario("d0", 0.3)).iloc[0]["change_pp_mean"] == pytest.approx(0.0)
    assert run_scenario(post, Scenario("d0", 0.0)).iloc[0]["change_pp_mean"] < 0


def test_shifting_a_composite_moves_everyone():
    post, X = binary_world()
    eta = -0.5 + X @ np.array([1.0, 0.5])
    row = run_scenario(post, Scenario("d1", 1.0)).iloc[0]
    assert row["current"] == pytest.approx(0.0)
    assert row["change_pp_mean"] == pytest.approx(100 * (expit(eta + 0.5) - expit(eta)).mean())
    assert "from +0.00 to +1.00 SD" in describe(row, "say yes")


@pytest.mark.parametrize("scenario, match", [
    (Scenario("d0", 1.4), "between 0 and 1"),
    (Scenario("d1", 9.0), "between -3 and 3"),
    (Scenario("nope", 0.5), "not in this run"),
    (Scenario("d0", 0.5, borough="Narnia"), "not in this run"),
])
def test_impossible_scenarios_are_refused(scenario, match):
    post, _ = binary_world()
    with pytest.raises(QueryError, match=match):
        run_scenario(post, scenario)
