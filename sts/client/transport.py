"""The HTTP transport of the WS-Trust client: a zeep Transport on a requests Session."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests


class _Session(requests.Session):
    """A session whose own ``verify`` (a CA file, or False) is what its requests use.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override a session's ``verify``: a client told to trust
    one CA file would check the server against the system's CAs instead, and refuse it. An explicit choice wins;
    with the default (True) those variables still choose the bundle."""

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


def make_transport(*, verify: bool | str = True, timeout: float = 30) -> Any:
    """A zeep Transport on a requests Session with ``verify`` (bool or CA bundle path) and ``timeout``."""
    session = _Session()
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
