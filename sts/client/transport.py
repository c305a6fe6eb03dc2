"""The HTTP transport of the WS-Trust client: a zeep Transport on a requests Session."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests


def make_transport(*, verify: bool | str = True, timeout: float = 30) -> Any:
    """A zeep Transport on a requests Session with ``verify`` (bool or CA bundle path) and ``timeout``."""
    session = requests.Session()
    session.verify = verify
    return importlib.import_module("zeep.transports").Transport(session=session, timeout=timeout, operation_timeout=timeout)


def endpoint_of(url: str) -> str:
    """The SOAP endpoint a URL names, as every client command reads it: a base URL means ``/services/sts``, a
    ``?wsdl`` query is dropped; ValueError for anything but an http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL of the STS")
    path = parts.path if parts.path not in ("", "/") else "/services/sts"
    query = "" if parts.query.lower() == "wsdl" else parts.query
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


__all__ = ["endpoint_of", "make_transport"]
