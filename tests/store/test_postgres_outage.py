"""A node whose PostgreSQL server goes away, over real HTTP: stopped (connections refused) or frozen (SIGSTOP: the
server accepts but never answers). Each Issue fails fast with ``wst:RequestFailed`` (the reason in the log, never on
the wire), ``/healthz`` turns red, nothing is half-written, and once the server is back the pool recovers."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from live import LiveServer, running
from servers.postgres import PostgresServer
from sts import ns
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.store.database import open_database
from sts.store.schema import tokens
from trust_client import Reply, post, rst_envelope

TIMEOUT = 2  # database_timeout_seconds of this node
#: What the client may wait beyond the timeout: the client-side margin (0.25 s) and a noisy, shared machine.
SLACK = 1.5


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A server of this module's own: its tests stop and freeze it."""
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="module")
def node(server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("pg-node")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STS_DATABASE_URL", server.url)
        env.setenv("STS_DATABASE_TIMEOUT_SECONDS", str(TIMEOUT))
        init_home(home)
        with running(home) as live:
            yield live


@pytest.fixture(autouse=True)
def server_back(server: PostgresServer) -> Iterator[None]:
    yield
    server.resume()
    server.start()


def issue(node: LiveServer) -> tuple[Reply, float]:
    body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT)
    started = time.monotonic()
    reply = post(node.sts_url, body)
    return reply, time.monotonic() - started


def health(node: LiveServer) -> httpx.Response:
    return httpx.get(f"{node.base_url}/healthz", timeout=30)


def recorded_tokens(server: PostgresServer) -> int:
    database = open_database(server.url, run_migrations=False)
    try:
        with database.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tokens)).scalar_one())
    finally:
        database.close()


def assert_request_failed(reply: Reply, elapsed: float, slack: float = SLACK) -> None:
    assert reply.fault_code == (ns.WST13, "RequestFailed"), reply.fault_reason
    reason = reply.fault_reason or ""
    for detail in ("psycopg", "connection", "127.0.0.1", "timeout", "server"):
        assert detail not in reason.lower(), reason  # the wire says nothing of the database
    assert elapsed < TIMEOUT + slack, elapsed


def assert_recovers(node: LiveServer, server: PostgresServer, before: int) -> None:
    """Once the server is back: health green, Issue works, and exactly the successful Issues were recorded."""
    deadline = time.monotonic() + 15
    while health(node).status_code != 200:
        assert time.monotonic() < deadline, "/healthz did not turn green after the server came back"
        time.sleep(0.1)
    reply, _ = issue(node)
    assert reply.status == 200 and reply.fault_code is None, reply.fault_reason
    assert recorded_tokens(server) == before + 1  # the failed requests recorded nothing


def test_issue_works_while_the_server_is_up(node: LiveServer, server: PostgresServer) -> None:
    before = recorded_tokens(server)
    reply, _ = issue(node)
    assert reply.status == 200 and reply.fault_code is None, reply.fault_reason
    assert health(node).json() == {"status": "ok"}
    assert recorded_tokens(server) == before + 1


def test_a_stopped_server_fails_requests_fast_and_health_red(node: LiveServer, server: PostgresServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    assert issue(node)[0].status == 200  # the pool holds live connections, which the stop breaks
    before = recorded_tokens(server)
    server.halt()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert_request_failed(*issue(node))
        response = health(node)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "database unavailable"}
    assert "Connection refused" in caplog.text or "connection failed" in caplog.text, caplog.text[-2000:]
    server.start()
    assert_recovers(node, server, before)


def test_a_frozen_server_fails_requests_within_the_timeout(node: LiveServer, server: PostgresServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    assert issue(node)[0].status == 200
    before = recorded_tokens(server)
    server.pause()
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                assert_request_failed(*issue(node))
            started = time.monotonic()
            response = health(node)
            assert time.monotonic() - started < TIMEOUT + SLACK
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        assert "did not answer" in caplog.text or "timeout expired" in caplog.text, caplog.text[-2000:]
    finally:
        server.resume()
    assert_recovers(node, server, before)


def test_requests_in_flight_when_the_server_freezes_all_fail_fast(node: LiveServer, server: PostgresServer) -> None:
    """Several at once: each is bounded on its own (a frozen server holds worker threads, not the event loop)."""
    assert issue(node)[0].status == 200
    before = recorded_tokens(server)
    server.pause()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: issue(node), range(4)))
        for reply, elapsed in results:
            # Four at once on two shared cores: a little more slack than one alone.
            assert_request_failed(reply, elapsed, SLACK + 0.5)
    finally:
        server.resume()
    assert_recovers(node, server, before)


def test_the_node_home_has_no_sqlite_file(node: LiveServer) -> None:
    assert not Path(node.home, "sts.db").exists()
