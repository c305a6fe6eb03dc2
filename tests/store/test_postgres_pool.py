"""Requests in worker threads hold their scope's pooled connection and may open a nested transaction (a relying-party
reload, a Cancel's status change): on PostgreSQL that must never starve the pool (sts.store.prepared._Admission)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from servers.postgres import PostgresServer
from sts.store.database import open_database
from sts.store.prepared import request_scope
from sts.store.schema import config_version_now
from sts.store.transactions import reading

POOL = 2
REQUESTS = 4 * POOL * 2  # far more than the pool and its overflow


def test_many_requests_each_nesting_a_transaction_all_finish(postgres_server: PostgresServer) -> None:
    database = open_database(postgres_server.fresh_url(), pool_size=POOL, timeout_seconds=3)
    engine = database.engine
    inside = 0
    most = 0
    lock = threading.Lock()

    def request() -> int:
        nonlocal inside, most
        with request_scope(engine):
            version = config_version_now(engine)  # the scope's own connection, held to the end of the request
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.1)  # the requests overlap
            with reading(engine) as conn:  # a second connection, while the first is held
                conn.execute(text("SELECT 1"))
            with lock:
                inside -= 1
            return version

    try:
        started = time.monotonic()
        with ThreadPoolExecutor(REQUESTS) as threads:
            versions = list(threads.map(lambda _: request(), range(REQUESTS)))
        elapsed = time.monotonic() - started
    finally:
        database.close()
    assert len(set(versions)) == 1
    assert most <= POOL  # scopes admitted at once: the pool's size, so a nested transaction finds a connection
    assert elapsed < 3, f"{elapsed:.1f} s: requests waited for the pool's timeout"
