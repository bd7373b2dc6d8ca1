"""The Examples sections of the docstrings run as written (doctests of every module).

Every module of the package is imported and its docstring examples are executed with
:mod:`doctest` (ellipsis and whitespace normalisation allowed).  The examples print rounded
numbers or booleans, so they do not depend on round-off.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import lowrank_ode

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(lowrank_ode.__path__, prefix="lowrank_ode.")
    if not m.name.endswith("__main__")  # importing it runs the command line
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_the_main_entry_points_have_examples():
    from lowrank_ode import LowRank, Truncation, integrators, problems, solve
    from lowrank_ode.dlrt import TrainConfig, Trainer, train

    objects = [solve, LowRank, Truncation, TrainConfig, Trainer, train]
    objects += [integrators.METHODS[name] for name in integrators.METHODS]
    objects += [problems.LyapunovProblem, problems.KLWProblem, problems.SchrodingerProblem]
    objects += [problems.MatrixODE]
    missing = [o.__qualname__ for o in objects if "Examples\n" not in (o.__doc__ or "")]
    assert not missing, f"no Examples section in the docstrings of {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with np.printoptions(precision=6, suppress=True, legacy="1.25"):
        result = doctest.testmod(module, optionflags=FLAGS, verbose=False, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {name}"
