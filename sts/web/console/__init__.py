"""The management console (``/console``): see :mod:`sts.web.console.app`."""

from sts.web.console.app import create_console

__all__ = ["create_console"]
