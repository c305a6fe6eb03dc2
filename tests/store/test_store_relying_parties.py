"""SqlRelyingPartyStore: registration, AppliesTo matching and the cross-process cache."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from sts.interfaces import RelyingPartyRegistry
from sts.model import RelyingParty
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.database import Database, open_database
from sts.store.relying_parties import normalize_endpoint
from sts.uris import DataEncryption, KeyTransport, SignatureAlgorithm, TokenType

FULL = RelyingParty(
    endpoint="https://full.example/app",
    cert_pem=b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    match_prefix=True,
    token_type=TokenType.SAML11,
    required_claims=("urn:c:email",),
    permitted_claims=("urn:c:email", "urn:c:role"),
    encrypt=False,
    default_lifetime=timedelta(minutes=5),
    max_lifetime=timedelta(hours=1),
    refuse_long_lifetime=True,
    name_id_claim="urn:c:email",
    signature_algorithm=SignatureAlgorithm.RSA_SHA1,
    data_encryption=DataEncryption.AES128_CBC,
    key_transport=KeyTransport.RSA_1_5,
)


def test_round_trip_every_field(db: Database) -> None:
    registry: RelyingPartyRegistry = db.relying_parties
    db.relying_parties.add(FULL)
    assert db.relying_parties.get(FULL.endpoint) == FULL
    assert db.relying_parties.list() == [FULL]
    assert registry.lookup(FULL.endpoint) == FULL


def test_duplicate_endpoint_is_refused_even_when_spelled_differently(db: Database) -> None:
    db.relying_parties.add(RelyingParty("https://rp.example/app"))
    for spelling in ("https://rp.example/app", "HTTPS://RP.example/app/", "https://rp.example:443/app"):
        with pytest.raises(ValueError, match="already exists"):
            db.relying_parties.add(RelyingParty(spelling))


@pytest.mark.parametrize("endpoint", ["", "rp.example/app", "/app", "https:///x", "urn:", "urn:x", "https://a b/", " https://a/"])
def test_invalid_endpoints_are_refused(db: Database, endpoint: str) -> None:
    with pytest.raises(ValueError):
        db.relying_parties.add(RelyingParty(endpoint))


def test_urn_endpoints(db: Database) -> None:
    db.relying_parties.add(RelyingParty("urn:federation:MicrosoftOnline"))
    assert db.relying_parties.lookup("URN:Federation:MicrosoftOnline") is not None
    assert db.relying_parties.lookup("urn:federation:microsoftonline") is None  # the NSS is case-sensitive


def test_exact_match_is_normalised(db: Database) -> None:
    db.relying_parties.add(RelyingParty("https://rp.example/app/"))
    for applies_to in ("https://rp.example/app", "https://rp.example/app/", "HTTPS://RP.EXAMPLE/app",
                       "https://rp.example:443/app"):
        assert db.relying_parties.lookup(applies_to) is not None, applies_to
    for applies_to in ("https://rp.example/App", "https://rp.example/app/sub", "http://rp.example/app",
                       "https://rp.example:8443/app", "", "not a uri"):
        assert db.relying_parties.lookup(applies_to) is None, applies_to


def test_prefix_and_longest_prefix(db: Database) -> None:
    db.relying_parties.add(RelyingParty("https://rp.example", match_prefix=True, token_type=TokenType.SAML11))
    db.relying_parties.add(RelyingParty("https://rp.example/app", match_prefix=True))
    db.relying_parties.add(RelyingParty("https://rp.example/app/exact"))

    def found(applies_to: str) -> str | None:
        rp = db.relying_parties.lookup(applies_to)
        return None if rp is None else rp.endpoint

    assert found("https://rp.example/app/exact/") == "https://rp.example/app/exact"
    assert found("https://rp.example/app/exact/deeper") == "https://rp.example/app"
    assert found("https://rp.example/app/x?y=1") == "https://rp.example/app"
    assert found("https://rp.example/app") == "https://rp.example/app"
    assert found("https://rp.example/other") == "https://rp.example"
    assert found("https://rp.example/application") == "https://rp.example"
    # Path boundaries: a prefix never reaches another host or port.
    assert found("https://rp.example.evil.test/app") is None
    assert found("https://rp.example:8443/app") is None


def test_exact_only_parties_do_not_match_as_prefix(db: Database) -> None:
    db.relying_parties.add(RelyingParty("https://rp.example/app"))
    assert db.relying_parties.lookup("https://rp.example/app/sub") is None


def test_update_and_remove(db: Database) -> None:
    db.relying_parties.add(RelyingParty("https://rp.example/app"))
    changed = RelyingParty("https://rp.example/app/", encrypt=False)
    assert db.relying_parties.update(changed) is True
    assert db.relying_parties.lookup("https://rp.example/app") == changed
    assert db.relying_parties.update(RelyingParty("https://none.example")) is False
    assert db.relying_parties.remove("https://RP.example/app") is True
    assert db.relying_parties.remove("https://rp.example/app") is False
    assert db.relying_parties.lookup("https://rp.example/app") is None
    assert db.relying_parties.list() == []


def test_a_second_worker_sees_every_change(db: Database, second_db: Database) -> None:
    other = second_db.relying_parties
    assert other.lookup("https://rp.example/app") is None  # its cache is now primed
    db.relying_parties.add(RelyingParty("https://rp.example/app"))
    assert other.lookup("https://rp.example/app") is not None
    db.relying_parties.update(RelyingParty("https://rp.example/app", encrypt=False))
    found = other.lookup("https://rp.example/app")
    assert found is not None and found.encrypt is False
    db.relying_parties.remove("https://rp.example/app")
    assert other.lookup("https://rp.example/app") is None


@pytest.mark.sqlite_only  # traced or planned by the sqlite3 driver
def test_lookups_read_only_the_version_when_nothing_changed(
    db: Database, db_url: str, cheap_hasher: PasswordHasher, box: SecretBox
) -> None:
    db.relying_parties.add(RelyingParty("https://rp.example/app"))
    # Traced in the driver: the lookup's version read runs on the DB-API connection, below the engine events.
    worker = open_database(db_url, hasher=cheap_hasher, secret_box=box, run_migrations=False)
    statements: list[str] = []
    event.listen(worker.engine, "connect", lambda dbapi_conn, _rec: dbapi_conn.set_trace_callback(statements.append))
    try:
        assert worker.relying_parties.lookup("https://rp.example/app") is not None
        assert any("relying_parties" in s for s in statements)  # the first lookup builds the index
        statements.clear()
        for _ in range(3):
            assert worker.relying_parties.lookup("https://rp.example/app") is not None
    finally:
        worker.close()
    queries = [s for s in statements if not s.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"))]
    assert len(queries) == 3 and all("counters" in q and "relying_parties" not in q for q in queries)
    assert not [s for s in statements if s.upper().startswith("BEGIN")]  # one statement, no transaction


def test_normalize_endpoint() -> None:
    assert normalize_endpoint("HTTP://Host:80/A/b/") == "http://host/A/b"
    assert normalize_endpoint("https://host/") == "https://host"
    assert normalize_endpoint("https://host/?q=1") == "https://host?q=1"
    assert normalize_endpoint("URN:NID:Specific/") == "urn:nid:Specific"
