"""Reproducibility report: the stored results against the published values, by stated rules.

``lowrank-ode reproduce --report`` prints, and ``--report --json PATH`` writes, one row per
compared quantity.  Each row is a dict with the keys

``study``, ``quantity``
    Which study and what is compared.
``ours``, ``paper``
    Our value (computed from the stored results, ``studies/results/<study dir>/<run>.json``)
    and the published one (:mod:`studies.published`).  Percentages; a pair "accuracy at
    compression" is a dict with ``test_accuracy`` and ``compression_eval``.
``met``
    ``True`` or ``False`` by the rule the study states (``rule``), or ``None`` when it cannot be
    decided — runs missing, unfinished or computed with another configuration, or a baseline
    with no target — with the reason in ``reason``.  A partial set of runs never counts as met.
``commands``
    The ``lowrank-ode train`` commands of the runs behind the row (those still to be run
    included), and ``runs`` / ``missing`` / ``code`` / ``budget`` / ``source`` / ``note``.

The rules are the studies' own: :data:`studies.mnist_robustness.TARGETS`,
:data:`studies.mnist_dlrt.LENET_TARGET` and :data:`studies.mnist_dlrt.MLP_TARGETS`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode.dlrt import TrainConfig
from lowrank_ode.dlrt.cli import train_command

from . import _runner, mnist_dlrt, mnist_robustness
from . import published as P

__all__ = ["REPORTED", "rows", "format_report", "write_json", "RunSet"]

#: The studies the report covers, and their results folders under ``out``.
REPORTED = {"mnist_robustness": "mnist_robustness", "mnist_dlrt": "mnist"}

Row = dict[str, Any]


class RunSet:
    """The stored results of some runs of one study, and what is missing.

    A run counts as finished when ``out/<folder>/<name>.json`` exists, holds the run's current
    configuration (:func:`studies._runner._same_config`) and a history of every epoch.

    Parameters
    ----------
    folder : Path
        The study's results folder.
    cfgs : dict of str to TrainConfig
        The runs, by name.
    """

    def __init__(self, folder: Path, cfgs: dict[str, TrainConfig]) -> None:
        self.folder = folder
        self.cfgs = cfgs
        self.done: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, str] = {}
        for name, cfg in cfgs.items():
            path = folder / f"{name}.json"
            if not path.exists():
                self.problems[name] = "not run"
                continue
            saved = json.loads(path.read_text())
            epochs = cfg.epochs + cfg.finetune_epochs
            if not _runner._same_config(saved.get("config"), cfg):
                self.problems[name] = "stored with another configuration"
            elif "test_accuracy" not in saved or len(saved.get("history", [])) < epochs:
                self.problems[name] = "unfinished"
            else:
                self.done[name] = saved

    @property
    def complete(self) -> bool:
        """Every run finished."""
        return not self.problems and bool(self.cfgs)

    def mean(self, key: str, names: Iterable[str] | None = None, scale: float = 1.0) -> float:
        """Mean of ``key`` (times ``scale``) over the finished runs among ``names``."""
        vals = [scale * self.done[n][key] for n in (names or self.cfgs) if n in self.done]
        return float(np.mean(vals)) if vals else float("nan")

    def commands(self) -> list[str]:
        """The command of every run, writing the run's JSON: the stored one, else the one that
        would produce it."""
        out = []
        for name, cfg in self.cfgs.items():
            stored = self.done.get(name, {}).get("command")
            json_path = str(self.folder / f"{name}.json")
            if stored:
                out.append(f"{stored} --json {shlex.quote(json_path)}")
            else:
                out.append(shlex.join(train_command(cfg, data="", extra=("--json", json_path))))
        return out

    def reason(self) -> str:
        """Why the set is incomplete (empty when it is complete)."""
        if not self.problems:
            return ""
        by_kind: dict[str, list[str]] = {}
        for name, why in self.problems.items():
            by_kind.setdefault(why, []).append(name)
        parts = [
            f"{len(v)} {k} ({', '.join(v[:3])}{', …' if len(v) > 3 else ''})"
            for k, v in by_kind.items()
        ]
        return f"{len(self.problems)} of {len(self.cfgs)} runs missing: " + "; ".join(parts)

    def budget(self) -> str:
        """Epochs and seeds of the runs."""
        epochs = sorted({c.epochs + c.finetune_epochs for c in self.cfgs.values()})
        seeds = sorted({c.seed for c in self.cfgs.values()})
        return f"{'/'.join(map(str, epochs))} epochs, {len(seeds)} seed(s) per setting"

    def codes(self) -> list[str]:
        """The code versions that produced the finished runs."""
        return sorted({str(r.get("code", "unrecorded")) for r in self.done.values()})


def _row(
    study: str,
    quantity: str,
    ours: Any,
    paper: Any,
    rule: str,
    decide: Any,
    runs: RunSet,
    source: str,
    note: str = "",
) -> Row:
    """One report row; ``decide()`` is evaluated only when every run behind it finished."""
    met: bool | None
    if decide is None:
        met, reason = None, "no target (a baseline)"
        if not runs.complete:
            reason += "; " + runs.reason()
    elif runs.complete:
        met, reason = bool(decide()), ""
    else:
        met, reason = None, runs.reason()
    return {
        "study": study,
        "quantity": quantity,
        "ours": ours,
        "paper": paper,
        "met": met,
        "rule": rule,
        "reason": reason,
        "budget": runs.budget(),
        "runs": f"{len(runs.done)} of {len(runs.cfgs)}",
        "missing": sorted(runs.problems),
        "code": runs.codes(),
        "source": source,
        "note": note,
        "commands": runs.commands(),
    }


def _nan_to_none(x: float) -> float | None:
    return None if x != x else round(x, 4)


# ----------------------------------------------------------------------------- robustness
def robustness_rows(out: Path) -> list[Row]:
    """DLRT ≥ the target at every decay, above U Vᵀ by the stated gap (official budget)."""
    mod = mnist_robustness
    folder = out / REPORTED["mnist_robustness"]
    cfgs = mod.configs(quick=False)
    prefix, short = mod.TARGETS["prefix"], "lenet5"
    source = str(P.ROBUSTNESS_SOURCE)
    rows = []
    for d in mod.DECAYS:
        pick = {
            m: {n: c for n, c in cfgs.items() if n.startswith(f"{prefix}_decay{d}_{m}_")}
            for m in ("dlrt", "vanilla")
        }
        dlrt, both = (
            RunSet(folder, pick["dlrt"]),
            RunSet(folder, {**pick["dlrt"], **pick["vanilla"]}),
        )
        acc_d = dlrt.mean("test_accuracy", scale=100)
        acc_v = both.mean("test_accuracy", pick["vanilla"], scale=100)
        note = _short_budget_note(folder, cfgs, short, d)
        lo = mod.TARGETS["dlrt_min"]
        rows.append(
            _row(
                "mnist_robustness",
                f"LeNet-5 rank 20, decay {d}: DLRT mean test accuracy (%)",
                _nan_to_none(acc_d),
                mod.PUBLISHED[d]["dlrt"][0],
                f"≥ {lo}",
                lambda a=acc_d, lo=lo: a >= lo,
                dlrt,
                source,
                note,
            )
        )
        gap_min = mod.TARGETS["gap_min"][d]
        paper_gap = round(mod.PUBLISHED[d]["dlrt"][0] - mod.PUBLISHED[d]["vanilla"][0], 2)
        rows.append(
            _row(
                "mnist_robustness",
                f"LeNet-5 rank 20, decay {d}: DLRT − U Vᵀ mean test accuracy (points)",
                _nan_to_none(acc_d - acc_v),
                paper_gap,
                f"≥ {gap_min}" if gap_min > 0 else "> 0",
                lambda g=acc_d - acc_v, m=gap_min: g >= m if m > 0 else g > 0,
                both,
                source,
                note,
            )
        )
    return rows


def _short_budget_note(folder: Path, cfgs: dict[str, TrainConfig], prefix: str, d: int) -> str:
    """Our numbers at the short budget, to show while the official-budget runs are missing."""
    vals = {}
    for m in ("dlrt", "vanilla"):
        rs = RunSet(
            folder, {n: c for n, c in cfgs.items() if n.startswith(f"{prefix}_decay{d}_{m}_")}
        )
        if not rs.done:
            return ""
        vals[m] = (rs.mean("test_accuracy", scale=100), len(rs.done), rs.budget())
    (a, k, b), (v, _, _) = vals["dlrt"], vals["vanilla"]
    return f"at {b.split(',')[0]} ({k} seeds): DLRT {a:.2f} %, U Vᵀ {v:.2f} %"


# ----------------------------------------------------------------------------- LeNet-5 τ
def lenet_rows(out: Path) -> list[Row]:
    """Mean accuracy ≥ official − slack at ≥ official true compression, at every τ."""
    mod = mnist_dlrt
    folder = out / REPORTED["mnist_dlrt"]
    cfgs = mod.configs(quick=False)
    prefix, slack = mod.LENET_TARGET["prefix"], mod.LENET_TARGET["accuracy_slack"]
    source = str(P.LENET5_TABLE_SOURCE)
    rows = []
    for t in mod.LENET_TAUS_E20:
        runs = RunSet(folder, {n: c for n, c in cfgs.items() if n.startswith(f"{prefix}_tau{t}_")})
        off = P.LENET5_OFFICIAL[t]
        paper = {
            "test_accuracy": off.mean,
            "compression_eval": P.lenet5_compression(off.ranks),
        }
        exact = {
            "test_accuracy": runs.mean("test_accuracy", scale=100),
            "compression_eval": runs.mean("compression_eval"),
        }
        ours = {k: _nan_to_none(v) for k, v in exact.items()}
        short = RunSet(
            folder, {n: c for n, c in cfgs.items() if n.startswith(f"lenet5_tau{t}_seed")}
        )
        note = ""
        if short.done:
            note = (
                f"at {short.budget().split(',')[0]} ({len(short.done)} seeds): "
                f"{short.mean('test_accuracy', scale=100):.2f} % at "
                f"{short.mean('compression_eval'):.1f} %"
            )
        rows.append(
            _row(
                "mnist_dlrt",
                f"LeNet-5 τ = {t}: mean test accuracy (%) at mean true eval. compression (%)",
                ours,
                {k: _nan_to_none(v) for k, v in paper.items()},
                f"accuracy ≥ official − {slack} at compression ≥ official",
                lambda o=exact, p=paper: (
                    o["test_accuracy"] >= p["test_accuracy"] - slack
                    and o["compression_eval"] >= p["compression_eval"]
                ),
                runs,
                source,
                note,
            )
        )
    dense = RunSet(folder, {n: c for n, c in cfgs.items() if n.startswith(f"{prefix}_dense_seed")})
    rows.append(
        _row(
            "mnist_dlrt",
            "LeNet-5 dense baseline: mean test accuracy (%)",
            _nan_to_none(dense.mean("test_accuracy", scale=100)),
            P.LENET5_DENSE[0],
            "—",
            None,
            dense,
            source,
        )
    )
    return rows


# ----------------------------------------------------------------------------- MLP
def mlp_rows(out: Path) -> list[Row]:
    """The MLP rows of the paper's Sec. 5.1 tables with a stated target."""
    mod = mnist_dlrt
    folder = out / REPORTED["mnist_dlrt"]
    cfgs = mod.configs(quick=False)
    rows = []
    for name, (acc_min, cr_min) in mod.MLP_TARGETS.items():
        runs = RunSet(folder, {name: cfgs[name]})
        exact = {
            "test_accuracy": runs.mean("test_accuracy", scale=100),
            "compression_eval": runs.mean("compression_eval"),
        }
        ours = {k: _nan_to_none(v) for k, v in exact.items()}
        p = mod.published(name)
        paper = {
            "test_accuracy": p["test_accuracy"],
            "compression_eval": _nan_to_none(p["compression_eval"]),
        }
        rule = f"accuracy ≥ {acc_min}" + (f" at compression ≥ {cr_min}" if cr_min else "")
        what = "the command-line defaults" if name.endswith("cli_defaults") else "product start"
        rows.append(
            _row(
                "mnist_dlrt",
                f"MLP w = 500, τ = {cfgs[name].tau} ({what}): test accuracy (%) at eval. "
                "compression (%)",
                ours,
                paper,
                rule,
                lambda o=exact, a=acc_min, c=cr_min: (
                    o["test_accuracy"] >= a and (c is None or o["compression_eval"] >= c)
                ),
                runs,
                str(P.MLP_SOURCE),
            )
        )
    return rows


