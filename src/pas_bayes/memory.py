"""Handing memory the process has freed back to the operating system.

Reading a survey and sampling free hundreds of megabytes that glibc's allocator (and
Arrow's, behind pandas's strings) keep for reuse rather than return: measured at five
years, the reader leaves 190 MB resident for a 14 MB frame, 150 MB of which
``malloc_trim`` returns. A fit calls :func:`release_freed_memory` between its phases, so
its peak is what it holds, not what it once held. Posterior blocks are read with
:func:`one_block_at_a_time`, so that dask's threads do not each keep freed blocks of their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys

import dask


def release_freed_memory() -> None:
    """Return freed heap memory to the operating system (glibc and Arrow; elsewhere a no-op)."""
    # Arrays held only by reference cycles (xarray and dask objects make them) are freed
    # first, so that what is trimmed includes them.
    gc.collect()
    trim_heap()
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()


def trim_heap() -> None:
    """Hand glibc's free heap pages back to the system, from every thread's arena (no
    garbage collection first, so cheap enough to call after every block of work)."""
    if sys.platform.startswith("linux"):
        # Not glibc (musl has no malloc_trim): nothing to hand back this way.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def one_block_at_a_time() -> contextlib.AbstractContextManager[object]:
    """Dask computes in the calling thread, one block after another, until the block ends.

    Dask's threaded scheduler would have each worker thread keep its own malloc arena of
    freed blocks, so a job reading a posterior block by block would hold several blocks'
    worth of memory. Setting the scheduler here also overrides whatever a caller left as
    the default (a sweep's distributed ``Client``), so reads never leave the process.
    """
    return dask.config.set(scheduler="synchronous")
