"""A live STS for tests: uvicorn on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn

from sts.asgi import create_app
from sts.config import load_settings
from sts.tls import TlsH11Protocol, ssl_options
from sts.walkthrough import free_port, self_signed_tls_files
from sts.wiring import build_runtime


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
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False,
                            http=TlsH11Protocol, **tls)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(settings.public_base_url, home, runtime), server, thread


def make_tls_files(directory: Path) -> tuple[str, str]:
    """A self-signed TLS certificate for 127.0.0.1 (cert path, key path)."""
    return self_signed_tls_files(directory)


def wait_healthy(base_url: str, process: subprocess.Popen[Any], client: Any = None,
                 timeout: float = 30) -> None:
    """Wait until a `sts serve` process answers /healthz (fail fast if it died)."""
    import httpx

    get = client.get if client is not None else httpx.get
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "sts serve did not come up"
        time.sleep(0.1)
