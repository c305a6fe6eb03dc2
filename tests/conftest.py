"""Shared test fixtures: cheap KDF, session keys, an initialised home, a live STS on loopback, network guard."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

# Cheap password hashing in tests only (the default is 2**15).
os.environ.setdefault("STS_PASSWORD_HASH_N", "16")

from live import LiveServer, start_server  # noqa: E402
from servers.postgres import PostgresServer  # noqa: E402
from servers.slapd import Slapd  # noqa: E402
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


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A throwaway OpenLDAP server with the test users of fixtures/ldap (``servers.slapd``), for the session."""
    with Slapd.started(tmp_path_factory.mktemp("ldap")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session; a test takes a fresh database of it (``fresh_url()``)."""
    with PostgresServer() as server:
        yield server
