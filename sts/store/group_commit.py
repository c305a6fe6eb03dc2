"""Group commit: the deferred writes of the requests that finished in one event-loop iteration, in one transaction.

Every Issue appends two rows (the token, the audit entry) whose B-tree pages mostly coincide with the previous
request's (the time-ordered indexes end on the same page). Committed together, a batch writes those pages and
the WAL header once instead of once per request. The promise of the README holds per request: a request's answer
is sent only after the commit that holds its rows (``wait``), and if that commit fails the request fails with
``wst:RequestFailed`` and hands out nothing. A failed batch is retried one request at a time, so one bad row
fails only its own request.

Runs on the event loop only (``sts.store.prepared.request_scope`` hands over the rows of requests run inline there;
requests run in a worker thread commit their own). The loop keeps one pooled connection for its inline requests
and the commits: they run one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from sts.store.prepared import Pending, commit_together, committing_through

log = logging.getLogger(__name__)

_waiting: ContextVar[list[asyncio.Future[bool]] | None] = ContextVar("sts_group_commit_waits", default=None)


class GroupCommit:
    """One per process and engine; used from the event loop's thread only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._batch: list[tuple[Pending, asyncio.Future[bool]]] = []
        self._scheduled = False
        #: Transactions and requests committed, for the benchmark and the metrics.
        self.commits = 0
        self.requests = 0

    def connection(self) -> Any:
        conn = self._conn
        if conn is None or not conn.is_valid:
            conn = self._conn = self.engine.raw_connection()
        return conn

    @contextmanager
    def collecting(self) -> Iterator[_Waiter]:
        """Around one request: its deferred writes go to this committer; ``await waiter.committed()`` after."""
        waits: list[asyncio.Future[bool]] = []
        token = _waiting.set(waits)
        try:
            with committing_through(self):
                yield _Waiter(waits)
        finally:
            _waiting.reset(token)

    def submit(self, pending: Pending) -> None:
        waits = _waiting.get()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if waits is not None:
            waits.append(future)
        self._batch.append((pending, future))  # the scope handed over its list and took a new one
        if not self._scheduled:
            self._scheduled = True
            # After the callbacks already due: requests ready in this iteration join the batch.
            loop.call_soon(self._flush)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _flush(self) -> None:
        batch, self._batch, self._scheduled = self._batch, [], False
        if not batch:
            return
        try:
            commit_together(self.engine, self.connection(), [write for pending, _ in batch for write in pending])
        except DBAPIError as exc:
            if len(batch) == 1:
                self._settle(batch[0][1], False, exc)
                return
            for pending, future in batch:  # one at a time: only the request whose rows fail is failed
                self._commit_one(pending, future)
            return
        self.commits += 1
        self.requests += len(batch)
        for _, future in batch:
            self._settle(future, True)

    def _commit_one(self, pending: Pending, future: asyncio.Future[bool]) -> None:
        try:
            commit_together(self.engine, self.connection(), pending)
        except DBAPIError as exc:
            self._settle(future, False, exc)
            return
        self.commits += 1
        self.requests += 1
        self._settle(future, True)

    @staticmethod
    def _settle(future: asyncio.Future[bool], ok: bool, exc: DBAPIError | None = None) -> None:
        if exc is not None:
            log.error("could not record a request's writes: %s", exc.orig)
        if not future.done():
            future.set_result(ok)


class _Waiter:
    __slots__ = ("_waits",)

    def __init__(self, waits: list[asyncio.Future[bool]]) -> None:
        self._waits = waits

    async def committed(self) -> bool:
        """True when every write the request deferred is committed (at once when it deferred none)."""
        ok = True
        for future in self._waits:
            ok = await future and ok
        return ok


__all__ = ["GroupCommit"]
