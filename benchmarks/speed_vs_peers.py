"""The benchmark model fitted by pas_bayes and its peers, side by side in one run.

Every job runs in its own process (so its peak memory is its own, read from the
kernel's accounting of that process when it ends) on the same synthetic survey:

* ``pas_bayes``: ``fit_run`` with ``benchmarks/specs/full_year.toml`` at its own
  settings (what ``pas-bayes fit`` does: sampling, PSIS-LOO, the run folder), then the
  diagnostics every run gets;
* ``pas_bayes_advi``: the approximate preview (``--sampler advi``), with its error
  against the ``pas_bayes`` job's NUTS posterior of the same run (London effects, group
  SDs and borough slopes: largest mean error in posterior SDs, median SD ratio);
* ``pas_bayes_jax``: the default fit on nutpie's JAX back end (``--backend jax``: the
  route for a GPU; on this machine, JAX on the CPU);
* ``nutpie_plain``: the same model written plainly (``benchmarks/plain_model.py``),
  sampled by nutpie through ``pm.sample`` (the baseline the targets are set against);
* ``pymc_plain``: that model with PyMC's own NUTS;
* ``brms``: the same model in brms (``benchmarks/peers/brms_speed.R``, R and brms from
  Debian's packages, installed when missing).

Sizes: ``1y`` (one financial year, 400 a borough: 12,800 respondents), ``5y`` (five
years, 64,000) and ``256k`` (one year, 8,000 a borough). The table (``--out``,
default ``benchmarks/results/speed_vs_peers.csv`` and ``.md``) has wall time split
into compile and sampling (and for pas_bayes the survey read, model build, run folder
write and PSIS-LOO), minimum bulk and tail ESS over every parameter, ESS per
second of sampling, maximum R-hat, divergences and peak memory, and each job's ratio
to ``nutpie_plain`` at the same size. Nothing asserts a time; the table is the result.
Rows are appended as jobs finish, so an interrupted run keeps what it measured.

    .venv/bin/python benchmarks/speed_vs_peers.py --sizes 1y --jobs pas_bayes,nutpie_plain,pymc_plain
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results_table import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "benchmarks" / "specs" / "full_year.toml"
SIZES = {"1y": {"per_borough": 400, "years": ()},
         "5y": {"per_borough": 400, "years": ("FY 19-20", "FY 20-21", "FY 21-22", "FY 22-23", "FY 23-24")},
         "256k": {"per_borough": 8000, "years": ()}}
JOBS = ("pas_bayes", "pas_bayes_advi", "pas_bayes_jax", "nutpie_plain", "pymc_plain", "brms")
#: Compared between the approximate preview and pas_bayes's NUTS fit of the same run.
COMPARED = ("beta", "sd_borough_intercept", "sd_borough_slope", "sd_ward_intercept", "sd_ward_slope",
            "borough_slope")


def make_survey(size: str, seed: int, folder: Path) -> Path:
    """Write the synthetic survey of ``size`` (real PAS layout) into ``folder``; return its path."""
    from pas_bayes.simulate import SimulationSettings, simulate_survey, write_simulation

    settings = SimulationSettings(seed=seed, **SIZES[size])
    return write_simulation(simulate_survey(settings), folder, settings)


def _diagnostics(idata, per=None) -> dict[str, float]:
    from pas_bayes.diagnostics import parameter_diagnostics

    per = parameter_diagnostics(idata) if per is None else per
    stats = idata["sample_stats"]
    steps = "n_steps" if "n_steps" in stats.data_vars else None
    return {"min_ess_bulk": float(per["ess_bulk"].min()), "min_ess_tail": float(per["ess_tail"].min()),
            "max_r_hat": float(per["r_hat"].max()), "divergences": int(stats["diverging"].sum()),
            "worst_ess_parameter": str(per.loc[per["ess_bulk"].idxmin(), "parameter"]),
            "worst_r_hat_parameter": str(per.loc[per["r_hat"].idxmax(), "parameter"]),
            "steps_per_draw": float(stats[steps].mean()) if steps else float("nan"),
            "n_parameters": len(per)}


def _moments(idata) -> dict[str, dict[str, list[float]]]:
    post = idata["posterior"]
    return {v: {"mean": post[v].mean(("chain", "draw")).values.ravel().tolist(),
                "sd": post[v].std(("chain", "draw")).values.ravel().tolist()} for v in COMPARED}


def approximation_error(approx: dict, nuts: dict) -> dict[str, float]:
    """How far an approximation's means and SDs are from NUTS's, over the :data:`COMPARED` parameters.

    ``approx_max_error_in_sds``: the largest |mean difference| in NUTS posterior SDs;
    ``approx_median_sd_ratio``: the median of approximate SD / NUTS SD (below 1: too sure).
    """
    diff, ratio = [], []
    for v in COMPARED:
        m_a, m_n = np.array(approx[v]["mean"]), np.array(nuts[v]["mean"])
        s_a, s_n = np.array(approx[v]["sd"]), np.array(nuts[v]["sd"])
        diff.append(np.abs(m_a - m_n) / s_n)
        ratio.append(s_a / s_n)
    return {"approx_max_error_in_sds": float(np.concatenate(diff).max()),
            "approx_median_sd_ratio": float(np.median(np.concatenate(ratio)))}


def job_pas_bayes(data: Path, work: Path, seed: int, reference: Path, *, approximate: bool,
                  backend: str = "numba", spec_path: Path = SPEC) -> dict[str, float]:
    """pas_bayes's default fit (NUTS), on its JAX back end, or its approximate preview compared with that fit."""
    from pas_bayes.fit import fit_run, load_run
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    spec = load_spec(spec_path)
    spec = spec.with_sampler(seed=seed, name="advi" if approximate else None, backend=backend)
    clock = time.perf_counter()
    survey = read_survey(data, spec)
    read = time.perf_counter() - clock
    clock = time.perf_counter()
    out = fit_run(spec, survey, work / "run", progressbar=False)
    wall = time.perf_counter() - clock
    run = load_run(out)
    attrs = run.idata["posterior"].attrs
    phases = run.provenance.get("phase_seconds", {})
    row = {"respondents": len(survey.frame), "draws": spec.sampler.draws, "tune": spec.sampler.tune,
           "compile_s": float(attrs.get("compile_time", float("nan"))),
           "sampling_s": float(attrs["sampling_time"]), "wall_s": wall,
           # Where the rest of the wall time went (the survey is read before the fit's clock starts).
           "read_s": read, **{f"{k}_s": phases.get(k, float("nan")) for k in ("model_build", "posterior_write",
                                                                               "psis_loo", "parameter_diagnostics")}}
    # What no phase names: loading the sampler's statistics and small variables, the data
    # groups, the tables and provenance, waiting for the sampler's store to be deleted.
    row["other_s"] = wall - sum(phases.values())
    if not approximate:
        if backend == "numba":
            reference.write_text(json.dumps(_moments(run.idata)))
        # A fit whose first attempt diverged samples again (sampler.retry_target_accept): its
        # sampling_s above is both attempts, and the table says so.
        attempts = run.provenance.get("sampler_attempts", [{}])
        # One whose ESS fell just short samples more chains (sampler.more_chains_below_ess):
        # chains_kept says how many the posterior holds, sampling_s is all of them.
        row.update({"attempts": len(attempts), "first_attempt_divergences": attempts[0].get("divergences", 0),
                    "chains_kept": int(run.idata["posterior"].sizes["chain"])})
        # R-hat and ESS of every element, as the fit computed and stored them (inside wall_s).
        return {**row, **_diagnostics(run.idata, run.per_parameter)}
    # R-hat and ESS of independent draws from the approximation say nothing of its accuracy:
    # the error against NUTS is what the table shows for it.
    nan = float("nan")
    row.update({"min_ess_bulk": nan, "min_ess_tail": nan, "max_r_hat": nan, "divergences": 0,
                "steps_per_draw": nan, "n_parameters": nan, "tune": spec.sampler.advi_iterations})
    if reference.is_file():
        row.update(approximation_error(_moments(run.idata), json.loads(reference.read_text())))
    return row


