"""The ``pas-bayes`` command: simulate, fit, sweep, prior-check, compare, diagnose, effects, plot, rankings,
scenario, gaps, report, and the dashboard commands.

Every subcommand is a thin layer over the package's functions; errors that a
user can fix (bad data, bad spec, an existing run) are printed as one message
and give exit status 2. ``diagnose`` exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pas_bayes.atomic import atomic_write, refuse_existing
from pas_bayes.errors import PASError, SpecError


def _simulate(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from pas_bayes.simulate import settings_from_record, simulate_survey, survey_filename, write_simulation

    try:
        truth = json.loads(args.truth_json) if args.truth_json else {}
        settings = settings_from_record({"seed": args.seed, "per_borough": args.per_borough,
                                         "financial_year": args.financial_year, "years": args.years or (),
                                         "truth": truth})
    except (ValueError, AttributeError) as exc:
        raise SpecError(f"--truth-json: {exc}. What to do: give a JSON object of outcome -> overrides, e.g. "
                        "'{\"confidence\": {\"borough_slope_sd\": {\"all\": 0}}}'") from exc
    settings = dataclasses.replace(settings, ward_lookup=args.ward_lookup, ward_lookup_2018=args.ward_lookup_2018)
    if args.from_prior:
        from pas_bayes.calibration import prior_survey
        from pas_bayes.spec import load_spec

        if args.prior_seed is None:
            raise SpecError("--from-prior needs --prior-seed N (the seed of the prior draw)")
        target = Path(args.out) / survey_filename(settings)
        refuse_existing([target, Path(args.out) / "prior_draw.zarr"], force=args.force)
        path = prior_survey(load_spec(args.from_prior), settings, args.out, seed=args.prior_seed)
        print(f"Wrote {path}: the outcome drawn from the priors of {args.from_prior} (prior_draw.zarr beside it)")
        return 0
    sim = simulate_survey(settings)
    path = write_simulation(sim, args.out, settings, force=args.force)
    print(f"Wrote {path} ({len(sim.survey)} respondents, {sim.truth['n_wards_sampled']} wards) "
          f"and its truth (truth.json, truth_effects.csv) in {args.out}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from pas_bayes.diagnostics import diagnose
    from pas_bayes.fit import fit_run, load_run
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    spec = load_spec(args.spec).with_sampler(draws=args.draws, tune=args.tune, chains=args.chains,
                                             seed=args.seed, name=args.sampler, cores=args.cores,
                                             target_accept=args.target_accept, backend=args.backend,
                                             retry_target_accept=args.retry_target_accept,
                                             more_chains_below_ess=args.more_chains_below_ess)
    data = Path(args.data) if args.data else spec.data_path()
    if data is None:
        raise SpecError(f"{args.spec}: no data file: give --data FILE or [data] path in the spec")
    refuse_existing([Path(args.out)], force=args.force)  # before reading or sampling anything
    survey = read_survey(data, spec, encoding=args.encoding)
    print(f"Read {survey.n_input_rows} rows from {data}:")
    for row in survey.exclusions.itertuples(index=False):
        print(f"  {row.rows:>7}  {row.reason}")
    if spec.sampler.name == "advi":
        print(f"APPROXIMATING {spec.name!r} ({spec.outcome}) with mean-field ADVI ({spec.sampler.advi_iterations} "
              f"iterations), then {spec.sampler.chains} x {spec.sampler.draws} draws, seed {spec.sampler.seed}: "
              "a preview, not MCMC")
    else:
        print(f"Fitting {spec.name!r} ({spec.outcome}) with {spec.sampler.name}: {spec.sampler.chains} chains "
              f"x {spec.sampler.draws} draws after {spec.sampler.tune} tuning, seed {spec.sampler.seed}")
    out = fit_run(spec, survey, args.out, force=args.force, progressbar=not args.no_progress,
                  command=["pas-bayes", *args.argv], loo=not args.no_loo)
    run = load_run(out)
    attempts = run.provenance.get("sampler_attempts", [])
    retried = [a for a in attempts if not a.get("added_chains")]
    if len(retried) > 1:
        print(f"The first attempt diverged ({attempts[0]['divergences']} divergent transitions at target "
              f"acceptance {attempts[0]['target_accept']}): its draws were discarded and the model sampled "
              f"again at {retried[-1]['target_accept']}")
    for added in (a for a in attempts if a.get("added_chains")):
        print(f"The {added['because']}: {added['added_chains']} more chains were sampled (seed {added['seed']}) "
              f"and kept with them ({run.idata['posterior'].sizes['chain']} chains in all)")
    print(f"Run written to {out} (sampling {run.provenance['sampling_seconds']:.0f} s)")
    print(diagnose(run.idata, run.provenance.get("loo"), run.per_parameter).to_text())
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from pas_bayes.dashboard.fit import fit_dashboard
    from pas_bayes.dashboard.read import read_dashboard
    from pas_bayes.dashboard.spec import DashboardSpec, load_dashboard_spec
    from pas_bayes.diagnostics import diagnose
    from pas_bayes.fit import load_run

    spec = load_dashboard_spec(args.spec) if args.spec else DashboardSpec()
    spec = spec.with_changes(outcome=args.outcome, drivers=tuple(args.drivers) if args.drivers is not None else None,
                             holdout=args.holdout, n_window=args.n_window)
    spec = spec.with_sampler(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed, cores=args.cores)
    refuse_existing([Path(args.out)], force=args.force)
    data = read_dashboard(args.file, london_path=args.london, sheet=args.sheet)
    print(f"Read {data.n_input_rows} rows from {args.file}: {data.frame['borough'].nunique()} boroughs, "
          f"{len(data.quarters)} quarters ({data.quarters[0]} to {data.quarters[-1]}); London from "
          f"{data.london_source}")
    for note in data.notes:
        print(f"  note: {note}")
    print(f"Fitting {spec.outcome} on {', '.join(spec.drivers) or 'no drivers'}"
          f"{f', holding out the last {spec.holdout} quarters' if spec.holdout else ''}: "
          f"{spec.sampler.chains} chains x {spec.sampler.draws} draws, seed {spec.sampler.seed}")
    out = fit_dashboard(spec, data, args.out, force=args.force, progressbar=not args.no_progress,
                        command=["pas-bayes", *args.argv])
    run = load_run(out)
    for row in run.exclusions.itertuples(index=False):
        print(f"  {row.rows:>7}  {row.reason}")
    print(f"Run written to {out} (sampling {run.provenance['sampling_seconds']:.0f} s)")
    print(diagnose(run.idata).to_text())
    return 0


def _simulate_dashboard(args: argparse.Namespace) -> int:
    from pas_bayes.dashboard.simulate import DashboardSimulation, write_dashboard

    settings = DashboardSimulation(seed=args.seed, n_boroughs=args.boroughs, n_windows=args.quarters)
    paths = write_dashboard(settings, args.out, force=args.force)
    print(f"Wrote {paths['borough']}, {paths['mps']} and the truth in {paths['truth']}")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from pas_bayes.diagnostics import diagnose
    from pas_bayes.fit import load_run

    run = load_run(args.run)
    report = diagnose(run.idata, run.provenance.get("loo"), run.per_parameter)
    unit = "published borough values" if run.kind == "dashboard" else "respondents"
    print(f"Diagnostics of {run.path} ({run.spec.name}, {run.provenance['rows_modelled']} {unit})")
    print(report.to_text())
    return 0 if report.passed else 1


def _write_table(path: Path, table: Any, run: Any, *, force: bool) -> None:
    """Write a result table; every row of an approximate run's tables says so (``inference``)."""
    how = run.idata["posterior"].attrs.get("approximate") if run is not None else None
    if how:
        table = table.assign(inference=f"approximate: {how}")
    atomic_write(path, lambda p: table.to_csv(p, index=False, float_format="%.6g"), force=force)


