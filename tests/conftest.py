"""Shared test fixtures: cheap KDF, session keys, an initialised home, a live STS on loopback, network guard."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Cheap password hashing in tests only (the default is 2**15).
os.environ.setdefault("STS_PASSWORD_HASH_N", "16")

from sts.config import load_settings  # noqa: E402
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Block connections to anything but loopback: tests must never reach the network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"test tried to reach {address!r}: only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def sts_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised home directory with the demo user and relying party (shared by a worker's tests)."""
    home = tmp_path_factory.mktemp("sts-home")
    init_home(home)
    return home


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


def start_server(home: Path, *, ssl: tuple[str, str] | None = None, **overrides: object) -> tuple[LiveServer, object, threading.Thread]:
    import uvicorn
    from dataclasses import replace

    from sts.asgi import create_app
    from sts.wiring import build_runtime

    port = free_port()
    settings = replace(load_settings(home), **overrides).with_bind("127.0.0.1", port, tls=ssl is not None)  # type: ignore[arg-type]
    runtime = build_runtime(settings)
    app = create_app(runtime, loopback_bind=True)
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


@pytest.fixture(scope="session")
def live_sts(sts_home: Path) -> Iterator[LiveServer]:
    """The STS served by uvicorn on a free loopback port (plain HTTP, loopback bind)."""
    live, server, thread = start_server(sts_home)
    yield live
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def demo() -> dict[str, str]:
    return {"user": DEMO_USER, "password": DEMO_PASSWORD, "rp": DEMO_RP_ENDPOINT}
