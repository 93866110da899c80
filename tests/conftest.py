"""Shared fixtures: a small synthetic survey and one short fit, made once per session.

Following bambi's habit, the fitted fixture is session-scoped (short chains,
fixed seeds) so the whole suite pays for one compilation and one sampling run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WARDS_2022 = SHARED / "geography" / "london_wards_2022_to_borough_MPS32.csv"
BUNDLED = ROOT / "data" / "pas_synthetic_FY23-24.csv"


def need_shared(path: Path) -> Path:
    """Skip (with the reason) when ../shared/data is absent; CI always has it."""
    if not path.exists():
        pytest.skip(f"{path} not found: these tests read the shared public data in place")
    return path


@pytest.fixture(scope="session")
def small_settings() -> SimulationSettings:
    return SimulationSettings(seed=11, per_borough=60)


@pytest.fixture(scope="session")
def small_survey(tmp_path_factory, small_settings) -> Path:
    """A 32-borough survey with 60 respondents a borough (1,920 rows), synthetic wards."""
    out = tmp_path_factory.mktemp("small_survey")
    return write_simulation(simulate_survey(small_settings), out, small_settings)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, small_survey) -> Path:
    """One short fit made through the command line, as a user would."""
    from pas_bayes.cli import main

    run = tmp_path_factory.mktemp("runs") / "confidence"
    status = main(["fit", str(ROOT / "models" / "confidence.toml"), "--data", str(small_survey),
                   "--out", str(run), "--draws", "300", "--tune", "400", "--chains", "2",
                   "--seed", "5", "--no-progress"])
    assert status == 0
    return run
