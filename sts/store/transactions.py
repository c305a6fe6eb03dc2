"""Transactions that behave the same on SQLite and PostgreSQL.

SQLite's Python driver opens transactions lazily and only before writes, so a read-then-write sequence is
not one snapshot and two writers can deadlock on lock upgrade. ``open_database`` therefore lets SQLAlchemy
emit BEGIN itself (see ``install_sqlite_hooks``) and ``writing`` asks for ``BEGIN IMMEDIATE``: the write lock is
taken first and other processes wait for it (busy_timeout) instead of failing midway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event

from sts.offload import heavy, note_commit

_BEGIN_OPTION = "sqlite_begin"

#: Called with the engine before ``writing`` opens a transaction. ``sts.store.prepared`` (which builds on this
#: module) adds the making of a request's waiting claims: nothing irreversible for a request whose nonce is held.
BEFORE_WRITING: list[Callable[[Engine], None]] = []


def leave_loop_for(engine: Engine) -> None:
    """Before talking to a server database on the event loop: move the request to a worker thread if it still can
    (``sts.offload.heavy``). SQLite answers from the process in microseconds and stays on the loop; a server's
    answer takes a round trip, up to ``database_timeout_seconds`` when it is slow, and must not stall the loop."""
    if engine.dialect.name != "sqlite":
        heavy()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on normal exit, rolled back on an exception."""
    leave_loop_for(engine)
    for hook in BEFORE_WRITING:
        hook(engine)
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn
        note_commit()


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: one consistent snapshot for every statement inside it."""
    leave_loop_for(engine)
    with engine.connect() as conn, conn.begin():
        yield conn


def install_sqlite_hooks(engine: Engine, pragmas: dict[str, str]) -> None:
    """Take over BEGIN from the sqlite3 driver and set ``pragmas`` on every new connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # None: the driver emits no BEGIN of its own; ours below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for name, value in pragmas.items():
                cursor.execute(f"PRAGMA {name}={value}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
