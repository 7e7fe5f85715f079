"""``python -m pipdelta``: the command line."""

from pipdelta.cli import main

raise SystemExit(main())
