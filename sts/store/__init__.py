"""Storage behind the Protocols of ``sts.interfaces``: SQLAlchemy Core on SQLite (default) or PostgreSQL."""

from .database import AuditEntry, Database, open_database
from .relying_parties import SqlRelyingPartyStore
from .replay import SqlReplayCache
from .schema import migrate
from .tokens import SqlTokenStore
from .users import SqlUserStore

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
