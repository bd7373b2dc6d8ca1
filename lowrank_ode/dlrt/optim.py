"""Optimizers as sub-step solvers of the gradient flow W' = −∇ℒ(W) (step size h = learning rate).

Plain SGD is explicit Euler; momentum and Adam are preconditioned Euler steps whose state
(velocity, moments) persists between calls under the sub-problem's ``key`` ("K", "L", "S", …).

Change of basis (our choice, tested in ``tests/dlrt/test_optim.py``).  The integrator tells the
solver, for each state entry X_j, the bases (P_j, Q_j) in which it stands for the full-space
matrix P_j X_j Q_jᴴ (K = US in (I, V₀), L = VSᵀ in (I, U₀), S in (U, V)).  When the bases
change between two steps, a first-moment buffer M (a velocity) is *transported*: the full-space
velocity P_old M Q_oldᴴ is projected onto the new bases,

    M ← (Pᴴ P_old) M (Q_oldᴴ Q),

so the directions that survive a basis update keep their momentum and the new ones start from
zero.  Adam's second moments (non-negative, entrywise) are carried with the entrywise squares of
the same transition matrices, v ← |Pᴴ P_old|² v |Q_oldᴴ Q|², exact when a basis change only
permutes or flips columns and keeping v ≥ 0 in general.  When the number or kind of entries
changes, the state is reset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._array_api import array_namespace, ct
from ..substep import SubstepSolver

__all__ = ["SGD", "Momentum", "Adam", "get_optimizer"]


def _transition(new: Any, old: Any, xp: Any) -> Any:
    """newᴴ old, or None when both are identities (None)."""
    if new is None and old is None:
        return None
    if new is None or old is None:
        raise ValueError("cannot transport optimizer state between an identity and a basis")
    if new is old or (
        new.shape == old.shape
        and bool(xp.all(new[0, ...] == old[0, ...]))  # cheap early exit: bases that moved
        and bool(xp.all(new == old))  # differ in their first row already
    ):
        return "same"  # exact equality, so that a resumed run takes the same branch
    return ct(new, xp=xp) @ old


def _transitions(old: tuple, new: tuple, xp: Any) -> tuple[Any, Any]:
    """(Pᴴ P_old, Qᴴ Q_old) of one state entry (None: identity, "same": unchanged)."""
    return _transition(new[0], old[0], xp), _transition(new[1], old[1], xp)


def _transport(M: Any, AB: tuple[Any, Any], squared: bool) -> Any:
    """(Pᴴ P_old) M (Q_oldᴴ Q) — or with entrywise squared transitions."""
    xp = array_namespace(M)
    A, B = AB  # B = Qᴴ Q_old; we need its ᴴ on the right
    if squared:
        A = A if A is None or isinstance(A, str) else xp.abs(A) ** 2
        B = B if B is None or isinstance(B, str) else xp.abs(B) ** 2
    if A is not None and not isinstance(A, str):
        M = A @ M
    if B is not None and not isinstance(B, str):
        M = M @ (B.T if squared else ct(B, xp=xp))
    return M


class _Stateful(SubstepSolver):
    """Keeps per-key state ``{key: (bases, buffers...)}`` and transports it between bases."""

    order = 1
    n_buffers = 1
    squared_buffers: tuple[bool, ...] = (False,)

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        """Forget all state."""
        self.state = {}

    def _buffers(self, key: Any, X0: tuple, basis: Any) -> list[list[Any]]:
        xp = array_namespace(*X0)
        basis = tuple(basis) if basis is not None else ((None, None),) * len(X0)
        st = self.state.get(str(key))
        if st is None or len(st["basis"]) != len(X0):
            fresh = [[xp.zeros_like(x) for x in X0] for _ in range(self.n_buffers)]
            self.state[str(key)] = {"basis": basis, "buffers": fresh, "count": [0] * len(X0)}
            return fresh
        trans: list[Any] = []  # one transition pair per entry, shared by all buffers
        for j in range(len(X0)):
            try:
                trans.append(_transitions(st["basis"][j], basis[j], xp))
            except ValueError:
                trans.append(None)
        bufs = []
        for b, sq in zip(st["buffers"], self.squared_buffers, strict=True):
            moved = []
            for j, (M, x) in enumerate(zip(b, X0, strict=True)):
                M = None if trans[j] is None else _transport(M, trans[j], sq)
                if M is None or tuple(M.shape) != tuple(x.shape):
                    M = xp.zeros_like(x)  # this entry starts afresh (and so does its counter)
                    st["count"][j] = 0
                moved.append(M)
            bufs.append(moved)
        st["basis"], st["buffers"] = basis, bufs
        return bufs

    def state_dict(self) -> dict[str, Any]:
        """Flat ``{name: array}`` of the whole state (buffers, bases, counters) for checkpoints."""

        from .._array_api import to_numpy

        out: dict[str, Any] = {}
        for key, st in self.state.items():
            out[f"{key}|count"] = np.asarray(st["count"], dtype=np.int64)
            out[f"{key}|n"] = np.asarray(len(st["basis"]))
            for j, (P, Q) in enumerate(st["basis"]):
                if P is not None:
                    out[f"{key}|P|{j}"] = to_numpy(P)
                if Q is not None:
                    out[f"{key}|Q|{j}"] = to_numpy(Q)
            for k, b in enumerate(st["buffers"]):
                for j, M in enumerate(b):
                    out[f"{key}|buf{k}|{j}"] = to_numpy(M)
        return out

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (NumPy arrays).

        Raises
        ------
        ValueError
            When an entry is missing, unexpected, or of the wrong shape or dtype (the message
            names it): a state that does not fit would be reset silently at the next step.
        """
        state: dict[str, dict[str, Any]] = {}
        used: set[str] = set()

        def get(name: str) -> Any:
            if name not in d:
                raise ValueError(f"optimizer state entry {name!r} is missing")
            used.add(name)
            return np.asarray(d[name])

        for name in d:
            parts = name.split("|")
            if len(parts) != 2 or parts[1] != "n":
                continue
            key = parts[0]
            n_arr = get(name)
            if n_arr.shape != () or n_arr.dtype.kind not in "iu" or int(n_arr) < 0:
                raise ValueError(f"optimizer state entry {name!r} must be an integer >= 0")
            n = int(n_arr)
            count = get(f"{key}|count")
            if count.dtype.kind not in "iu" or count.shape != (n,) or np.any(count < 0):
                raise ValueError(
                    f"optimizer state entry {key + '|count'!r} must hold {n} integers >= 0, got "
                    f"dtype {count.dtype} and shape {count.shape}"
                )
            basis, bufs = [], [[] for _ in range(self.n_buffers)]
            for j in range(n):
                P = get(f"{key}|P|{j}") if f"{key}|P|{j}" in d else None
                Q = get(f"{key}|Q|{j}") if f"{key}|Q|{j}" in d else None
                ref = None
                for k in range(self.n_buffers):
                    bname = f"{key}|buf{k}|{j}"
                    M = get(bname)
                    if M.dtype.kind not in "fc" or not np.all(np.isfinite(M)):
                        raise ValueError(
                            f"optimizer state entry {bname!r} must be a finite floating-point "
                            f"array, got dtype {M.dtype}"
                        )
                    if ref is not None and M.shape != ref:
                        raise ValueError(
                            f"optimizer state entry {bname!r} has shape {M.shape}, expected "
                            f"{ref} like the other buffers of entry {j}"
                        )
                    ref = M.shape
                    bufs[k].append(M)
                for side, B, dim in (("P", P, 0), ("Q", Q, 1)):
                    if B is None:
                        continue
                    if B.ndim != 2 or len(ref) != 2 or B.shape[1] != ref[dim]:
                        raise ValueError(
                            f"optimizer state entry {f'{key}|{side}|{j}'!r} has shape {B.shape}, "
                            f"which does not fit the buffers of shape {ref}"
                        )
                basis.append((P, Q))
            state[key] = {"basis": tuple(basis), "buffers": bufs, "count": [int(c) for c in count]}
        unexpected = sorted(set(d) - used)
        if unexpected:
            raise ValueError(f"unexpected optimizer state entries {unexpected[:5]}")
        self.state = state


