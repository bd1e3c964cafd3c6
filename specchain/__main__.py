"""``python -m specchain``: the same command line as the ``specchain`` script."""

from specchain.cli import main

raise SystemExit(main())
