"""Deferred writes and group commit (sts.store.prepared.write_later, sts.store.group_commit)."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import threading

import pytest
from sqlalchemy import bindparam, func, insert, select

from sts.errors import RequestFailed
from sts.offload import on_event_loop
from sts.store.database import Database
from sts.store import group_commit
from sts.store.group_commit import CHECKPOINT_EVERY_COMMITS, LOOP_AUTOCHECKPOINT_PAGES, GroupCommit
from sts.store.prepared import Prepared, request_scope, write_later
from sts.store.schema import nonces, utcnow
from sts.store.transactions import reading

_ROW = Prepared(insert(nonces).values(key=bindparam("key"), expires=bindparam("expires")))


def _rows(db: Database) -> int:
    with reading(db.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(nonces)).scalar_one())


def _defer(db: Database, key: bytes) -> None:
    write_later(db.engine, _ROW, {"key": key, "expires": utcnow()})


async def _request(db: Database, committer: GroupCommit, key: bytes) -> bool:
    """What the SOAP endpoint does: run inline on the loop, defer, then wait for the commit."""
    with committer.collecting() as waiter:
        with on_event_loop(), request_scope(db.engine):
            _defer(db, key)
            assert _rows(db) < 1000  # nothing is visible to others before the commit, and reading works
    return await waiter.committed()


def test_requests_finished_in_one_loop_iteration_share_one_commit(db: Database) -> None:
    committer = GroupCommit(db.engine)

    async def main() -> list[bool]:
        return await asyncio.gather(*(_request(db, committer, secrets.token_bytes(16)) for _ in range(10)))

    assert asyncio.run(main()) == [True] * 10
    assert (committer.commits, committer.requests) == (1, 10)
    assert _rows(db) == 10
    committer.close()


def test_a_bad_row_fails_only_its_own_request(db: Database) -> None:
    taken = secrets.token_bytes(16)
    with request_scope(db.engine):
        _defer(db, taken)
    committer = GroupCommit(db.engine)

    async def main() -> list[bool]:
        keys = [secrets.token_bytes(16), taken, secrets.token_bytes(16)]
        return await asyncio.gather(*(_request(db, committer, key) for key in keys))

    assert asyncio.run(main()) == [True, False, True]
    assert _rows(db) == 3 and committer.requests == 2
    committer.close()


def test_outside_the_loop_the_scope_commits_its_rows_at_the_end(db: Database) -> None:
    with request_scope(db.engine):
        _defer(db, b"a")
        _defer(db, b"b")
        assert _rows(db) == 0
    assert _rows(db) == 2


def test_a_commit_that_fails_fails_the_request(db: Database) -> None:
    with request_scope(db.engine):
        _defer(db, b"a")
    with pytest.raises(RequestFailed), request_scope(db.engine):
        _defer(db, b"b")
        _defer(db, b"a")  # the primary key is taken: the whole request's rows are refused
    assert _rows(db) == 1


def test_rows_recorded_before_a_control_flow_signal_are_kept(db: Database) -> None:
    class Signal(BaseException):
        pass

    with pytest.raises(Signal), request_scope(db.engine):
        _defer(db, b"throttled")  # like the auth.throttled audit entry, written before a throttle wait
        raise Signal
    assert _rows(db) == 1


def test_outside_a_request_write_later_writes_at_once(db: Database) -> None:
    _defer(db, b"now")
    assert _rows(db) == 1


def test_a_request_finished_in_the_next_iteration_joins_the_same_commit(db: Database) -> None:
    """What a busy server gets: the bytes of more requests arrive while the first ones run, and wait one turn."""
    committer = GroupCommit(db.engine)

    async def late() -> bool:
        await asyncio.sleep(0)  # finishes one loop iteration after the first request
        return await _request(db, committer, secrets.token_bytes(16))

    async def main() -> list[bool]:
        return list(await asyncio.gather(_request(db, committer, secrets.token_bytes(16)), late()))

    assert asyncio.run(main()) == [True, True]
    assert (committer.commits, committer.requests) == (1, 2)
    committer.close()


def _sqlite_only(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("WAL checkpoints are SQLite's")


def test_the_loops_commits_leave_wal_checkpoints_to_a_thread(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite checkpoints in the commit that takes the WAL past 1,000 pages, stalling the loop for milliseconds:
    the loop's connection does so only past a far larger bound, and every CHECKPOINT_EVERY_COMMITS commits a
    checkpoint runs in a thread, which leaves nothing of the WAL uncopied."""
    _sqlite_only(db)
    committer = GroupCommit(db.engine)
    threads: list[int] = []
    checkpoint = GroupCommit._checkpoint

    def recorded(self: GroupCommit) -> None:
        threads.append(threading.get_ident())
        checkpoint(self)

    monkeypatch.setattr(GroupCommit, "_checkpoint", recorded)

    async def main() -> int:
        for _ in range(2):
            for _ in range(CHECKPOINT_EVERY_COMMITS):  # one request a commit
                assert await _request(db, committer, secrets.token_bytes(16))
            await committer.checkpointed()  # however slow the thread, this round's checkpoint is over
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert committer.commits == 2 * CHECKPOINT_EVERY_COMMITS
    assert committer.checkpoints == len(threads) == 2
    assert loop_thread not in threads
    cursor = committer.connection().cursor()
    assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == LOOP_AUTOCHECKPOINT_PAGES
    busy, in_wal, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and copied == in_wal  # everything committed before is in the database file (or copied now)
    cursor.close()
    assert _rows(db) == 2 * CHECKPOINT_EVERY_COMMITS
    loops_own = committer.connection().dbapi_connection
    committer.close()
    # The loop's bound goes with its connection, which is closed, not handed back to the pool for others.
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        loops_own.execute("SELECT 1")


def test_a_failed_checkpoint_is_logged_and_the_next_one_runs(db: Database, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    _sqlite_only(db)
    committer = GroupCommit(db.engine)
    calls: list[int] = []

    def failing_once(self: GroupCommit) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")

    monkeypatch.setattr(GroupCommit, "_checkpoint", failing_once)

    async def main() -> None:
        for _ in range(2 * CHECKPOINT_EVERY_COMMITS):
            assert await _request(db, committer, secrets.token_bytes(16))
            await committer.checkpointed()

    with caplog.at_level("WARNING", logger=group_commit.__name__):
        asyncio.run(main())
    assert len(calls) == 2 and committer.checkpoints == 1
    assert "WAL checkpoint failed: disk full" in caplog.text
    committer.close()
