"""Command line: ``lowrank-ode {demo,train,reproduce}`` (also ``python -m lowrank_ode``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._threads import check_threads

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick, progress=not args.quiet and sys.stderr.isatty())
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    try:
        import studies
    except ImportError:
        print(
            "lowrank-ode reproduce needs the studies/ package of a source checkout", file=sys.stderr
        )
        return 2
    if args.report:
        return _report(args)
    studies.reproduce(args.names or None, quick=args.quick, out=args.out, threads=args.threads)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lowrank-ode`` command."""
    p = argparse.ArgumentParser(prog="lowrank-ode", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="integrate a built-in problem with every method and plot")
    d.add_argument("--out", default="demo_out")
    d.add_argument("--quick", action="store_true")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_demo)
    r = sub.add_parser("reproduce", help="regenerate the studies' figures and tables")
    r.add_argument("names", nargs="*")
    r.add_argument("--quick", action="store_true")
    r.add_argument("--out", default="studies/results")
    r.add_argument(
        "--threads",
        type=check_threads,
        default="auto",
        help="BLAS threads: 'auto' or N, as for train (default: auto)",
    )
    r.add_argument(
        "--report",
        action="store_true",
        help="run nothing: print the reproducibility report of the stored results in --out "
        "(one row per quantity compared with the paper, met or not by the study's rule)",
    )
    r.add_argument("--json", default=None, help="with --report: also write the rows as JSON")
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