def _effects(args: argparse.Namespace) -> int:
    refuse_existing([Path(args.out)], force=args.force)
    from pas_bayes.effects import driver_effects
    from pas_bayes.fit import load_run

    run = load_run(args.run)
    if run.kind == "dashboard":
        from pas_bayes.dashboard.summaries import associations

        table = associations(run)
        if args.logit_only:
            table = table[table["scale"] == "logit"]
    else:
        from pas_bayes.effects import effect_correlations, group_slopes

        table = driver_effects(run.idata, probability_scale=not args.logit_only)
        out = Path(args.out)
        extras = {out.with_name(f"{out.stem}_by_group.csv"): group_slopes(run.idata),
                  out.with_name(f"{out.stem}_correlations.csv"): effect_correlations(run.idata)}
        extras = {path: frame for path, frame in extras.items() if not frame.empty}
        refuse_existing(list(extras), force=args.force)
        for path, frame in extras.items():
            _write_table(path, frame, run, force=args.force)
            print(f"Wrote {len(frame)} rows to {path}")
        _print_group_effects(extras)
    _write_table(Path(args.out), table, run, force=args.force)
    print(f"Wrote {len(table)} rows of driver effects ({', '.join(table['scale'].unique())}) to {args.out}")
    return 0


def _print_group_effects(tables: dict) -> None:
    for path, frame in tables.items():
        if path.stem.endswith("_correlations"):
            for r in frame.itertuples(index=False):
                print(f"  {r.level} correlation of {r.first} and {r.second}: {r.q50:+.2f} "
                      f"(90% interval {r.q05:+.2f} to {r.q95:+.2f})")
        else:
            for r in frame.itertuples(index=False):
                print(f"  {r.driver} effect, {r.group} {r.level}: {r.q50:.2f} (90% interval {r.q05:.2f} to "
                      f"{r.q95:.2f}); P(above the London average) {r.prob_above_average:.2f}")


