"""SqlReplayCache: once per key, across engines and across processes."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import StatementError

from sts.interfaces import ReplayCache
from sts.store import replay
from sts.store.database import Database, open_database
from sts.store.replay import SqlReplayCache
from sts.store.schema import nonces
from sts.store.transactions import reading

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True, params=["upsert", "portable"])
def nonce_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test here runs on the one-statement ON CONFLICT path and on the portable UPDATE + INSERT."""
    if request.param == "portable":
        monkeypatch.setattr(replay, "upsert_for", lambda engine: None)
    yield request.param


def count_nonces(db: Database) -> int:
    with reading(db.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(nonces)).scalar_one())


def test_first_then_replay(db: Database) -> None:
    cache: ReplayCache = db.nonces
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert cache.first_seen(b"nonce-1", until) is True
    assert cache.first_seen(b"nonce-1", until) is False
    assert cache.first_seen(b"nonce-2", until) is True


def test_expired_key_may_be_used_again(db: Database) -> None:
    clock = FakeClock(NOW)
    cache = SqlReplayCache(db.engine, clock)
    assert cache.first_seen(b"k", NOW + timedelta(minutes=5))
    clock.now = NOW + timedelta(minutes=4)
    assert not cache.first_seen(b"k", NOW + timedelta(minutes=9))
    clock.now = NOW + timedelta(minutes=5)
    assert cache.first_seen(b"k", NOW + timedelta(minutes=10))  # taken over, with the new expiry
    clock.now = NOW + timedelta(minutes=9)
    assert not cache.first_seen(b"k", NOW + timedelta(minutes=15))


def test_expired_keys_are_purged(db: Database) -> None:
    clock = FakeClock(NOW)
    cache = SqlReplayCache(db.engine, clock, purge_every=3)
    cache.first_seen(b"a", NOW + timedelta(seconds=1))
    cache.first_seen(b"b", NOW + timedelta(seconds=1))
    clock.now = NOW + timedelta(seconds=2)
    cache.first_seen(b"c", NOW + timedelta(minutes=5))  # the third insert purges a and b
    assert count_nonces(db) == 1
    assert cache.purge() == 0


def test_two_engines_on_one_file(db: Database, second_db: Database) -> None:
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert db.nonces.first_seen(b"shared", until)
    assert not second_db.nonces.first_seen(b"shared", until)
    assert second_db.nonces.first_seen(b"other", until)
    assert not db.nonces.first_seen(b"other", until)


KEYS = 40


def _race(url: str, barrier: Any, results: Any) -> None:
    # A separate process with its own engine, as a uvicorn worker would have.
    database = open_database(url, run_migrations=False)
    until = datetime.now(UTC) + timedelta(minutes=5)
    barrier.wait()
    results.put([database.nonces.first_seen(f"race-{i}".encode(), until) for i in range(KEYS)])
    database.close()


