"""Storage behind the Protocols of ``sts.interfaces``: SQLAlchemy Core on SQLite (default) or PostgreSQL."""

from sts.store.database import AuditEntry, Database, open_database
from sts.store.relying_parties import SqlRelyingPartyStore
from sts.store.replay import SqlReplayCache
from sts.store.schema import migrate
from sts.store.tokens import SqlTokenStore
from sts.store.users import SqlUserStore

__all__ = [
    "AuditEntry",
    "Database",
    "SqlRelyingPartyStore",
    "SqlReplayCache",
    "SqlTokenStore",
    "SqlUserStore",
    "migrate",
    "open_database",
]
