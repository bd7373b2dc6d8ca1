"""Sphinx extension: the CLI page's tables, generated from the parsers at build time.

``_generated/cli_train_table.md`` maps every ``lowrank-ode train`` option to the field of
:class:`lowrank_ode.dlrt.TrainConfig` it sets (or to the argument of
:func:`lowrank_ode.dlrt.train` / the command itself), with both defaults, and lists the fields
that have no option; ``_generated/cli_help.md`` holds the ``--help`` text of every command.
Both come from :func:`lowrank_ode.cli.build_parser`, so they cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

#: options of ``train`` that are not TrainConfig fields: where they go instead
NOT_CONFIG = {
    "data": "the data handed to `train(cfg, data)`: `load_builtin_mnist()` or `load_mnist(dir)`",
    "checkpoint": "`train(..., checkpoint=path)`",
    "resume": "`train(..., resume=True)`",
    "json": "the command writes `train`'s result dictionary to this file",
    "quiet": "`train(..., progress=False)`",
    "threads": "`train(..., threads=...)`",
    "array_library": "`train(..., array_library=...)`",
}
#: options whose TrainConfig field has another name
RENAMED = {"init": "init_core"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from lowrank_ode.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def train_table() -> str:
    from lowrank_ode.dlrt import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    lines = [
        "| option | Python | CLI default | `TrainConfig` default | meaning |",
        "|---|---|---|---|---|",
    ]
    used = set()
    for action in _subparsers()["train"]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0]
        field = RENAMED.get(action.dest, action.dest)
        if field in fields:
            used.add(field)
            default = fields[field].default
            python = f"`TrainConfig.{field}`"
            config_default = f"`{default!r}`"
        else:
            python = NOT_CONFIG.get(action.dest, "—")
            config_default = "—"
        help_text = (action.help or "").replace("|", "\\|")
        lines.append(
            f"| `{flag}` | {python} | `{action.default!r}` | {config_default} | {help_text} |"
        )
    missing = [f for f in fields if f not in used]
    lines += [
        "",
        "`TrainConfig` fields without an option (set them from Python): "
        + ", ".join(f"`{f}` (default `{fields[f].default!r}`)" for f in missing)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def help_texts() -> str:
    parts = []
    for name, parser in _subparsers().items():
        text = parser.format_help()
        parts += [f"### `lowrank-ode {name}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(parts)


def write_tables(app: Any) -> None:
    out = Path(app.srcdir) / "_generated"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("cli_train_table.md", train_table()), ("cli_help.md", help_texts())):
        target = out / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", write_tables)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
