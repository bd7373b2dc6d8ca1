"""``lowrank-ode train``: the command-line face of :func:`lowrank_ode.dlrt.train`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._array_api import ARRAY_LIBRARIES, library_namespace
from .._io import write_text_atomic
from .._threads import check_threads
from ..exceptions import ArrayLibraryUnavailable, NumericalBreakdown
from .train import INIT_CORES, METHODS, TrainConfig, Trainer, check_output_path

__all__ = ["add_train_parser", "config_from_args", "load_data", "train_command"]


def load_data(data: str | None, model: str, dtype: str = "float64") -> Any:
    """ "builtin" → bundled subset; a directory → its IDX files; None → LOWRANK_ODE_DATA."""
    from ..data import load_builtin_mnist, load_mnist

    flat = model == "mlp"
    if data == "builtin":
        return tuple(load_builtin_mnist(flat=flat, dtype=dtype))
    return tuple(load_mnist(data or None, flat=flat, dtype=dtype))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` that ``lowrank-ode train`` runs for the parsed ``args``."""
    widths = args.widths
    if isinstance(widths, str):  # a namespace not built by the parser
        widths = _widths(widths)
    return TrainConfig(
        model=args.model,
        method=args.method,
        tau=args.tau,
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
        **_extra_fields(args),
    )


