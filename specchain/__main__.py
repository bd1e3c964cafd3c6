"""``python -m specchain``: the same command line as the ``specchain`` script."""

from specchain.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
