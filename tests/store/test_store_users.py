"""SqlUserStore on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from sts.interfaces import UserDirectory
from sts.model import Claim, UserRecord
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.database import Database, open_database
from sts.store.schema import user_claims, users
from sts.store.transactions import reading, writing
from sts.store.users import SqlUserStore

EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def test_satisfies_the_protocol(db: Database) -> None:
    directory: UserDirectory = db.users
    assert directory.get("nobody") is None


def test_add_and_get_aggregates_claims_in_order(db: Database) -> None:
    db.users.add("alice", "pw", [(ROLE, "b"), (EMAIL, "a@x"), (ROLE, "a"), (ROLE, "b")], admin=True)
    assert db.users.get("alice") == UserRecord(
        "alice", (Claim(ROLE, ("b", "a")), Claim(EMAIL, ("a@x",))), disabled=False, admin=True
    )
    assert db.users.get("Alice") is None


def test_list_and_remove(db: Database) -> None:
    db.users.add("bob", "pw", [(EMAIL, "b@x")])
    db.users.add("alice", "pw")
    assert [u.name for u in db.users.list()] == ["alice", "bob"]
    assert db.users.list()[1].claims == (Claim(EMAIL, ("b@x",)),)
    assert db.users.remove("bob") is True
    assert db.users.remove("bob") is False
    assert [u.name for u in db.users.list()] == ["alice"]
    with reading(db.engine) as conn:  # claims went with the user (ON DELETE CASCADE)
        assert conn.execute(select(user_claims)).all() == []


def test_duplicate_is_refused(db: Database) -> None:
    db.users.add("alice", "pw")
    with pytest.raises(ValueError, match="user alice already exists"):
        db.users.add("alice", "other")
    assert db.users.check_password("alice", "pw")


@pytest.mark.parametrize("name", ["", "a b", "tab\there", "nl\n", "nul\x00", "nbsp\u00a0x", "zw\u200bx", "x" * 256])
def test_invalid_names_are_refused(db: Database, name: str) -> None:
    with pytest.raises(ValueError):
        db.users.add(name, "pw")


def test_check_password(db: Database) -> None:
    db.users.add("alice", "correct horse")
    assert db.users.check_password("alice", "correct horse") is True
    assert db.users.check_password("alice", "wrong") is False
    assert db.users.check_password("mallory", "correct horse") is False
    db.users.set_disabled("alice", True)
    assert db.users.check_password("alice", "correct horse") is False
    assert db.users.get("alice") == UserRecord("alice", disabled=True)
    db.users.set_disabled("alice", False)
    assert db.users.check_password("alice", "correct horse") is True


def test_unknown_user_spends_a_hash(db: Database, cheap_hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = cheap_hasher.verify

    def counting(password: str, encoded: str) -> bool:
        calls.append(password)
        return real(password, encoded)

    monkeypatch.setattr(cheap_hasher, "verify", counting)
    db.users.add("alice", "pw")
    db.users.set_disabled("alice", True)
    db.users.check_password("nobody", "x")
    db.users.check_password("alice", "y")
    assert calls == ["x", "y"]


def test_set_password_and_claims(db: Database) -> None:
    db.users.add("alice", "old", [(EMAIL, "a@x")])
    assert db.users.set_password("alice", "new") is True
    assert not db.users.check_password("alice", "old")
    assert db.users.check_password("alice", "new")
    assert db.users.digest_secret("alice") == "new"
    assert db.users.set_claims("alice", [(ROLE, "admin"), (EMAIL, "n@x")]) is True
    assert db.users.get("alice") == UserRecord("alice", (Claim(ROLE, ("admin",)), Claim(EMAIL, ("n@x",))))
    assert db.users.set_password("nobody", "x") is False
    assert db.users.set_claims("nobody", []) is False
    assert db.users.set_disabled("nobody", True) is False


def test_digest_secret_round_trip_and_never_in_plain_text(db: Database, db_url: str, tmp_path: Path) -> None:
    secret = "pl41n-Passw0rd-Marker"
    db.users.add("alice", secret)
    assert db.users.digest_secret("alice") == secret
    assert db.users.digest_secret("nobody") is None
    db.users.set_disabled("alice", True)
    assert db.users.digest_secret("alice") is None
    db.close()
    for path in tmp_path.glob("sts.db*"):  # the database and its WAL
        data = path.read_bytes()
        assert secret.encode() not in data and secret.encode("utf-16-le") not in data


def test_sealed_secret_cannot_be_moved_to_another_user(db: Database) -> None:
    db.users.add("alice", "alice-pw")
    db.users.add("mallory", "mallory-pw")
    with writing(db.engine) as conn:
        blob = conn.execute(select(users.c.digest_secret).where(users.c.name == "mallory")).scalar_one()
        conn.execute(update(users).where(users.c.name == "alice").values(digest_secret=blob))
    with pytest.raises(ValueError, match="cannot be opened"):
        db.users.digest_secret("alice")


def test_without_a_box_no_digest_secret_is_kept(db_url: str, cheap_hasher: PasswordHasher) -> None:
    database = open_database(db_url, hasher=cheap_hasher)
    database.users.add("alice", "pw")
    assert database.users.digest_secret("alice") is None
    assert database.users.check_password("alice", "pw")
    with reading(database.engine) as conn:
        assert conn.execute(select(users.c.digest_secret)).scalar_one() is None
    database.close()


def test_another_key_cannot_open_secrets(db: Database, cheap_hasher: PasswordHasher) -> None:
    db.users.add("alice", "pw")
    other = SqlUserStore(db.engine, cheap_hasher, SecretBox(b"\x01" * 32))
    with pytest.raises(ValueError):
        other.digest_secret("alice")


def test_get_with_secret_is_get_plus_digest_secret(db: Database) -> None:
    db.users.add("alice", "s3cret", [(ROLE, "b"), (EMAIL, "a@x"), (ROLE, "a")], admin=True)
    db.users.add("bob", "pw")
    for name in ("alice", "bob"):
        found = db.users.get_with_secret(name)
        assert found is not None
        assert found == (db.users.get(name), db.users.digest_secret(name))
    assert db.users.get_with_secret("alice") == (
        UserRecord("alice", (Claim(ROLE, ("b", "a")), Claim(EMAIL, ("a@x",))), admin=True), "s3cret")
    assert db.users.get_with_secret("bob") == (UserRecord("bob"), "pw")  # no claims: one row, NULL uri
    assert db.users.get_with_secret("nobody") is None
    assert db.users.get_with_secret("Alice") is None


def test_get_with_secret_sees_changes_at_once(db: Database, second_db: Database) -> None:
    db.users.add("alice", "old", [(EMAIL, "a@x")])
    assert second_db.users.get_with_secret("alice") == (UserRecord("alice", (Claim(EMAIL, ("a@x",)),)), "old")
    db.users.set_password("alice", "new")
    assert second_db.users.get_with_secret("alice") == (UserRecord("alice", (Claim(EMAIL, ("a@x",)),)), "new")
    db.users.set_disabled("alice", True)
    # A disabled user is still found (so callers can tell), but never with a secret.
    assert second_db.users.get_with_secret("alice") == (
        UserRecord("alice", (Claim(EMAIL, ("a@x",)),), disabled=True), None)
    db.users.set_disabled("alice", False)
    db.users.set_claims("alice", [])
    assert second_db.users.get_with_secret("alice") == (UserRecord("alice"), "new")
    db.users.remove("alice")
    assert second_db.users.get_with_secret("alice") is None
    assert second_db.users.get("alice") is None


def test_get_with_secret_without_a_box_or_with_a_moved_secret(
    db: Database, db_url: str, cheap_hasher: PasswordHasher
) -> None:
    db.users.add("alice", "alice-pw")
    db.users.add("mallory", "mallory-pw")
    boxless = SqlUserStore(db.engine, cheap_hasher)
    assert boxless.get_with_secret("alice") == (UserRecord("alice"), None)
    with writing(db.engine) as conn:
        blob = conn.execute(select(users.c.digest_secret).where(users.c.name == "mallory")).scalar_one()
        conn.execute(update(users).where(users.c.name == "alice").values(digest_secret=blob))
    with pytest.raises(ValueError, match="cannot be opened"):
        db.users.get_with_secret("alice")
