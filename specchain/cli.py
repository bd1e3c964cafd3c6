"""The ``specchain`` command: ``summary``, ``render``, ``export`` and ``demo`` (MODEL is read by
``cli_models``).

MODEL is ``zoo:NAME`` (``zoo:language_model``), ``path/to/file.py:attribute`` (a SpecChain, a
spec, a PyTorch ``nn.Module`` read with ``--input-shape``, or a class or function of no arguments
returning one) or a model saved with ``model.save`` (``.safetensors``; ``.npz`` files load too).
A ``file.py`` is imported with its folder first on ``sys.path``, as ``python file.py`` would, so it
imports its sibling modules. ``--import MODULE_OR_FILE`` (repeatable) imports a module by name or a
``.py`` file by path before MODEL is read, so a saved model with the user's own layers loads.
``export --verify`` exits with status 1 when the export does not match the spec (the table it
prints ends with ``FAIL`` and the worst tensor).
Every failure is one line on stderr, never a traceback: status 2 for a mistake the user can fix
(a bad name, file, path or option, an error in the user's own code), 1 for an internal error with a
hint to rerun with ``--traceback``, which shows the full trace; 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from specchain import __version__, cli_options
from specchain.cli_models import UsageError, import_user_code, message, one_line, resolve_model
from specchain.demo import EPOCHS as DEMO_EPOCHS
from specchain.importers import options as torch_options
from specchain.types import SpecError

# --- commands --------------------------------------------------------------------------------

# What ``pytorch.export`` writes (and what running its test_model.py leaves): a folder holding only
# these is a previous export, which ``export --out`` may overwrite without ``--force``.
EXPORT_FILES = frozenset(
    {"model.py", "weights.npz", "model.safetensors", "reference.npz", "test_model.py", "train.py"}
)
EXPORT_LEFTOVERS = frozenset({"__pycache__", ".pytest_cache"})


def _summary(args: argparse.Namespace) -> int:
    model = resolve_model(args.model, args.custom, args)
    shape = cli_options.input_shape(args)
    print(model.summary() if shape is None else model.summary(input_shape=shape))
    return 0


def _render(args: argparse.Namespace) -> int:
    from specchain.exporters import graphviz

    output = cli_options.output_path(args)
    model = resolve_model(args.model, args.custom, args)
    written = graphviz.render(model, output, **cli_options.render_options(args))
    print(f"wrote {written}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from specchain.exporters import pytorch

    _check_export_folder(Path(args.out), args.force)
    model = resolve_model(args.model, args.custom, args)
    trainer = None
    if args.trainer:  # made first: a model train.py cannot take leaves no half-written folder
        from specchain.exporters.pytorch.trainer import trainer_source

        trainer = trainer_source(model, args.class_name, args.loss)
    written = pytorch.export(model, args.out, class_name=args.class_name, source=args.model)
    print(f"wrote {written} with model.safetensors, reference.npz and test_model.py")
    if trainer is not None:
        script = Path(args.out) / "train.py"
        script.write_text(trainer, encoding="utf-8")
        print(
            f"wrote {script}: write the data with specchain.data.write_training_file(path, model, "
            "data), then run: torchrun --nproc_per_node=2 train.py --data data.npz --epochs 3 "
            "--batch-size 32 --lr 1e-3"
        )
    if args.verify:  # the table ends with PASS, or FAIL naming the worst tensor: exit 1
        report = pytorch.verify(model, class_name=args.class_name)
        print(report)
        return 0 if report.ok else 1
    return 0


def _check_export_folder(out: Path, force: bool) -> None:
    """Refuse to write an export into a file, or into a non-empty folder that is not a previous
    export (one holding only ``EXPORT_FILES`` and ``EXPORT_LEFTOVERS``) unless ``force``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder; give a folder for the export")
    if force or not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in EXPORT_FILES | EXPORT_LEFTOVERS)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise UsageError(
            f"--out {out}: the folder is not empty and is not a previous export (it holds "
            f"{shown}); choose a new or empty folder, or add --force to write the export into it"
        )


def _demo(args: argparse.Namespace) -> int:
    from specchain.demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs)
    return 0


