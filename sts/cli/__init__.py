"""The ``sts`` command: one module per command group (entry point ``sts.cli:main``)."""

from sts.cli.main import main

__all__ = ["main"]
