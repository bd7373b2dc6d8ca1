"""Deprecated: the finite-difference gradient checks live in :mod:`lowrank_ode.testing.layers`.

This module re-exports them for one release and warns on import.
"""

from __future__ import annotations

import warnings

from ..testing.layers import (  # noqa: F401
    directional_error,
    gradient_check,
    layer_gradient_report,
    taylor_slope,
)

__all__ = ["directional_error", "taylor_slope", "gradient_check", "layer_gradient_report"]

warnings.warn(
    "lowrank_ode.nn.gradcheck is deprecated and will be removed in the next release; "
    "import from lowrank_ode.testing.layers",
    DeprecationWarning,
    stacklevel=2,
)
