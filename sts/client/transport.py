"""The HTTP transport of the WS-Trust client: a zeep Transport on a requests Session."""

from __future__ import annotations

import importlib
from typing import Any

import requests


def make_transport(*, verify: bool | str = True, timeout: float = 30) -> Any:
    """A zeep Transport on a requests Session with ``verify`` (bool or CA bundle path) and ``timeout``."""
    session = requests.Session()
    session.verify = verify
    return importlib.import_module("zeep.transports").Transport(session=session, timeout=timeout, operation_timeout=timeout)


__all__ = ["make_transport"]
