"""A synthetic dashboard with a known truth, written in MOPAC's published layout.

The generating process is the model's own story told forwards, with the
survey's sampling done respondent by respondent: latent quarterly rates per
borough and measure (London random walk + borough level + borough random walk,
the outcome driven by the drivers' between and within parts); each quarter ~100
respondents a borough, answers beta-binomial so that the variance is the
design effect times the binomial; published value = the rolling four-quarter
proportion rounded to two decimals; London = population-weighted boroughs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from pas_bayes.atomic import atomic_write, atomic_write_text, refuse_existing
from pas_bayes.dashboard.model import driver_scaling
from pas_bayes.dashboard.read import MEASURE_BY_KEY
from pas_bayes.geography import BOROUGH_NAMES, POPULATION_2021


@dataclass(frozen=True)
class DashboardTruth:
    """The parameters a synthetic dashboard is drawn from (log-odds scale)."""

    intercept: dict[str, float] = field(default_factory=lambda: {
        "good_job": 0.7, "listen": 1.0, "informed": 0.1, "relied_on": 1.1, "treat_fairly": 1.0,
        "understand_issues": 0.8, "trust": 1.4})
    london_step_sd: float = 0.08
    borough_level_sd: float = 0.25
    borough_step_sd: float = 0.06
    between_effect: dict[str, float] = field(default_factory=lambda: {"listen": 0.25, "informed": 0.05})
    within_effect: dict[str, float] = field(default_factory=lambda: {"listen": 0.15, "informed": 0.0})
    within_slope_sd: float = 0.05
    design_effect: float = 1.8


@dataclass(frozen=True)
class DashboardSimulation:
    """Settings of a synthetic dashboard."""

    seed: int = 2014
    n_boroughs: int = 32
    n_windows: int = 37
    first_window: str = "2014Q4"
    outcome: str = "good_job"
    drivers: tuple[str, ...] = ("listen", "informed")
    n_window: int = 400
    truth: DashboardTruth = field(default_factory=DashboardTruth)


def simulate_dashboard(settings: DashboardSimulation) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Draw a dashboard: (borough sheet, MPS sheet, truth).

    The sheets are long frames in the published layout (Date, Survey, Borough,
    Measure, Proportion[, MPS]) with proportions as floats; :func:`write_dashboard`
    writes them as the CSV exports (``;`` and decimal commas).
    """
    rng = np.random.default_rng(settings.seed)
    t_ = settings.truth
    boroughs = list(BOROUGH_NAMES[: settings.n_boroughs])
    n_b, n_j = len(boroughs), settings.n_windows
    n_t = n_j + 3
    windows = pd.period_range(settings.first_window, periods=n_j, freq="Q")
    measures = (settings.outcome, *settings.drivers)

    def walk(shape: tuple[int, ...], sd: float) -> np.ndarray:
        steps = rng.normal(0.0, sd, size=(*shape, n_t - 1))
        return np.concatenate([np.zeros((*shape, 1)), np.cumsum(steps, axis=-1)], axis=-1)

    def centred(x: np.ndarray, axis: int) -> np.ndarray:
        return x - x.mean(axis=axis, keepdims=True)

    eta, parts = {}, {}
    for m in measures:
        level = centred(rng.normal(0.0, t_.borough_level_sd, n_b), 0)
        own = centred(walk((n_b,), t_.borough_step_sd), 0)
        own = own - own.mean(axis=1, keepdims=True)
        eta[m] = t_.intercept.get(m, 0.5) + walk((), t_.london_step_sd)[None, :] + level[:, None] + own
        parts[m] = (level, own)
    # Drivers' between / within parts on the data's own per-SD scale, as the model defines them.
    slopes = {}
    rates_q = {m: expit(eta[m]) for m in settings.drivers}
    published, counts = {}, {}
    n_q = settings.n_window // 4
    rho = (t_.design_effect - 1.0) / (n_q - 1)

    def survey(rate_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Beta-binomial answers: variance = design_effect * binomial variance.
        a = rate_q * (1 - rho) / rho
        b = (1 - rate_q) * (1 - rho) / rho
        yes = rng.binomial(n_q, rng.beta(a, b))
        window_yes = np.stack([yes[:, j:j + 4].sum(axis=1) for j in range(n_j)], axis=1)
        return np.round(window_yes / (4 * n_q), 2), window_yes

    for m in settings.drivers:
        published[m], counts[m] = survey(rates_q[m])
    scaling = driver_scaling({m: published[m] for m in settings.drivers}).set_index("driver")
    add = np.zeros((n_b, n_t))
    for m in settings.drivers:
        level, own = parts[m]
        xb = level / scaling.loc[m, "between_sd"]
        xw = own / scaling.loc[m, "within_sd"]
        slopes[m] = t_.within_effect.get(m, 0.0) + rng.normal(0.0, t_.within_slope_sd, n_b)
        add += t_.between_effect.get(m, 0.0) * xb[:, None] + slopes[m][:, None] * xw
    eta[settings.outcome] = eta[settings.outcome] + add
    rate_q = expit(eta[settings.outcome])
    published[settings.outcome], counts[settings.outcome] = survey(rate_q)
    true_rate = np.stack([rate_q[:, j:j + 4].mean(axis=1) for j in range(n_j)], axis=1)

    weights = np.array([POPULATION_2021[b] for b in boroughs], dtype=float)
    weights /= weights.sum()
    dates = [w.end_time.strftime("%d/%m/%Y") for w in windows]
    rows, london_rows = [], []
    for m in measures:
        label = MEASURE_BY_KEY[m].label
        london = np.round(weights @ (counts[m] / (4 * n_q)), 2)
        for j, date in enumerate(dates):
            london_rows.append({"Date": date, "Survey": "PAS", "Borough": "MPS", "Measure": label,
                                "Proportion": london[j]})
            for b, name in enumerate(boroughs):
                rows.append({"Date": date, "Survey": "PAS", "Borough": name, "Measure": label,
                             "Proportion": published[m][b, j], "MPS": london[j]})
    truth = {
        "format": "pas_bayes.dashboard_truth/1",
        "settings": {k: v for k, v in asdict(settings).items() if k != "truth"},
        "parameters": asdict(t_),
        "boroughs": boroughs,
        "windows": [str(w) for w in windows],
        "within_slope": {m: dict(zip(boroughs, map(float, s), strict=True)) for m, s in slopes.items()},
        "rate": true_rate.round(6).tolist(),
        "london_rate": (weights @ true_rate).round(6).tolist(),
    }
    return pd.DataFrame(rows), pd.DataFrame(london_rows), truth


def _to_csv(frame: pd.DataFrame) -> str:
    # The published exports: ';'-separated, decimal commas.
    return frame.to_csv(sep=";", index=False, decimal=",", float_format="%.2f")


def write_dashboard(settings: DashboardSimulation, out: str | Path, *, force: bool = False) -> dict[str, Path]:
    """Write ``borough.csv``, ``mps.csv`` and ``truth.json`` into ``out``."""
    out = Path(out)
    paths = {"borough": out / "borough.csv", "mps": out / "mps.csv", "truth": out / "truth.json"}
    refuse_existing(list(paths.values()), force=force)
    borough, mps, truth = simulate_dashboard(settings)
    atomic_write(paths["borough"], lambda p: Path(p).write_text(_to_csv(borough)), force=force)
    atomic_write(paths["mps"], lambda p: Path(p).write_text(_to_csv(mps)), force=force)
    atomic_write_text(paths["truth"], json.dumps(truth, indent=1) + "\n", force=force)
    return paths
