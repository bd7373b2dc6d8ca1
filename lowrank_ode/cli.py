"""Command line: ``lowrank-ode {demo,train,reproduce}`` (also ``python -m lowrank_ode``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    )
    partial = [n for n, r in results.items() if r.get("_grid", {}).get("state") == "partial"]
    if partial:
        print(f"partial grids (run the command again to resume): {partial}", file=sys.stderr)
        return 1
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
