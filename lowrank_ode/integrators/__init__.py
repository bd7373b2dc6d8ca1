"""The integrators, one family per module, and the registry of method names used by solve()."""

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
]
