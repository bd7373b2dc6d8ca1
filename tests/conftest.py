"""Shared test configuration.

BLAS threads are pinned to one per process: the test matrices are small, and pytest-xdist
already runs one worker per core, so multithreaded BLAS would only oversubscribe the cores.
"""

import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
