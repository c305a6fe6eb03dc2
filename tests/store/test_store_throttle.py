"""SqlThrottleStore: failure counts per user and per address in ``auth_failures``, shared across engines."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sts.interfaces import ThrottleStore
from sts.store import throttle as throttle_module
from sts.store.database import Database
from sts.store.schema import auth_failures
from sts.store.throttle import SqlThrottleStore
from sts.store.transactions import reading

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
SINCE = NOW - WINDOW


@pytest.fixture(params=["upsert", "portable"])
def store(request: pytest.FixtureRequest, db: Database) -> SqlThrottleStore:
    """The one-statement upsert (SQLite, PostgreSQL) and the portable UPDATE-then-INSERT other dialects get."""
    made = SqlThrottleStore(db.engine)
    if request.param == "portable":
        made._upsert = None
    return made


def _fail(store: ThrottleStore, user: str, address: str, times: int, now: datetime = NOW) -> None:
    for _ in range(times):
        store.failed(user, address, now, now - WINDOW)


def test_counts_per_user_and_per_address(store: SqlThrottleStore) -> None:
    assert store.counts("alice", "192.0.2.1", SINCE) == (0, 0)
    _fail(store, "alice", "192.0.2.1", 3)
    _fail(store, "bob", "192.0.2.1", 1)
    _fail(store, "alice", "198.51.100.7", 1)
    assert store.counts("alice", "192.0.2.1", SINCE) == (4, 4)
    assert store.counts("bob", "198.51.100.7", SINCE) == (1, 1)
    assert store.counts("carol", "203.0.113.9", SINCE) == (0, 0)


def test_an_empty_address_is_not_counted(store: SqlThrottleStore) -> None:
    _fail(store, "alice", "", 2)
    assert store.counts("alice", "", SINCE) == (2, 0)


def test_a_series_older_than_the_window_counts_nothing_and_starts_again(store: SqlThrottleStore) -> None:
    _fail(store, "alice", "192.0.2.1", 5)
    later = NOW + WINDOW + timedelta(seconds=1)
    assert store.counts("alice", "192.0.2.1", later - WINDOW) == (0, 0)
    _fail(store, "alice", "192.0.2.1", 1, now=later)
    assert store.counts("alice", "192.0.2.1", later - WINDOW) == (1, 1)
    with reading(store._engine) as conn:
        first = conn.execute(select(auth_failures.c.first_failure).where(auth_failures.c.key == "alice")).scalar()
    assert first == later  # the new series' start, not the stale one's


def test_reset_clears_the_user_and_forgive_takes_one_off_the_address(store: SqlThrottleStore) -> None:
    _fail(store, "alice", "192.0.2.1", 3)
    store.reset("alice")
    store.forgive("192.0.2.1")
    assert store.counts("alice", "192.0.2.1", SINCE) == (0, 2)
    for _ in range(5):
        store.forgive("192.0.2.1")
    assert store.counts("alice", "192.0.2.1", SINCE) == (0, 0)  # never below zero
    store.reset("nobody")
    store.forgive("203.0.113.9")  # no row: nothing to do


def test_two_engines_share_the_counts(db: Database, second_db: Database) -> None:
    first, second = SqlThrottleStore(db.engine), SqlThrottleStore(second_db.engine)
    _fail(first, "alice", "192.0.2.1", 2)
    _fail(second, "alice", "192.0.2.1", 1)
    assert first.counts("alice", "192.0.2.1", SINCE) == second.counts("alice", "192.0.2.1", SINCE) == (3, 3)


def test_concurrent_failures_are_all_counted(db: Database, second_db: Database) -> None:
    stores = [SqlThrottleStore(db.engine), SqlThrottleStore(second_db.engine)]

    def hammer(store: SqlThrottleStore) -> None:
        _fail(store, "alice", "192.0.2.1", 10)

    threads = [threading.Thread(target=hammer, args=(stores[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].counts("alice", "192.0.2.1", SINCE) == (40, 40)


def test_stale_rows_are_purged_now_and_then(db: Database) -> None:
    store = SqlThrottleStore(db.engine, purge_every=3)
    for i in range(4):
        _fail(store, f"old-{i}", "192.0.2.1", 1)
    later = NOW + WINDOW + timedelta(minutes=1)
    _fail(store, "new", "198.51.100.7", 2, now=later)  # the 6th failure purges
    with reading(db.engine) as conn:
        keys: set[str] = set(conn.execute(select(auth_failures.c.key)).scalars())
    assert keys == {"new", "198.51.100.7"}


@pytest.mark.sqlite_only  # traced or planned by the sqlite3 driver
def test_the_read_before_every_check_is_one_primary_key_lookup(db: Database) -> None:
    store = SqlThrottleStore(db.engine)
    for i in range(50):
        _fail(store, f"user-{i}", f"192.0.2.{i}", 1)
    compiled = throttle_module._COUNTS.compiled(db.engine.dialect)
    assert compiled.sql.count("SELECT") == 1
    params = compiled.parameters({"user_scope": "user", "user": "user-1", "address_scope": "address",
                                  "address": "192.0.2.1", "since": SINCE})
    raw = db.engine.raw_connection()
    try:
        plan = " ".join(str(row[-1]) for row in raw.cursor().execute("EXPLAIN QUERY PLAN " + compiled.sql, params))
    finally:
        raw.close()
    # Both keys through the primary key's index, never a scan of the table.
    assert "SCAN" not in plan and "sqlite_autoindex_auth_failures_1" in plan, plan
