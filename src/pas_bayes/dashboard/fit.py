"""Fit a dashboard spec and write a run folder like any other.

The folder has the same files as a respondent-level run (``posterior.zarr``,
``spec.json``, ``provenance.json``, ``exclusions.csv``), so ``pas-bayes
diagnose`` works on it unchanged, plus ``driver_scaling.csv`` (the SDs the
driver effects are per) and ``london.csv`` (the published London series the
fit is checked against, not fitted to).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pas_bayes.atomic import refuse_existing
from pas_bayes.dashboard.model import STORED, Layout, build_dashboard_model
from pas_bayes.dashboard.read import DashboardData
from pas_bayes.dashboard.spec import DashboardSpec
from pas_bayes.fit import run_provenance, sample_posterior, write_run_folder


def rows_report(data: DashboardData, spec: DashboardSpec, lay: Layout) -> pd.DataFrame:
    """What happened to every row of the file, by reason; adds up to the rows read."""
    frame = data.frame
    in_model = frame["measure"].isin(spec.measures)
    held = frame["quarter"].isin(lay.windows[~lay.fitted])
    rows = [{"reason": "borough value used in the fit", "rows": int((in_model & ~held).sum())},
            {"reason": f"borough value held out (last {spec.holdout} quarters), used to check predictions",
             "rows": int((in_model & held).sum())},
            {"reason": "measure not in this model", "rows": int((~in_model).sum())}]
    rest = data.rows[data.rows["reason"] != "borough value read"].to_dict("records")
    table = pd.DataFrame(rows + rest)
    table = table[(table["rows"] > 0) | (table.index == 0)].reset_index(drop=True)
    assert int(table["rows"].sum()) == data.n_input_rows, (table, data.n_input_rows)
    return table


def fit_dashboard(spec: DashboardSpec, data: DashboardData, out: str | Path, *, force: bool = False,
                  progressbar: bool = True, command: list[str] | None = None) -> Path:
    """Build the dashboard model, sample it, and write a run folder atomically.

    Parameters
    ----------
    spec
        Outcome, drivers, holdout, priors and sampler settings.
    data
        The read dashboard.
    out
        Run folder to create.
    force
        Replace ``out`` if it exists.
    command
        The command line, recorded in provenance.

    Raises
    ------
    RunFolderError
        When ``out`` exists and ``force`` is false (checked before sampling).
    """
    out = Path(out)
    refuse_existing([out], force=force)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    model, lay = build_dashboard_model(data, spec)
    stored = [v for v in STORED if v in model.named_vars]
    idata = sample_posterior(model, spec, progressbar=progressbar, var_names=stored)
    wall = time.perf_counter() - clock
    # The published values, NaN where nothing was published (PyMC data cannot hold NaN, and the
    # likelihood uses whitened values): kept beside the posterior for the figures and checks.
    published = xr.DataArray(np.stack([lay.values[m] for m in spec.measures]),
                             dims=("measure", "borough", "window"),
                             coords={"measure": list(spec.measures), "borough": lay.boroughs,
                                     "window": [str(w) for w in lay.windows]})
    idata["constant_data"] = xr.DataTree(idata["constant_data"].to_dataset().assign(published=published))
    rows = rows_report(data, spec, lay)
    provenance = {
        "kind": "dashboard",
        "created": started.isoformat(timespec="seconds"),
        "data_file": str(data.path.resolve()),
        "data_sha256": data.sha256,
        "data_rows": data.n_input_rows,
        "rows_modelled": int(rows.loc[0, "rows"]),
        "london_source": data.london_source,
        "boroughs": len(lay.boroughs),
        "windows": [str(lay.windows[0]), str(lay.windows[-1])],
        "held_out": [str(w) for w in lay.windows[~lay.fitted]],
        "reader_notes": data.notes,
        **run_provenance(spec, idata, wall, command),
    }
    idata.attrs.update({"pas_bayes_spec_sha256": spec.digest(), "pas_bayes_data_sha256": data.sha256})
    tables = {"exclusions.csv": rows, "driver_scaling.csv": lay.scaling,
              "london.csv": data.london.assign(quarter=lambda f: f["quarter"].astype(str))}
    return write_run_folder(out, idata, spec.to_dict(), provenance, tables=tables, spec_source=spec.source,
                            force=force)
