"""Shared test configuration.

BLAS threads are pinned to one per process: the test matrices are small, and pytest-xdist
already runs one worker per core, so multithreaded BLAS would only oversubscribe the cores.
"""

import os

import pytest

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


@pytest.fixture
def no_implicit_host_copy(monkeypatch):
    """array-api-strict arrays refuse ``numpy.asarray`` inside the test, as CuPy arrays do:
    a library call that copies a device array to the host implicitly fails the test (explicit
    copies go through ``lowrank_ode._array_api.to_numpy``)."""
    try:
        import array_api_strict
    except ImportError:
        return

    def refuse(self, dtype=None, copy=None):
        raise TypeError("implicit conversion of an array-api-strict array to a NumPy array")

    monkeypatch.setattr(array_api_strict._array_object.Array, "__array__", refuse)