def test_racing_processes_exactly_one_wins(db: Database, db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    workers = [ctx.Process(target=_race, args=(db_url, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    for i in range(KEYS):
        assert outcomes[0][i] != outcomes[1][i], f"key {i}: {outcomes[0][i]} / {outcomes[1][i]}"
    assert count_nonces(db) == KEYS


@pytest.mark.sqlite_only  # traced or planned by the sqlite3 driver
def test_sqlite_statements_of_each_nonce_path(db: Database, db_url: str, nonce_path: str) -> None:
    """The one-statement path: one ON CONFLICT upsert a call, without BEGIN. The portable path: UPDATE + INSERT
    in one immediate transaction a call, the replay's rolled back (its INSERT hits the key)."""
    # The replay comes from another "process": the one that took the key would refuse it without a statement.
    worker, other = open_database(db_url, run_migrations=False), open_database(db_url, run_migrations=False)
    statements: list[str] = []
    for each in (worker, other):
        event.listen(each.engine, "connect",
                     lambda dbapi_conn, _rec: dbapi_conn.set_trace_callback(statements.append))
    until = datetime.now(UTC) + timedelta(minutes=5)
    try:
        assert worker.nonces.first_seen(b"traced", until)
        assert not other.nonces.first_seen(b"traced", until)
    finally:
        worker.close()
        other.close()
    queries = [s for s in statements if not s.startswith("PRAGMA")]
    if nonce_path == "upsert":
        assert len(queries) == 2, queries
        assert all(s.startswith("INSERT INTO nonces") and "ON CONFLICT" in s for s in queries)
    else:
        one_call = ["BEGIN IMMEDIATE", "UPDATE nonces ", "INSERT INTO nonces "]
        expected = [*one_call, "COMMIT", *one_call, "ROLLBACK"]
        assert len(queries) == len(expected), queries
        assert all(s.startswith(start) for s, start in zip(queries, expected, strict=True)), queries
        assert not any("ON CONFLICT" in s for s in queries)


def test_replay_is_refused_while_live_and_expired_key_is_reused_by_another_engine(
    db: Database, second_db: Database
) -> None:
    clock = FakeClock(NOW)
    first, second = SqlReplayCache(db.engine, clock), SqlReplayCache(second_db.engine, clock)
    assert first.first_seen(b"k", NOW + timedelta(minutes=5))
    assert not second.first_seen(b"k", NOW + timedelta(minutes=5))
    clock.now = NOW + timedelta(minutes=5)  # expires <= now: the row no longer protects anything
    assert second.first_seen(b"k", NOW + timedelta(minutes=10))
    assert not first.first_seen(b"k", NOW + timedelta(minutes=10))
    with reading(db.engine) as conn:
        assert conn.execute(select(nonces.c.expires)).scalar_one() == NOW + timedelta(minutes=10)


def test_two_engines_racing_threads_exactly_one_wins(db: Database, second_db: Database) -> None:
    until = datetime.now(UTC) + timedelta(minutes=5)
    keys = [f"thread-race-{i}".encode() for i in range(60)]
    barrier = threading.Barrier(4)
    wins: list[list[bool]] = []
    errors: list[BaseException] = []

    def worker(cache: SqlReplayCache) -> None:
        try:
            barrier.wait()
            wins.append([cache.first_seen(k, until) for k in keys])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    caches = [db.nonces, second_db.nonces, db.nonces, second_db.nonces]
    threads = [threading.Thread(target=worker, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert [sum(column) for column in zip(*wins, strict=True)] == [1] * len(keys)
    assert count_nonces(db) == len(keys)


def test_a_failing_statement_leaves_the_pool_usable(db: Database) -> None:
    # The store's ValueError: raw from the prepared upsert (it binds on the DB-API connection), wrapped in
    # StatementError by SQLAlchemy's Connection.execute on the portable path.
    with pytest.raises((ValueError, StatementError), match="naive") as refused:
        db.nonces.first_seen(b"k", datetime(2030, 1, 1))
    cause = refused.value.orig if isinstance(refused.value, StatementError) else refused.value
    assert isinstance(cause, ValueError)
    assert db.nonces.first_seen(b"k", datetime.now(UTC) + timedelta(minutes=1))
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]



def test_a_key_this_process_took_is_refused_without_a_statement(db: Database,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of copies of one captured request costs a dictionary lookup each, not a statement (nor, in a
    group-committed request, a token built before the commit finds the key held)."""
    cache = SqlReplayCache(db.engine)
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert cache.first_seen(b"flooded", until)
    asked: list[object] = []
    monkeypatch.setattr(replay, "claim", lambda *args: asked.append(args))
    monkeypatch.setattr(SqlReplayCache, "_first_seen_portable", lambda self, values: asked.append(values))
    assert not any(cache.first_seen(b"flooded", until) for _ in range(100))
    assert asked == []


def test_the_memory_of_taken_keys_is_bounded_and_the_database_still_decides(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "RECENT_KEYS", 3)
    cache = SqlReplayCache(db.engine)
    until = datetime.now(UTC) + timedelta(minutes=5)
    keys = [b"k%d" % number for number in range(5)]
    assert all(cache.first_seen(key, until) for key in keys)  # the oldest were forgotten on the way
    assert len(cache._taken) <= 3
    assert not any(cache.first_seen(key, until) for key in keys)  # every one refused, remembered or not


def test_a_key_refused_by_the_database_is_remembered(db: Database, second_db: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of copies sent to a process that did not take the key: one statement, then lookups."""
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert SqlReplayCache(second_db.engine).first_seen(b"elsewhere", until)
    cache = SqlReplayCache(db.engine)
    assert not cache.first_seen(b"elsewhere", until)  # the database says so
    asked: list[object] = []
    monkeypatch.setattr(replay, "claim", lambda *args: asked.append(args))
    monkeypatch.setattr(SqlReplayCache, "_first_seen_portable", lambda self, values: asked.append(values))
    assert not any(cache.first_seen(b"elsewhere", until) for _ in range(10))
    assert asked == []
