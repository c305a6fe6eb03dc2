"""The replay cache for nonces and message ids (implements ``sts.interfaces.ReplayCache``).

WS-Security UsernameToken Profile 1.1, section 4: a receiver rejects a Nonce it has already seen within the
freshness window. The database's primary key decides which of two racing requests saw a key first, so the
answer holds across worker processes and across STS nodes sharing a PostgreSQL database.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from ..interfaces import Clock
from .schema import nonces, utcnow
from .transactions import writing


class SqlReplayCache:
    """``first_seen(key, until)``: True exactly once per key until ``until`` has passed."""

    def __init__(self, engine: Engine, clock: Clock = utcnow, purge_every: int = 500) -> None:
        self._engine = engine
        self._clock = clock
        self._purge_every = purge_every
        self._inserts = 0
        self._lock = threading.Lock()

    def first_seen(self, key: bytes, until: datetime) -> bool:
        now = self._clock()
        try:
            with writing(self._engine) as conn:
                # A row whose time has passed no longer protects anything: the key may be taken again.
                reclaimed = conn.execute(
                    update(nonces).where(nonces.c.key == key, nonces.c.expires <= now).values(expires=until)
                ).rowcount
                if not reclaimed:
                    conn.execute(insert(nonces).values(key=key, expires=until))
        except IntegrityError:
            # Another request (maybe in another process) holds this key: a replay.
            return False
        if self._due_for_purge():
            self.purge()
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
