"""The one exception hierarchy of pas_bayes.

Every error a user can cause by what they feed the package is a subclass of
:class:`PASError`, so scripts can catch them in one place, and every message
names the file, the column, the value and what to do about it.
"""

from __future__ import annotations


class PASError(Exception):
    """Base class of every error pas_bayes raises on purpose."""


class PASDataError(PASError, ValueError):
    """A survey file (or a file derived from one) cannot be read as it is."""


class SpecError(PASError, ValueError):
    """A model spec (TOML) is missing a field, or holds a value that is not allowed."""


class RunFolderError(PASError, OSError):
    """A run folder is missing, incomplete, or would be overwritten."""


class QueryError(PASError, ValueError):
    """A question a run cannot answer: a driver, borough or target level it does not have."""


def data_error(
    path: object,
    message: str,
    *,
    column: str | None = None,
    value: object = None,
    row: int | None = None,
    fix: str,
) -> PASDataError:
    """Build a :class:`PASDataError` whose message always has the same parts.

    Parameters
    ----------
    path
        The file being read.
    message
        What is wrong, in one sentence.
    column, value, row
        Where it is wrong, when known. ``row`` is the 1-based data row
        (the header is row 0), as a spreadsheet user would count it.
    fix
        What the user can do about it.

    Returns
    -------
    PASDataError
        The error, ready to be raised.
    """
    parts = [f"{path}: {message}"]
    if column is not None:
        parts.append(f"column {column!r}")
    if value is not None:
        parts.append(f"value {value!r}")
    if row is not None:
        parts.append(f"first seen on data row {row}")
    return PASDataError("; ".join(parts) + f". What to do: {fix}")
