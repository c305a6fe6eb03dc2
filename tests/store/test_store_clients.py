"""Registered clients: add/get/list/remove and every certificate lookup a KeyInfo needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import inspect

from signing import key_pem, make_client
from sts.model import Claim
from sts.store.database import Database, create_database_engine, open_database
from sts.store.schema import MIGRATIONS, migrate
from sts.protocol.wsse.build import subject_key_identifier

ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def test_add_get_list_remove(db: Database) -> None:
    _, cert, pem = make_client("svc-a")
    record = db.clients.add("svc-a", pem, [(ROLE, "reader"), (ROLE, "writer")])
    assert record.name == "svc-a" and record.certificate == cert
    got = db.clients.get("svc-a")
    assert got is not None and got.claims == (Claim(ROLE, ("reader", "writer")),) and not got.allow_sha1
    db.clients.add("svc-b", make_client("svc-b")[2], allow_sha1=True)
    assert [(c.name, c.allow_sha1) for c in db.clients.list()] == [("svc-a", False), ("svc-b", True)]
    assert db.clients.remove("svc-a") and not db.clients.remove("svc-a")
    assert db.clients.get("svc-a") is None and db.clients.by_certificate(cert) is None


def test_lookups(db: Database) -> None:
    _, cert, pem = make_client("svc")
    db.clients.add("svc", pem)
    db.clients.add("other", make_client("other")[2])
    assert db.clients.by_certificate(cert).name == "svc"  # type: ignore[union-attr]
    assert db.clients.by_thumbprint(cert.fingerprint(hashes.SHA1())).name == "svc"  # type: ignore[union-attr]
    assert db.clients.by_ski(subject_key_identifier(cert)).name == "svc"  # type: ignore[union-attr]
    serial = cert.serial_number
    assert db.clients.by_issuer_serial(cert.issuer.rfc4514_string(), serial).name == "svc"  # type: ignore[union-attr]
    assert db.clients.by_issuer_serial("O=Example\\, Inc., CN=svc", serial).name == "svc"  # type: ignore[union-attr]
    assert db.clients.by_issuer_serial("CN=someone else", serial) is None
    assert db.clients.by_issuer_serial("garbage", serial) is None
    assert db.clients.by_ski(b"\x00" * 20) is None


def test_duplicates_are_refused(db: Database) -> None:
    _, _, pem = make_client("svc")
    db.clients.add("svc", pem)
    with pytest.raises(ValueError, match="already exists"):
        db.clients.add("svc", make_client("svc")[2])
    with pytest.raises(ValueError, match="already registered for client svc"):
        db.clients.add("svc2", pem)


def test_a_client_cannot_take_a_user_name(db: Database) -> None:
    db.users.add("alice", "pw")
    with pytest.raises(ValueError, match="user named alice"):
        db.clients.add("alice", make_client("alice")[2])


def test_expired_not_yet_valid_and_private_keys_are_refused(db: Database) -> None:
    _, _, old = make_client("old", not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    with pytest.raises(ValueError, match="refused: the certificate expired"):
        db.clients.add("old", old)
    _, _, future = make_client("future", not_before=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(ValueError, match="not valid before"):
        db.clients.add("future", future)
    key, _, _ = make_client("k")
    with pytest.raises(ValueError, match="private key"):
        db.clients.add("k", key_pem(key))
    with pytest.raises(ValueError, match="whitespace"):
        db.clients.add("bad name", make_client("x")[2])


def test_disabled_flag(db: Database) -> None:
    _, cert, pem = make_client("svc")
    db.clients.add("svc", pem)
    assert db.clients.set_disabled("svc", True)
    assert db.clients.by_certificate(cert).disabled  # type: ignore[union-attr]


@pytest.mark.sqlite_only  # its "older" database is a second SQLite file (PostgreSQL: test_postgres_schema)
def test_version_1_database_gains_the_client_tables(db_url: str) -> None:
    engine = create_database_engine(db_url)
    assert migrate(engine, MIGRATIONS[:1]) == 1
    assert "clients" in inspect(engine).get_table_names()  # the baseline creates every current table ...
    engine.dispose()
    older = create_database_engine(db_url.replace("sts.db", "old.db"))
    from sts.store import schema

    def old_baseline(conn) -> None:  # ... so build a real version-1 database without them
        for table in schema.metadata.sorted_tables:
            if table.name not in ("clients", "client_claims"):
                table.create(conn, checkfirst=True)
        conn.execute(schema.counters.insert().values(name=schema.CONFIG_VERSION, value=0))

    assert migrate(older, (schema.Migration(1, "old baseline", old_baseline),)) == 1
    assert "clients" not in inspect(older).get_table_names()
    assert migrate(older) == MIGRATIONS[-1].version
    assert {"clients", "client_claims"} <= set(inspect(older).get_table_names())
    older.dispose()
    database = open_database(db_url.replace("sts.db", "old.db"))
    database.clients.add("svc", make_client("svc")[2])
    assert database.clients.get("svc") is not None
    database.close()