# ----------------------------------------------------------------------------- assembly
_BUILDERS = {
    "mnist_robustness": [robustness_rows],
    "mnist_dlrt": [lenet_rows, mlp_rows],
}


def rows(out: str | Path = "studies/results", studies: Sequence[str] | None = None) -> list[Row]:
    """The report rows of ``studies`` (default: every study in :data:`REPORTED`).

    Parameters
    ----------
    out : str or Path
        The results folder (``studies/results``).
    studies : sequence of str, optional
        Names from :data:`REPORTED`.

    Returns
    -------
    list of dict
        One row per compared quantity (keys: see the module docstring).

    Raises
    ------
    ValueError
        If a name is not a reported study.
    """
    names = list(REPORTED) if not studies else list(studies)
    unknown = [n for n in names if n not in REPORTED]
    if unknown:
        raise ValueError(f"studies {unknown} have no report; choose from {sorted(REPORTED)}")
    out = Path(out)
    return [row for n in names for build in _BUILDERS[n] for row in build(out)]


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, dict):
        a, c = v.get("test_accuracy"), v.get("compression_eval")
        return f"{_fmt(a)} at {_fmt(c)}"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def format_report(report: Sequence[Row]) -> str:
    """The rows as a markdown table (study, quantity, ours, paper, rule, met, budget, reason)."""
    head = "| study | quantity | ours | paper | rule | met | budget | reason / note |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in report:
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        why = "; ".join(x for x in (r["reason"], r["note"]) if x)
        lines.append(
            f"| {r['study']} | {r['quantity']} | {_fmt(r['ours'])} | {_fmt(r['paper'])} | "
            f"{r['rule']} | {met} | {r['budget']} | {why} |"
        )
    n = {k: sum(r["met"] is k for r in report) for k in (True, False, None)}
    lines.append("")
    lines.append(f"met: {n[True]}, not met: {n[False]}, undecided: {n[None]} (of {len(report)})")
    return "\n".join(lines)


def write_json(report: Sequence[Row], path: str | Path) -> None:
    """Write the rows as a JSON list (``NaN`` never appears: undecided values are ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(report), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
