"""Optimizers as sub-step solvers of the gradient flow W' = −∇ℒ(W) (step size h = learning rate).

Plain SGD is explicit Euler (:data:`SGD` is :class:`~lowrank_ode.substep.Euler`); momentum and
Adam are preconditioned Euler steps whose state (velocity, moments) persists between calls in one
:class:`SubstepState` per sub-problem (the ``key`` of the call, a
:class:`~lowrank_ode.substep.SubProblem`).

Change of basis (our choice, tested in ``tests/dlrt/test_optim.py``).  The integrator tells the
solver, for each state entry X_j, the bases (P_j, Q_j) in which it stands for the full-space
matrix P_j X_j Q_jᴴ (K = US in (I, V₀), L = VSᵀ in (I, U₀), S in (U, V)).  When the bases
change between two steps, a first-moment buffer M (a velocity) is *transported*: the full-space
velocity P_old M Q_oldᴴ is projected onto the new bases,

    M ← (Pᴴ P_old) M (Q_oldᴴ Q),

so the directions that survive a basis update keep their momentum and the new ones start from
zero.  Adam's second moments (non-negative, entrywise) are carried with the entrywise squares of
the same transition matrices, v ← |Pᴴ P_old|² v |Q_oldᴴ Q|², exact when a basis change only
permutes or flips columns and keeping v ≥ 0 in general.  Each side of an entry moves by a
:class:`Transition` (the identity when the side has no basis or kept it).  When the number or
kind of entries changes, the state is reset.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._array_api import array_namespace, ct, to_numpy
from ..substep import Euler, SubProblem, SubstepSolver

__all__ = ["SGD", "Momentum", "Adam", "get_optimizer", "Transition", "SubstepState"]

#: Plain SGD is explicit Euler, X₁ = X₀ + h f(X₀) with f = −∇ℒ (the same class).
SGD = Euler


@dataclass(frozen=True)
class Transition:
    """How one side of a state entry maps from the old basis to the new one.

    ``matrix`` is ``newᴴ old``, or ``None`` for the identity — no basis on this side (the
    entry is a plain matrix there) or exactly the same basis as before (compared by value,
    so that a run resumed from a checkpoint takes the same branch and resumes bit for bit).
    """

    matrix: Any = None

    @classmethod
    def between(cls, new: Any, old: Any, xp: Any) -> Transition:
        """The transition from basis ``old`` to ``new`` (``None``: no basis).

        Raises
        ------
        ValueError
            When one side has a basis and the other has none (the state cannot be carried).
        """
        if new is None and old is None:
            return cls()
        if new is None or old is None:
            raise ValueError("cannot transport optimizer state between an identity and a basis")
        if new is old or (
            new.shape == old.shape
            and bool(xp.all(new[0, ...] == old[0, ...]))  # cheap early exit: bases that moved
            and bool(xp.all(new == old))  # differ in their first row already
        ):
            return cls()
        return cls(ct(new, xp=xp) @ old)

    def squared(self, xp: Any) -> Transition:
        """The entrywise |·|² of the matrix (how Adam carries its second moments)."""
        return self if self.matrix is None else Transition(xp.abs(self.matrix) ** 2)


def _transport(M: Any, left: Transition, right: Transition) -> Any:
    """(Pᴴ P_old) M (Q_oldᴴ Q): ``left.matrix`` = Pᴴ P_old, ``right.matrix`` = Qᴴ Q_old."""
    if left.matrix is not None:
        M = left.matrix @ M
    if right.matrix is not None:
        M = M @ ct(right.matrix, xp=array_namespace(M))
    return M


@dataclass
class SubstepState:
    """The state a stateful optimizer keeps for one :class:`~lowrank_ode.substep.SubProblem`.

    Attributes
    ----------
    basis : tuple of (P, Q)
        Per state entry, the bases of the last call (``None`` for an identity).
    buffers : list of list of arrays
        Per buffer (velocity; Adam's first and second moments), one array per entry.
    count : list of int
        Per entry, the number of updates since the entry was (re)started.
    """

    basis: tuple
    buffers: list[list[Any]]
    count: list[int] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        """Deprecated dictionary access (``state[key]["count"]``); use the attributes."""
        warnings.warn(
            "optimizer state entries are SubstepState records; use .basis, .buffers, .count "
            "(dictionary access is deprecated and will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, name)


def _as_key(key: Any) -> Any:
    """The :class:`~lowrank_ode.substep.SubProblem` named by ``key``; other keys (of integrators
    outside the library) by their string, as checkpoints store them."""
    try:
        return SubProblem(key)
    except ValueError:
        return str(key)


class _Stateful(SubstepSolver):
    """Keeps a :class:`SubstepState` per sub-problem and transports it between bases.

    ``state`` maps :class:`~lowrank_ode.substep.SubProblem` members (which compare equal to
    their string values, ``"K"``, ``"S-"``, …) to :class:`SubstepState` records.
    """

    order = 1
    n_buffers = 1
    squared_buffers: tuple[bool, ...] = (False,)

    def __init__(self) -> None:
        self.state: dict[Any, SubstepState] = {}

    def reset(self) -> None:
        """Forget all state."""
        self.state = {}

    def _buffers(self, key: Any, X0: tuple, basis: Any) -> list[list[Any]]:
        """The buffers of sub-problem ``key`` carried to ``basis`` (fresh zeros if new)."""
        xp = array_namespace(*X0)
        key = _as_key(key)
        basis = tuple(basis) if basis is not None else ((None, None),) * len(X0)
        st = self.state.get(key)
        if st is None or len(st.basis) != len(X0):
            fresh = [[xp.zeros_like(x) for x in X0] for _ in range(self.n_buffers)]
            self.state[key] = SubstepState(basis, fresh, [0] * len(X0))
            return fresh
        moves: list[tuple[Transition, Transition] | None] = []  # shared by all buffers
        for (P_old, Q_old), (P, Q) in zip(st.basis, basis, strict=True):
            try:
                moves.append((Transition.between(P, P_old, xp), Transition.between(Q, Q_old, xp)))
            except ValueError:
                moves.append(None)  # this entry cannot be carried: it starts afresh
        bufs = []
        for b, sq in zip(st.buffers, self.squared_buffers, strict=True):
            moved = []
            for j, (M, x) in enumerate(zip(b, X0, strict=True)):
                if moves[j] is not None:
                    left, right = moves[j]
                    if sq:
                        left, right = left.squared(xp), right.squared(xp)
                    M = _transport(M, left, right)
                if moves[j] is None or tuple(M.shape) != tuple(x.shape):
                    M = xp.zeros_like(x)  # this entry starts afresh (and so does its counter)
                    st.count[j] = 0
                moved.append(M)
            bufs.append(moved)
        st.basis, st.buffers = basis, bufs
        return bufs

    def map_state(self, fn: Callable[[Any], Any]) -> None:
        """Apply ``fn`` to every array of the state, bases and buffers (e.g. ``xp.asarray`` to
        move a state loaded by :meth:`load_state_dict` to the network's array library)."""
        for st in self.state.values():
            st.basis = tuple(tuple(None if B is None else fn(B) for B in pair) for pair in st.basis)
            st.buffers = [[fn(M) for M in bufs] for bufs in st.buffers]

    def state_dict(self) -> dict[str, Any]:
        """Flat ``{name: array}`` of the whole state (buffers, bases, counters) for checkpoints.

        Names are ``"<sub-problem>|<field>|…"`` with the sub-problem's string value (``"K"``,
        ``"L"``, ``"S"``, ``"S-"``, ``"USV"``, ``"full"``).
        """
        out: dict[str, Any] = {}
        for key, st in self.state.items():
            k = str(key)
            out[f"{k}|count"] = np.asarray(st.count, dtype=np.int64)
            out[f"{k}|n"] = np.asarray(len(st.basis))
            for j, (P, Q) in enumerate(st.basis):
                if P is not None:
                    out[f"{k}|P|{j}"] = to_numpy(P)
                if Q is not None:
                    out[f"{k}|Q|{j}"] = to_numpy(Q)
            for b, bufs in enumerate(st.buffers):
                for j, M in enumerate(bufs):
                    # a copy: Adam updates its joined buffers in place at the next step
                    out[f"{k}|buf{b}|{j}"] = np.array(to_numpy(M), copy=True)
        return out

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (NumPy arrays).

        Raises
        ------
        ValueError
            When an entry is missing, unexpected, or of the wrong shape or dtype (the message
            names it): a state that does not fit would be reset silently at the next step.
        """
        state: dict[Any, SubstepState] = {}
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
            state[_as_key(key)] = SubstepState(tuple(basis), bufs, [int(c) for c in count])
        unexpected = sorted(set(d) - used)
        if unexpected:
            raise ValueError(f"unexpected optimizer state entries {unexpected[:5]}")
        self.state = state


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
        st = self.state[_as_key(key)]
        st.buffers, st.count = [M], [c + 1 for c in st.count]
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
        st = self.state[_as_key(key)]
        ks = [c + 1 for c in st.count]  # per entry: an entry that was reset restarts
        dtypes = {x.dtype for x in X0} | {d.dtype for d in g}
        if len(X0) > 1 and len(set(ks)) == 1 and len(dtypes) == 1:
            # one element-wise update of all entries at once (the same arithmetic per entry):
            # a dozen operations on one vector instead of a dozen per entry
            shapes = [tuple(x.shape) for x in X0]
            d = _flat(g, xp)
            if isinstance(d, np.ndarray) and d.dtype.kind == "f":
                # the buffers are the joined vectors of the previous step when nothing moved
                # them: update those in place (the state is replaced below, nothing else holds
                # it), else update fresh copies
                m, v = (_joined(A) for A in (M, V))
                m = _flat(M, xp) if m is None else m
                v = _flat(V, xp) if v is None else v
                m, v, upd = self._update_inplace(m, v, d, ks[0], h)
            else:
                m, v = _flat(M, xp), _flat(V, xp)
                m, v, upd = self._update(m, v, d, ks[0], h, xp)
            M, V, U = _split(m, shapes, xp), _split(v, shapes, xp), _split(upd, shapes, xp)
        else:
            parts = [self._update(*e, h, xp) for e in zip(M, V, g, ks, strict=True)]
            M, V, U = (list(p) for p in zip(*parts, strict=True))
        st.buffers, st.count = [M, V], ks
        return tuple(x + u for x, u in zip(X0, U, strict=True))

    def _update(self, m: Any, v: Any, d: Any, k: int, h: float, xp: Any) -> tuple[Any, Any, Any]:
        """(m₁, v₁, h m̂/(√v̂ + ε)) of one entry (or of all entries, flattened)."""
        m = self.beta1 * m + (1 - self.beta1) * d
        v = self.beta2 * v + (1 - self.beta2) * xp.abs(d) ** 2
        return m, v, h * (m / (1 - self.beta1**k)) / (xp.sqrt(v / (1 - self.beta2**k)) + self.eps)

    def _update_inplace(
        self, m: np.ndarray, v: np.ndarray, d: np.ndarray, k: int, h: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_update` for real NumPy vectors ``m``, ``v`` that the caller owns, written in
        place: the same operations in the same order (bit-identical results) with two fresh
        arrays instead of a dozen — the update of a large dense network is memory-bound."""
        t = np.multiply(d, 1 - self.beta1)
        m *= self.beta1
        m += t  # m = β₁m + (1−β₁)d
        np.abs(d, out=t)
        t **= 2
        t *= 1 - self.beta2
        v *= self.beta2
        v += t  # v = β₂v + (1−β₂)|d|²
        np.divide(v, 1 - self.beta2**k, out=t)
        np.sqrt(t, out=t)
        t += self.eps  # √v̂ + ε
        u = np.divide(m, 1 - self.beta1**k)
        u *= h
        u /= t  # h m̂ / (√v̂ + ε)
        return m, v, u


def _flat(arrays: Any, xp: Any) -> Any:
    """The entries of ``arrays`` raveled and joined into one vector."""
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def _joined(arrays: list[Any]) -> np.ndarray | None:
    """The vector whose consecutive pieces ``arrays`` are (as :func:`_split` made them), or
    ``None`` when they are not exactly that (NumPy arrays only)."""
    base = getattr(arrays[0], "base", None) if arrays else None
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    ptr = base.__array_interface__["data"][0]
    for a in arrays:
        if (
            not isinstance(a, np.ndarray)
            or a.base is not base
            or not a.flags.c_contiguous
            or a.__array_interface__["data"][0] != ptr
        ):
            return None
        ptr += a.nbytes
    return base if ptr == base.__array_interface__["data"][0] + base.nbytes else None


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
