"""The one SQL schema of the STS (SQLAlchemy Core) and its versioned migrations.

Portable by construction: only generic types and constraints, so the same tables live in SQLite (embedded
default) and PostgreSQL (shared by several STS nodes). Timestamps go through ``UtcDateTime``: always
timezone-aware UTC in Python, naive UTC text in SQLite (which has no time zone type).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    insert,
    inspect,
    select,
    update,
)

from sts.store.prepared import Prepared, fetch, once_per_request
from sts.store.transactions import writing

CONFIG_VERSION = "config_version"
_MIGRATION_LOCK_ID = 0x5354_5301  # any constant unique to this application
URI = String(2048)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; naive values are refused rather than guessed at."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware values")
        value = value.astimezone(UTC)
        # SQLite stores text; naive UTC keeps every value in one format, so string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # process_bind_param plus SQLite's DATETIME text in one step: the same text, one C call instead of a
        # %-format over eight fields (each Issue writes six datetimes).
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is UTC:  # the usual case: the text less its "+00:00", without two conversions
                return value.isoformat(" ", "microseconds")[:-6]
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware values")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("digest_secret", LargeBinary, nullable=True),  # SecretBox-sealed, never plain text
    Column("disabled", Boolean, nullable=False, default=False),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created", UtcDateTime, nullable=False),
    # Version 4: the admin_password_min_length in force when the password was set (NULL: set before that was
    # recorded), so that `sts check-config` can name administrators whose password predates the policy.
    Column("password_policy_length", Integer, nullable=True),
)

user_claims = Table(
    "user_claims",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("uri", URI, nullable=False),
    Column("value", Text, nullable=False),
)

relying_parties = Table(
    "relying_parties",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", URI, nullable=False, unique=True),
    # The normalised endpoint: keeps "https://rp/x" and "HTTPS://rp/x/" from both being registered.
    Column("match_key", URI, nullable=False, unique=True),
    Column("match_prefix", Boolean, nullable=False, default=False),
    Column("cert_pem", Text, nullable=True),
    Column("token_type", String(255), nullable=False),
    Column("required_claims", JSON, nullable=False),
    Column("permitted_claims", JSON, nullable=False),
    Column("encrypt", Boolean, nullable=False),
    Column("default_lifetime_s", Integer, nullable=False),
    Column("max_lifetime_s", Integer, nullable=False),
    Column("refuse_long_lifetime", Boolean, nullable=False),
    Column("name_id_claim", URI, nullable=True),
    Column("signature_algorithm", String(255), nullable=False),
    Column("data_encryption", String(255), nullable=False),
    Column("key_transport", String(255), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    # Policy added in schema version 3 (NULL in rows from before: no restriction, no extra audience).
    Column("allowed_token_types", JSON, nullable=True),
    Column("allowed_key_types", JSON, nullable=True),
    Column("additional_audiences", JSON, nullable=True),
    Column("next_cert_pem", Text, nullable=True),
    Column("next_cert_from", UtcDateTime, nullable=True),
)

# Clients that authenticate by signing their requests with a registered X.509 certificate (issue 3, item 6).
# A client is a principal like a user: its name is the token subject and it has claims. The certificate is
# found by any of the ways a WS-Security KeyInfo names it, each through an index.
clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("cert_pem", Text, nullable=False),
    Column("fingerprint_sha256", String(64), nullable=False, unique=True),  # hex of SHA-256(DER)
    Column("thumbprint_sha1", String(40), nullable=False, index=True),  # WSS 1.1 ThumbprintSHA1
    Column("ski", String(128), nullable=False, index=True),  # hex SubjectKeyIdentifier
    Column("issuer", String(1024), nullable=False),  # RFC 4514
    Column("serial", String(64), nullable=False, index=True),  # decimal
    Column("not_after", UtcDateTime, nullable=False),
    Column("allow_sha1", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", UtcDateTime, nullable=False),
)

client_claims = Table(
    "client_claims",
    metadata,
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("uri", URI, nullable=False),
    Column("value", Text, nullable=False),
)

nonces = Table(
    "nonces",
    metadata,
    # The primary key is what makes replay detection hold across every worker process and node.
    Column("key", LargeBinary, primary_key=True),
    Column("expires", UtcDateTime, nullable=False, index=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(255), primary_key=True),
    Column("token_type", String(255), nullable=False),
    Column("subject", String(255), nullable=False, index=True),
    Column("applies_to", URI, nullable=False, index=True),
    Column("issued", UtcDateTime, nullable=False, index=True),
    Column("expires", UtcDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    Column("renewal_count", Integer, nullable=False, default=0),
    Column("token_hash", String(255), nullable=False, default=""),
    Column("requester", String(255), nullable=False, default=""),
    Column("details", JSON, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("subject", String(255), nullable=True),
    Column("detail", JSON, nullable=False),
    # Version 3: who acted and how it ended ("ok" or a fault code); NULL in entries from before.
    Column("actor", String(255), nullable=True, index=True),
    Column("outcome", String(64), nullable=True),
)

# Version 4: failed password checks per user name and per client address, shared by every worker and node, so
# that the growing delay before the next check (never a lock-out) holds whichever process answers.
auth_failures = Table(
    "auth_failures",
    metadata,
    Column("scope", String(16), primary_key=True),  # "user" or "address"
    Column("key", String(255), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_failure", UtcDateTime, nullable=False),
    Column("last_failure", UtcDateTime, nullable=False, index=True),
)

# Version 5: the signing keys and the secrets key shared by every node (key_source "database" or "pkcs11"): private
# material sealed under the environment's key-encryption key (AES-256-GCM, the row bound as associated data), or
# a reference to an HSM key; the rollover schedule every node follows (sts.tokens.key_store).
key_material = Table(
    "key_material",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "signing" or "secret"
    Column("active_from", UtcDateTime, nullable=True),
    Column("retire_after", UtcDateTime, nullable=True),
    Column("certificate", Text, nullable=True),  # PEM, signing keys only
    Column("sealed", LargeBinary, nullable=True),  # nonce || AES-GCM ciphertext; NULL for an HSM key
    Column("hsm_label", String(255), nullable=True),  # the PKCS#11 key pair's label, for an HSM key
    Column("kek_id", String(64), nullable=True),  # which key-encryption key sealed it
    Column("created", UtcDateTime, nullable=False),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

# Named counters; the CONFIG_VERSION row is bumped with every relying-party and user change so that the caches in
# each worker process (and on each node) can tell, with one primary-key read per request, that they are stale.
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

Index("ix_tokens_status_issued", tokens.c.status, tokens.c.issued)


@dataclass(frozen=True)
class Migration:
    """One step from ``version - 1`` to ``version``; it runs inside the migrating transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _baseline(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
    conn.execute(insert(counters).values(name=CONFIG_VERSION, value=0))


def _add_clients(conn: Connection) -> None:
    for table in (clients, client_claims):
        table.create(conn, checkfirst=True)


def _add_columns(conn: Connection, table: Table, names: Sequence[str]) -> None:
    """ALTER TABLE ... ADD COLUMN for each of ``names`` the table lacks (a fresh baseline already has them)."""
    present = {column["name"] for column in inspect(conn).get_columns(table.name)}
    preparer = conn.dialect.identifier_preparer
    for name in names:
        if name in present:
            continue
        column = table.c[name]
        sql_type = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.format_column(column)} {sql_type}"
        )


