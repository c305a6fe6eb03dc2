"""Recently verified PasswordText credentials (sts.store.credential_cache) and their use by the user store."""

from __future__ import annotations

from pathlib import Path

from sts.store.credential_cache import VerifiedCredentials
from sts.store.database import open_database
from sts.store.passwords import PasswordHasher, SecretBox


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(n=2**4)
        self.verifications = 0

    def verify(self, password: str, stored: str) -> bool:
        self.verifications += 1
        return super().verify(password, stored)


def _stores(tmp_path: Path, ttl: float = 60, clock=None):  # type: ignore[no-untyped-def]
    hasher = CountingHasher()
    credentials = VerifiedCredentials(ttl, clock=clock) if clock else VerifiedCredentials(ttl)
    db = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=hasher, secret_box=SecretBox(bytes(32)),
                       credentials=credentials)
    db.users.add("alice", "right")
    return db, hasher, credentials


def test_a_repeated_right_password_is_verified_once(tmp_path: Path) -> None:
    db, hasher, _ = _stores(tmp_path)
    assert all(db.users.check_password("alice", "right") for _ in range(5))
    assert hasher.verifications == 1


def test_a_wrong_password_is_never_cached(tmp_path: Path) -> None:
    db, hasher, credentials = _stores(tmp_path)
    assert not any(db.users.check_password("alice", "wrong") for _ in range(3))
    assert hasher.verifications == 3 and len(credentials) == 0


def test_a_password_change_on_another_node_ends_the_entry(tmp_path: Path) -> None:
    db, _, _ = _stores(tmp_path)
    other = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                          secret_box=SecretBox(bytes(32)))
    assert db.users.check_password("alice", "right")
    other.users.set_password("alice", "changed")
    assert not db.users.check_password("alice", "right")
    assert db.users.check_password("alice", "changed")


def test_a_disabled_user_is_refused_even_when_cached(tmp_path: Path) -> None:
    db, _, _ = _stores(tmp_path)
    assert db.users.check_password("alice", "right")
    db.users.set_disabled("alice", True)
    assert not db.users.check_password("alice", "right")


def test_entries_expire(tmp_path: Path) -> None:
    now = [1000.0]
    db, hasher, _ = _stores(tmp_path, ttl=30, clock=lambda: now[0])
    assert db.users.check_password("alice", "right")
    now[0] += 29
    assert db.users.check_password("alice", "right") and hasher.verifications == 1
    now[0] += 2
    assert db.users.check_password("alice", "right") and hasher.verifications == 2


def test_zero_seconds_switches_it_off(tmp_path: Path) -> None:
    db, hasher, credentials = _stores(tmp_path, ttl=0)
    assert db.users.check_password("alice", "right") and db.users.check_password("alice", "right")
    assert hasher.verifications == 2 and not credentials.enabled and len(credentials) == 0


def test_keys_are_hmacs_that_reveal_neither_name_nor_password() -> None:
    cache = VerifiedCredentials(60)
    cache.remember("alice", "s3cret-pass", "stored-hash")
    (key, (_, stored)), = cache._entries.items()  # noqa: SLF001 - what is kept in memory is the point
    assert len(key) == 32 and b"alice" not in key and b"s3cret" not in key and stored == "stored-hash"
    # The same pair under another process's secret is another key; a shifted split of the same bytes too.
    assert VerifiedCredentials(60)._key("alice", "s3cret-pass") != key  # noqa: SLF001
    assert cache._key("alices", "3cret-pass") != key  # noqa: SLF001
    assert cache.matches("alice", "s3cret-pass", "stored-hash")
    assert not cache.matches("alice", "s3cret-pass", "another-hash")


def test_bounded() -> None:
    cache = VerifiedCredentials(60, max_entries=3)
    for i in range(10):
        cache.remember(f"u{i}", "p", "h")
    assert len(cache) == 3 and cache.matches("u9", "p", "h") and not cache.matches("u0", "p", "h")