def _extra_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of the robustness study and of the optimizer/truncation fine print."""
    return {
        "decay": args.decay,
        "momentum": args.momentum,
        "min_rank": args.min_rank,
        "max_rank_fraction": getattr(args, "max_rank_fraction", None),
        "init_std": args.init_std,
    }


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
    try:
        cfg = config_from_args(args)
        for name, path in (("--json", args.json), ("--checkpoint", args.checkpoint)):
            if path is not None:
                check_output_path(path, name)
        library = getattr(args, "array_library", "numpy")
        library_namespace(library, option="--array-library")  # CuPy and a GPU, before the data
    except (TypeError, ValueError, ArrayLibraryUnavailable) as exc:
        parser.error(str(exc))
    try:
        data = load_data(args.data, cfg.model, cfg.dtype)
    except (OSError, ValueError) as exc:  # MNISTNotFoundError, IDXFormatError, ...
        parser.error(f"--data {args.data!r}: {exc}")
    progress = not args.quiet and sys.stderr.isatty()
    kw = dict(
        checkpoint=args.checkpoint,
        progress=progress,
        threads=args.threads,
        array_library=library,
    )
    try:
        if args.resume:
            tr = Trainer.load(args.checkpoint, data, cfg, **kw)
        else:
            tr = Trainer(cfg, data, **kw)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    try:
        res = tr.fit()
    except NumericalBreakdown as exc:  # TrainingDiverged: the last checkpoint is kept
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        write_text_atomic(args.json, json.dumps(res, indent=1))
    if not args.quiet:
        pools = ", ".join(f"{b['library']} {b['num_threads']}" for b in res["threads"]["blas"])
        print(f"BLAS threads ({res['threads']['threads']}): {pools}")
        if library != "numpy":
            print(f"array library: {library}")
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


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show every option's default, unless its help already states it (model-dependent
    defaults such as "MLP 256, LeNet-5 128" are written out in the help)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


def add_train_parser(sub: Any) -> None:
    """Register the ``train`` sub-command on an argparse sub-parser collection."""
    p = sub.add_parser(
        "train",
        help="train an MNIST network with DLRT or a baseline",
        description="Train an MNIST network with dynamical low-rank training (DLRT) or a baseline "
        "and print accuracy, ranks and compression per epoch.  Every option maps to a field of "
        "lowrank_ode.dlrt.TrainConfig (--init to init_core); see the documentation's CLI page.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        choices=["mlp", "lenet5"],
        default="mlp",
        help="network: fully connected MLP (see --widths) or LeNet-5",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="dlrt-adaptive",
        help="training method (the table of methods is in lowrank_ode.dlrt.train)",
    )
    p.add_argument(
        "--tau",
        type=float,
        default=None,
        help="relative truncation tolerance ϑ = τ‖σ‖₂ (None: 0.11 for dlrt-adaptive; with "
        "dlrt-single-pass it makes the run rank adaptive; ignored by fixed-rank methods)",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=None,
        help="absolute truncation tolerance of the adaptive methods (combined with --tau "
        "as max(atol, tau‖σ‖₂))",
    )
    p.add_argument(
        "--rank",
        type=int,
        default=None,
        help="fixed rank / adaptive start rank (default: MLP 100, LeNet-5 full rank)",
    )
    p.add_argument("--max-rank", type=int, default=None, help="upper bound on the adaptive ranks")
    p.add_argument(
        "--widths",
        type=_widths,
        default=None,
        help="MLP widths, input first and classes last, e.g. 784,500,500,10 "
        "(None: TrainConfig's default)",
    )
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 20)")
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=None,
        help="extra epochs in frozen bases, S and the dense parameters only "
        "(default: 5 for the MLP with dlrt-adaptive, else 0)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="mini-batch size (default: MLP 256, LeNet-5 128)",
    )
    p.add_argument(
        "--optimizer",
        choices=["sgd", "momentum", "adam"],
        default=None,
        help="sub-step solver of the K-, L- and S-steps (default: MLP adam, LeNet-5 sgd)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate, the step size h (default: MLP 1e-3, LeNet-5 0.05)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the initialization and the batch order"
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="floating-point type of the data, the parameters and the arithmetic",
    )
    p.add_argument(
        "--init",
        choices=list(INIT_CORES),
        default=None,
        help="initial factors: truncated SVD of a He matrix (svd), the same bases with a "
        "Gaussian core (random), the official MLP code's Gaussian product A B Cᵀ (product), or "
        "the official LeNet-5 layers' Haar bases with half-normal singular values (halfnormal) "
        "(default: MLP product, LeNet-5 halfnormal, as the official codes)",
    )
    p.add_argument(
        "--decay",
        type=float,
        default=None,
        help="prescribe the initial singular values of the factorized layers as "
        "|N(0,1)| sorted × decay^(−k) (the robustness study; default: none)",
    )
    p.add_argument(
        "--momentum",
        type=float,
        default=TrainConfig.momentum,
        help="momentum of the 'momentum' optimizer",
    )
    p.add_argument(
        "--min-rank",
        type=int,
        default=None,
        help="smallest rank the truncation keeps (default: MLP 1, LeNet-5 2 as its official code)",
    )
    p.add_argument(
        "--max-rank-fraction",
        type=float,
        default=None,
        help="adaptive methods: no layer's rank exceeds this fraction of min(n, m), at the start "
        "or later (default: MLP 1.0, no cap; LeNet-5 0.5, as its official code)",
    )
    p.add_argument(
        "--init-std",
        type=float,
        default=TrainConfig.init_std,
        help="entry std of the Gaussian factors of --init product",
    )
    p.add_argument(
        "--data",
        default="builtin",
        help="'builtin' (bundled subset), an IDX directory, or '' for LOWRANK_ODE_DATA",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="path of an .npz checkpoint written (atomically) after every epoch",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint when it exists (same settings required)",
    )
    p.add_argument(
        "--json", default=None, help="write the results (history, ranks, counts) to this file"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--threads",
        type=check_threads,
        default="auto",
        help="BLAS threads: 'auto' (NumPy's BLAS on all cores, every other BLAS pool on one, "
        "so that the pools never fight) or N (NumPy's BLAS on N threads)",
    )
    p.add_argument(
        "--array-library",
        choices=ARRAY_LIBRARIES,
        default="numpy",
        help="where the network and the data live while training: numpy (CPU), cupy (every "
        "array on the GPU; needs CuPy and an NVIDIA GPU) or array_api_strict (the generic code "
        "path on the CPU, a check); the numbers agree up to rounding",
    )
    p.set_defaults(func=_run, _parser=p)


#: TrainConfig field → ``lowrank-ode train`` option, in the order commands are written.
_OPTIONS = {
    "model": "--model",
    "method": "--method",
    "tau": "--tau",
    "atol": "--atol",
    "rank": "--rank",
    "min_rank": "--min-rank",
    "max_rank": "--max-rank",
    "max_rank_fraction": "--max-rank-fraction",
    "widths": "--widths",
    "epochs": "--epochs",
    "finetune_epochs": "--finetune-epochs",
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "lr": "--lr",
    "momentum": "--momentum",
    "seed": "--seed",
    "dtype": "--dtype",
    "init_core": "--init",
    "init_std": "--init-std",
    "decay": "--decay",
}


def _train_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lowrank-ode")
    add_train_parser(root.add_subparsers(dest="command", required=True))
    return root


def _option_value(field: str, value: Any) -> str:
    if field == "widths":
        return ",".join(str(w) for w in value)
    return repr(value) if isinstance(value, float) else str(value)


def train_command(
    cfg: TrainConfig, data: str | None = None, extra: tuple[str, ...] = (), full: bool = False
) -> list[str]:
    """The ``lowrank-ode train`` command line that runs ``cfg``.

    The command names every field whose value differs from what ``lowrank-ode train`` would
    use when the option is left out — worked out by parsing the command back, so options whose
    default depends on another option (``--tau`` with ``--method``) come out right — and
    parsing it back gives ``cfg`` exactly (:func:`config_from_args`).

    Parameters
    ----------
    cfg : TrainConfig
        The run.
    data : str, optional
        ``--data`` value (``"builtin"``, an IDX directory, or ``""`` for ``LOWRANK_ODE_DATA``);
        left out when ``None``.
    extra : tuple of str
        Further arguments appended as given (``--json out.json``).
    full : bool
        Name every field that has a value, defaults included, so that a stored command keeps
        its meaning when a default changes (the study runner stores these).

    Returns
    -------
    list of str
        The argument vector, starting with ``lowrank-ode train``; :func:`shlex.join` makes it
        a shell line.

    Raises
    ------
    ValueError
        If ``cfg`` holds a value the command line cannot express.

    Examples
    --------
    >>> from lowrank_ode.dlrt import TrainConfig
    >>> cfg = TrainConfig(model="lenet5", method="dlrt", rank=20, epochs=2, decay=10.0)
    >>> " ".join(train_command(cfg))
    'lowrank-ode train --model lenet5 --method dlrt --rank 20 --epochs 2 --decay 10.0'
    """
    parser = _train_parser()
    wanted = asdict(cfg)

    def argv(names: set[str]) -> list[str]:
        opts = [
            a for f in _OPTIONS if f in names for a in (_OPTIONS[f], _option_value(f, wanted[f]))
        ]
        return ["train", *opts]

    names: set[str] = {f for f in _OPTIONS if full and wanted[f] is not None}
    if full and cfg.model != "mlp":
        names.discard("widths")  # LeNet-5 has fixed shapes
    while True:  # each pass names one more field: at most len(_OPTIONS) passes
        got = asdict(config_from_args(parser.parse_args(argv(names))))
        missing = {f for f in _OPTIONS if got[f] != wanted[f]} - names
        settable = {f for f in missing if wanted[f] is not None}  # None: no option sets it
        if not settable:
            break
        # one field a pass, in option order: a named --model or --method changes the
        # defaults of the fields after it
        names.add(next(f for f in _OPTIONS if f in settable))
    if got != wanted:
        bad = {k: v for k, v in wanted.items() if got[k] != v}
        raise ValueError(f"the train command cannot express the fields {bad!r}")
    tail = ["--data", data] if data is not None else []
    return ["lowrank-ode", *argv(names), *tail, *extra]
