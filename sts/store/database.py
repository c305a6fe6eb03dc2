"""Opening the database: one engine per process, tuned per backend, and the stores built on it.

``open_database("sqlite:////home/me/.sts/sts.db")`` is the embedded default;
``open_database("postgresql+psycopg://user@host/sts")`` shares state between STS nodes. Nothing else differs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, insert, make_url, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from sts.interfaces import Clock
from sts.store.credential_cache import VerifiedCredentials
from sts.store.json_codec import ENGINE_OPTIONS
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.postgres import create_postgres_engine, is_postgres
from sts.store.clients import SqlClientStore
from sts.store.relying_parties import SqlRelyingPartyStore
from sts.store.replay import SqlReplayCache
from sts.store.schema import audit_log, migrate, utcnow
from sts.store.tokens import SqlTokenStore
from sts.store.transactions import install_sqlite_hooks, reading, writing
from sts.store.users import SqlUserStore

log = logging.getLogger(__name__)

# WAL lets readers proceed while one process writes; NORMAL is durable against process crashes (a power
# loss may drop the last commits); busy_timeout makes a second writer wait instead of failing at once.
SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "busy_timeout": "5000",
    "synchronous": "NORMAL",
    "foreign_keys": "ON",
}


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    event: str
    subject: str | None
    detail: dict[str, Any]


class Database:
    """The engine and every store on it; build one per process with ``open_database``."""

    def __init__(
        self,
        engine: Engine,
        hasher: PasswordHasher | None = None,
        secret_box: SecretBox | None = None,
        clock: Clock = utcnow,
        credentials: VerifiedCredentials | None = None,
    ) -> None:
        self.engine = engine
        self._clock = clock
        self.users = SqlUserStore(engine, hasher or PasswordHasher(), secret_box, credentials)
        self.relying_parties = SqlRelyingPartyStore(engine)
        self.nonces = SqlReplayCache(engine, clock)
        self.tokens = SqlTokenStore(engine)
        self.clients = SqlClientStore(engine, clock)

    def audit(self, event: str, subject: str | None = None, detail: dict[str, Any] | None = None) -> None:
        """Append one entry to the audit log (its own committed transaction)."""
        with writing(self.engine) as conn:
            conn.execute(
                insert(audit_log).values(at=self._clock(), event=event, subject=subject, detail=detail or {})
            )

    def recent_audit(self, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries first."""
        stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [AuditEntry(r.at, r.event, r.subject, dict(r.detail or {})) for r in rows]

    def health(self) -> str | None:
        """None when the database answers a cheap query; else a short public reason (the detail goes to the log,
        where an operator sees which host and why). Bounded by the engine's own timeouts (PostgreSQL)."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            log.warning("health: the database is unavailable: %s", getattr(exc, "orig", None) or exc)
            return "database unavailable"
        return None

    def close(self) -> None:
        self.engine.dispose()


def open_database(
    url: str,
    *,
    hasher: PasswordHasher | None = None,
    secret_box: SecretBox | None = None,
    clock: Clock = utcnow,
    run_migrations: bool = True,
    credentials: VerifiedCredentials | None = None,
    pool_size: int = 5,
    timeout_seconds: float = 5,
) -> Database:
    """Create the engine for ``url``, bring the schema up to date and return the stores on it.

    ``pool_size`` and ``timeout_seconds`` (``database_pool_size``, ``database_timeout_seconds``) apply to a server
    database (PostgreSQL); SQLite, a file in the process, needs neither.
    """
    engine = create_database_engine(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
    if run_migrations:
        migrate(engine)
    return Database(engine, hasher, secret_box, clock, credentials)


def create_database_engine(url: str, *, pool_size: int = 5, timeout_seconds: float = 5) -> Engine:
    parsed = make_url(url)
    if is_postgres(parsed):
        return create_postgres_engine(parsed, pool_size, timeout_seconds)
    if parsed.get_backend_name() != "sqlite":
        # pool_pre_ping: a server restart leaves dead connections in the pool; detect them before use.
        return create_engine(parsed, pool_pre_ping=True, **ENGINE_OPTIONS)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}, **ENGINE_OPTIONS}
    if _is_memory(parsed):
        # One shared connection, or every pooled connection would see its own empty database (tests only).
        kwargs["poolclass"] = StaticPool
    engine = create_engine(parsed, **kwargs)
    install_sqlite_hooks(engine, SQLITE_PRAGMAS)
    return engine


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)
