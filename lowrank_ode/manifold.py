"""Tangent space of the manifold of rank-r matrices at Y = U S Vᴴ."""

from __future__ import annotations

from typing import Any

from ._array_api import array_namespace, ct, qr_pos
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
        projection (rank ≤ 2r, orthonormal outer factors), without forming Z.
    """
    U, V = Y.U, Y.V
    if isinstance(Z, LowRank):
        xp = array_namespace(U, Z.S)
        if Z.shape != Y.shape:
            raise ValueError(f"Z has shape {Z.shape}, expected {Y.shape}")
        ZV = Z.U @ (Z.S @ (ct(Z.V, xp=xp) @ V))  # Z V      (n × r)
        ZhU = Z.V @ (ct(Z.S, xp=xp) @ (ct(Z.U, xp=xp) @ U))  # Zᴴ U  (m × r)
        M = ct(U, xp=xp) @ ZV  # UᴴZV
        # P(Y)Z = U (ZᴴU)ᴴ + (ZV) Vᴴ − U M Vᴴ, written in orthonormal bases of [U | ZV], [V | ZᴴU]
        Qu, _ = qr_pos(xp.concat([U, ZV], axis=1), xp=xp)
        Qv, _ = qr_pos(xp.concat([V, ZhU], axis=1), xp=xp)
        a, b = ct(Qu, xp=xp) @ U, ct(V, xp=xp) @ Qv
        core = a @ (ct(ZhU, xp=xp) @ Qv) + (ct(Qu, xp=xp) @ ZV) @ b - a @ M @ b
        return LowRank(Qu, core, Qv)
    xp = array_namespace(U, Z)
    if tuple(Z.shape) != Y.shape:
        raise ValueError(f"Z has shape {tuple(Z.shape)}, expected {Y.shape}")
    UhZ = ct(U, xp=xp) @ Z
    ZV = Z @ V
    return U @ UhZ - U @ (UhZ @ V) @ ct(V, xp=xp) + ZV @ ct(V, xp=xp)
