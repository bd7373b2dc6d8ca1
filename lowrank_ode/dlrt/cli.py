"""``lowrank-ode train``: the command-line face of :func:`lowrank_ode.dlrt.train`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._io import write_text_atomic
from .train import METHODS, TrainConfig, train

__all__ = ["add_train_parser", "load_data"]


def load_data(data: str | None, model: str, dtype: str = "float64") -> Any:
    """ "builtin" → bundled subset; a directory → its IDX files; None → LOWRANK_ODE_DATA."""
    from ..data import load_builtin_mnist, load_mnist

    flat = model == "mlp"
    if data == "builtin":
        return tuple(load_builtin_mnist(flat=flat, dtype=dtype))
    return tuple(load_mnist(data or None, flat=flat, dtype=dtype))


def _run(args: argparse.Namespace) -> int:
    widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else None
    tau = args.tau
    if tau is None and args.method == "dlrt-adaptive" and args.atol is None:
        tau = TrainConfig.tau  # the configuration's default tolerance
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
        **({"widths": widths} if widths else {}),
    )
    data = load_data(args.data, cfg.model, cfg.dtype)
    progress = not args.quiet and sys.stderr.isatty()
    res = train(cfg, data, checkpoint=args.checkpoint, resume=args.resume, progress=progress)
    if args.json:
        write_text_atomic(args.json, json.dumps(res, indent=1))
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
    p.add_argument("--widths", default=None, help="MLP widths, e.g. 784,500,500,10")
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
    p.set_defaults(func=_run)
