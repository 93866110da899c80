"""The London driver effects of every run of a sweep, side by side: do the runs tell the same story?"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pas_bayes.codebook import Codebook
from pas_bayes.plots._style import OKABE_ITO, PlotResult

_COLOURS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow")]


def _run_label(row: pd.Series) -> str:
    return f"{row['spec']} | {row['data']} | seed {row['seed_index']}"


def plot_london_effects_by_run(effects: pd.DataFrame, failing: set[str] | frozenset[str] = frozenset()) -> PlotResult:
    """Each driver's London effect with its 90% interval, one line per run.

    Uses points (``pp`` rows) when every run has them, log-odds otherwise. Up to
    eight runs get a colour each; more runs are coloured by spec.

    Parameters
    ----------
    effects
        The sweep's effects table (:func:`pas_bayes.sweep.summary.effects_table`).
    failing
        Tasks whose diagnostics fail: drawn with hollow markers and named in the legend.

    Returns
    -------
    PlotResult
        The figure; the plotted London rows as numbers.
    """
    labels = {name: d.label for name, d in Codebook.default().drivers.items()}
    london = effects[effects["level"] == "london"]
    tasks = london["task"].unique()
    with_pp = set(london.loc[london["scale"] == "pp", "task"])
    scale = "pp" if with_pp == set(tasks) else "logit"
    rows = london[london["scale"] == scale].copy()
    rows["run"] = rows.apply(_run_label, axis=1)
    order = rows.groupby("driver")["mean"].mean().sort_values().index.tolist()
    runs = list(dict.fromkeys(rows["run"]))
    by_spec = len(runs) > len(_COLOURS)
    groups = list(dict.fromkeys(rows["spec"])) if by_spec else runs
    colour = {g: _COLOURS[i % len(_COLOURS)] for i, g in enumerate(groups)}

    fig, ax = plt.subplots(figsize=(9, 0.6 * len(order) * max(1.0, min(len(runs), 12) / 4) + 2))
    width = 0.7
    offsets = np.linspace(-width / 2, width / 2, len(runs)) if len(runs) > 1 else np.zeros(1)
    labelled: set[str] = set()
    for j, run in enumerate(runs):
        r = rows[rows["run"] == run].set_index("driver").reindex(order)
        group = r["spec"].iloc[0] if by_spec else run
        y = np.arange(len(order)) + offsets[j]
        ax.hlines(y, r["q05"], r["q95"], color=colour[group], linewidth=1.2)
        bad = r["task"].iloc[0] in failing
        label = f"{group} (diagnostics FAIL)" if bad else group
        ax.plot(r["q50"], y, "o", color=colour[group], markersize=3.5,
                markerfacecolor="white" if bad else colour[group], label=None if label in labelled else label)
        labelled.add(label)
    ax.axvline(0, color=OKABE_ITO["grey"], linewidth=0.8)
    ax.set_yticks(np.arange(len(order)), [labels.get(d, d) for d in order])
    ax.set_xlabel("Change in the share of positive answers (percentage points) per SD of the driver"
                  if scale == "pp" else "Effect on the log-odds of a positive answer per SD of the driver")
    strongest = rows.loc[rows.groupby("run")["mean"].idxmax(), "driver"]
    top = strongest.value_counts()
    name = labels.get(top.index[0], top.index[0])
    headline = (f"{name} has the largest London effect in {int(top.iloc[0])} of {len(runs)} runs"
                if top.iloc[0] > len(runs) / 2 else
                f"The runs do not agree on the largest London effect ({name} in {int(top.iloc[0])} of {len(runs)})")
    note = f"; {len(failing & set(rows['task']))} runs fail diagnostics (hollow)" if failing & set(rows["task"]) else ""
    ax.set_title(f"{headline}\n(medians with 90% intervals, one line per run{note})", loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 if scale == "pp" else -0.1), frameon=False,
              fontsize=7, ncol=2)
    numbers = rows[["task", "spec", "outcome", "data", "seed_index", "seed", "driver", "scale", "mean", "sd",
                    "q05", "q50", "q95"]].reset_index(drop=True)
    return PlotResult(fig, numbers)
