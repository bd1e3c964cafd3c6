"""The ``specchain`` command: ``summary``, ``render``, ``export`` and ``demo``.

MODEL is ``zoo:NAME`` (``zoo:language_model``), ``path/to/file.py:attribute`` (a SpecChain, a
spec, or a function of no arguments returning one) or a model saved with ``model.save`` (``.npz``).
A ``file.py`` is imported with its folder first on ``sys.path``, as ``python file.py`` would, so it
imports its sibling modules. ``--import MODULE_OR_FILE`` (repeatable) imports a module by name or a
``.py`` file by path before MODEL is read, so a saved model with the user's own layers loads.
User mistakes print one line and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from specchain.chain import SpecChain
from specchain.spec import SPEC_KINDS, NNModuleSpec
from specchain.types import SpecError

if TYPE_CHECKING:
    from specchain.saving import UnknownKindError


class UsageError(SpecError):
    """A command-line mistake: the message is the whole story."""


def resolve_model(text: str, custom: Sequence[type[NNModuleSpec]] = ()) -> SpecChain:
    """A chain from ``zoo:NAME``, ``file.py:attribute`` or a saved ``.npz`` model, which is
    loaded with ``sc.load(text, custom=custom)``."""
    from specchain.models import ZOO

    if text.startswith("zoo:"):
        name = text[4:]
        if name not in ZOO:
            raise UsageError(f"unknown zoo model {name!r}; choose one of {', '.join(ZOO)}")
        return ZOO[name].build()
    if text.endswith((".npz", ".safetensors")):
        from specchain.saving import UnknownKindError, load

        try:
            return load(text, custom=custom)
        except UnknownKindError as err:
            raise UsageError(f"{err}{_import_hint(err)}") from None
    path, _, attribute = text.rpartition(":")
    if not path.endswith(".py") or not attribute:
        raise UsageError(
            f"cannot read model {text!r}: use zoo:NAME, path/to/file.py:attribute or a saved .npz"
        )
    return _from_python_file(Path(path), attribute)


def _import_hint(err: UnknownKindError) -> str:
    """The command-line fix for an ``UnknownKindError``: which ``--import`` to add."""
    if err.module == "__main__":
        name = err.kind.removeprefix("__main__.")
        return f"; from the command line: --import the module or .py file that defines {name}"
    if err.module is None or err.module in sys.modules:
        return ""
    file = "" if "." in err.module else f" or --import path/to/{err.module}.py"
    return f"; from the command line: --import {err.module}{file}"


def _from_python_file(path: Path, attribute: str) -> SpecChain:
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"specchain_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    _put_first_on_path(path.parent)
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


def _put_first_on_path(folder: Path) -> None:
    """Put ``folder`` first on ``sys.path`` for the rest of the run, as ``python file.py`` does."""
    entry = str(folder.resolve())
    if sys.path[:1] != [entry]:
        sys.path.insert(0, entry)
        importlib.invalidate_caches()


def import_user_code(target: str) -> list[type[NNModuleSpec]]:
    """``--import TARGET``: import a module by dotted name (``mylayers``, ``pkg.layers``) or a
    ``.py`` file by path, which is put first on ``sys.path`` and imported under its file name
    (``path/to/mylayers.py`` becomes module ``mylayers``, as ``import mylayers`` would make it).

    Returns the layer classes the module defines: a saved model also finds them by class name
    when it was saved from a script (kind ``__main__.LayerNorm``; see ``sc.load``'s ``custom``).
    """
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"--import {target}: no such file")
        name = path.stem
        if not name.isidentifier():
            raise UsageError(
                f"--import {target}: {name!r} cannot be a module name; rename the file to an "
                "identifier such as my_layers.py"
            )
        _put_first_on_path(path.parent)
    else:
        name = target
        if not all(part.isidentifier() for part in name.split(".")):
            raise UsageError(
                f"--import {target}: not a module name (such as mylayers or pkg.layers) "
                "nor a .py file"
            )
    module = _import(target, name)
    if target.endswith(".py") and not _is_file_of(module, Path(target)):
        raise UsageError(
            f"--import {target}: another module named {name!r} is already imported "
            f"({getattr(module, '__file__', None) or 'built in'}); rename the file"
        )
    return [cls for cls in SPEC_KINDS.values() if cls.__module__ == module.__name__]


def _import(target: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as err:  # the user's module failed: say where, without a traceback
        missing = err.name if isinstance(err, ModuleNotFoundError) else None
        if missing is not None and (name == missing or name.startswith(f"{missing}.")):
            raise UsageError(
                f"--import {target}: {err}; give the path to its .py file instead, or add "
                "its folder to PYTHONPATH"
            ) from None
        raise UsageError(
            f"--import {target}: importing it failed: {type(err).__name__}: {err}"
        ) from None


def _is_file_of(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path.resolve()


# --- commands --------------------------------------------------------------------------------


def _summary(args: argparse.Namespace) -> int:
    print(resolve_model(args.model, args.custom).summary())
    return 0


def _render(args: argparse.Namespace) -> int:
    from specchain.exporters import graphviz

    model = resolve_model(args.model, args.custom)
    written = graphviz.render(model, args.output, expand=args.expand, rankdir=args.rankdir)
    print(f"wrote {written}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from specchain.exporters import pytorch

    model = resolve_model(args.model, args.custom)
    written = pytorch.export(model, args.out, class_name=args.class_name)
    print(f"wrote {written} with weights.npz, reference.npz and test_model.py")
    if args.verify:
        print(pytorch.verify(model, class_name=args.class_name))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from specchain.demo import run_demo

    run_demo(Path(args.out), seconds=args.seconds)
    return 0


_MODEL_HELP = """\
MODEL is zoo:NAME, path/to/file.py:attribute, or a saved .npz model. A file.py is
imported with its folder first on the import path, as `python file.py` would, so it
can import the modules beside it. A saved model with your own layers loads after
--import of the module or .py file that defines them:
  specchain summary model.npz --import mylayers        (mylayers on PYTHONPATH)
  specchain summary model.npz --import path/to/mylayers.py"""


def _add_import_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "--import",
        dest=dest,
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module by name (mylayers, pkg.layers) or a .py file by path (its folder "
        "goes first on the import path) before MODEL is read; repeatable",
    )


def _model_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse.ArgumentParser:
    """A subcommand that reads a MODEL (and takes ``--import``)."""
    command = commands.add_parser(
        name,
        help=help,
        epilog=_MODEL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("model", metavar="MODEL", help="zoo:NAME, file.py:attribute or .npz")
    _add_import_option(command, "imports")
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specchain",
        description="Recurrent networks as typed graphs of module specs: inspect, draw, export.",
        epilog=_MODEL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_import_option(parser, "imports_first")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = _model_command(commands, "summary", help="print a model's table of nodes and shapes")
    summary.set_defaults(run=_summary)

    render = _model_command(
        commands, "render", help="draw a model (svg, png, pdf or dot by suffix)"
    )
    render.add_argument("-o", "--output", required=True, help="the file to write, e.g. model.svg")
    render.add_argument(
        "--expand", action="store_true", help="expand composite specs into clusters"
    )
    render.add_argument("--rankdir", default="TB", choices=("TB", "LR", "BT", "RL"))
    render.set_defaults(run=_render)

    export = _model_command(
        commands, "export", help="write a standalone PyTorch module and weights"
    )
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
        targets = [*args.imports_first, *getattr(args, "imports", [])]
        args.custom = [cls for target in targets for cls in import_user_code(target)]
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
