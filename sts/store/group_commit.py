"""Group commit: the deferred writes of the requests that finished in one event-loop iteration, and in the next one,
in one transaction.

The commit waits for the iteration after the first request's: the requests whose bytes arrived while the first
ones ran (a busy server's clients sending again) join it. With 8 clients on one worker a commit then holds 8
requests instead of 4, and since a commit costs about as much as a request's own work there (the WAL frames are
written page by page), that is ≈ 10 % more ECDSA tokens per CPU-second. An idle server pays one more loop turn.

Every Issue appends two rows (the token, the audit entry) whose B-tree pages mostly coincide with the previous
request's (the time-ordered indexes end on the same page). Committed together, a batch writes those pages and
the WAL header once instead of once per request. The promise of the README holds per request: a request's answer
is sent only after the commit that holds its rows (``wait``), and if that commit fails the request fails with
``wst:RequestFailed`` and hands out nothing. A failed batch is retried one request at a time, so one bad row
fails only its own request. A request's claims (its nonce, ``sts.store.prepared.claim``) come first among its
rows; one that finds its key held fails the batch the same way, and then only its own request, which is told so
(``claim_taken``) and runs again.

Runs on the event loop only (``sts.store.prepared.request_scope`` hands over the rows of requests run inline there;
requests run in a worker thread commit their own). The loop keeps one pooled connection for its inline requests
and the commits: they run one at a time.

On SQLite the loop's commits leave the WAL checkpoints to a thread. SQLite checkpoints in the commit that takes the
WAL past 1,000 pages: copying the pages into the database file and syncing it stalled the loop for 5-7 ms every
~80 commits, which made most of the p99. Here the loop's connection checkpoints on commit only past
:data:`LOOP_AUTOCHECKPOINT_PAGES` (so the WAL stays bounded should the thread fall behind), and every
:data:`CHECKPOINT_EVERY_COMMITS` commits a PASSIVE checkpoint (it never waits for readers or writers) runs in the
loop's executor, on a connection of its own, while the loop goes on.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from sts.offload import note_company
from sts.store.prepared import ClaimTaken, Pending, commit_together, committing_through

log = logging.getLogger(__name__)

#: The WAL size, in pages, past which a commit on the loop's connection checkpoints itself (SQLite's default: 1,000).
LOOP_AUTOCHECKPOINT_PAGES = 10_000
#: A checkpoint is started in a thread after this many of the loop's commits: with 8 requests a commit, about the
#: 1,000 pages of WAL at which SQLite would have checkpointed.
CHECKPOINT_EVERY_COMMITS = 64


class _Outcome(enum.Enum):
    COMMITTED = "committed"
    FAILED = "failed"  # the database refused or lost the rows
    CLAIM_TAKEN = "claim taken"  # a key the request claimed was held: nothing of it committed


_waiting: ContextVar[list[asyncio.Future[_Outcome]] | None] = ContextVar("sts_group_commit_waits", default=None)


class GroupCommit:
    """One per process and engine; used from the event loop's thread only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._batch: list[tuple[Pending, asyncio.Future[_Outcome]]] = []
        self._scheduled = False
        #: Transactions and requests committed, for the benchmark and the metrics.
        self.commits = 0
        self.requests = 0
        self._sqlite = engine.dialect.name == "sqlite"
        #: The checkpoint running in a thread, if any; and how many have run.
        self._checkpointing: asyncio.Future[None] | None = None
        self.checkpoints = 0

    def connection(self) -> Any:
        conn = self._conn
        if conn is None or not conn.is_valid:
            conn = self._conn = self.engine.raw_connection()
            if self._sqlite:
                # Its own checkpoint bound stays with it: out of the pool, so closing it closes it, and no other
                # user of the pool gets a connection that leaves its checkpoints to a thread it does not have.
                conn.detach()
                cursor = conn.cursor()
                try:
                    cursor.execute(f"PRAGMA wal_autocheckpoint={LOOP_AUTOCHECKPOINT_PAGES}")
                finally:
                    cursor.close()
        return conn

    @contextmanager
    def collecting(self, *, claims_wait: bool = True) -> Iterator[_Waiter]:
        """Around one request: its deferred writes go to this committer; ``await waiter.committed()`` after.
        ``claims_wait=False``: its claims are made at once (the run after a ``ClaimTaken``)."""
        waits: list[asyncio.Future[_Outcome]] = []
        token = _waiting.set(waits)
        try:
            with committing_through(self, claims_wait=claims_wait):
                yield _Waiter(waits)
        finally:
            _waiting.reset(token)

    def submit(self, pending: Pending) -> None:
        waits = _waiting.get()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Outcome] = loop.create_future()
        if waits is not None:
            waits.append(future)
        self._batch.append((pending, future))  # the scope handed over its list and took a new one
        if not self._scheduled:
            self._scheduled = True
            # After the callbacks already due and one more look at the sockets: requests ready in this iteration,
            # and those whose bytes arrived while it ran, join the batch.
            loop.call_soon(loop.call_soon, self._flush)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _flush(self) -> None:
        batch, self._batch, self._scheduled = self._batch, [], False
        if not batch:
            return
        if len(batch) == 1:
            self._commit_one(*batch[0])
            return
        try:
            commit_together(self.engine, self.connection(), [write for pending, _ in batch for write in pending])
        except (DBAPIError, ClaimTaken):
            for pending, future in batch:  # one at a time: only the request whose rows fail is failed
                self._commit_one(pending, future)
            return
        self._committed(len(batch))
        for _, future in batch:
            self._settle(future, _Outcome.COMMITTED)

    def _commit_one(self, pending: Pending, future: asyncio.Future[_Outcome]) -> None:
        try:
            commit_together(self.engine, self.connection(), pending)
        except ClaimTaken:
            self._settle(future, _Outcome.CLAIM_TAKEN)
            return
        except DBAPIError as exc:
            log.error("could not record a request's writes: %s", exc.orig)
            self._settle(future, _Outcome.FAILED)
            return
        self._committed(1)
        self._settle(future, _Outcome.COMMITTED)

    def _committed(self, requests: int) -> None:
        self.commits += 1
        self.requests += requests
        note_company(requests)
        running = self._checkpointing
        if self._sqlite and self.commits % CHECKPOINT_EVERY_COMMITS == 0 and (running is None or running.done()):
            self._checkpointing = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
            self._checkpointing.add_done_callback(self._checkpointed)

    async def checkpointed(self) -> None:
        """Once the checkpoint running in a thread (if any) has finished."""
        running = self._checkpointing
        if running is not None:
            await asyncio.wait([running])

    def _checkpoint(self) -> None:
        """In a thread: the WAL's committed pages into the database file, as far as no reader still needs them."""
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                cursor.close()
        finally:
            conn.close()

    def _checkpointed(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if future.cancelled():
            return
        if future.exception() is not None:  # the next one tries again; past the bound the loop's commits do it
            log.warning("WAL checkpoint failed: %s", future.exception())
            return
        self.checkpoints += 1

    @staticmethod
    def _settle(future: asyncio.Future[_Outcome], outcome: _Outcome) -> None:
        if not future.done():
            future.set_result(outcome)


class _Waiter:
    __slots__ = ("_waits", "claim_taken")

    def __init__(self, waits: list[asyncio.Future[_Outcome]]) -> None:
        self._waits = waits
        #: After ``committed()``: a key the request claimed was held, so nothing of it was committed.
        self.claim_taken = False

    async def committed(self) -> bool:
        """True when every write the request deferred is committed (at once when it deferred none)."""
        ok = True
        for future in self._waits:
            outcome = await future
            ok = outcome is _Outcome.COMMITTED and ok
            self.claim_taken = self.claim_taken or outcome is _Outcome.CLAIM_TAKEN
        return ok


__all__ = ["GroupCommit"]
