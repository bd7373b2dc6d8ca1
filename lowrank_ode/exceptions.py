"""The library's exceptions: which error means what.

Bad arguments raise the built-in :class:`ValueError` or :class:`TypeError`, naming the parameter
and the value.  A *numerical breakdown* — a step that produced NaN/inf, a factorization that did
not converge, a singular core in the direct factor ODEs, a training run whose loss diverged —
raises :class:`NumericalBreakdown`, a subclass of :class:`ArithmeticError`; callers never need to
catch ``ValueError`` to detect one.  An array library that was asked for but cannot be used (CuPy
not installed, no GPU visible) raises :class:`ArrayLibraryUnavailable`, an :class:`ImportError`.
"""

from __future__ import annotations

__all__ = ["NumericalBreakdown", "NonFiniteStep", "ArrayLibraryUnavailable"]


class NumericalBreakdown(ArithmeticError):
    """The computation broke down numerically (non-finite values, failed factorization, ...).

    Examples
    --------
    >>> from lowrank_ode.exceptions import NumericalBreakdown
    >>> issubclass(NumericalBreakdown, ArithmeticError)
    True
    """


class NonFiniteStep(NumericalBreakdown):
    """A step's result holds NaN or inf (raised by :meth:`Integrator.step
    <lowrank_ode.integrators.Integrator.step>`); in training, the run diverged.

    Examples
    --------
    >>> from lowrank_ode.exceptions import NonFiniteStep, NumericalBreakdown
    >>> issubclass(NonFiniteStep, NumericalBreakdown)
    True
    """


class ArrayLibraryUnavailable(ImportError):
    """The array library asked for (``array_library="cupy"``, ``--array-library cupy``) cannot
    be used here: it is not installed, or it sees no device.  The message names the option, the
    value and what is missing.

    Examples
    --------
    >>> from lowrank_ode.exceptions import ArrayLibraryUnavailable
    >>> issubclass(ArrayLibraryUnavailable, ImportError)
    True
    """
