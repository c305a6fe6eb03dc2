"""The management console (``/console``): see :mod:`sts.console.app`."""

from .app import create_console

__all__ = ["create_console"]
