"""lowrank_ode — dynamical low-rank approximation (DLRA) of matrix ODEs and dynamical low-rank
training (DLRT) of neural networks, in NumPy (CuPy and any array-API library through
array-api-compat).

Core objects: :class:`LowRank` (Y = U S Vᴴ), :class:`Truncation`, the problems in
:mod:`lowrank_ode.problems`, the integrators in :mod:`lowrank_ode.integrators`, and
:func:`solve`.
"""

from . import integrators, problems
from ._array_api import qr_pos
from ._threads import blas_threads, thread_info
from .exceptions import NumericalBreakdown
from .lowrank import LowRank, orthonormality_error
from .manifold import tangent_project
from .solve import Solution, solve
from .substep import RK4, Euler, Exact
from .truncation import Truncation

__version__ = "0.1.0"

__all__ = [
    "integrators",
    "problems",
    "LowRank",
    "Truncation",
    "solve",
    "Solution",
    "tangent_project",
    "orthonormality_error",
    "qr_pos",
    "Euler",
    "RK4",
    "Exact",
    "NumericalBreakdown",
    "blas_threads",
    "thread_info",
]
