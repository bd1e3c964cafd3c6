"""The ``specchain`` command: ``summary``, ``render``, ``export`` and ``demo``.

MODEL is ``zoo:NAME`` (``zoo:language_model``), ``path/to/file.py:attribute`` (a SpecChain, a
spec, or a function of no arguments returning one) or a model saved with ``model.save`` (``.npz``).
User mistakes print one line and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specchain.chain import SpecChain
from specchain.spec import NNModuleSpec
from specchain.types import SpecError


class UsageError(SpecError):
    """A command-line mistake: the message is the whole story."""


def resolve_model(text: str) -> SpecChain:
    """A chain from ``zoo:NAME``, ``file.py:attribute`` or a saved ``.npz`` model."""
    from specchain.models import ZOO

    if text.startswith("zoo:"):
        name = text[4:]
        if name not in ZOO:
            raise UsageError(f"unknown zoo model {name!r}; choose one of {', '.join(ZOO)}")
        return ZOO[name].build()
    if text.endswith(".npz"):
        from specchain.saving import load

        return load(text)
    path, _, attribute = text.rpartition(":")
    if not path.endswith(".py") or not attribute:
        raise UsageError(
            f"cannot read model {text!r}: use zoo:NAME, path/to/file.py:attribute or a saved .npz"
        )
    return _from_python_file(Path(path), attribute)


def _from_python_file(path: Path, attribute: str) -> SpecChain:
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"specchain_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's file failed: say where, without a traceback
        raise UsageError(f"importing {path} failed: {type(err).__name__}: {err}") from err
    if not hasattr(module, attribute):
        raise UsageError(f"{path} has no attribute {attribute!r}")
    value: Any = getattr(module, attribute)
    if callable(value) and not isinstance(value, (SpecChain, NNModuleSpec)):
        value = value()
    if isinstance(value, NNModuleSpec):
        return value.as_chain()
    if not isinstance(value, SpecChain):
        raise UsageError(
            f"{path}:{attribute} is a {type(value).__name__}, not a SpecChain or a spec"
        )
    return value


# --- commands --------------------------------------------------------------------------------


def _summary(args: argparse.Namespace) -> int:
    print(resolve_model(args.model).summary())
    return 0


def _render(args: argparse.Namespace) -> int:
    from specchain.exporters import graphviz

    model = resolve_model(args.model)
    written = graphviz.render(model, args.output, expand=args.expand, rankdir=args.rankdir)
    print(f"wrote {written}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from specchain.exporters import pytorch

    model = resolve_model(args.model)
    written = pytorch.export(model, args.out, class_name=args.class_name)
    print(f"wrote {written} with weights.npz, reference.npz and test_model.py")
    if args.verify:
        print(pytorch.verify(model, class_name=args.class_name))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from specchain.demo import run_demo

    run_demo(Path(args.out), seconds=args.seconds)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specchain",
        description="Recurrent networks as typed graphs of module specs: inspect, draw, export.",
        epilog="MODEL is zoo:NAME, path/to/file.py:attribute, or a saved .npz model.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = commands.add_parser("summary", help="print a model's table of nodes and shapes")
    summary.add_argument("model", metavar="MODEL")
    summary.set_defaults(run=_summary)

    render = commands.add_parser("render", help="draw a model (svg, png, pdf or dot by suffix)")
    render.add_argument("model", metavar="MODEL")
    render.add_argument("-o", "--output", required=True, help="the file to write, e.g. model.svg")
    render.add_argument(
        "--expand", action="store_true", help="expand composite specs into clusters"
    )
    render.add_argument("--rankdir", default="TB", choices=("TB", "LR", "BT", "RL"))
    render.set_defaults(run=_render)

    export = commands.add_parser("export", help="write a standalone PyTorch module and weights")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--class-name", default="Model", help="the generated class's name")
    export.add_argument(
        "--verify", action="store_true", help="also compare the export with the spec (torch)"
    )
    export.set_defaults(run=_export)

    demo = commands.add_parser(
        "demo", help="build, summarise, train, export and draw every zoo model"
    )
    demo.add_argument("--out", default="specchain-demo", help="output folder")
    demo.add_argument("--seconds", type=float, default=8.0, help="training time for the classifier")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SpecError, TypeError, OSError, ImportError) as err:
        message = str(err).strip().splitlines()
        print(
            f"specchain {args.command}: error: {message[0] if message else type(err).__name__}",
            file=sys.stderr,
        )
        for line in message[1:]:
            print(f"  {line.strip()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("specchain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
