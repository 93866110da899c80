"""Where a fit's memory goes: resident memory sampled every 10 ms, with the line running.

Runs ``speed_vs_peers.job_pas_bayes`` (read, fit, PSIS-LOO, run folder, diagnostics) on a
survey of one of its sizes while a thread reads ``VmRSS`` and the main thread's innermost
pas_bayes frames; prints every rise or fall of ``--step`` MB with where it happened, and
the peak. While a child process runs (the compile child of ``pas_bayes.compile_apart``),
its private pages are added: the fit's resident set plus what only the child holds is the
machine's memory at that moment (the pages they share are counted once).
Short chains (``--spec``) are enough: what grows with respondents shows anyway.

    .venv/bin/python benchmarks/memory_trace.py --size 256k --spec benchmarks/specs/full_year_trace.toml
    .venv/bin/python benchmarks/memory_trace.py --size 5y --approximate
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from speed_vs_peers import SPEC, job_pas_bayes, make_survey


def _rss_mb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def _children_private_mb() -> int:
    """Private (not shared with this process) resident memory of this process's children."""
    total_kb = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            except OSError:  # the child has just exited
                continue
            total_kb += sum(int(line.split()[1]) for line in rollup if line.startswith("Private_"))
    return total_kb // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1y", help="1y, 5y or 256k")
    parser.add_argument("--seed", type=int, default=8080)
    parser.add_argument("--spec", default=str(SPEC))
    parser.add_argument("--step", type=int, default=25, help="report changes of at least this many MB")
    parser.add_argument("--approximate", action="store_true", help="trace the ADVI preview, not NUTS")
    args = parser.parse_args()
    main_thread = threading.main_thread().ident
    trace: list[tuple[int, str, float]] = []
    start = time.perf_counter()

    def watch() -> None:
        while True:
            frame = sys._current_frames().get(main_thread)
            stack = traceback.extract_stack(frame) if frame else []
            where = [f"{f.filename.split('/')[-1]}:{f.lineno}" for f in stack
                     if "pas_bayes" in f.filename or "speed_vs_peers" in f.filename][-4:]
            children = _children_private_mb()
            if children:
                where.append(f"(+{children} MB in a child)")
            trace.append((_rss_mb() + children, " > ".join(where), time.perf_counter() - start))
            time.sleep(0.01)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_survey(args.size, args.seed, work / "data")
        threading.Thread(target=watch, daemon=True).start()
        job_pas_bayes(data, work / "job", args.seed, work / "moments.json", approximate=args.approximate,
                      spec_path=Path(args.spec))
        time.sleep(0.05)
        shutil.rmtree(work / "job", ignore_errors=True)
    last = trace[0][0]
    for rss, where, at in trace:
        if abs(rss - last) >= args.step:
            print(f"{at:7.1f} s {rss:6d} MB {rss - last:+5d}  {where}")
            last = rss
    peak = max(rss for rss, _, _ in trace)
    print(f"peak {peak} MB at {next(where for rss, where, _ in trace if rss == peak)}")


if __name__ == "__main__":
    main()