class SGD(SubstepSolver):
    """Stochastic gradient descent = explicit Euler: X₁ = X₀ + h f(X₀), f = −∇ℒ."""

    order = 1
    name = "sgd"

    def __call__(self, f, t0, X0, h, f0=None, key=None, basis=None):  # noqa: D102
        g = f(t0, X0) if f0 is None else f0
        return tuple(x + h * d for x, d in zip(X0, g, strict=True))


class Momentum(_Stateful):
    """Heavy-ball momentum: M ← βM + f(X₀), X₁ = X₀ + h M (f = −∇ℒ).

    Parameters
    ----------
    beta : float
        Momentum coefficient in [0, 1).
    """

    name = "momentum"

    def __init__(self, beta: float = 0.9) -> None:
        super().__init__()
        if not 0 <= beta < 1:
            raise ValueError(f"beta must satisfy 0 <= beta < 1, got {beta!r}")
        self.beta = float(beta)

    def __call__(self, f, t0, X0, h, f0=None, key=None, basis=None):  # noqa: D102
        g = f(t0, X0) if f0 is None else f0
        (M,) = self._buffers(key, X0, basis)
        M = [self.beta * m + d for m, d in zip(M, g, strict=True)]
        st = self.state[str(key)]
        st["buffers"], st["count"] = [M], [c + 1 for c in st["count"]]
        return tuple(x + h * m for x, m in zip(X0, M, strict=True))


