"""Fixtures for the admin core's tests: a real SQLite database in tmp_path, the real audit trail, a fixed clock.

No HTTP and no CLI: the operations are called as the front-ends call them, with an AdminContext and an Actor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from sts.admin.base import Actor, AdminContext
from sts.config import Settings
from sts.home import open_stores
from sts.store.audit import AuditRecord, AuditTrail
from sts.store.database import Database
from sts.xmltime import utcnow


@pytest.fixture
def now() -> datetime:
    """The fixed instant the context's clock answers (the real time at the start of the test, so certificates
    made "now" by the tests are valid at it)."""
    return utcnow().replace(microsecond=0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A home of its own: SQLite in tmp_path, a cheap password hash, the secrets key the store needs."""
    home = tmp_path / "home"
    home.mkdir()
    result = Settings(home=home, password_hash_n=16)
    result.secrets_key_path.parent.mkdir(parents=True, exist_ok=True)
    result.secrets_key_path.write_bytes(os.urandom(32))
    return result


@pytest.fixture
def stores(settings: Settings) -> Iterator[Database]:
    database = open_stores(settings)
    yield database
    database.close()


@pytest.fixture
def trail(stores: Database, now: datetime) -> AuditTrail:
    """The real audit trail on the test's database (what the operations write, read back with ``search``)."""
    return AuditTrail(stores.engine, lambda: now)


@pytest.fixture
def ctx(stores: Database, trail: AuditTrail, settings: Settings, now: datetime) -> AdminContext:
    return AdminContext(stores=stores, audit=trail, settings=settings, clock=lambda: now)


@pytest.fixture
def actor() -> Actor:
    return Actor.console("root")


@pytest.fixture
def last_audit(trail: AuditTrail) -> Callable[[str], AuditRecord]:
    """``last_audit(event)``: the newest audit entry of ``event`` (fails the test when there is none)."""

    def find(event: str) -> AuditRecord:
        records = trail.search(event=event, limit=1)
        assert records, f"no audit entry {event}"
        return records[0]

    return find
