"""SqlTokenStore: put/get/update/search/counts, and durability across a crash."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime, timedelta

import pytest

from sts.interfaces import TokenStore
from sts.model import TokenRecord
from sts.store.database import Database, open_database
from sts.uris import TokenType

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def record(token_id: str, *, subject: str = "alice", applies_to: str = "https://rp.example/app",
           issued: datetime = T0, status: str = "valid") -> TokenRecord:
    return TokenRecord(
        token_id=token_id,
        token_type=TokenType.SAML20,
        subject=subject,
        applies_to=applies_to,
        issued=issued,
        expires=issued + timedelta(hours=1),
        status=status,
        token_hash="sha256:abc",
        requester="10.0.0.1",
        details={"claims": ["urn:c:email"], "n": 1},
    )


def test_put_get(db: Database) -> None:
    store: TokenStore = db.tokens
    store.put(record("_a1"))
    assert store.get("_a1") == record("_a1")
    assert store.get("_missing") is None
    with pytest.raises(ValueError, match="already recorded"):
        store.put(record("_a1"))


def test_update(db: Database) -> None:
    db.tokens.put(record("_a1"))
    new_expiry = T0 + timedelta(hours=2)
    assert db.tokens.update("_a1", status="renewed", renewal_count=1, expires=new_expiry,
                            token_type=TokenType.SAML11, details={"why": "renew"})
    got = db.tokens.get("_a1")
    assert got is not None
    assert (got.status, got.renewal_count, got.expires, got.token_type, got.details) == (
        "renewed", 1, new_expiry, TokenType.SAML11, {"why": "renew"})
    assert db.tokens.update("_missing", status="cancelled") is False
    assert db.tokens.update("_a1") is True
    renaming: dict[str, object] = {"token_id": "_other"}
    with pytest.raises(TypeError):
        db.tokens.update("_a1", **renaming)
    with pytest.raises(TypeError):
        db.tokens.update("_a1", proof_key=b"secret")


def ids(records: list[TokenRecord]) -> list[str]:
    return [r.token_id for r in records]


def test_search_and_counts(db: Database) -> None:
    db.tokens.put(record("_1", issued=T0))
    db.tokens.put(record("_2", issued=T0 + timedelta(minutes=1), subject="bob"))
    db.tokens.put(record("_3", issued=T0 + timedelta(minutes=2), status="cancelled"))
    db.tokens.put(record("_4", issued=T0 + timedelta(minutes=3), applies_to="https://other.example"))
    assert ids(db.tokens.search()) == ["_4", "_3", "_2", "_1"]
    assert ids(db.tokens.search(subject="alice")) == ["_4", "_3", "_1"]
    assert ids(db.tokens.search(subject="alice", status="valid")) == ["_4", "_1"]
    assert ids(db.tokens.search(applies_to="https://other.example")) == ["_4"]
    assert ids(db.tokens.search(limit=2)) == ["_4", "_3"]
    assert db.tokens.counts_since(T0) == {"valid": 3, "cancelled": 1}
    assert db.tokens.counts_since(T0 + timedelta(minutes=2)) == {"valid": 1, "cancelled": 1}
    assert db.tokens.counts_since(T0 + timedelta(days=1)) == {}


def _put_then_die(url: str) -> None:
    database = open_database(url, run_migrations=False)
    database.tokens.put(record("_durable"))
    os._exit(3)  # no dispose, no cleanup: as abrupt as a crash gets from Python


def test_a_crash_after_commit_loses_nothing(db: Database, db_url: str) -> None:
    worker = multiprocessing.get_context("spawn").Process(target=_put_then_die, args=(db_url,))
    worker.start()
    worker.join(timeout=60)
    assert worker.exitcode == 3
    assert db.tokens.get("_durable") == record("_durable")
