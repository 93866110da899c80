"""Atomic file writing: a reader never sees half a file, and nothing is overwritten unasked."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from pas_bayes.errors import RunFolderError


def refuse_existing(paths: list[Path], *, force: bool) -> None:
    """Raise :class:`RunFolderError` if any path exists and ``force`` is false."""
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise RunFolderError(f"{existing[0]} exists. What to do: choose another --out, or pass "
                             "--force to replace it")


def atomic_write(path: str | Path, write: Callable[[str], object], *, force: bool = False) -> Path:
    """Call ``write(tmp_name)`` on a temporary file beside ``path``, then rename it into place.

    Parameters
    ----------
    path
        Destination.
    write
        Writes the whole content to the file name it is given.
    force
        Replace ``path`` if it exists; otherwise an existing file is an error.
    """
    path = Path(path)
    refuse_existing([path], force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path: str | Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(text.encode("utf-8")), force=force)