class Adam(_Stateful):
    """Adam (Kingma & Ba 2015) as a preconditioned Euler step on f = −∇ℒ.

    m ← β₁m + (1−β₁)f,  v ← β₂v + (1−β₂)|f|²,  X₁ = X₀ + h m̂ / (√v̂ + ε)
    with bias corrections m̂ = m/(1−β₁ᵏ), v̂ = v/(1−β₂ᵏ), k counted per key and entry (an
    entry whose state is reset by a change of shape restarts at k = 1).
    """

    name = "adam"
    n_buffers = 2
    squared_buffers = (False, True)

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__()
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= b < 1:
                raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {b!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def __call__(self, f, t0, X0, h, f0=None, key=None, basis=None):  # noqa: D102
        g = f(t0, X0) if f0 is None else f0
        xp = array_namespace(*X0)
        M, V = self._buffers(key, X0, basis)
        st = self.state[str(key)]
        ks = [c + 1 for c in st["count"]]  # per entry: an entry that was reset restarts
        dtypes = {x.dtype for x in X0} | {d.dtype for d in g}
        if len(X0) > 1 and len(set(ks)) == 1 and len(dtypes) == 1:
            # one element-wise update of all entries at once (the same arithmetic per entry):
            # a dozen operations on one vector instead of a dozen per entry
            shapes = [tuple(x.shape) for x in X0]
            m, v, d = (_flat(A, xp) for A in (M, V, g))
            m, v, upd = self._update(m, v, d, ks[0], h, xp)
            M, V, U = _split(m, shapes, xp), _split(v, shapes, xp), _split(upd, shapes, xp)
        else:
            parts = [self._update(*e, h, xp) for e in zip(M, V, g, ks, strict=True)]
            M, V, U = (list(p) for p in zip(*parts, strict=True))
        st["buffers"], st["count"] = [M, V], ks
        return tuple(x + u for x, u in zip(X0, U, strict=True))

    def _update(self, m: Any, v: Any, d: Any, k: int, h: float, xp: Any) -> tuple[Any, Any, Any]:
        """(m₁, v₁, h m̂/(√v̂ + ε)) of one entry (or of all entries, flattened)."""
        m = self.beta1 * m + (1 - self.beta1) * d
        v = self.beta2 * v + (1 - self.beta2) * xp.abs(d) ** 2
        return m, v, h * (m / (1 - self.beta1**k)) / (xp.sqrt(v / (1 - self.beta2**k)) + self.eps)


def _flat(arrays: Any, xp: Any) -> Any:
    """The entries of ``arrays`` raveled and joined into one vector."""
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def _split(vec: Any, shapes: list[tuple[int, ...]], xp: Any) -> list[Any]:
    """Inverse of :func:`_flat`: views of ``vec`` with the given shapes."""
    out, o = [], 0
    for sh in shapes:
        n = math.prod(sh)
        out.append(xp.reshape(vec[o : o + n], sh))
        o += n
    return out


def get_optimizer(name: str, **kwargs: Any) -> SubstepSolver:
    """``"sgd" | "momentum" | "adam"`` → a fresh optimizer (sub-step solver)."""
    table = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
    if name not in table:
        raise ValueError(f"optimizer must be one of {sorted(table)}, got {name!r}")
    return table[name](**kwargs)
