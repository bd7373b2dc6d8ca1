"""Hostile input to the data loaders: missing folders, damaged files, bad dtypes."""

import gzip

import numpy as np
import pytest

from lowrank_ode.data import (
    IDXFormatError,
    MNISTNotFoundError,
    load_builtin_mnist,
    load_mnist,
    read_idx,
)


def test_missing_folder_without_download(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(MNISTNotFoundError, match=rf"MNIST not found in {missing}"):
        load_mnist(missing, download=False)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, bool])
def test_non_floating_output_dtype(dtype):
    with pytest.raises(
        ValueError, match=rf"dtype must be a floating-point dtype, got {np.dtype(dtype)}"
    ):
        load_builtin_mnist(dtype=dtype)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x00", b"\x00\x00\x08\x03\x00\x00\x00\x05", b"\x12\x34\x56\x78" * 4],
)
def test_damaged_idx_file(tmp_path, content):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(IDXFormatError, match=str(path.name)):
        read_idx(path)


def test_truncated_gzip(tmp_path, tiny_mnist):
    path = tiny_mnist / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(
        IDXFormatError, match=r"train-images-idx3-ubyte.gz: gzip stream: .*truncated"
    ):
        load_mnist(tiny_mnist, download=False)
