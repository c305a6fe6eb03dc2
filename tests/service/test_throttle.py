"""The brute-force throttle's rule (``sts.service.throttle``) over a real SQLite store: delays, keys, what counts,
and waiting without holding a worker thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import pytest

from sts.errors import FailedAuthentication, InsecureTransport, MessageExpired, SecurityHeaderError
from sts.protocol.wsse.header import UsernameToken
from sts.protocol.wsse.username import password_digest, verify_username_token
from sts.service.throttle import (
    ADDRESS_FACTOR,
    EVENT,
    AuthThrottle,
    Throttled,
    ThrottledUsers,
    ThrottlePolicy,
    address_key,
    run_throttled,
    user_key,
)
from sts.store.audit import AuditTrail
from sts.store.database import Database, open_database
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.throttle import SqlThrottleStore
from sts.xmltime import utcnow

ADDRESS = "192.0.2.10"
FAST = ThrottlePolicy(free_failures=2, base_delay=timedelta(milliseconds=100), max_delay=timedelta(milliseconds=400))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=16),
                             secret_box=SecretBox(bytes(32)))
    database.users.add("alice", "right")
    yield database
    database.close()


def _throttle(db: Database, policy: ThrottlePolicy = FAST) -> AuthThrottle:
    return AuthThrottle(SqlThrottleStore(db.engine), policy, audit=AuditTrail(db.engine))


def _check(throttle: AuthThrottle, db: Database, name: str, password: str, address: str = ADDRESS) -> bool:
    return throttle.check(name, address, utcnow(), lambda: db.users.check_password(name, password))


# -- the delays -----------------------------------------------------------------------------------------------


def test_the_delay_doubles_from_the_base_and_stops_at_the_cap() -> None:
    ms = [FAST.delay(n) // timedelta(milliseconds=1) for n in range(8)]
    assert ms == [0, 0, 100, 200, 400, 400, 400, 400]
    assert FAST.delay(10**9) == FAST.max_delay  # a huge count is no huge number
    assert ThrottlePolicy(free_failures=0).delay(0) == timedelta(0)


def test_an_address_gets_more_free_failures_and_the_larger_delay_applies() -> None:
    free = FAST.free_failures * ADDRESS_FACTOR
    assert FAST.delay_for(0, free - 1) == timedelta(0)
    assert FAST.delay_for(0, free) == FAST.base_delay
    assert FAST.delay_for(3, free) == timedelta(milliseconds=200)


def test_keys() -> None:
    assert user_key("alice") == "alice"
    long_name = "a" * 10_000
    assert user_key(long_name).startswith("sha256:") and len(user_key(long_name)) < 255
    assert user_key(long_name) != user_key(long_name + "b")
    assert address_key("192.0.2.1") == "192.0.2.1"
    # One IPv6 host owns a whole /64: the network is the key, not each of its 2**64 addresses.
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("") == "" and address_key("testclient") == "testclient"
    assert len(address_key("x" * 1000)) <= 255


# -- counting -------------------------------------------------------------------------------------------------


def test_wrong_passwords_delay_the_next_check_before_it_runs(db: Database) -> None:
    throttle = _throttle(db)
    for _ in range(2):
        assert not _check(throttle, db, "alice", "wrong")
    checked_at: list[float] = []
    start = time.monotonic()

    def verify() -> bool:
        checked_at.append(time.monotonic() - start)
        return db.users.check_password("alice", "right")

    assert throttle.check("alice", ADDRESS, utcnow(), verify)
    # The wait came first (a client that gives up early learns nothing), then the check, which succeeded.
    assert checked_at and checked_at[0] >= 0.1 * 0.95


def test_never_a_lock_out_and_a_success_resets_the_user(db: Database) -> None:
    throttle = _throttle(db, ThrottlePolicy(free_failures=1, base_delay=timedelta(milliseconds=1),
                                            max_delay=timedelta(milliseconds=5)))
    for _ in range(20):
        assert not _check(throttle, db, "alice", "wrong")
    assert _check(throttle, db, "alice", "right")
    store = SqlThrottleStore(db.engine)
    since = utcnow() - throttle.policy.window
    # The user's count is gone; one of the address's 20 failures is forgiven.
    assert store.counts("alice", ADDRESS, since) == (0, 19)


def test_an_unknown_user_is_counted_like_a_known_one(db: Database) -> None:
    throttle = _throttle(db)
    for name in ("alice", "nobody"):
        assert not _check(throttle, db, name, "wrong")
    store = SqlThrottleStore(db.engine)
    since = utcnow() - throttle.policy.window
    assert store.counts("alice", ADDRESS, since)[0] == store.counts("nobody", ADDRESS, since)[0] == 1


def test_throttling_is_logged_and_audited_without_the_password(db: Database,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    throttle = _throttle(db, ThrottlePolicy(free_failures=1, base_delay=timedelta(milliseconds=10)))
    caplog.set_level("WARNING", logger="sts.service.throttle")
    assert not _check(throttle, db, "alice", "s3cret-guess")
    assert not _check(throttle, db, "alice", "s3cret-guess")
    records = AuditTrail(db.engine).search(event=EVENT)
    assert [(r.actor, r.outcome) for r in records] == [("alice", "throttled")]
    assert records[0].detail == {"remote": ADDRESS, "delay_ms": 10, "user_failures": 1, "address_failures": 1}
    assert "throttled password check for 'alice' from 192.0.2.10: 10 ms" in caplog.text
    assert "s3cret-guess" not in caplog.text


# -- what counts in a UsernameToken ---------------------------------------------------------------------------


NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


def _token(password: str | None, *, digest: bool = False, nonce: bytes | None = b"n" * 16,
           created_at: datetime = NOW) -> UsernameToken:
    created = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if digest and password is not None and nonce is not None:
        password = password_digest(nonce, created, password)
    return UsernameToken("alice", password, digest, nonce, created, created_at)


def _verify(db: Database, throttle: AuthThrottle, token: UsernameToken, *, text_allowed: bool = True) -> str:
    return verify_username_token(
        token, db.users, db.nonces, now=NOW, window=WINDOW, skew=WINDOW, text_allowed=text_allowed,
        check=lambda name, verify: throttle.check(name, ADDRESS, utcnow(), verify))


def _user_failures(db: Database) -> int:
    return SqlThrottleStore(db.engine).counts("alice", ADDRESS, utcnow() - timedelta(hours=1))[0]


def test_only_a_checked_password_counts(db: Database) -> None:
    throttle = _throttle(db)
    refused_before_the_check = [
        (_token(None), {}, FailedAuthentication),
        (_token("wrong", created_at=NOW - timedelta(hours=1)), {}, MessageExpired),
        (_token("wrong"), {"text_allowed": False}, InsecureTransport),
        (_token("wrong", digest=True, nonce=None), {}, SecurityHeaderError),
    ]
    for token, options, error in refused_before_the_check:
        with pytest.raises(error):
            _verify(db, throttle, token, **options)
    assert _user_failures(db) == 0
    for token in (_token("wrong"), _token("wrong", digest=True, nonce=b"m" * 16)):
        with pytest.raises(FailedAuthentication):
            _verify(db, throttle, token)
    assert _user_failures(db) == 2
    assert _verify(db, throttle, _token("right", digest=True, nonce=b"o" * 16)) == "alice"
    assert _user_failures(db) == 0


# -- waiting without a worker thread --------------------------------------------------------------------------


def test_run_throttled_waits_outside_the_thread_and_checks_once(db: Database) -> None:
    throttle = _throttle(db)
    for _ in range(2):
        _check(throttle, db, "alice", "wrong")
    calls: list[str] = []
    received_at = utcnow()

    def verify() -> bool:
        calls.append("verify")
        return True

    def request() -> bool:
        calls.append("run")
        return throttle.check("alice", ADDRESS, received_at, verify)

    assert asyncio.run(run_throttled(request))
    # First run: Throttled before any check; second run: the delay served, the password checked once.
    assert calls == ["run", "run", "verify"]


def test_waits_hold_no_worker_thread(db: Database) -> None:
    throttle = _throttle(db, ThrottlePolicy(free_failures=1, base_delay=timedelta(milliseconds=300),
                                            max_delay=timedelta(milliseconds=300)))
    _check(throttle, db, "alice", "wrong")

    async def many() -> float:
        # One worker thread only: five checks sleeping in it would take 5 x 0.3 s.
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        start = time.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(5):
                received_at = utcnow()
                group.start_soon(run_throttled, lambda at=received_at: throttle.check(
                    "alice", ADDRESS, at, lambda: True))
        return time.monotonic() - start

    elapsed = asyncio.run(many())
    assert 0.3 * 0.95 <= elapsed < 1.2, elapsed


def test_direct_callers_sleep_and_the_signal_passes_except_exception(db: Database) -> None:
    throttle = _throttle(db)
    for _ in range(2):
        _check(throttle, db, "alice", "wrong")
    start = time.monotonic()
    assert _check(throttle, db, "alice", "right")  # no run_throttled around it: a blocking wait
    assert time.monotonic() - start >= 0.1 * 0.95
    assert not issubclass(Throttled, Exception)  # the pipeline's catch-all must not turn it into a fault


def test_password_checks_inside_the_service_are_throttled_by_the_requests_origin(db: Database) -> None:
    # ActAs/OnBehalfOf UsernameTokens (sts.service.delegation) check passwords through ThrottledUsers.
    throttle = _throttle(db)
    users = ThrottledUsers(db.users, throttle)
    assert users.get("alice") is not None and users.digest_secret("alice") == "right"

    def request(password: str) -> bool:
        return users.check_password("alice", password)

    async def run(password: str) -> tuple[bool, float]:
        start = time.monotonic()
        ok = await run_throttled(lambda: request(password), origin=(ADDRESS, utcnow()))
        return ok, time.monotonic() - start

    assert asyncio.run(run("wrong"))[0] is False
    assert asyncio.run(run("wrong"))[0] is False
    store = SqlThrottleStore(db.engine)
    assert store.counts("alice", ADDRESS, utcnow() - throttle.policy.window) == (2, 2)
    # The wait blocks here (the request cannot be run again once its nonce is recorded), then the check runs.
    ok, elapsed = asyncio.run(run("right"))
    assert ok and elapsed >= 0.1 * 0.95