_MODEL_HELP = """\
A file.py is imported with its folder first on the import path, as `python file.py`
would, so it can import the modules beside it. A saved model with your own layers
loads after --import of the module or .py file that defines them:
  specchain summary model.safetensors --import mylayers        (mylayers on PYTHONPATH)
  specchain summary model.safetensors --import path/to/mylayers.py

Safety: file.py:attribute and --import run that file's code, as `python file.py`
would: only give files you trust. A saved model file is safe to open: it is data
only (no pickle), no code runs, and it is validated before use.

Errors are one line with exit status 2; add --traceback to see where an error came from."""


def _add_import_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "--import",
        dest=dest,
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module by name (mylayers, pkg.layers) or a .py file by path (its folder "
        "goes first on the import path) before MODEL is read, running its code; repeatable",
    )


def _add_traceback_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "--traceback",
        dest=dest,
        action="store_true",
        help="on an error, show the full Python traceback instead of one line",
    )


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line too (``prog: error: ...``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _model_command(
    commands: argparse._SubParsersAction[_Parser], name: str, help: str
) -> argparse.ArgumentParser:
    """A subcommand that reads a MODEL (and takes ``--import``)."""
    command = commands.add_parser(
        name,
        help=help,
        epilog=f"{cli_options.model_forms()}\n\n{_MODEL_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "model", metavar="MODEL", help="zoo:NAME, file.py:attribute (runs its code) or .safetensors"
    )
    _add_import_option(command, "imports")
    _add_traceback_option(command, "traceback_here")
    torch_options.add_torch_input_options(command)
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="specchain",
        description="Recurrent networks as typed graphs of module specs: inspect, draw, export.",
        epilog=f"{cli_options.model_forms()}\n\n{_MODEL_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"specchain {__version__}")
    _add_import_option(parser, "imports_first")
    _add_traceback_option(parser, "traceback")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = _model_command(commands, "summary", help="print a model's table of nodes and shapes")
    cli_options.add_summary_options(summary)
    summary.set_defaults(run=_summary)

    render = _model_command(
        commands, "render", help="draw a model (svg, png, pdf or dot by suffix)"
    )
    cli_options.add_diagram_options(render)
    render.set_defaults(run=_render)

    export = _model_command(
        commands, "export", help="write a standalone PyTorch module and weights"
    )
    export.add_argument(
        "--out", required=True, help="output folder: new, empty or a previous export"
    )
    export.add_argument("--class-name", default="Model", help="the generated class's name")
    export.add_argument(
        "--verify",
        action="store_true",
        help="also compare the export with the spec (needs torch): prints each tensor's errors "
        "and tolerances and PASS, or FAIL with exit status 1",
    )
    export.add_argument(
        "--trainer",
        action="store_true",
        help="also write train.py: a DistributedDataParallel training script for torchrun",
    )
    export.add_argument(
        "--loss",
        choices=("cross_entropy", "mse"),
        default="cross_entropy",
        help="the loss train.py minimises (with --trainer)",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="write into --out even when it is a non-empty folder that is not a previous export",
    )
    export.set_defaults(run=_export)

    demo = commands.add_parser(
        "demo", help="build, summarise, train, export and draw every zoo model"
    )
    demo.add_argument("--out", default="specchain-demo", help="output folder")
    demo.add_argument(
        "--epochs", type=int, default=DEMO_EPOCHS, help="classifier training epochs (fixed work)"
    )
    _add_traceback_option(demo, "traceback_here")
    demo.set_defaults(run=_demo)
    return parser


# --- errors: one line each ----------------------------------------------------------------------

# Errors the user can fix: a bad name, option, path or file, an error in their code (wrapped in a
# UsageError), a model too deep to walk, a missing optional package. Anything else is our bug.
USER_ERRORS = (SpecError, OSError, RecursionError, ImportError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status: 0, 2 for a user error, 1 for an internal error,
    130 for Ctrl-C. Each error is one line on stderr, or the full trace with ``--traceback``."""
    args = build_parser().parse_args(argv)
    show_trace = args.traceback or getattr(args, "traceback_here", False)
    try:
        targets = [*args.imports_first, *getattr(args, "imports", [])]
        args.custom = [cls for target in targets for cls in import_user_code(target)]
        return int(args.run(args))
    except KeyboardInterrupt:
        if show_trace:
            raise
        print("specchain: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if show_trace:
            raise
        print(f"specchain {args.command}: error: {message(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if show_trace:
            raise
        print(
            f"specchain: internal error: {one_line(err)}; rerun with --traceback to see where",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
