"""A nonce claimed in a group-committed request joins that commit (sts.store.prepared.claim), and a replay is still
refused exactly once: in the same batch, against a key committed before, and before any write that cannot wait."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, func, insert, select

from sts.offload import on_event_loop
from sts.store.database import Database
from sts.store.group_commit import GroupCommit
from sts.store.prepared import ClaimTaken, Prepared, request_scope, write, write_later
from sts.store.replay import SqlReplayCache
from sts.store.schema import nonces, utcnow
from sts.store.transactions import reading

_ROW = Prepared(insert(nonces).values(key=bindparam("key"), expires=bindparam("expires")))


def _keys(db: Database) -> set[bytes]:
    with reading(db.engine) as conn:
        return {bytes(key) for key in conn.execute(select(nonces.c.key)).scalars()}


def _count(db: Database) -> int:
    with reading(db.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(nonces)).scalar_one())


def _until() -> object:
    return utcnow() + timedelta(minutes=5)


async def _request(db: Database, committer: GroupCommit, nonce: bytes, row: bytes) -> tuple[bool, bool]:
    """An Issue as the SOAP endpoint runs it on the loop: claim the nonce, defer a row (its "token"), wait for the
    commit. (committed, claim_taken)."""
    cache = SqlReplayCache(db.engine)
    with committer.collecting() as waiter:
        with on_event_loop(), request_scope(db.engine):
            assert cache.first_seen(nonce, _until())  # deferred: it cannot know yet
            write_later(db.engine, _ROW, {"key": row, "expires": _until()})
    return await waiter.committed(), waiter.claim_taken


def test_the_claim_joins_the_group_commit(db: Database) -> None:
    committer = GroupCommit(db.engine)

    async def main() -> list[tuple[bool, bool]]:
        return await asyncio.gather(*(_request(db, committer, secrets.token_bytes(16), secrets.token_bytes(16))
                                      for _ in range(5)))

    assert asyncio.run(main()) == [(True, False)] * 5
    assert (committer.commits, committer.requests) == (1, 5)  # nonces and rows: one transaction
    assert _count(db) == 10
    committer.close()


def test_a_replay_in_the_same_batch_is_refused_and_commits_nothing(db: Database) -> None:
    committer = GroupCommit(db.engine)
    nonce, rows = secrets.token_bytes(16), [secrets.token_bytes(16) for _ in range(3)]

    async def main() -> list[tuple[bool, bool]]:
        return await asyncio.gather(_request(db, committer, nonce, rows[0]), _request(db, committer, nonce, rows[1]),
                                    _request(db, committer, secrets.token_bytes(16), rows[2]))

    assert asyncio.run(main()) == [(True, False), (False, True), (True, False)]
    keys = _keys(db)
    assert nonce in keys and rows[0] in keys and rows[2] in keys
    assert rows[1] not in keys  # the replay's "token" was never recorded (and its answer never sent)
    committer.close()


def test_a_key_committed_before_refuses_the_claim_at_the_commit(db: Database, second_db: Database) -> None:
    nonce = secrets.token_bytes(16)
    assert SqlReplayCache(second_db.engine).first_seen(nonce, _until())  # another process took it
    committer = GroupCommit(db.engine)
    row = secrets.token_bytes(16)
    assert asyncio.run(_request(db, committer, nonce, row)) == (False, True)
    assert row not in _keys(db)
    committer.close()


def test_the_run_after_a_taken_claim_claims_at_once(db: Database) -> None:
    nonce = secrets.token_bytes(16)
    assert SqlReplayCache(db.engine).first_seen(nonce, _until())
    committer = GroupCommit(db.engine)

    async def rerun() -> bool:
        with committer.collecting(claims_wait=False), on_event_loop(), request_scope(db.engine):
            return SqlReplayCache(db.engine).first_seen(nonce, _until())

    assert asyncio.run(rerun()) is False  # refused on the spot, as a replay is outside the loop
    committer.close()


@pytest.mark.parametrize("held", [False, True], ids=["free", "held"])
def test_a_write_that_cannot_wait_makes_the_claims_first(db: Database, held: bool) -> None:
    """A Cancel's or a Renew's change is not deferred: the nonce is claimed before it, and if the key was held the
    change does not happen at all."""
    nonce, change = secrets.token_bytes(16), secrets.token_bytes(16)
    if held:
        assert SqlReplayCache(db.engine).first_seen(nonce, _until())
    committer = GroupCommit(db.engine)

    async def request() -> None:
        with committer.collecting(), on_event_loop(), request_scope(db.engine):
            assert SqlReplayCache(db.engine).first_seen(nonce, _until())
            write(db.engine, _ROW, {"key": change, "expires": _until()})

    if held:
        with pytest.raises(ClaimTaken):
            asyncio.run(request())
        assert change not in _keys(db)
    else:
        asyncio.run(request())
        assert {nonce, change} <= _keys(db)
    committer.close()


def test_a_control_flow_signal_after_a_claim_leaves_the_key_free(db: Database) -> None:
    """A request moved to a thread (``MoveToThread``) runs again from the start and claims its nonce there."""
    class Signal(BaseException):
        pass

    nonce = secrets.token_bytes(16)
    committer = GroupCommit(db.engine)

    async def request() -> None:
        with committer.collecting(), on_event_loop(), request_scope(db.engine):
            assert SqlReplayCache(db.engine).first_seen(nonce, _until())
            raise Signal

    with pytest.raises(Signal):
        asyncio.run(request())
    assert nonce not in _keys(db)
    assert SqlReplayCache(db.engine).first_seen(nonce, _until())  # the rerun's claim: the first one
    committer.close()


def test_outside_a_group_commit_a_claim_is_made_at_once(db: Database) -> None:
    nonce = secrets.token_bytes(16)
    with request_scope(db.engine):
        assert SqlReplayCache(db.engine).first_seen(nonce, _until())
        assert nonce in _keys(db)
        assert not SqlReplayCache(db.engine).first_seen(nonce, _until())


def test_a_request_moved_to_a_thread_after_its_claim_does_not_meet_itself(db: Database) -> None:
    """The same cache (one per process) sees the first run's claim dropped and the re-run's: not a replay."""
    class Signal(BaseException):
        pass

    cache, nonce = SqlReplayCache(db.engine), secrets.token_bytes(16)
    committer = GroupCommit(db.engine)

    async def on_the_loop() -> None:
        with committer.collecting(), on_event_loop(), request_scope(db.engine):
            assert cache.first_seen(nonce, _until())
            raise Signal  # MoveToThread, say

    with pytest.raises(Signal):
        asyncio.run(on_the_loop())
    with request_scope(db.engine):  # the re-run, in a worker thread
        assert cache.first_seen(nonce, _until())
    assert not cache.first_seen(nonce, _until())  # and now it is taken
    committer.close()


def test_copies_after_a_taken_claim_are_refused_without_a_statement(db: Database, second_db: Database) -> None:
    """A flood's first copy costs a token built and a commit that finds the key held; the run after it learns the
    key is held, and later copies stop at the cache."""
    nonce = secrets.token_bytes(16)
    assert SqlReplayCache(second_db.engine).first_seen(nonce, _until())  # the original, on another process
    cache = SqlReplayCache(db.engine)
    committer = GroupCommit(db.engine)

    async def copy(claims_wait: bool) -> tuple[bool, bool]:
        """(what first_seen said, whether the commit found the key held)."""
        with committer.collecting(claims_wait=claims_wait) as waiter:
            with on_event_loop(), request_scope(db.engine):
                first = cache.first_seen(nonce, _until())
                write_later(db.engine, _ROW, {"key": secrets.token_bytes(16), "expires": _until()})
        await waiter.committed()
        return first, waiter.claim_taken

    assert asyncio.run(copy(claims_wait=True)) == (True, True)  # not known at first: the commit refuses it
    assert asyncio.run(copy(claims_wait=False)) == (False, False)  # the run after ClaimTaken: refused, remembered
    assert asyncio.run(copy(claims_wait=True)) == (False, False)  # a later copy: refused at once, nothing waits
    committer.close()
