"""The ``specchain`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from specchain.types import SpecError


def _demo(args: argparse.Namespace) -> int:
    from specchain.models import ZOO

    for name, entry in ZOO.items():
        print(f"== {name}\n{entry.build().summary()}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specchain", description="Typed graphs of recurrent module specs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="build every zoo model and print its summary")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SpecError, TypeError, OSError) as err:
        print(f"specchain: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
