"""Two STS nodes on one PostgreSQL database: each a ``Database`` of its own (its own engine, pool and caches).

A nonce is recorded once whichever node sees it (a primary key, not a read-then-write); a cancellation on one
node holds on the other at once; of two renewals of one token racing on two nodes exactly one wins; a user or
relying-party change made on one node applies to the next lookup on the other (``config_version``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from servers.postgres import PostgresServer
from sts.model import RelyingParty, TokenRecord
from sts.store.database import Database, open_database
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.prepared import request_scope
from sts.store.throttle import SqlThrottleStore
from sts.uris import TokenType

T = TypeVar("T")
ROUNDS = 20
RP = "https://rp.example/app"


@pytest.fixture
def nodes(postgres_server: PostgresServer) -> Iterator[tuple[Database, Database]]:
    url = postgres_server.fresh_url()
    hasher, box = PasswordHasher(n=2**4), SecretBox(bytes(range(32)))
    a = open_database(url, hasher=hasher, secret_box=box)
    b = open_database(url, hasher=hasher, secret_box=box)
    yield a, b
    a.close()
    b.close()


def race(*calls: Callable[[], T]) -> list[T]:
    """Run ``calls`` in threads released at the same moment; their results in order."""
    start = threading.Barrier(len(calls))
    results: list[T | BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def token(token_id: str) -> TokenRecord:
    now = datetime.now(UTC)
    return TokenRecord(token_id=token_id, token_type=TokenType.SAML20, subject="alice", applies_to=RP, issued=now,
                       expires=now + timedelta(hours=1), status="valid", token_hash=f"sha256:{token_id}",
                       requester="alice", details={"renew_allow": True})


def test_a_nonce_recorded_on_one_node_is_a_replay_on_the_other(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert a.nonces.first_seen(b"nonce-1", until)
    assert not b.nonces.first_seen(b"nonce-1", until)
    assert not a.nonces.first_seen(b"nonce-1", until)
    assert b.nonces.first_seen(b"nonce-2", until)  # and the other way round
    assert not a.nonces.first_seen(b"nonce-2", until)


def test_a_nonce_raced_on_two_nodes_is_first_seen_exactly_once(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    until = datetime.now(UTC) + timedelta(minutes=5)
    for round_ in range(ROUNDS):
        key = f"raced-{round_}".encode()
        # Two requests on each node, all at once.
        outcomes = race(*(lambda db=db: db.nonces.first_seen(key, until) for db in (a, b, a, b)))
        assert outcomes.count(True) == 1, (round_, outcomes)


def test_an_expired_nonce_raced_on_two_nodes_is_taken_over_exactly_once(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    now = datetime.now(UTC)
    for round_ in range(ROUNDS):
        key = f"expired-{round_}".encode()
        assert a.nonces.first_seen(key, now - timedelta(seconds=1))  # recorded, and already past
        outcomes = race(*(lambda db=db: db.nonces.first_seen(key, now + timedelta(minutes=5)) for db in (a, b)))
        assert sorted(outcomes) == [False, True], (round_, outcomes)


def test_a_token_cancelled_on_one_node_is_cancelled_on_the_other_at_once(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    a.tokens.put(token("_t1"))
    seen = b.tokens.get("_t1")
    assert seen is not None and seen.status == "valid"
    assert b.tokens.transition("_t1", "valid", "cancelled")
    record = a.tokens.get("_t1")
    assert record is not None and record.status == "cancelled"
    assert not a.tokens.transition("_t1", "valid", "renewed")  # a renewal on A after that loses


def test_a_token_issued_in_a_request_on_one_node_is_known_to_the_other(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    with request_scope(a.engine):  # the deferred write of a real Issue, committed when the request ends
        a.tokens.put(token("_t2"))
        assert b.tokens.get("_t2") is None  # not before the request's commit ...
    assert b.tokens.get("_t2") is not None  # ... and at once after it


def test_a_token_renewed_on_two_nodes_at_once_is_renewed_exactly_once(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    for round_ in range(ROUNDS):
        token_id = f"_renew-{round_}"
        a.tokens.put(token(token_id))
        outcomes = race(lambda: a.tokens.transition(token_id, "valid", "renewed"),
                        lambda: b.tokens.transition(token_id, "valid", "renewed"))
        assert sorted(outcomes) == [False, True], (round_, outcomes)
        record = b.tokens.get(token_id)
        assert record is not None and record.status == "renewed"


def test_renew_and_cancel_racing_on_two_nodes_leave_one_outcome(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    for round_ in range(ROUNDS):
        token_id = f"_both-{round_}"
        a.tokens.put(token(token_id))
        renewed, cancelled = race(lambda: a.tokens.transition(token_id, "valid", "renewed"),
                                  lambda: b.tokens.transition(token_id, "valid", "cancelled"))
        record = a.tokens.get(token_id)
        assert record is not None and renewed != cancelled
        assert record.status == ("renewed" if renewed else "cancelled")


def test_a_user_changed_on_one_node_applies_to_the_next_lookup_on_the_other(
        nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    a.users.add("alice", "first password", [("urn:claim:role", "reader")])
    before = b.users.get("alice")  # cached on B now
    assert before is not None and [c.values for c in before.claims] == [("reader",)]
    assert b.users.check_password("alice", "first password")
    a.users.set_claims("alice", [("urn:claim:role", "writer")])
    after = b.users.get("alice")
    assert after is not None and [c.values for c in after.claims] == [("writer",)]
    a.users.set_password("alice", "second password")
    assert not b.users.check_password("alice", "first password")  # no verified pair outlives a change
    assert b.users.check_password("alice", "second password")
    a.users.set_disabled("alice", True)
    disabled = b.users.get("alice")
    assert disabled is not None and disabled.disabled
    a.users.remove("alice")
    assert b.users.get("alice") is None


def test_claims_set_on_two_nodes_at_once_end_as_one_of_them(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    a.users.add("bob", "pw", [("urn:claim:n", "0")])
    for round_ in range(ROUNDS):
        first = [("urn:claim:n", f"a{round_}"), ("urn:claim:m", "a")]
        second = [("urn:claim:n", f"b{round_}"), ("urn:claim:m", "b")]
        assert race(lambda: a.users.set_claims("bob", first), lambda: b.users.set_claims("bob", second)) == [True, True]
        record = a.users.get("bob")
        assert record is not None
        values = [c.values[0] for c in record.claims]
        assert values in ([f"a{round_}", "a"], [f"b{round_}", "b"]), values  # never a mixture


def test_a_relying_party_changed_on_one_node_applies_to_the_next_lookup_on_the_other(
        nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    assert b.relying_parties.lookup(RP) is None  # B's index is built (empty) and cached
    a.relying_parties.add(RelyingParty(RP, encrypt=False))
    found = b.relying_parties.lookup(RP)
    assert found is not None and not found.encrypt
    a.relying_parties.update(replace(found, max_lifetime=timedelta(hours=1), required_claims=("urn:claim:role",)))
    updated = b.relying_parties.lookup(RP)
    assert updated is not None and updated.max_lifetime == timedelta(hours=1)
    assert updated.required_claims == ("urn:claim:role",)
    a.relying_parties.remove(RP)
    assert b.relying_parties.lookup(RP) is None


def test_failed_passwords_count_across_nodes(nodes: tuple[Database, Database]) -> None:
    a, b = (SqlThrottleStore(db.engine) for db in nodes)
    now = datetime.now(UTC)
    since = now - timedelta(minutes=15)
    race(*(lambda store=store: store.failed("carol", "192.0.2.9", now, since) for store in (a, b, a, b)))
    assert a.counts("carol", "192.0.2.9", since) == (4, 4)
    assert b.counts("carol", "192.0.2.9", since) == (4, 4)
    b.reset("carol")
    assert a.counts("carol", "192.0.2.9", since) == (0, 4)


def test_the_audit_trail_holds_both_nodes_entries(nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    race(*(lambda db=db, i=i: db.audit("node.test", f"entry {i}") for i, db in enumerate((a, b) * 5)))
    assert sorted(entry.subject or "" for entry in b.recent_audit()) == sorted(f"entry {i}" for i in range(10))
