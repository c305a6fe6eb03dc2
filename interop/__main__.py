"""``python -m interop``: see interop.cli."""

from .cli import main

raise SystemExit(main())
