"""PSIS-LOO of a fitted run: one step after another against the default threads, side by side.

``pas_bayes.comparison.loo_tables`` reads the posterior a block of wards at a time and
smooths its respondents a chunk at a time. With ``threads=1`` every step runs in the
calling thread, one after another; by default the next block is read while this one is
computed, and the chunks of a block are computed side by side. Both give the same tables
to rounding (``tests/test_performance_parts.py``; the benchmark checks the respondents'
too); this times them on one run folder of the
benchmark model, alternately, and writes a table with the ratio and each one's added peak
memory. The fit is short (300 warm-up + 750 draws a chain): PSIS-LOO takes at most 4,000
draws, and 4 x 750 is the 3,000 it takes of a default fit's 12,000. Those it takes every
fourth draw, so reading a default fit's blocks reads four times the bytes read here: the
fit's own ``psis_loo_s`` (``speed_vs_peers.py``) is the measure with that included.

    .venv/bin/python benchmarks/loo_speed.py --size 5y --out benchmarks/results/loo_speed_5y
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import pandas as pd
from diagnostics_speed import _timed
from results_table import markdown_table
from speed_vs_peers import SPEC, make_survey


def main() -> None:
    from pas_bayes.comparison import loo_tables
    from pas_bayes.cores import available_cores
    from pas_bayes.fit import fit_run, load_run
    from pas_bayes.spec import load_spec
    from pas_bayes.survey import read_survey

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5y", help="1y, 5y or 256k (speed_vs_peers.py's sizes)")
    parser.add_argument("--seed", type=int, default=8080)
    parser.add_argument("--repeats", type=int, default=2, help="times each way is run, alternately")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/loo_speed_5y"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_survey(args.size, args.seed, Path(tmp) / "survey")
        spec = load_spec(SPEC).with_sampler(seed=args.seed, draws=750, tune=300)
        survey = read_survey(data, spec)
        run = load_run(fit_run(spec, survey, Path(tmp) / "run", progressbar=False, loo=False))
        results = {}
        for repeat in range(args.repeats):
            for name, threads in (("one step after another (threads=1)", 1), ("default threads", None)):
                seconds, memory = _timed(lambda t=threads: results.__setitem__(
                    t, loo_tables(run.idata, survey.frame, threads=t)))
                rows.append({"method": name, "repeat": repeat + 1, "respondents": len(survey.frame),
                             "wards": run.idata["posterior"].sizes["ward"],
                             "draws": results[threads].summary["respondent"]["n_draws"],
                             "seconds": round(seconds, 2), "added_peak_mb": round(memory)})
        pd.testing.assert_frame_equal(results[1].respondents, results[None].respondents, check_exact=False,
                                      rtol=1e-12, atol=1e-14)
    table = pd.DataFrame(rows)
    one = table[table["method"].str.startswith("one")]["seconds"].median()
    table["speed_vs_one_thread"] = (one / table["seconds"]).round(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    command = "python " + " ".join(["benchmarks/loo_speed.py", *sys.argv[1:]])
    args.out.with_suffix(".md").write_text(
        f"# PSIS-LOO of one run folder, one thread against the default (`{command}`)\n\n"
        f"Cores: {available_cores()}; max resident set of the run "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB (the fit included); "
        "the two ways gave the same respondents' values to 1e-12.\n\n" + markdown_table(table) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
