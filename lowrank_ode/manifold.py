"""Tangent space of the manifold of rank-r matrices at Y = U S Vᴴ."""

from __future__ import annotations

from typing import Any

from ._array_api import array_namespace, ct
from .lowrank import LowRank

__all__ = ["tangent_project"]


def tangent_project(Y: LowRank, Z: Any) -> Any:
    """P(Y)Z = UUᴴZ − UUᴴZVVᴴ + ZVVᴴ (Koch & Lubich 2007, Lemma 4.1).

    Parameters
    ----------
    Y : LowRank
        The base point (orthonormal U, V).
    Z : array, shape (n, m), or LowRank
        Dense or factored matrix to project.

    Returns
    -------
    array, shape (n, m), or LowRank of rank ≤ 2r
        Dense input gives a dense result; a factored ``Z = A B Cᴴ`` gives the factored
        projection ``[U | Ũ] [[UᴴZV, UᴴZ(I−VVᴴ)…]] …`` of rank ≤ 2r, without forming Z.
    """
    U, V = Y.U, Y.V
    if isinstance(Z, LowRank):
        xp = array_namespace(U, Z.S)
        if Z.shape != Y.shape:
            raise ValueError(f"Z has shape {Z.shape}, expected {Y.shape}")
        ZV = Z.U @ (Z.S @ (ct(Z.V, xp=xp) @ V))  # Z V      (n × r)
        ZhU = Z.V @ (ct(Z.S, xp=xp) @ (ct(Z.U, xp=xp) @ U))  # Zᴴ U  (m × r)
        UhZV = ct(U, xp=xp) @ ZV
        # P(Y)Z = U (UᴴZ) + (ZV) Vᴴ − U (UᴴZV) Vᴴ = [U | ZV] [[−UᴴZV, I], [I, 0]] [V | ZᴴU]ᴴ
        r = U.shape[1]
        I = xp.eye(r, dtype=UhZV.dtype)
        O = xp.zeros((r, r), dtype=UhZV.dtype)
        core = xp.concat([xp.concat([-UhZV, I], axis=1), xp.concat([I, O], axis=1)], axis=0)
        return LowRank(xp.concat([U, ZV], axis=1), core, xp.concat([V, ZhU], axis=1)).orthonormalize()
    xp = array_namespace(U, Z)
    if tuple(Z.shape) != Y.shape:
        raise ValueError(f"Z has shape {tuple(Z.shape)}, expected {Y.shape}")
    UhZ = ct(U, xp=xp) @ Z
    ZV = Z @ V
    return U @ UhZ - U @ (UhZ @ V) @ ct(V, xp=xp) + ZV @ ct(V, xp=xp)