def _prior_check(args: argparse.Namespace) -> int:
    from pas_bayes.atomic import atomic_write_text
    from pas_bayes.plots.prior_rates import plot_prior_rates
    from pas_bayes.prior_check import prior_rates, prior_verdict
    from pas_bayes.spec import load_spec
    from pas_bayes.summaries import outcome_phrase
    from pas_bayes.survey import read_survey

    spec = load_spec(args.spec)
    data = Path(args.data) if args.data else spec.data_path()
    if data is None:
        raise SpecError(f"{args.spec}: no data file: give --data FILE or [data] path in the spec")
    out = Path(args.out)
    targets = [out / "prior_rates.png", out / "prior_rates.csv", out / "prior_check.json"]
    refuse_existing(targets, force=args.force)
    survey = read_survey(data, spec)
    rates = prior_rates(spec, survey.frame, draws=args.draws, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    plot_prior_rates(rates, outcome_phrase=outcome_phrase(spec)).save(out / "prior_rates.png", force=args.force)
    record = {"spec": spec.to_dict(), "spec_sha256": spec.digest(), "data_file": str(data.resolve()),
              "data_sha256": survey.sha256, "draws": args.draws, "seed": args.seed,
              "verdict": prior_verdict(rates)}
    atomic_write_text(out / "prior_check.json", json.dumps(record, indent=1) + "\n", force=args.force)
    london = rates.iloc[0]
    print(f"London, from the priors alone: {london.q05:.0f}% to {london.q95:.0f}% (90% of {args.draws} draws)")
    print(prior_verdict(rates))
    print(f"Wrote {targets[0]} (numbers in {targets[1].name}) and {targets[2]}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from pas_bayes.sweep import load_sweep_spec, run_sweep

    sweep = load_sweep_spec(args.sweep_spec)
    outcome = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers,
                        progress=None if args.quiet else print)
    print(f"Sweep finished in {outcome.wall_seconds:.0f} s: {len(outcome.completed)} fitted now, "
          f"{len(outcome.skipped)} already done, {len(outcome.failed)} failed; summary in {Path(args.out) / 'summary'}")
    for task, error in outcome.failed.items():
        print(f"  failed: {task}: {error}")
    if outcome.failed:
        print("What to do: fix the cause above (details in failures/<task>.json) and run the same command "
              "again: finished fits are skipped, failed ones rerun")
    return 0 if outcome.finished else 1


def _compare(args: argparse.Namespace) -> int:
    from pas_bayes.comparison import compare_runs, verdict

    if args.out:
        refuse_existing([Path(args.out)], force=args.force)
    table, k_summary = compare_runs(args.runs, by=args.by)
    with_columns = ["model", "rank", "elpd_loo", "se", "elpd_diff", "dse", "p_worse", "n", "max_k", "k_over_0.7"]
    print(f"PSIS-LOO, leaving out one {args.by} at a time (higher ELPD predicts better):")
    print(table[with_columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print()
    print("Pareto k (reliability of each run's importance-sampling estimates):")
    print(k_summary.to_string(index=False))
    print()
    print(verdict(table))
    for note in _k_advice(k_summary, args.by):
        print(note)
    if args.out:
        _write_table(Path(args.out), table, None, force=args.force)
        print(f"Wrote {args.out}")
    return 0


def _k_advice(k_summary, by: str) -> list[str]:
    notes = []
    for r in k_summary.itertuples(index=False):
        bad = r.k_bad + r.k_very_bad
        if bad:
            notes.append(f"WARNING {r.model}: {bad} of {r.n} {by}s have Pareto k > 0.7, so their LOO terms are "
                         "unreliable. What to do: " + (
                             "compare leaving out whole wards (--by ward), which asks a different question "
                             "but is often better behaved, or refit without those respondents (k-fold)"
                             if by == "respondent" else
                             "the ward-level estimate is unreliable for those wards; treat small "
                             "differences as inconclusive, or compare with k-fold refits"))
    return notes


def _summary(run_path: str):
    from pas_bayes.errors import RunFolderError
    from pas_bayes.fit import load_run
    from pas_bayes.summaries import summarise_run

    run = load_run(run_path)
    if run.kind == "dashboard":
        raise RunFolderError(f"{run_path} is a dashboard run (borough aggregates): rankings, scenarios and "
                             "gaps need a respondent-level run. What to do: use `pas-bayes report` or "
                             "`pas-bayes effects` on it, or give a run made by `pas-bayes fit`")
    return summarise_run(run)


def _plot(args: argparse.Namespace) -> int:
    from pas_bayes.figures import build_figures, write_figures
    from pas_bayes.fit import load_run
    from pas_bayes.summaries import summarise_run

    run = load_run(args.run)
    if run.kind == "dashboard":
        from pas_bayes.dashboard.figures import dashboard_figures
        from pas_bayes.dashboard.summaries import summarise_dashboard

        for path in write_figures(dashboard_figures(summarise_dashboard(run)), args.out, force=args.force):
            print(f"Wrote {path} (numbers in {path.with_suffix('.csv').name})")
        return 0
    figures = build_figures(summarise_run(run), drivers=tuple(args.drivers) if args.drivers else None,
                            ward_borough=args.borough, boundaries=args.boundaries)
    for path in write_figures(figures, args.out, force=args.force):
        print(f"Wrote {path} (numbers in {path.with_suffix('.csv').name})")
    return 0


def _rankings(args: argparse.Namespace) -> int:
    refuse_existing([Path(args.out)], force=args.force)

    summary = _summary(args.run)
    run = summary.run
    table = summary.ward_rankings if args.wards else summary.borough_rankings
    if args.driver:
        table = table[table["driver"] == args.driver]
    _write_table(Path(args.out), table, run, force=args.force)
    print(f"Wrote {len(table)} rows of {'ward' if args.wards else 'borough'} rankings to {args.out}")
    return 0


def _scenario(args: argparse.Namespace) -> int:
    from pas_bayes.scenario import Scenario, describe, run_scenario
    from pas_bayes.summaries import BINARY_PHRASES

    if args.out:
        refuse_existing([Path(args.out)], force=args.force)
    summary = _summary(args.run)
    run = summary.run
    result = run_scenario(summary.post, Scenario(driver=args.driver, to=args.to, borough=args.borough))
    print(describe(result.iloc[0], summary.outcome_phrase, BINARY_PHRASES.get(args.driver)))
    if args.out:
        _write_table(Path(args.out), result, run, force=args.force)
    return 0


def _gaps(args: argparse.Namespace) -> int:
    if args.out:
        refuse_existing([Path(args.out)], force=args.force)

    summary = _summary(args.run)
    run = summary.run
    table = summary.gaps
    if table.empty:
        print("This model has no demographic effects (demographics = [] in its spec): no gaps to report.")
    for row in table.itertuples(index=False):
        print(f"  {row.demographic:<10} {row.level:<12} vs {row.reference:<6} {row.q50:+6.1f} points "
              f"(90% interval {row.q05:+.1f} to {row.q95:+.1f})")
    if args.out:
        _write_table(Path(args.out), table, run, force=args.force)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pas_bayes.report import export_pdf, write_report

    # Checked before the summaries are computed: a refusal should be instant.
    refuse_existing([Path(args.out), *([Path(args.pdf)] if args.pdf else [])], force=args.force)
    from pas_bayes.fit import load_run

    run = load_run(args.run)
    if run.kind == "dashboard":
        from pas_bayes.dashboard.report import write_dashboard_report

        path = write_dashboard_report(run, args.out, force=args.force)
    else:
        from pas_bayes.summaries import summarise_run

        path = write_report(summarise_run(run), args.out, force=args.force, boundaries=args.boundaries)
    print(f"Wrote {path}")
    if args.pdf:
        print(f"Wrote {export_pdf(path, args.pdf, force=args.force)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pas-bayes`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="pas-bayes",
        description="Bayesian multilevel models of the drivers of confidence and trust in the "
        "London police, from Public Attitude Survey files.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a synthetic PAS file in the real layout, with its truth")
    p.add_argument("--out", required=True, help="folder for the survey CSV, truth.json, truth_effects.csv")
    p.add_argument("--seed", type=int, default=2324)
    p.add_argument("--per-borough", type=int, default=400, help="respondents per borough (default 400)")
    p.add_argument("--financial-year", default="FY 23-24")
    p.add_argument("--years", nargs="*", help="several financial years in one file, e.g. \"FY 21-22\" "
                   "\"FY 22-23\" (years before FY 22-23 use 2018 ward boundaries)")
    p.add_argument("--ward-lookup", help="ONS ward->borough CSV (2022 wards) to take real ward codes and names from")
    p.add_argument("--ward-lookup-2018", help="the same for 2018 wards (years before FY 22-23)")
    p.add_argument("--truth-json", help="overrides of the true parameters, as JSON: outcome -> field -> value, e.g. "
                   "'{\"confidence\": {\"borough_slope_sd\": {\"all\": 0}}}' (a recovery scenario)")
    p.add_argument("--from-prior", metavar="SPEC", help="draw the outcome from this spec's priors instead "
                   "(simulation-based calibration); needs --prior-seed")
    p.add_argument("--prior-seed", type=int, help="seed of the prior draw (with --from-prior)")
    p.add_argument("--force", action="store_true", help="replace files already in --out")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("prior-check", help="what the priors imply for borough rates, before seeing any answer")
    p.add_argument("spec", help="model spec (TOML)")
    p.add_argument("--data", help="survey file (default: the spec's [data] path); only its design is used")
    p.add_argument("--out", required=True, help="folder for prior_rates.png/.csv and prior_check.json")
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_prior_check)

    p = sub.add_parser("compare", help="rank runs fitted to the same data by PSIS-LOO (ELPD)")
    p.add_argument("runs", nargs="+", help="run folders (at least two)")
    p.add_argument("--by", choices=["respondent", "ward"], default="respondent",
                   help="leave out one respondent (default) or one whole ward at a time")
    p.add_argument("--out", help="also write the comparison table as CSV")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_compare)

    p = sub.add_parser("sweep", help="many fits (specs x data x seeds, or simulations) on a Dask cluster")
    p.add_argument("sweep_spec", help="sweep spec (TOML), e.g. models/sweep_confidence_trust.toml")
    p.add_argument("--out", required=True, help="sweep folder; running again into it resumes")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, help="worker processes of the local cluster (default: half the cores)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("fit", help="fit a model spec and write a run folder")
    p.add_argument("spec", help="model spec (TOML), e.g. models/confidence.toml")
    p.add_argument("--data", help="survey file (default: the spec's [data] path)")
    p.add_argument("--out", required=True, help="run folder to create")
    p.add_argument("--draws", type=int)
    p.add_argument("--tune", type=int)
    p.add_argument("--chains", type=int)
    p.add_argument("--cores", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--sampler", choices=["nutpie", "pymc", "advi"],
                   help="advi: a fast approximate preview (mean-field ADVI), labelled approximate everywhere")
    p.add_argument("--backend", choices=["numba", "jax"],
                   help="how nutpie compiles the model: numba (CPU, default) or jax (GPU; needs JAX)")
    p.add_argument("--target-accept", type=float,
                   help="NUTS target acceptance rate (default: the spec's sampler.target_accept)")
    p.add_argument("--retry-target-accept", type=float,
                   help="when the draws diverge, sample again from the start at this target acceptance "
                   "(default: the spec's sampler.retry_target_accept; 0: no retry)")
    p.add_argument("--more-chains-below-ess", type=int,
                   help="when a fit without divergences ends with a bulk or tail ESS below this, sample "
                   "more chains and keep them with the first (default: the spec's "
                   "sampler.more_chains_below_ess, 400; 0: never)")
    p.add_argument("--encoding", help="text encoding of a CSV survey (default from the spec: utf-8)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--no-loo", action="store_true", help="skip PSIS-LOO (the run cannot then be compared)")
    p.add_argument("--force", action="store_true", help="replace the run folder if it exists")
    p.set_defaults(func=_fit)

    p = sub.add_parser("dashboard", help="fit borough trends to MOPAC's published PAS dashboard")
    p.add_argument("file", help="the dashboard workbook (.xlsx) or a CSV export of its Borough sheet")
    p.add_argument("--out", required=True, help="run folder to create")
    p.add_argument("--london", help="CSV export of the MPS sheet (default: the workbook's MPS sheet or MPS column)")
    p.add_argument("--sheet", help="read this workbook sheet instead of Borough/MPS")
    p.add_argument("--spec", help="dashboard spec (TOML), e.g. models/dashboard_confidence.toml")
    p.add_argument("--outcome", help="measure to explain: good_job (default) or trust")
    p.add_argument("--drivers", nargs="*", help="driver measures (default listen relied_on treat_fairly "
                   "understand_issues informed); give none for trends only")
    p.add_argument("--holdout", type=int, help="leave out the last N quarters to check predictions against")
    p.add_argument("--n-window", type=int, help="respondents per borough in a rolling year (default 400)")
    p.add_argument("--draws", type=int)
    p.add_argument("--tune", type=int)
    p.add_argument("--chains", type=int)
    p.add_argument("--cores", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--force", action="store_true", help="replace the run folder if it exists")
    p.set_defaults(func=_dashboard)

    p = sub.add_parser("simulate-dashboard", help="write a synthetic dashboard (Borough + MPS CSVs) with its truth")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=2014)
    p.add_argument("--boroughs", type=int, default=32)
    p.add_argument("--quarters", type=int, default=37)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_simulate_dashboard)

    p = sub.add_parser("diagnose", help="convergence checks; exit 1 if any fails")
    p.add_argument("run")
    p.set_defaults(func=_diagnose)

    p = sub.add_parser("effects", help="tidy CSV of London, borough and ward driver effects (logit and pp)")
    p.add_argument("run")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--logit-only", action="store_true", help="leave out the percentage-point rows")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_effects)

    p = sub.add_parser("plot", help="write the figures (PNG + CSV of plotted numbers)")
    p.add_argument("run")
    p.add_argument("--out", required=True, help="folder for the figures")
    p.add_argument("--drivers", nargs="*", help="drivers for borough, map and ward plots (default engagement "
                   "visibility)")
    p.add_argument("--borough", help="borough for the within-borough ward plots (default: where the first "
                   "driver matters most)")
    p.add_argument("--boundaries", help="borough boundary file (GeoPackage, shapefile, GeoJSON) for a choropleth")
    p.add_argument("--force", action="store_true", help="replace figures already there")
    p.set_defaults(func=_plot)

    p = sub.add_parser("rankings", help="borough (or ward) rankings with probabilities and rank intervals")
    p.add_argument("run")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--driver", help="one driver only")
    p.add_argument("--wards", action="store_true", help="rank wards within their borough instead")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_rankings)

    p = sub.add_parser("scenario", help="expected change in the positive share if a driver changed")
    p.add_argument("run")
    p.add_argument("--driver", required=True)
    p.add_argument("--to", type=float, required=True, help="target share (yes/no drivers) or mean score in SD units")
    p.add_argument("--borough", help="a borough (default: London as a whole)")
    p.add_argument("--out", help="also write the result as CSV")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_scenario)

    p = sub.add_parser("gaps", help="demographic gaps after accounting for the drivers (points)")
    p.add_argument("run")
    p.add_argument("--out", help="also write the table as CSV")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_gaps)

    p = sub.add_parser("report", help="one self-contained HTML report for policy readers")
    p.add_argument("run")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--boundaries", help="borough boundary file for a choropleth")
    p.add_argument("--pdf", help="also print the report to this PDF (needs Chromium)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pas-bayes``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except PASError as exc:
        print(f"pas-bayes {args.command}: error: {exc}", file=sys.stderr)
        return 2
