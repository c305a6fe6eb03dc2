"""A live STS for tests: uvicorn on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn

from interop.target import wait_healthy as _wait_healthy
from sts.web.asgi import create_app
from sts.config import load_settings
from sts.home import init_home
from sts.model import RelyingParty
from sts.web.tls import http_protocol, ssl_options
from sts.web.loopback import free_port, self_signed_tls_files
from sts.runtime import build_runtime, open_stores


@dataclass
class LiveServer:
    base_url: str
    home: Path
    runtime: object

    @property
    def sts_url(self) -> str:
        return f"{self.base_url}/services/sts"


def start_server(home: Path, *, ssl: tuple[str, str] | None = None, loopback_bind: bool = True,
                 client_ca: str | None = None, **overrides: object) -> tuple[LiveServer, object, threading.Thread]:
    """Serve ``home`` as ``sts serve`` does (same protocol class and TLS options); ``client_ca`` asks TLS clients
    for a certificate from that PEM bundle (``--ssl-client-ca``)."""
    port = free_port()
    settings = replace(load_settings(home), **overrides).with_bind("127.0.0.1", port, tls=ssl is not None)  # type: ignore[arg-type]
    runtime = build_runtime(settings)
    app = create_app(runtime, loopback_bind=loopback_bind, client_certificates=client_ca is not None)
    tls = ssl_options(ssl[0] if ssl else None, ssl[1] if ssl else None, client_ca)
    server, thread = start_uvicorn(app, port, proxy_headers=False, http=http_protocol(), **tls)
    return LiveServer(settings.public_base_url, home, runtime), server, thread


@contextmanager
def running(home: Path, **options: Any) -> Iterator[LiveServer]:
    """``start_server(home, **options)`` for the duration of the block; stopped however the block ends."""
    live, server, thread = start_server(home, **options)
    try:
        yield live
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def init_home_with(path: Path, *relying_parties: RelyingParty) -> Path:
    """An initialised home in ``path`` (the demo user and relying party) with ``relying_parties`` registered too."""
    init_home(path)
    stores = open_stores(load_settings(path))
    try:
        for relying_party in relying_parties:
            stores.relying_parties.add(relying_party)
    finally:
        stores.close()
    return path


def start_uvicorn(app: Any, port: int, **config: Any) -> tuple[uvicorn.Server, threading.Thread]:
    """Run an ASGI app with uvicorn in a daemon thread on 127.0.0.1:``port``; return once it is listening."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    return server, thread


@contextmanager
def serving(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """An ASGI app served on loopback for the duration of the block; yields its http base URL."""
    port = port or free_port()
    server, thread = start_uvicorn(app, port, **config)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def make_tls_files(directory: Path) -> tuple[str, str]:
    """A self-signed TLS certificate for 127.0.0.1 (cert path, key path)."""
    return self_signed_tls_files(directory)


def wait_healthy(base_url: str, process: subprocess.Popen[Any], client: Any = None,
                 timeout: float = 30) -> None:
    """Wait until a `sts serve` process answers /healthz (fail fast if it died): interop.target's wait."""
    _wait_healthy(base_url, process, client=client, timeout=timeout)
