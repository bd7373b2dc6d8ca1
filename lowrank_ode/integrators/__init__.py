"""The integrators, one family per module, and the registry of method names.

:data:`METHODS` maps each method name to its class; :func:`get_integrator` builds one by name.
:func:`~lowrank_ode.solve` and the DLRT trainer both resolve names here.
"""

from __future__ import annotations

from ..substep import SubstepSolver
from ..truncation import Truncation
from .base import Integrator
from .bug import BUG, FixedBasisGalerkin, ParallelBUG, RankAdaptiveBUG
from .direct import Direct
from .full import Full
from .midpoint import MidpointBUG
from .projector_splitting import KSL, Strang

METHODS: dict[str, type[Integrator]] = {
    "full": Full,
    "direct": Direct,
    "ksl": KSL,
    "strang": Strang,
    "bug": BUG,
    "rabug": RankAdaptiveBUG,
    "parallel": ParallelBUG,
    "midpoint": MidpointBUG,
    "galerkin": FixedBasisGalerkin,
}


def get_integrator(
    method: str | Integrator,
    substep: str | SubstepSolver = "rk4",
    truncation: Truncation | None = None,
) -> Integrator:
    """The integrator named ``method`` (case-insensitive) with a sub-step solver and truncation.

    Parameters
    ----------
    method : str or Integrator
        A key of :data:`METHODS`; an instance is returned unchanged.
    substep : {"rk4", "euler", "exact"} or SubstepSolver
    truncation : Truncation, optional
        Only for the methods with ``accepts_truncation``.

    Raises
    ------
    ValueError
        On an unknown name, or a truncation for a fixed-rank method.
    """
    if isinstance(method, Integrator):
        return method
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method.lower()](substep=substep, truncation=truncation)


__all__ = [
    "Integrator",
    "Full",
    "Direct",
    "KSL",
    "Strang",
    "BUG",
    "RankAdaptiveBUG",
    "ParallelBUG",
    "MidpointBUG",
    "FixedBasisGalerkin",
    "METHODS",
    "get_integrator",
]
