"""Dynamical low-rank training: the network loss as a factored gradient flow (:mod:`.flow`),
optimizers as sub-step solvers (:mod:`.optim`), the training loop and checkpoints (:mod:`.train`).

DLRT joins :mod:`lowrank_ode.nn` (values and gradients) and :mod:`lowrank_ode.integrators`
(the BUG family); neither of those knows the other.
"""

from .flow import NetworkFlow, VanillaFlow
from .optim import SGD, Adam, Momentum, get_optimizer
from .train import (
    ARRAY_LIBRARIES,
    METHODS,
    PAPER_DEFAULTS,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    train,
)

__all__ = [
    "NetworkFlow",
    "VanillaFlow",
    "SGD",
    "Momentum",
    "Adam",
    "get_optimizer",
    "METHODS",
    "Trainer",
    "TrainConfig",
    "PAPER_DEFAULTS",
    "TrainingDiverged",
    "train",
    "ARRAY_LIBRARIES",
]
