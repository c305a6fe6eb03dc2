"""The brute-force throttle's shared state: failed password checks per user name and per client address.

One row per (scope, key) in ``auth_failures``, so every worker process and every node sharing the database
sees the same counts (implements ``sts.interfaces.ThrottleStore``; the rule itself is ``sts.service.throttle``).

* ``counts``: ONE primary-key read for both keys, run before every password check; a row whose last failure is
  older than the window counts as zero (it is stale, and is overwritten or purged later);
* ``failed``: one write transaction per failure, both rows upserted (``INSERT ... ON CONFLICT DO UPDATE`` on
  SQLite and PostgreSQL), a stale row restarting at 1; now and then the stale rows are deleted;
* ``reset`` (the user's row: one DELETE) and ``forgive`` (one failure off the address's row: one UPDATE), only
  after a success that followed failures (the caller knows from ``counts``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (Connection, Engine, Integer, and_, bindparam, case, delete, insert, literal_column, or_,
                        select, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from sts.store.prepared import Prepared, fetch, write
from sts.store.schema import auth_failures as table
from sts.store.transactions import writing

USER = "user"
ADDRESS = "address"

_SINCE = bindparam("since", type_=table.c.last_failure.type)
_NOW = bindparam("now", type_=table.c.last_failure.type)
_COUNTS = Prepared(
    select(table.c.scope, table.c.failures).where(
        or_(
            and_(table.c.scope == bindparam("user_scope"), table.c.key == bindparam("user")),
            and_(table.c.scope == bindparam("address_scope"), table.c.key == bindparam("address")),
        ),
        table.c.last_failure > _SINCE,
    )
)
_RESET = Prepared(delete(table).where(table.c.scope == bindparam("scope"), table.c.key == bindparam("key")))
# Inline constants: a prepared statement takes only named parameters.
_ZERO, _ONE = literal_column("0", Integer), literal_column("1", Integer)
_FORGIVE = Prepared(
    update(table)
    .where(table.c.scope == bindparam("scope"), table.c.key == bindparam("key"), table.c.failures > _ZERO)
    .values(failures=table.c.failures - _ONE)
)

# Bind names differ from the columns: SQLAlchemy reserves column names in INSERT/UPDATE values.
_ROW = {"scope": bindparam("s"), "key": bindparam("k"), "failures": 1,
        "first_failure": _NOW, "last_failure": _NOW}
_LIVE = table.c.last_failure > _SINCE


def _upsert(stmt: sqlite.Insert | postgresql.Insert) -> Any:
    stmt = stmt.values(_ROW)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.key],
        set_={
            # A stale series (no failure within the window) starts again at 1.
            "failures": case((_LIVE, table.c.failures + 1), else_=1),
            "first_failure": case((_LIVE, table.c.first_failure), else_=stmt.excluded.first_failure),
            "last_failure": stmt.excluded.last_failure,
        },
    )


_UPSERTS = {"sqlite": _upsert(sqlite.insert(table)), "postgresql": _upsert(postgresql.insert(table))}
_UPDATE = update(table).where(table.c.scope == bindparam("s"), table.c.key == bindparam("k")).values(
    failures=case((_LIVE, table.c.failures + 1), else_=1),
    first_failure=case((_LIVE, table.c.first_failure), else_=_NOW),
    last_failure=_NOW,
)
_INSERT = insert(table).values(_ROW)


class SqlThrottleStore:
    """Failure counts in ``auth_failures``; keys are chosen by the caller (``sts.service.throttle``)."""

    def __init__(self, engine: Engine, purge_every: int = 200) -> None:
        self._engine = engine
        self._purge_every = purge_every
        self._failures = 0
        self._lock = threading.Lock()
        self._upsert = _UPSERTS.get(engine.dialect.name)

    def counts(self, user: str, address: str, since: datetime) -> tuple[int, int]:
        """(failures of ``user``, failures from ``address``) whose series had a failure after ``since``."""
        values = {"user_scope": USER, "user": user, "address_scope": ADDRESS, "address": address, "since": since}
        rows = fetch(self._engine, _COUNTS, values)
        found = {str(scope): int(failures) for scope, failures in rows}
        return found.get(USER, 0), found.get(ADDRESS, 0)

    def failed(self, user: str, address: str, now: datetime, since: datetime) -> None:
        """Count one failure for ``user`` and for ``address`` (an empty address is not counted)."""
        rows = [{"s": USER, "k": user, "now": now, "since": since}]
        if address:
            rows.append({"s": ADDRESS, "k": address, "now": now, "since": since})
        with writing(self._engine) as conn:
            for row in rows:
                self._count(conn, row)
        if self._due_for_purge():
            # A transaction of its own: deleting many rows while holding this failure's would let two nodes
            # wait on each other's rows (PostgreSQL locks rows, not the database).
            with writing(self._engine) as conn:
                conn.execute(delete(table).where(table.c.last_failure <= since))

    def reset(self, user: str) -> None:
        """Forget the user's failures (a correct password)."""
        write(self._engine, _RESET, {"scope": USER, "key": user})

    def forgive(self, address: str) -> None:
        """Take one failure off the address's count (a correct password from it)."""
        write(self._engine, _FORGIVE, {"scope": ADDRESS, "key": address})

    def _count(self, conn: Connection, row: Mapping[str, object]) -> None:
        if self._upsert is not None:
            conn.execute(self._upsert, row)
            return
        # Portable form: the write transaction serialises it on SQLite; elsewhere a racing INSERT loses and
        # its UPDATE is retried once.
        if conn.execute(_UPDATE, row).rowcount:
            return
        try:
            with conn.begin_nested():
                conn.execute(_INSERT, row)
        except IntegrityError:
            conn.execute(_UPDATE, row)

    def _due_for_purge(self) -> bool:
        with self._lock:
            self._failures += 1
            return self._failures % self._purge_every == 0