def _console_backend(conn: Connection) -> None:
    _add_columns(conn, relying_parties, ("allowed_token_types", "allowed_key_types", "additional_audiences",
                                         "next_cert_pem", "next_cert_from"))
    _add_columns(conn, audit_log, ("actor", "outcome"))
    indexes = {ix["name"] for ix in inspect(conn).get_indexes(audit_log.name)}
    for index in audit_log.indexes:
        if index.name not in indexes:
            index.create(conn)


def _hardening(conn: Connection) -> None:
    auth_failures.create(conn, checkfirst=True)
    _add_columns(conn, users, ("password_policy_length",))


# Append new steps here (ALTER TABLE via Core DDL, data fixes) and change the Tables above to match.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: every table", _baseline),
    Migration(2, "clients and client_claims: X.509 client authentication", _add_clients),
    Migration(3, "relying-party policy (token/key types, audiences, next certificate); audit actor and outcome",
              _console_backend),
    Migration(4, "auth_failures: the shared brute-force throttle; users.password_policy_length", _hardening),
    Migration(5, "key_material: signing keys and secrets shared by the nodes", lambda conn: key_material.create(
        conn, checkfirst=True)),
)


def current_version(conn: Connection) -> int:
    """The recorded schema version; 0 for an empty database."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return conn.execute(select(schema_version.c.version)).scalar_one_or_none() or 0


def migrate(engine: Engine, steps: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database to the newest version; a no-op when it is current. Returns the version."""
    latest = steps[-1].version if steps else 0
    # The write lock is taken up front, so two workers starting together migrate one after the other.
    with writing(engine) as conn, ExitStack() as stack:
        if conn.dialect.name == "postgresql":
            from sts.store.postgres import without_bounds  # noqa: PLC0415 - psycopg only for PostgreSQL

            # A migration may take longer than database_timeout_seconds, and so may waiting for another node's.
            stack.enter_context(without_bounds(conn))
            # PostgreSQL has no database-wide write lock; this transaction-scoped lock serialises the nodes.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
        version = current_version(conn)
        if version > latest:
            raise RuntimeError(f"database schema version {version} is newer than this STS ({latest})")
        if version == 0 and steps:
            # A fresh database gets the current tables at once: the Tables above are the newest shape,
            # so the later steps (written against older shapes) must not run on it.
            steps[0].apply(conn)
            _record(conn, 0, latest)
            return latest
        for step in steps:
            if step.version > version:
                step.apply(conn)
                _record(conn, version, step.version)
                version = step.version
        return version


def _record(conn: Connection, old: int, new: int) -> None:
    if old == 0:
        conn.execute(insert(schema_version).values(version=new))
    else:
        conn.execute(update(schema_version).values(version=new))


def bump_config_version(conn: Connection) -> None:
    """Mark relying parties or users changed (call inside the changing transaction)."""
    conn.execute(
        update(counters).where(counters.c.name == CONFIG_VERSION).values(value=counters.c.value + 1)
    )


def read_config_version(conn: Connection) -> int:
    return int(conn.execute(select(counters.c.value).where(counters.c.name == CONFIG_VERSION)).scalar_one())




_CONFIG_VERSION_NOW = Prepared(select(counters.c.value).where(counters.c.name == bindparam("name")))


def config_version_now(engine: Engine) -> int:
    """The configuration version, read once per request (``sts.store.prepared.request_scope``): every cache
    consulted by one request checks itself against the same reading. Outside a request scope, read on each call."""
    return once_per_request(engine, CONFIG_VERSION, lambda: _read_now(engine))


def _read_now(engine: Engine) -> int:
    return int(fetch(engine, _CONFIG_VERSION_NOW, {"name": CONFIG_VERSION})[0][0])
