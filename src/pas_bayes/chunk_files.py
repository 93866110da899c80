"""Reading a whole zarr array straight from its chunk files.

nutpie streams every variable into its trace store in chunks of 16 draws, so at the
default 4 chains x 3,000 draws each small variable (an SD, the London effects, a sampler
statistic) is 752 chunk files, about 28,000 for a fit's small variables. zarr reads each
chunk through its asynchronous codec pipeline, at about 0.4 ms a chunk here (0.8 ms
through xarray's dask route): 17 s after sampling in a default fit of a 3,200-respondent
survey, and about as long at any size, as the chunks grow with the draws, not the
respondents. Reading the files and decompressing them with numcodecs' Blosc takes about
0.035 ms a chunk (2 s there). Only the layout nutpie writes is read this way (a regular chunk grid,
the default chunk keys, the ``bytes`` codec in little-endian order, optionally Blosc);
any other array is read by zarr itself.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc

_BLOSC = Blosc()


def _plain_layout(metadata: dict) -> str | None:
    """The chunk key separator when the array is in the layout read here, else ``None``."""
    if metadata.get("zarr_format") != 3 or metadata.get("storage_transformers"):
        return None
    if metadata.get("chunk_grid", {}).get("name") != "regular":
        return None
    keys = metadata.get("chunk_key_encoding", {})
    if keys.get("name") != "default":
        return None
    codecs = metadata.get("codecs", [])
    names = [c.get("name") for c in codecs]
    if names not in (["bytes"], ["bytes", "blosc"]):
        return None
    if codecs[0].get("configuration", {}).get("endian", "little") != "little":
        return None
    return keys.get("configuration", {}).get("separator", "/")


def read_whole_array(path: str | Path) -> np.ndarray:
    """Every element of the zarr (v3) array stored at ``path``, as a NumPy array.

    Parameters
    ----------
    path
        The array's folder in a local zarr store (the one holding its ``zarr.json``).

    Returns
    -------
    numpy.ndarray
        The same values as ``zarr.open_array(path)[...]`` (chunks never written hold the
        fill value), read from the chunk files directly when the layout is nutpie's.
    """
    path = Path(path)
    array = zarr.open_array(str(path), mode="r")
    metadata = array.metadata.to_dict()
    separator = _plain_layout(metadata)
    if separator is None or array.dtype.kind not in "biuf":
        return array[...]
    compressed = len(metadata["codecs"]) == 2
    shape, chunks = array.shape, array.chunks
    out = np.full(shape, array.fill_value, dtype=array.dtype)
    grid = [range(-(-n // c)) for n, c in zip(shape, chunks, strict=True)]
    for index in itertools.product(*grid):
        key = "c" + "".join(f"{separator}{i}" for i in index)
        try:
            raw = (path / key).read_bytes()
        except FileNotFoundError:
            continue  # never written: the fill value, as zarr reads it
        data = _BLOSC.decode(raw) if compressed else raw
        block = np.frombuffer(data, dtype=array.dtype).reshape(chunks)
        where = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunks, shape, strict=True))
        out[where] = block[tuple(slice(0, s.stop - s.start) for s in where)]
    return out
