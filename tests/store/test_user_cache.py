"""The per-process user cache (sts.store.users): served from memory, never stale across processes, one statement
per request at most."""

from __future__ import annotations

from sts.model import Claim
from sts.store.database import Database
from sts.store.prepared import request_scope

EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def _count_statements(db: Database) -> list[str]:
    """Every statement run on connections checked out from now on (the prepared statements go straight to the
    DB-API cursor, so they are counted there)."""
    seen: list[str] = []
    original = db.engine.raw_connection

    def counting():  # type: ignore[no-untyped-def]
        conn = original()
        real_cursor = conn.cursor

        def cursor():  # type: ignore[no-untyped-def]
            inner = real_cursor()

            class Counting:
                def execute(self, sql, params=()):  # type: ignore[no-untyped-def]
                    seen.append(sql)
                    return inner.execute(sql, params)

                def __getattr__(self, name):  # type: ignore[no-untyped-def]
                    return getattr(inner, name)

            return Counting()

        conn.cursor = cursor
        return conn

    db.engine.raw_connection = counting  # type: ignore[method-assign]
    return seen


def test_a_request_reads_the_version_once_and_a_cached_user_not_at_all(db: Database) -> None:
    db.users.add("alice", "pw", [(EMAIL, "a@x")])
    db.users.get("alice")  # cached now, and the relying-party index built
    db.relying_parties.lookup("https://nowhere.example/")
    seen = _count_statements(db)
    with request_scope(db.engine):
        for _ in range(3):
            assert db.users.get("alice") is not None
            assert db.users.digest_secret("alice") == "pw"
            assert db.relying_parties.lookup("https://nowhere.example/") is None
    assert len(seen) == 1 and "counters" in seen[0], seen


def test_a_change_made_by_another_process_applies_to_the_next_request(db: Database, second_db: Database) -> None:
    db.users.add("alice", "pw", [(EMAIL, "a@x")])
    with request_scope(db.engine):
        assert db.users.get("alice").claims == (Claim(EMAIL, ("a@x",)),)  # type: ignore[union-attr]
    for change, check in (
        (lambda: second_db.users.set_claims("alice", [(EMAIL, "new@x")]),
         lambda r: r.claims == (Claim(EMAIL, ("new@x",)),)),
        (lambda: second_db.users.set_disabled("alice", True), lambda r: r.disabled),
        (lambda: second_db.users.set_admin("alice", True), lambda r: r.admin),
    ):
        change()
        with request_scope(db.engine):
            record = db.users.get("alice")
        assert record is not None and check(record)
    second_db.users.set_password("alice", "other")
    with request_scope(db.engine):
        assert db.users.digest_secret("alice") is None  # still disabled
    second_db.users.set_disabled("alice", False)
    with request_scope(db.engine):
        assert db.users.digest_secret("alice") == "other"
        assert db.users.check_password("alice", "other") and not db.users.check_password("alice", "pw")
    second_db.users.remove("alice")
    with request_scope(db.engine):
        assert db.users.get("alice") is None and db.users.get_with_secret("alice") is None


def test_unknown_names_are_cached_too_and_appear_when_added(db: Database, second_db: Database) -> None:
    assert db.users.get("bob") is None
    second_db.users.add("bob", "pw")
    assert db.users.get("bob") is not None


def test_the_cache_is_bounded(db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sts.store.users as users_module

    monkeypatch.setattr(users_module, "MAX_CACHED_USERS", 5)
    for i in range(20):
        db.users.get(f"user{i}")
    assert len(db.users._cache) <= 5  # noqa: SLF001 - the bound is the point
