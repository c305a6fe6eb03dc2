"""The replay cache for nonces and message ids (implements ``sts.interfaces.ReplayCache``).

WS-Security UsernameToken Profile 1.1, section 4: a receiver rejects a Nonce it has already seen within the
freshness window. The database's primary key decides which of two racing requests saw a key first, so the
answer holds across worker processes and across STS nodes sharing a PostgreSQL database.

On SQLite (3.24 or newer) and PostgreSQL the check is one atomic statement,
``INSERT ... ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE nonces.expires <= :now``:
a new key is inserted, an expired one taken over, a live one left alone (no row changed: a replay). Other
dialects keep the portable form, UPDATE of an expired row then INSERT, in one write transaction.

Each process also remembers the keys it took or saw refused (until they expire, at most :data:`RECENT_KEYS`, the
oldest forgotten first): a copy of a request this process already took is refused without a statement. That
matters since a group-committed request's claim is checked only at the commit (``sts.store.prepared.claim``),
after its token is built: without this memory a flood of copies of one captured request would cost the server a
token each.
"""

from __future__ import annotations

import threading
from itertools import islice
from datetime import datetime

from sqlalchemy import Engine, bindparam, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from sts.interfaces import Clock
from sts.store.prepared import Prepared, claim
from sts.store.schema import nonces, utcnow
from sts.store.transactions import writing

#: Keys one process remembers, at most (the oldest tenth is forgotten when full; the database still decides).
RECENT_KEYS = 20_000

# Not named after columns: SQLAlchemy reserves those names in the VALUES and SET of INSERT/UPDATE.
_KEY = bindparam("nonce", type_=nonces.c.key.type)
_UNTIL = bindparam("until", type_=nonces.c.expires.type)
_NOW = bindparam("now", type_=nonces.c.expires.type)


def _upsert(stmt: sqlite.Insert | postgresql.Insert) -> Prepared:
    stmt = stmt.values(key=_KEY, expires=_UNTIL)
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=[nonces.c.key],
            set_={"expires": stmt.excluded.expires},
            # A row whose time has passed no longer protects anything: the key may be taken again.
            where=nonces.c.expires <= _NOW,
        )
    )


_UPSERTS = {"sqlite": _upsert(sqlite.insert(nonces)), "postgresql": _upsert(postgresql.insert(nonces))}
_RECLAIM = update(nonces).where(nonces.c.key == _KEY, nonces.c.expires <= _NOW).values(expires=_UNTIL)
_INSERT = insert(nonces).values(key=_KEY, expires=_UNTIL)


def upsert_for(engine: Engine) -> Prepared | None:
    """The one-statement check for this engine's dialect, or None where only the portable form works."""
    dialect = engine.dialect
    if dialect.name == "sqlite":
        # ON CONFLICT ... DO UPDATE (the "upsert") arrived in SQLite 3.24.0.
        if tuple(dialect.loaded_dbapi.sqlite_version_info) < (3, 24, 0):
            return None
    return _UPSERTS.get(dialect.name)


class SqlReplayCache:
    """``first_seen(key, until)``: True exactly once per key until ``until`` has passed."""

    def __init__(self, engine: Engine, clock: Clock = utcnow, purge_every: int = 500) -> None:
        self._engine = engine
        self._clock = clock
        self._purge_every = purge_every
        self._inserts = 0
        self._lock = threading.Lock()
        self._upsert = upsert_for(engine)
        self._taken: dict[bytes, datetime] = {}  # key -> until, oldest first: the keys this process took or saw held

    def first_seen(self, key: bytes, until: datetime) -> bool:
        now = self._clock()
        taken_until = self._taken.get(key)
        if taken_until is not None and taken_until > now:
            return False  # this process took it: a replay, known without the database
        values = {"nonce": key, "until": until, "now": now}
        if self._upsert is not None:
            # One row changed: inserted or taken over. None: a live row holds the key, a replay. In a group-committed
            # request the upsert joins that commit (None: not known yet), which refuses the request if the key was
            # held.
            taken = claim(self._engine, self._upsert, values)
        else:
            taken = self._first_seen_portable(values)
        if taken is not None:
            # Known now, refused keys too: a flood's later copies stop here (a copy carries the same until). A claim
            # still waiting is not remembered: a request moved to a thread claims again, and must not meet itself.
            self._remember(key, until)
        first = taken is not False
        if first and self._due_for_purge():
            self.purge()
        return first

    def _remember(self, key: bytes, until: datetime) -> None:
        # Under the lock: requests run in worker threads too, and two evicting at once would delete a key twice.
        with self._lock:
            taken = self._taken
            if len(taken) >= RECENT_KEYS:
                for oldest in list(islice(taken, max(1, RECENT_KEYS // 10))):
                    del taken[oldest]
            taken[key] = until

    def _first_seen_portable(self, values: dict[str, object]) -> bool:
        try:
            with writing(self._engine) as conn:
                if not conn.execute(_RECLAIM, values).rowcount:
                    conn.execute(_INSERT, {"nonce": values["nonce"], "until": values["until"]})
        except IntegrityError:
            # Another request (maybe in another process) holds this key: a replay.
            return False
        return True

    def purge(self) -> int:
        """Delete expired keys; returns how many."""
        with writing(self._engine) as conn:
            return conn.execute(delete(nonces).where(nonces.c.expires <= self._clock())).rowcount

    def _due_for_purge(self) -> bool:
        # Purging opportunistically keeps the table small without a background task; per process is enough.
        with self._lock:
            self._inserts += 1
            return self._inserts % self._purge_every == 0
