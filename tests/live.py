"""A live STS for tests: uvicorn on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from sts.asgi import create_app
from sts.config import load_settings
from sts.wiring import build_runtime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    home: Path
    runtime: object

    @property
    def sts_url(self) -> str:
        return f"{self.base_url}/services/sts"


def start_server(home: Path, *, ssl: tuple[str, str] | None = None, loopback_bind: bool = True, **overrides: object) -> tuple[LiveServer, object, threading.Thread]:
    port = free_port()
    settings = replace(load_settings(home), **overrides).with_bind("127.0.0.1", port, tls=ssl is not None)  # type: ignore[arg-type]
    runtime = build_runtime(settings)
    app = create_app(runtime, loopback_bind=loopback_bind)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False,
                            ssl_certfile=ssl[0] if ssl else None, ssl_keyfile=ssl[1] if ssl else None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(settings.public_base_url, home, runtime), server, thread
