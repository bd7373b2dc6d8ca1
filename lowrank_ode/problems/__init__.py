"""Right-hand sides: the factored problem protocol and the built-in test problems."""

from .affine import AffineMatrixODE, SylvesterProblem
from .base import Evaluation, FunctionODE, MatrixODE, Problem, as_problem
from .gradient import QuadraticGradientFlow
from .klw import KLWProblem
from .lyapunov import LyapunovProblem
from .schrodinger import SchrodingerProblem

__all__ = [
    "Evaluation",
    "Problem",
    "MatrixODE",
    "FunctionODE",
    "as_problem",
    "AffineMatrixODE",
    "SylvesterProblem",
    "KLWProblem",
    "LyapunovProblem",
    "QuadraticGradientFlow",
    "SchrodingerProblem",
]