def _job_plain(sampler: str, data: Path, seed: int, draws: int, tune: int) -> dict[str, float]:
    import pymc as pm
    import pytensor

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from plain_model import plain_model

    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    survey = read_survey(data, load_spec(SPEC))
    clock = time.perf_counter()
    model = plain_model(survey.frame)
    kwargs = {"mp_ctx": "forkserver"} if sampler == "pymc" else {}
    # Fast-math off, as pas_bayes samples, so the comparison is of the model, not of LLVM flags.
    with model, pytensor.config.change_flags(numba__fastmath=False):
        idata = pm.sample(draws=draws, tune=tune, chains=4, cores=2, random_seed=seed, nuts_sampler=sampler,
                          progressbar=False, **kwargs)
    wall = time.perf_counter() - clock
    sampling = float(idata["posterior"].attrs["sampling_time"])
    return {"respondents": len(survey.frame), "draws": draws, "tune": tune, "compile_s": wall - sampling,
            "sampling_s": sampling, "wall_s": wall, **_diagnostics(idata)}


def job_brms(data: Path, work: Path, seed: int, draws: int, tune: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
    from brms_agreement import ensure_r

    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    ensure_r()
    spec = load_spec(SPEC)  # the formula in brms_speed.R is this model
    frame = read_survey(data, spec).frame
    tidy = frame[["borough", "ward", "ethnicity", "age", "sex"]].copy()
    for d in spec.drivers:
        tidy[d] = frame[d] - frame[d].mean()
    tidy["positive"] = frame[spec.outcome].astype(int)
    tidy.to_csv(work / "tidy.csv", index=False)
    clock = time.perf_counter()
    subprocess.run(["Rscript", str(ROOT / "benchmarks" / "peers" / "brms_speed.R"), str(work / "tidy.csv"),
                    str(work / "brms.json"), "4", str(tune), str(draws), str(seed)], check=True)
    wall = time.perf_counter() - clock
    result = json.loads((work / "brms.json").read_text())
    return {"respondents": len(frame), "draws": draws, "tune": tune, "compile_s": result["compile_s"],
            "sampling_s": result["sampling_wall_s"], "wall_s": wall, "min_ess_bulk": result["min_ess_bulk"],
            "min_ess_tail": result["min_ess_tail"], "max_r_hat": result["max_r_hat"],
            "divergences": int(result["divergences"]), "steps_per_draw": float("nan"),
            "n_parameters": int(result["n_parameters"])}


def run_job(job: str, data: Path, seed: int, draws: int, tune: int, spec_path: Path = SPEC) -> dict[str, float]:
    """Run one job in this process (the child side of :func:`measure`)."""
    reference = data.parent / "pas_bayes_nuts_moments.json"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if job in ("pas_bayes", "pas_bayes_advi", "pas_bayes_jax"):
            return job_pas_bayes(data, work, seed, reference, approximate=job == "pas_bayes_advi",
                                 backend="jax" if job == "pas_bayes_jax" else "numba", spec_path=spec_path)
        if job in ("nutpie_plain", "pymc_plain"):
            return _job_plain(job.removesuffix("_plain"), data, seed, draws, tune)
        if job == "brms":
            return job_brms(data, work, seed, draws, tune)
    raise ValueError(f"unknown job {job!r}; known: {JOBS}")


def measure(job: str, data: Path, seed: int, draws: int, tune: int, spec_path: Path = SPEC) -> dict[str, float]:
    """Run ``job`` in a child process; its result and peak resident memory (MB)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = Path(handle.name)
    cmd = [sys.executable, __file__, "--child", job, "--data", str(data), "--seed", str(seed),
           "--draws", str(draws), "--tune", str(tune), "--result", str(result_file), "--spec", str(spec_path)]
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{job} on {data.name} failed (exit {proc.returncode}); its output is above")
    result = json.loads(result_file.read_text())
    result_file.unlink()
    # ru_maxrss is in KiB on Linux: the largest resident set of the child or any child it waited for.
    return {**result, "peak_memory_mb": round(usage.ru_maxrss / 1024)}



def finish_table(rows: list[dict]) -> pd.DataFrame:
    """The results table: rates and each job's ratio to ``nutpie_plain`` at the same size."""
    table = pd.DataFrame(rows)
    table["min_ess_bulk_per_s"] = table["min_ess_bulk"] / table["sampling_s"]
    table["min_ess_tail_per_s"] = table["min_ess_tail"] / table["sampling_s"]
    ref = table[table["job"] == "nutpie_plain"].set_index("size")
    for col, name in (("min_ess_bulk_per_s", "bulk_ess_per_s_vs_nutpie_plain"),
                      ("sampling_s", "sampling_time_vs_nutpie_plain")):
        table[name] = [row[col] / ref.loc[row["size"], col] if row["size"] in ref.index else float("nan")
                       for _, row in table.iterrows()]
    return table.round({"compile_s": 1, "sampling_s": 1, "wall_s": 1, "read_s": 1, "model_build_s": 1,
                        "posterior_write_s": 1, "psis_loo_s": 1, "parameter_diagnostics_s": 1,
                        "min_ess_bulk": 0, "min_ess_tail": 0,
                        "max_r_hat": 4, "steps_per_draw": 1, "min_ess_bulk_per_s": 2, "min_ess_tail_per_s": 2,
                        "bulk_ess_per_s_vs_nutpie_plain": 2, "sampling_time_vs_nutpie_plain": 2,
                        "approx_max_error_in_sds": 2, "approx_median_sd_ratio": 2})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1y", help=f"comma-separated, of {list(SIZES)}")
    parser.add_argument("--jobs", default="pas_bayes,nutpie_plain,pymc_plain",
                        help=f"comma-separated, of {list(JOBS)}")
    parser.add_argument("--seed", type=int, default=8080, help="survey and sampler seed (a survey no test uses)")
    parser.add_argument("--draws", type=int, default=1000,
                        help="draws per chain for the peers (pas_bayes uses its spec)")
    parser.add_argument("--tune", type=int, default=1000, help="tuning draws per chain for the peers")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed_vs_peers"))
    parser.add_argument("--spec", default=str(SPEC), help="the spec pas_bayes's jobs fit (default: the benchmark one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_job(args.child, Path(args.data), args.seed, args.draws, args.tune, Path(args.spec))
        Path(args.result).write_text(json.dumps(result))
        return

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    command = "python benchmarks/speed_vs_peers.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            data = make_survey(size, args.seed, Path(tmp) / size)
            for job in args.jobs.split(","):
                print(f"== {job} on {size} ({data.name})", flush=True)
                rows.append({"size": size, "job": job,
                             **measure(job, data, args.seed, args.draws, args.tune, Path(args.spec))})
                table = finish_table(rows)
                table.to_csv(out.with_suffix(".csv"), index=False)
                out.with_suffix(".md").write_text(f"# Benchmark model, side by side (`{command}`)\n\n"
                                                  + markdown_table(table) + "\n")
                print(table.iloc[-1].to_string(), flush=True)


if __name__ == "__main__":
    main()
