"""Compiling a model's log density once in a forked child, so the fit itself loads it from the cache.

Numba's JIT engine owns every module it compiles for the life of the process (Numba
disabled removing them), and a first compile of the benchmark model makes about 820 code
libraries: measured at a year, compiling held +432 MB on an empty PyTensor cache against
+153 MB when the pieces came from the cache (the rest is nutpie's log-density wrapper,
which is never cached). A fit that compiles from scratch carries those 280 MB through
sampling, PSIS-LOO and the diagnostics: one year peaked at 934 MB instead of 698.

Compiling first in a forked child fills the cache and takes its memory away with it when
the child ends; the fit then compiles from the cache. The child is forked, not spawned, so
its resident set counts every page it shares with the fit: its peak is the machine's
memory at that moment, and a benchmark that reads the process tree's peak resident set
sees it. On a warm cache the child only repeats the cached compile (about 17 s at a year),
so this is done only for surveys large enough for the memory to matter.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

#: Respondents from which a fit compiles in a child first (a year of the survey is 12,800;
#: below this, a fit peaks far under 1 GB however it compiles, and the tests' small surveys
#: would each pay a second compile).
COMPILE_APART_FROM = 10_000
#: Seconds the fit waits for the child (a cold compile took about 60 s at a year and at
#: 242,410 respondents, measured): a child that hangs is killed and the fit compiles itself.
CHILD_TIMEOUT_S = 1800.0


def compile_apart_wanted(n_respondents: int, backend: str) -> bool:
    """Whether a fit of ``n_respondents`` on ``backend`` compiles in a child first (Numba, Linux only)."""
    return backend == "numba" and sys.platform.startswith("linux") and n_respondents >= COMPILE_APART_FROM


def compile_in_child(model: Any, var_names: Sequence[str] | None) -> bool:
    """Compile ``model`` for nutpie in a forked child, filling PyTensor's Numba cache.

    Parameters
    ----------
    model
        The PyMC model, as the fit will compile it.
    var_names
        The variables the fit stores (the same graph must be compiled for the cache to serve it).

    Returns
    -------
    bool
        True when the child compiled and exited cleanly; False otherwise, or when it ran
        past :data:`CHILD_TIMEOUT_S` and was killed (the fit then simply compiles in its
        own process, as it would without this step).
    """
    import nutpie

    # Flushed first: the child's copy of a buffer must not be written twice.
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        # Python warns that fork in a threaded process may deadlock the child: the child
        # here runs only PyTensor's and Numba's compiler (pure Python and LLVM under
        # Numba's own lock, taken in this thread) and leaves with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            nutpie.compile_pymc_model(model, var_names=var_names, backend="numba")
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.05)
