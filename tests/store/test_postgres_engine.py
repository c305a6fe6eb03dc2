"""The PostgreSQL engine's bounds: pool size, server-side statement and lock timeouts, the client's own bound on
an unanswered wait, and the breaker that spares requests a second timeout right after a failure."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from servers.postgres import PostgresServer
from sts.offload import MoveToThread, on_event_loop
from sts.store import postgres
from sts.store.audit import AuditTrail
from sts.store.database import create_database_engine, open_database
from sts.store.group_commit import GroupCommit
from sts.store.prepared import request_scope
from sts.web.loopback import free_port
from timing import did_not_wait


def test_postgresql_urls_mean_psycopg_3_with_the_pool_settings(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_url().replace("postgresql+psycopg://", "postgresql://")
    engine = create_database_engine(url, pool_size=3, timeout_seconds=2)
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "2s"
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "2s"
    finally:
        engine.dispose()


def test_a_lock_held_by_another_node_fails_the_wait_after_the_timeout(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_url()
    holder = open_database(url)
    waiter = open_database(url, timeout_seconds=1)
    try:
        with holder.engine.begin() as conn:
            conn.execute(text("UPDATE counters SET value = value + 1"))  # row lock held until this block ends
            started = time.monotonic()
            with pytest.raises(OperationalError, match="(statement|lock) timeout"), waiter.engine.begin() as other:
                other.execute(text("UPDATE counters SET value = value + 1"))
            assert time.monotonic() - started < 2
    finally:
        holder.close()
        waiter.close()


def test_a_frozen_server_fails_a_statement_after_the_client_bound(postgres_server: PostgresServer) -> None:
    """A server of its own (frozen here): the statement fails, the connection is discarded, and the next
    connection attempt fails at once (the breaker) instead of waiting again."""
    with PostgresServer() as frozen:
        engine = create_database_engine(frozen.url, timeout_seconds=1)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                frozen.pause()
                started = time.monotonic()
                with pytest.raises(OperationalError, match="did not answer within 1.25 s"):
                    conn.execute(text("SELECT 1"))
                assert time.monotonic() - started < 1 + postgres.CLIENT_MARGIN_SECONDS + 0.75
            started = time.monotonic()
            with pytest.raises(OperationalError, match="not connecting for"):
                engine.connect()
            assert did_not_wait(time.monotonic() - started, 1)  # the breaker answers; a connect attempt waits 1 s
            frozen.resume()
            time.sleep(postgres.BREAKER_SECONDS)
            with engine.connect() as conn:  # the breaker closes again: connections are made as before
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        finally:
            frozen.resume()
            engine.dispose()


def test_a_refused_connection_opens_the_breaker_for_a_moment() -> None:
    engine = create_database_engine(f"postgresql://sts:pw@127.0.0.1:{free_port()}/sts", timeout_seconds=2)
    try:
        with pytest.raises(OperationalError, match="refused"):
            engine.connect()
        with pytest.raises(OperationalError, match="not connecting for .* refused"):
            engine.connect()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_on_the_event_loop_only_sqlite_is_touched(backend: str, db_url: str) -> None:
    """A request on the loop that reaches a server database moves to a thread first, even one that only writes
    (a fault's audit entry, which would otherwise go to the group committer on the loop); SQLite stays there."""
    database = open_database(db_url)
    trail = AuditTrail(database.engine)
    committer = GroupCommit(database.engine)

    async def request_on_the_loop() -> bool:
        with committer.collecting() as waiter, on_event_loop():
            with request_scope(database.engine):
                trail.record("issue", actor="alice", outcome="wsse:MessageExpired")
            return await waiter.committed()

    try:
        if backend == "postgresql":
            with pytest.raises(MoveToThread):
                asyncio.run(request_on_the_loop())
            with on_event_loop(), pytest.raises(MoveToThread):
                database.tokens.get("_any")
        else:
            assert asyncio.run(request_on_the_loop())
            with on_event_loop():
                assert database.tokens.get("_any") is None
        # Moved: nothing was written on the loop (the rerun in a thread writes its own entry).
        assert len(trail.search()) == (1 if backend == "sqlite" else 0)
        assert committer.commits == (1 if backend == "sqlite" else 0)
    finally:
        committer.close()
        database.close()
