"""SqlReplayCache: once per key, across engines and across processes."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from sts.interfaces import ReplayCache
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
