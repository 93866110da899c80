"""Whole arrays read straight from their chunk files equal zarr's own reading."""

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BytesCodec, GzipCodec

from pas_bayes.chunk_files import _plain_layout, read_whole_array


def _nutpie_like(path, values, chunks, **extra):
    # nutpie's layout: a regular grid, default "/" keys, the bytes codec then Blosc (zstd).
    array = zarr.create_array(str(path), shape=values.shape, chunks=chunks, dtype=values.dtype,
                              serializer=BytesCodec(), compressors=BloscCodec(cname="zstd", clevel=3), **extra)
    return array


@pytest.mark.parametrize("dtype", ["float64", "int64", "uint64", "bool"])
def test_a_partial_last_chunk_and_unwritten_chunks_read_as_zarr_reads_them(tmp_path, dtype):
    rng = np.random.default_rng(3)
    values = (rng.standard_normal((3, 53, 4)) * 10).astype(dtype)
    array = _nutpie_like(tmp_path / "a", values, (1, 16, 4))
    array[:2] = values[:2]  # the third chain's chunks are never written: the fill value
    array[2, :16] = values[2, :16]
    assert _plain_layout(array.metadata.to_dict()) == "/"
    got = read_whole_array(tmp_path / "a")
    assert got.dtype == values.dtype and got.shape == values.shape
    np.testing.assert_array_equal(got, array[...])
    assert np.array_equal(got[:2], values[:2]) and not np.array_equal(got[2], values[2])


def test_a_float_arrays_nan_fill_an_empty_dimension_and_no_dimensions(tmp_path):
    filled = _nutpie_like(tmp_path / "f", np.zeros((2, 20)), (1, 16), fill_value=np.nan)
    filled[0] = np.arange(20.0)
    np.testing.assert_array_equal(read_whole_array(tmp_path / "f"), filled[...])
    assert np.isnan(read_whole_array(tmp_path / "f")[1]).all()
    empty = _nutpie_like(tmp_path / "e", np.zeros((4, 0)), (1, 16))
    assert read_whole_array(tmp_path / "e").shape == empty.shape == (4, 0)
    scalar = _nutpie_like(tmp_path / "s", np.array(2.5), ())
    scalar[...] = 2.5
    assert read_whole_array(tmp_path / "s") == 2.5


def test_uncompressed_and_other_layouts(tmp_path):
    values = np.arange(40.0).reshape(2, 20)
    raw = zarr.create_array(str(tmp_path / "raw"), shape=values.shape, chunks=(1, 16), dtype="float64",
                            compressors=None)
    raw[...] = values
    assert _plain_layout(raw.metadata.to_dict()) == "/"
    np.testing.assert_array_equal(read_whole_array(tmp_path / "raw"), values)
    # Another codec, or zarr 2 keys: read by zarr itself, the same values.
    gzip = zarr.create_array(str(tmp_path / "gz"), shape=values.shape, chunks=(1, 16), dtype="float64",
                             compressors=GzipCodec())
    gzip[...] = values
    assert _plain_layout(gzip.metadata.to_dict()) is None
    np.testing.assert_array_equal(read_whole_array(tmp_path / "gz"), values)
    v2 = zarr.create_array(str(tmp_path / "v2"), shape=values.shape, chunks=(1, 16), dtype="float64",
                           zarr_format=2)
    v2[...] = values
    np.testing.assert_array_equal(read_whole_array(tmp_path / "v2"), values)
    # Big-endian bytes are not the layout read directly.
    big = zarr.create_array(str(tmp_path / "big"), shape=values.shape, chunks=(1, 16), dtype="float64",
                            serializer=BytesCodec(endian="big"), compressors=None)
    big[...] = values
    assert _plain_layout(big.metadata.to_dict()) is None
    np.testing.assert_array_equal(read_whole_array(tmp_path / "big"), values)
