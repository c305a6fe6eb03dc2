"""Schema, migrations and the SQLite connection settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect, select, text

from sts.store.database import Database, create_database_engine, open_database
from sts.store.schema import MIGRATIONS, Migration, current_version, migrate, nonces, schema_version
from sts.store.transactions import reading, writing


def test_migrate_is_idempotent(db_url: str) -> None:
    engine = create_database_engine(db_url)
    latest = MIGRATIONS[-1].version
    assert migrate(engine) == latest
    assert migrate(engine) == latest
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [latest]
    engine.dispose()


def test_fresh_database_has_every_table(db: Database) -> None:
    names = set(inspect(db.engine).get_table_names())
    assert {"users", "user_claims", "relying_parties", "nonces", "tokens", "audit_log",
            "schema_version", "counters"} <= names
    assert "ix_nonces_expires" in {ix["name"] for ix in inspect(db.engine).get_indexes("nonces")}


def test_later_steps_run_once_in_order(db: Database) -> None:
    applied: list[int] = []

    def make_step(version: int) -> Migration:
        def step(conn: Connection) -> None:
            applied.append(version)
            Table(f"extra_{version}", MetaData(), Column("x", Integer)).create(conn)

        return Migration(version, f"extra table {version}", step)

    latest = MIGRATIONS[-1].version
    steps = (*MIGRATIONS, make_step(latest + 1), make_step(latest + 2))
    assert migrate(db.engine, steps) == latest + 2
    assert migrate(db.engine, steps) == latest + 2
    assert applied == [latest + 1, latest + 2]
    assert {f"extra_{latest + 1}", f"extra_{latest + 2}"} <= set(inspect(db.engine).get_table_names())


def test_newer_database_is_refused(db: Database) -> None:
    with writing(db.engine) as conn:
        conn.execute(schema_version.update().values(version=99))
    with pytest.raises(RuntimeError, match="newer"):
        migrate(db.engine)


def test_sqlite_connection_settings(db: Database) -> None:
    with reading(db.engine) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert current_version(conn) == MIGRATIONS[-1].version


def test_timestamps_come_back_aware_utc(db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    until = datetime(2030, 1, 1, 12, 0, tzinfo=plus_two)
    assert db.nonces.first_seen(b"k", until)
    with reading(db.engine) as conn:
        stored = conn.execute(select(nonces.c.expires)).scalar_one()
    assert stored == until and stored.tzinfo == UTC and stored.hour == 10


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        db.nonces.first_seen(b"k", datetime(2030, 1, 1))


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(0), "Z")],
                         ids=["UTC", "+05:30", "another UTC object"])
@pytest.mark.parametrize("micro", [0, 1, 999999])
def test_every_zone_is_stored_as_the_same_utc_text(zone: timezone, micro: int) -> None:
    """The UTC fast path writes what the general path writes, so string order stays time order."""
    from sts.store.schema import UtcDateTime

    engine = create_database_engine("sqlite://")
    process = UtcDateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
    instant = datetime(2030, 1, 2, 3, 4, 5, micro, tzinfo=UTC)
    assert process(instant.astimezone(zone)) == instant.replace(tzinfo=None).isoformat(" ", "microseconds")
    engine.dispose()


def test_in_memory_url_shares_one_database() -> None:
    database = open_database("sqlite://")
    database.audit("started")
    assert [e.event for e in database.recent_audit()] == ["started"]
    database.close()


def test_audit_log_newest_first(db: Database) -> None:
    db.audit("user.add", "alice", {"admin": False})
    db.audit("rp.add", None)
    entries = db.recent_audit()
    assert [(e.event, e.subject) for e in entries] == [("rp.add", None), ("user.add", "alice")]
    assert entries[1].detail == {"admin": False}
    assert entries[0].at.tzinfo is not None


def test_reads_see_one_snapshot(db: Database, second_db: Database) -> None:
    # The driver's lazy BEGIN is replaced by ours: a read transaction does not see a later commit.
    with reading(db.engine) as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
        second_db.audit("other worker")
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == before
