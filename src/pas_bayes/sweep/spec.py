"""Sweep specs: which fits a sweep makes, each a task with its own seed and identity.

A sweep spec is a TOML file (``models/sweep_*.toml``)::

    name = "confidence_and_trust"
    root_seed = 20261126          # seeds are spawned from it
    seeds = 2                     # fits of each spec x data file
    specs = ["confidence.toml", "trust.toml"]      # relative to this file
    data = ["../data/pas_synthetic_FY23-24.csv"]   # optional: each spec's own data

    [sampler]                     # optional: overrides for every fit
    draws = 1000

    [outputs]                     # optional
    loo = false                   # PSIS-LOO in every run folder (default false)
    probability_scale = true      # effects in points as well as log-odds (default true)

or, for recovery and calibration runs, ``[simulations]`` instead of ``data`` and
``seeds``: each simulation draws a synthetic survey from its own seed and fits it::

    [simulations]
    count = 100
    per_borough = 40
    truth_from = "generator"      # or "prior": simulation-based calibration
    [simulations.truth.confidence]   # recovery scenario: overrides of the generator's truth
    borough_slope_sd = { all = 0.0 }

With ``truth_from = "generator"`` the truth is the generator's (with any
overrides; :func:`pas_bayes.simulate.truth_with`); with ``"prior"`` every
simulation draws its parameters and outcomes from the spec's own priors
(:mod:`pas_bayes.calibration`) and the fit's ranks are recorded.

Seeds come from ``numpy.random.SeedSequence(root_seed).spawn(n)``: task *k*
always gets the same seed, so any one task can be rerun alone and give the
same draws. A task's identity (its ``key``) is the digest of the spec as fitted
(sampler settings and seed included, the number of cores left out: it does not
change the draws), the data file's SHA-256 (or the simulation settings) and the
outputs asked for; a finished task with the same key is never fitted again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pas_bayes.errors import SpecError
from pas_bayes.spec import load_spec, read_toml, table_digest
from pas_bayes.survey import file_sha256

SAMPLER_KEYS = ("name", "draws", "tune", "chains", "cores", "target_accept")
SIMULATION_KEYS = ("count", "per_borough", "financial_year", "years", "truth", "truth_from")
TRUTH_FROM = ("generator", "prior")


@dataclass(frozen=True)
class SweepTask:
    """One fit of a sweep: everything a worker needs, and nothing large.

    Attributes
    ----------
    task_id
        Folder name of its run: ``<spec>-<data>-<seed index>-<key[:8]>``.
    spec_path
        The model spec file.
    sampler
        Sampler overrides from the sweep spec (without the seed).
    seed
        The fit's seed, spawned from the sweep's root seed.
    seed_index
        Which spawned seed (or which simulation) this is.
    key
        SHA-256 of what makes the result: spec as fitted, data, outputs.
    data_path, data_sha256
        The survey file and its hash (file sweeps).
    simulation
        Simulation settings (``seed``, ``per_borough``, ...) for simulation sweeps.
    loo, probability_scale
        Outputs to compute.
    """

    task_id: str
    spec_path: str
    spec_name: str
    outcome: str
    sampler: dict[str, Any]
    seed: int
    seed_index: int
    key: str
    data_path: str | None = None
    data_sha256: str | None = None
    simulation: dict[str, Any] | None = None
    loo: bool = False
    probability_scale: bool = True

    @property
    def data_label(self) -> str:
        """Short name of the data: the file's stem, or ``sim-0003``."""
        if self.simulation is not None:
            return f"sim-{self.seed_index:04d}"
        return Path(self.data_path or "").stem

    def fit_command(self, run_dir: str | Path) -> str:
        """The ``pas-bayes fit`` command that makes this task's run alone (file sweeps)."""
        if self.simulation is not None:
            sim = self.simulation
            simulate = (f"pas-bayes simulate --out DATA --seed {sim['seed']} --per-borough {sim['per_borough']}"
                        + (f" --years {' '.join(repr(y) for y in sim['years'])}" if sim.get("years") else
                           f" --financial-year {sim['financial_year']!r}"))
            if sim.get("truth"):
                simulate += f" --truth-json '{json.dumps(sim['truth'], sort_keys=True)}'"
            if sim.get("truth_from") == "prior":
                simulate += f" --from-prior {self.spec_path} --prior-seed {sim['prior_seed']}"
            data = "DATA/<survey file>"
        else:
            simulate, data = "", self.data_path
        names = {"draws": "--draws", "tune": "--tune", "chains": "--chains", "name": "--sampler",
                 "target_accept": "--target-accept"}
        flags = " ".join(f"{names[k]} {v}" for k, v in self.sampler.items() if k in names)
        fit = (f"pas-bayes fit {self.spec_path} --data {data} --seed {self.seed} {flags} --out {run_dir}"
               + ("" if self.loo else " --no-loo"))
        return f"{simulate} && {fit}" if simulate else fit

    def record(self) -> dict[str, Any]:
        """A JSON-ready dict of the task."""
        return asdict(self)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see the module docstring)."""

    name: str
    source: str
    root_seed: int
    specs: tuple[str, ...]
    data: tuple[str, ...] = ()
    seeds: int = 1
    sampler: dict[str, Any] = field(default_factory=dict)
    simulations: dict[str, Any] | None = None
    loo: bool = False
    probability_scale: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _int(where: str, key: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where}: {key} = {value!r}; it must be a whole number >= {minimum}")
    return value


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec file.

    Raises
    ------
    SpecError
        When the file is missing, has unknown keys, names a spec or data file
        that does not exist, or mixes ``[simulations]`` with ``data``/``seeds``.
    """
    path = Path(path)
    where = str(path)
    table = read_toml(path, example="models/sweep_confidence_trust.toml")
    known = {"name", "description", "root_seed", "seeds", "specs", "data", "sampler", "outputs", "simulations"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SpecError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    base = path.parent

    def resolve(name: str, what: str) -> str:
        p = Path(name)
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise SpecError(f"{where}: {what} {name!r} not found (looked for {p}). What to do: give a path "
                            "relative to the sweep spec, or an absolute one")
        return str(p.resolve())

    specs = table.get("specs")
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
        raise SpecError(f"{where}: specs must be a non-empty list of model spec files, e.g. "
                        "specs = [\"confidence.toml\"]")
    sampler = dict(table.get("sampler", {}))
    bad = sorted(set(sampler) - set(SAMPLER_KEYS))
    if bad:
        raise SpecError(f"{where}: [sampler] has unknown keys {bad}; known: {list(SAMPLER_KEYS)} (the seed "
                        "comes from root_seed)")
    outputs = dict(table.get("outputs", {}))
    bad = sorted(set(outputs) - {"loo", "probability_scale"})
    if bad:
        raise SpecError(f"{where}: [outputs] has unknown keys {bad}; known: ['loo', 'probability_scale']")
    simulations = table.get("simulations")
    if simulations is not None:
        if "data" in table or "seeds" in table:
            raise SpecError(f"{where}: give either [simulations] or data/seeds, not both (a simulation "
                            "makes its own data and has one seed)")
        simulations = dict(simulations)
        bad = sorted(set(simulations) - set(SIMULATION_KEYS))
        if bad:
            raise SpecError(f"{where}: [simulations] has unknown keys {bad}; known: {list(SIMULATION_KEYS)}")
        simulations["count"] = _int(where, "simulations.count", simulations.get("count"), minimum=1)
        simulations["per_borough"] = _int(where, "simulations.per_borough",
                                          simulations.get("per_borough", 400), minimum=5)
        simulations.setdefault("financial_year", "FY 23-24")
        simulations["years"] = list(simulations.get("years", []))
        simulations.setdefault("truth_from", "generator")
        if simulations["truth_from"] not in TRUTH_FROM:
            raise SpecError(f"{where}: simulations.truth_from = {simulations['truth_from']!r}; use one of "
                            f"{list(TRUTH_FROM)}")
        truth = simulations.get("truth", {})
        if truth and simulations["truth_from"] == "prior":
            raise SpecError(f"{where}: [simulations.truth] overrides the generator's truth; with truth_from = "
                            "\"prior\" the truth is drawn from the spec's priors. What to do: drop one of them")
        from pas_bayes.simulate import settings_from_record

        try:
            settings_from_record({"seed": 0, "per_borough": 1, "truth": truth})
        except ValueError as exc:
            raise SpecError(f"{where}: [simulations.{exc}") from exc
        simulations["truth"] = truth
    data = table.get("data", [])
    if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
        raise SpecError(f"{where}: data must be a list of survey files")
    return SweepSpec(
        name=str(table.get("name", path.stem)),
        source=str(path.resolve()),
        root_seed=_int(where, "root_seed", table.get("root_seed"), minimum=0),
        specs=tuple(resolve(s, "model spec") for s in specs),
        data=tuple(resolve(d, "data file") for d in data),
        seeds=_int(where, "seeds", table.get("seeds", 1), minimum=1),
        sampler=sampler,
        simulations=simulations,
        loo=bool(outputs.get("loo", False)),
        probability_scale=bool(outputs.get("probability_scale", True)),
    )


def spawned_seeds(root_seed: int, n: int, *, words: int = 1) -> list[tuple[int, ...]]:
    """``words`` 32-bit seeds for each of ``n`` children of ``SeedSequence(root_seed)``."""
    return [tuple(int(v) for v in child.generate_state(words))
            for child in np.random.SeedSequence(root_seed).spawn(n)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_")[:40] or "x"


def _key(spec_table: dict[str, Any], data: dict[str, Any], outputs: dict[str, Any]) -> str:
    table = json.loads(json.dumps(spec_table))
    table.get("sampler", {}).pop("cores", None)  # threads do not change the draws
    return hashlib.sha256(json.dumps({"spec": table_digest(table), "data": data, "outputs": outputs},
                                     sort_keys=True).encode()).hexdigest()


def expand_tasks(sweep: SweepSpec) -> list[SweepTask]:
    """Every fit of the sweep, in a stable order (spec, data, seed).

    Data files are hashed here, once, so that a task's key names its data exactly.

    Raises
    ------
    SpecError
        When a model spec is invalid, or has no data file and the sweep gives none.
    """
    outputs = {"loo": sweep.loo, "probability_scale": sweep.probability_scale}
    sampler = {k: v for k, v in sweep.sampler.items() if k != "cores"}
    tasks: list[SweepTask] = []
    hashes: dict[str, str] = {}
    for spec_path in sweep.specs:
        spec = load_spec(spec_path).with_sampler(**sampler)
        if sweep.simulations is not None:
            sim = sweep.simulations
            for i, (sim_seed, fit_seed, prior_seed) in enumerate(spawned_seeds(sweep.root_seed, sim["count"],
                                                                                 words=3)):
                settings = {"seed": sim_seed, "per_borough": sim["per_borough"],
                            "financial_year": sim["financial_year"], "years": sim["years"]}
                # Keys of plain generator simulations stay as they were before scenarios existed.
                if sim["truth"]:
                    settings["truth"] = sim["truth"]
                if sim["truth_from"] == "prior":
                    settings.update(truth_from="prior", prior_seed=prior_seed)
                key = _key(spec.with_sampler(seed=fit_seed).to_dict(), {"simulation": settings}, outputs)
                tasks.append(SweepTask(
                    task_id=f"{_slug(spec.name)}-sim-{i:04d}-{key[:8]}", spec_path=spec_path, spec_name=spec.name,
                    outcome=spec.outcome, sampler=sampler, seed=fit_seed, seed_index=i, key=key,
                    simulation=settings, **outputs))
            continue
        files = list(sweep.data)
        if not files:
            own = spec.data_path()
            if own is None or not own.is_file():
                raise SpecError(f"{sweep.source}: {spec_path} names no data file that exists ({own}) and the "
                                "sweep gives none. What to do: add data = [\"...\"] to the sweep spec")
            files = [str(own.resolve())]
        for data_path in files:
            sha = hashes.setdefault(data_path, file_sha256(data_path))
            for i, (seed,) in enumerate(spawned_seeds(sweep.root_seed, sweep.seeds)):
                key = _key(spec.with_sampler(seed=seed).to_dict(), {"sha256": sha}, outputs)
                tasks.append(SweepTask(
                    task_id=f"{_slug(spec.name)}-{_slug(Path(data_path).stem)}-s{i}-{key[:8]}",
                    spec_path=spec_path, spec_name=spec.name, outcome=spec.outcome, sampler=sampler, seed=seed,
                    seed_index=i, key=key, data_path=data_path, data_sha256=sha, **outputs))
    return tasks
