"""The PostgreSQL engine: psycopg 3 under SQLAlchemy's pool, every wait bounded by ``database_timeout_seconds``.

A farm's nodes share one server, so an unreachable or stuck server must fail a request quickly
(``wst:RequestFailed``), never hang it. Four bounds, all derived from the one setting:

* connecting (``connect_timeout``): a server that is down, or up but not answering, fails the checkout;
* on the server, ``statement_timeout`` and ``lock_timeout``: a slow statement, or one waiting on another node's
  row lock, is cancelled by the server itself, and the connection stays usable;
* on the client, every wait for the server's answer (``_BoundedConnection.wait``), a little longer than the
  server's own bound: a server that no longer answers at all (frozen, or cut off without a TCP reset) cannot
  hold a request; the connection is closed, so the pool discards it and reconnects later;
* waiting for a free pooled connection (``pool_timeout``).

And after the server failed to answer (a refused or timed-out connection, a wait that expired), new connections
fail at once for ``BREAKER_SECONDS`` (``_Breaker``): one request pays the timeout, the others in that moment (and
the same request's closing audit write) do not pay it again, each.

``pool_pre_ping`` checks a pooled connection before use: after a server restart, the dead connections are
replaced on checkout instead of failing requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL

from sts.store.json_codec import ENGINE_OPTIONS

#: The client waits this much longer than the server's statement_timeout, so that a live server's own,
#: clean cancellation (the connection survives) comes first.
CLIENT_MARGIN_SECONDS = 0.25
#: How long new connections fail at once after the server failed to answer.
BREAKER_SECONDS = 1.0
#: A transaction left open by a node that froze mid-request holds its row locks until the server ends it.
IDLE_IN_TRANSACTION_SECONDS = 60
DRIVER = "postgresql+psycopg"


def is_postgres(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


def with_driver(url: URL) -> URL:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's own default would be psycopg2, not installed)."""
    return url.set(drivername=DRIVER) if url.drivername == "postgresql" else url


def create_postgres_engine(url: URL, pool_size: int, timeout_seconds: float) -> Engine:
    """An engine for ``url`` whose every wait on the server is bounded (see the module's docstring)."""
    milliseconds = max(1, int(timeout_seconds * 1000))
    server_bounds = (f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
                     f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_SECONDS * 1000}")
    options = str(url.query.get("options", ""))
    connect_args: dict[str, Any] = {
        # libpq takes whole seconds (and psycopg treats less than 2 as 2).
        "connect_timeout": max(1, math.ceil(timeout_seconds)),
        # A URL's own options come last: an operator's explicit choice wins.
        "options": f"{server_bounds} {options}".strip(),
    }
    engine = create_engine(
        with_driver(url),
        pool_size=pool_size,
        max_overflow=pool_size,  # bursts may double it; bounded, so max_connections can be sized per node
        pool_timeout=timeout_seconds,
        pool_pre_ping=True,
        connect_args=connect_args,
        **ENGINE_OPTIONS,
    )
    client_bound = timeout_seconds + CLIENT_MARGIN_SECONDS
    breaker = _Breaker(BREAKER_SECONDS)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        breaker.check()
        try:
            connection = _BoundedConnection.connect(*cargs, **cparams)
        except psycopg.OperationalError as exc:
            breaker.trip(exc)
            raise
        connection.io_timeout = client_bound
        connection.breaker = breaker
        return connection

    return engine


class _Breaker:
    """Fails new connections at once for ``pause`` seconds after the server last failed to answer."""

    def __init__(self, pause: float) -> None:
        self._pause = pause
        self._until = 0.0
        self._reason = ""

    def trip(self, reason: BaseException) -> None:
        self._reason = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        self._until = time.monotonic() + self._pause

    def check(self) -> None:
        if time.monotonic() < self._until:
            raise psycopg.OperationalError(
                f"not connecting for {self._pause} s after the database server failed: {self._reason}")


class _BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that gives up on a server that does not answer within ``io_timeout`` seconds."""

    io_timeout: float | None = None
    breaker: _Breaker | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        # Every exchange with the server (execute, fetch, commit, rollback) goes through here.
        try:
            return super().wait(gen, interval, self.io_timeout if timeout is None else timeout)
        except pg_errors._WaitTimeout:  # noqa: SLF001 - psycopg's own signal that the bound expired
            # Mid-exchange the protocol state is unknown: the connection is never used again (closed, the pool's
            # disconnect check sees it and discards it).
            self.pgconn.finish()
            error = psycopg.OperationalError(f"the database server did not answer within {self.io_timeout} s")
            if self.breaker is not None:
                self.breaker.trip(error)
            raise error from None


@contextmanager
def without_bounds(conn: Connection) -> Iterator[None]:
    """Lift the timeouts for the rest of ``conn``'s transaction: a migration may rewrite a large table, and a node
    starting beside a migrating one waits for its lock. Only ``sts db upgrade`` and a node's start migrate."""
    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
    conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, _BoundedConnection):
        yield
        return
    bound, raw.io_timeout = raw.io_timeout, None
    try:
        yield
    finally:
        raw.io_timeout = bound
