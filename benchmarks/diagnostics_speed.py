"""R-hat, bulk and tail ESS of many parameters: ArviZ's functions against ``pas_bayes.convergence``.

Both compute the same statistics (``tests/test_convergence.py`` holds them equal); this
times them side by side in one run on draws shaped like a fit's (4 chains x 3,000 draws,
AR(1) with autocorrelation 0.3, the mixing of a typical parameter) and writes a table
with the ratio and each one's added peak memory.

    .venv/bin/python benchmarks/diagnostics_speed.py --parameters 2000 --out benchmarks/results/diagnostics_speed
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from results_table import markdown_table


def _draws(n: int, chains: int, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((chains, draws, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, draws):
        x[:, t] = 0.3 * x[:, t - 1] + e[:, t]
    return x


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def _timed(fn) -> tuple[float, float]:
    """Seconds and the largest rise in resident memory (sampled every 5 ms) while ``fn`` runs."""
    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb() - base)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    clock = time.perf_counter()
    fn()
    seconds = time.perf_counter() - clock
    done.set()
    watcher.join()
    return seconds, peak[0]


def main() -> None:
    import arviz as az

    from pas_bayes.convergence import rhat_ess, rhat_ess_in_blocks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=8080)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/diagnostics_speed"))
    args = parser.parse_args()
    x = _draws(args.parameters, args.chains, args.draws, args.seed)
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": (("chain", "draw", "p"), x)})})
    rhat_ess(x[:, :, :2])  # Numba's compile (or its cache) before the clock

    def arviz_stats() -> None:
        az.rhat(tree), az.ess(tree, method="bulk"), az.ess(tree, method="tail")

    rows = []
    for name, fn in (("arviz_stats (element by element)", arviz_stats),
                     ("pas_bayes.convergence, one thread", lambda: rhat_ess_in_blocks(x, threads=1)),
                     ("pas_bayes.convergence, default threads", lambda: rhat_ess_in_blocks(x))):
        seconds, memory = _timed(fn)
        rows.append({"method": name, "parameters": args.parameters, "draws": args.chains * args.draws,
                     "seconds": round(seconds, 2), "ms_per_parameter": round(1e3 * seconds / args.parameters, 2),
                     "added_peak_mb": round(memory)})
    table = pd.DataFrame(rows)
    table["speed_vs_arviz"] = (table["seconds"].iloc[0] / table["seconds"]).round(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    command = (f"python benchmarks/diagnostics_speed.py --parameters {args.parameters} --chains {args.chains} "
               f"--draws {args.draws} --seed {args.seed} --out {args.out}")
    args.out.with_suffix(".md").write_text(
        f"# R-hat, bulk and tail ESS: ArviZ against pas_bayes.convergence (`{command}`)\n\n"
        f"Cores: {len(os.sched_getaffinity(0))}; max resident set of the run "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB.\n\n"
        + markdown_table(table) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
