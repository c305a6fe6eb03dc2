"""The same versioned migrations on PostgreSQL: a fresh database, a version-1 database brought up step by step,
two nodes starting at once, and the column types PostgreSQL gets (time zones, JSON, binary)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Connection, inspect, select, text

from servers.postgres import PostgresServer
from sts.store import schema
from sts.store.database import create_database_engine, open_database
from sts.store.schema import MIGRATIONS, migrate
from sts.store.transactions import reading

LATEST = MIGRATIONS[-1].version
#: What each migration after the baseline added: tables, and (table, column) pairs.
LATER_TABLES = ("clients", "client_claims", "auth_failures", "key_material")
LATER_COLUMNS = (
    ("relying_parties", "allowed_token_types"), ("relying_parties", "allowed_key_types"),
    ("relying_parties", "additional_audiences"), ("relying_parties", "next_cert_pem"),
    ("relying_parties", "next_cert_from"), ("audit_log", "actor"), ("audit_log", "outcome"),
    ("users", "password_policy_length"),
)


def _version(url: str) -> int:
    engine = create_database_engine(url)
    try:
        with reading(engine) as conn:
            return schema.current_version(conn)
    finally:
        engine.dispose()


def test_a_fresh_database_gets_every_table_with_postgresql_types(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_url()
    database = open_database(url)
    try:
        inspector = inspect(database.engine)
        assert set(inspector.get_table_names()) == set(schema.metadata.tables)
        columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("tokens")}
        assert columns["issued"] == "TIMESTAMP" and columns["details"] == "JSON"
        with reading(database.engine) as conn:
            zone = conn.execute(text(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'tokens' AND column_name = 'issued'"
            )).scalar_one()
            key_type = conn.execute(text(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'nonces' AND column_name = 'key'"
            )).scalar_one()
        assert zone == "timestamp with time zone" and key_type == "bytea"
        assert migrate(database.engine) == LATEST  # a second run changes nothing
    finally:
        database.close()
    assert _version(url) == LATEST


def test_datetimes_come_back_aware_and_in_utc(postgres_server: PostgresServer) -> None:
    database = open_database(postgres_server.fresh_url())
    try:
        database.audit("test", "subject", {"n": 1})
        with database.engine.connect() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'America/New_York'")  # a session zone must not leak into values
            at = conn.execute(select(schema.audit_log.c.at)).scalar_one()
        assert at.tzinfo is UTC and abs((datetime.now(UTC) - at).total_seconds()) < 60
    finally:
        database.close()


def _version_1(conn: Connection) -> None:
    """The shape of a version-1 database: the current tables without what versions 2 to 5 added."""
    for table in schema.metadata.sorted_tables:
        if table.name not in LATER_TABLES:
            table.create(conn)
    for table, column in LATER_COLUMNS:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    conn.execute(schema.counters.insert().values(name=schema.CONFIG_VERSION, value=0))


def test_a_version_1_database_is_migrated_step_by_step(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_url()
    engine = create_database_engine(url)
    try:
        assert migrate(engine, (schema.Migration(1, "old baseline", _version_1),)) == 1
        assert not set(LATER_TABLES) & set(inspect(engine).get_table_names())
        assert migrate(engine) == LATEST
        inspector = inspect(engine)
        assert set(LATER_TABLES) <= set(inspector.get_table_names())
        for table, column in LATER_COLUMNS:
            assert column in {c["name"] for c in inspector.get_columns(table)}, (table, column)
        assert "ix_audit_log_actor" in {ix["name"] for ix in inspector.get_indexes("audit_log")}
    finally:
        engine.dispose()
    database = open_database(url)  # and the stores work on the migrated tables
    try:
        database.users.add("alice", "pw", [("urn:claim", "v")])
        assert database.users.get("alice") is not None
    finally:
        database.close()


def test_two_nodes_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_url()
    engines = [create_database_engine(url) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[int | BaseException] = []

    def node(index: int) -> None:
        start.wait()
        try:
            results.append(migrate(engines[index]))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert results == [LATEST, LATEST]
        with reading(engines[0]) as conn:
            assert conn.execute(select(schema.schema_version.c.version)).scalars().all() == [LATEST]
            assert conn.execute(select(schema.counters.c.value)).scalars().all() == [0]
    finally:
        for engine in engines:
            engine.dispose()


def test_a_migration_outlives_the_request_timeouts(postgres_server: PostgresServer) -> None:
    """Migrating is not bound by database_timeout_seconds (a schema change on a big table takes its time)."""
    url = postgres_server.fresh_url()
    engine = create_database_engine(url, timeout_seconds=1)

    def slow(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT pg_sleep(2.5)")

    try:
        assert migrate(engine, (*MIGRATIONS, schema.Migration(LATEST + 1, "slow", slow))) == LATEST + 1
        # ... while an ordinary statement is still bounded
        with engine.connect() as conn:
            try:
                conn.exec_driver_sql("SELECT pg_sleep(2.5)")
            except Exception as exc:  # noqa: BLE001 - which one is asserted
                assert "statement timeout" in str(exc)
            else:
                raise AssertionError("a 2.5 s statement ran under a 1 s timeout")
    finally:
        engine.dispose()
