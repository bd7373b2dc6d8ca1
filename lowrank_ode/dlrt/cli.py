"""``lowrank-ode train``: the command-line face of :func:`lowrank_ode.dlrt.train`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..exceptions import NumericalBreakdown
from .train import METHODS, TrainConfig, Trainer, check_output_path

__all__ = ["add_train_parser", "load_data"]


def load_data(data: str | None, model: str, dtype: str = "float64") -> Any:
    """ "builtin" → bundled subset; a directory → its IDX files; None → LOWRANK_ODE_DATA."""
    from ..data import load_builtin_mnist, load_mnist

    flat = model == "mlp"
    if data == "builtin":
        return tuple(load_builtin_mnist(flat=flat, dtype=dtype))
    return tuple(load_mnist(data or None, flat=flat, dtype=dtype))


def _widths(text: str) -> tuple[int, ...]:
    """argparse type of ``--widths``: comma-separated positive integers."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 784,500,10, got {text!r}"
        ) from None
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 2 positive sizes, got {text!r}")
    return widths


def _run(args: argparse.Namespace) -> int:
    """Run ``train``: every argument is checked before the first step (exit 2 on a bad one)."""
    parser: argparse.ArgumentParser = args._parser
    if args.widths is not None and args.model != "mlp":
        parser.error(f"--widths applies to --model mlp only, got --model {args.model}")
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint PATH (the checkpoint to resume from)")
    if args.resume and not Path(args.checkpoint).is_file():
        parser.error(f"--resume: checkpoint {args.checkpoint!r} does not exist")
    tau = args.tau
    if tau is None and args.method == "dlrt-adaptive" and args.atol is None:
        tau = 0.11  # the documented default of the rank-adaptive method
    try:
        cfg = TrainConfig(
            model=args.model,
            method=args.method,
            tau=tau,
            rank=args.rank,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            optimizer=args.optimizer,
            seed=args.seed,
            finetune_epochs=args.finetune_epochs,
            atol=args.atol,
            max_rank=args.max_rank,
            dtype=args.dtype,
            init_core=args.init,
            **({"widths": args.widths} if args.widths else {}),
        )
        for name, path in (("--json", args.json), ("--checkpoint", args.checkpoint)):
            if path is not None:
                check_output_path(path, name)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    try:
        data = load_data(args.data, cfg.model, cfg.dtype)
    except (OSError, ValueError) as exc:  # MNISTNotFoundError, IDXFormatError, ...
        parser.error(f"--data {args.data!r}: {exc}")
    progress = not args.quiet and sys.stderr.isatty()
    try:
        if args.resume:
            tr = Trainer.load(
                args.checkpoint, data, cfg, checkpoint=args.checkpoint, progress=progress
            )
        else:
            tr = Trainer(cfg, data, checkpoint=args.checkpoint, progress=progress)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    try:
        res = tr.fit()
    except NumericalBreakdown as exc:  # TrainingDiverged: the last checkpoint is kept
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    print(
        f"{'epoch':>5} {'loss':>8} {'train%':>7} {'test%':>7} {'c.r.eval%':>9} "
        f"{'c.r.train%':>10} {'s':>6}  ranks"
    )
    for h in res["history"]:
        print(
            f"{h['epoch']:>5} {h['train_loss']:>8.4f} {100 * h['train_accuracy']:>7.2f} "
            f"{100 * h['test_accuracy']:>7.2f} {h['compression_eval']:>9.2f} "
            f"{h['compression_train']:>10.2f} {h['seconds']:>6.1f}  {h['ranks']}"
        )
    return 0


def add_train_parser(sub: Any) -> None:
    """Register the ``train`` sub-command on an argparse sub-parser collection."""
    p = sub.add_parser("train", help="train an MNIST network with DLRT or a baseline")
    p.add_argument("--model", choices=["mlp", "lenet5"], default="mlp")
    p.add_argument("--method", choices=METHODS, default="dlrt-adaptive")
    p.add_argument(
        "--tau",
        type=float,
        default=None,
        help="relative truncation tolerance (default 0.11 for dlrt-adaptive; with "
        "dlrt-single-pass it makes the run rank adaptive; ignored by fixed-rank methods)",
    )
    p.add_argument("--atol", type=float, default=None)
    p.add_argument("--rank", type=int, default=100, help="fixed rank / adaptive start rank")
    p.add_argument("--max-rank", type=int, default=None)
    p.add_argument("--widths", type=_widths, default=None, help="MLP widths, e.g. 784,500,500,10")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument(
        "--init",
        choices=["svd", "random", "product"],
        default="svd",
        help="initial factors: truncated SVD of a He matrix (svd), the same bases with a "
        "Gaussian core (random), or the official DLRT code's Gaussian product A B Cᵀ (product)",
    )
    p.add_argument(
        "--data",
        default="builtin",
        help="'builtin' (bundled subset), an IDX directory, or '' for LOWRANK_ODE_DATA",
    )
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run, _parser=p)
