"""Command line: ``lowrank-ode {demo,train,reproduce}`` (also ``python -m lowrank_ode``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._threads import check_threads
from .dlrt.cli import DefaultsHelpFormatter

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick, progress=not args.quiet and sys.stderr.isatty())
    return 0


def _import_studies() -> Any:
    """The ``studies`` package: importable as is, or next to this package in a source checkout
    (an editable install puts only ``lowrank_ode`` on the path)."""
    try:
        import studies
    except ImportError:
        root = Path(__file__).resolve().parents[1]
        if not (root / "studies" / "__init__.py").is_file():
            raise
        sys.path.insert(0, str(root))
        import studies
    return studies


def _reproduce(args: argparse.Namespace) -> int:
    try:
        studies = _import_studies()
    except ImportError:
        print(
            "lowrank-ode reproduce needs the studies/ package of a source checkout", file=sys.stderr
        )
        return 2
    if args.report:
        return _report(args)
    if args.workers is not None and args.workers < 1:
        print(f"--workers must be a positive integer, got {args.workers}", file=sys.stderr)
        return 2
    if args.workers is not None and args.scheduler is not None:
        print("give either --workers or --scheduler, not both", file=sys.stderr)
        return 2
    results = studies.reproduce(
        args.names or None,
        quick=args.quick,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        threads=args.threads,
    )
    partial = [n for n, r in results.items() if r.get("_grid", {}).get("state") == "partial"]
    if partial:
        print(f"partial grids (run the command again to resume): {partial}", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from studies import report

    try:
        rows = report.rows(args.out, args.names or None)
    except ValueError as err:
        print(f"lowrank-ode reproduce --report: {err}", file=sys.stderr)
        return 2
    print(report.format_report(rows))
    if args.json:
        report.write_json(rows, args.json)
    return 0


#: The studies of ``lowrank-ode reproduce`` with their rough full-mode run times on two cores
#: (recorded in studies/README.md); quick mode takes seconds per study.
_STUDIES_EPILOG = """\
studies (rough full-mode run time on two cores):
  klw_robustness        KLW matrix: error vs h, robustness to small singular values   ~2 min
  schrodinger_adaptive  rank-adaptive BUG on the discrete Schrödinger equation        ~20 s
  midpoint_order        order of the midpoint BUG integrator                          ~14 min
  approximation         the error bound c0δ + c1ε + c2h + c3ϑ/h                       ~20 s
  descent               the descent bound of rank-adaptive BUG                        ~25 s
  mnist_dlrt            DLRT on full MNIST (τ grids, LeNet-5; needs the MNIST files)  hours
  mnist_robustness      DLRT vs U Vᵀ with small initial singular values (full MNIST)  ~1 h
  timing                time per batch against rank (5 × 4096 layers)                 ~20 min
"""


class _DefaultsRawEpilogFormatter(DefaultsHelpFormatter):
    """Show defaults, and keep the epilog's line breaks (the table of studies)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n  " in text:  # a preformatted table
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not action.option_strings:  # positional: its help says what "none given" means
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lowrank-ode`` command."""
    p = argparse.ArgumentParser(
        prog="lowrank-ode",
        description="Dynamical low-rank approximation and training: demo, train, reproduce.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo",
        help="integrate a built-in problem with every method and plot",
        description="Integrate the KLW test problem (n = 100, rank 16, T = 1) with every "
        "method for step sizes 0.1 ... 0.003 and save the errors (demo.json) and a plot "
        "(demo.png).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("--out", default="demo_out", help="output directory")
    d.add_argument(
        "--quick", action="store_true", help="small sizes (n = 40, rank 10, 3 step sizes)"
    )
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_demo)
    r = sub.add_parser(
        "reproduce",
        help="regenerate the studies' figures and tables",
        description="Regenerate the studies' JSON results, figures and tables (needs the "
        "studies/ package of a source checkout).  Without names, every study runs.",
        epilog=_STUDIES_EPILOG,
        formatter_class=_DefaultsRawEpilogFormatter,
    )
    r.add_argument(
        "names", nargs="*", help="studies to run (none: all of them, in the order below)"
    )
    r.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, a few seconds per study, with assertions on the claims",
    )
    r.add_argument("--out", default="studies/results", help="output directory")
    r.add_argument(
        "--threads",
        type=check_threads,
        default="auto",
        help="BLAS threads: 'auto' or N, as for train",
    )
    r.add_argument(
        "--report",
        action="store_true",
        help="run nothing: print the reproducibility report of the stored results in --out "
        "(one row per quantity compared with the paper, met or not by the study's rule)",
    )
    r.add_argument("--json", default=None, help="with --report: also write the rows as JSON")
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the training grids on a local Dask cluster of N single-threaded worker "
        "processes (needs the 'distributed' extra; default: one run after the other here)",
    )
    r.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="send the training grids' runs to a running Dask scheduler, e.g. "
        "tcp://10.0.0.1:8786 (workers must see --out and the data at the same paths)",
    )
    r.set_defaults(func=_reproduce)
    try:
        from .dlrt.cli import add_train_parser
    except ImportError:
        pass
    else:
        add_train_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
