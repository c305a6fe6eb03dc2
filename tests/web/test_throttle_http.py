"""The brute-force throttle over real HTTP on loopback: a growing, capped delay before the password check, never
a lock-out, the same answer for an unknown user, one count shared by every process of the database.

Every test serves a fresh home (never the session-wide ``live_sts``, which the rest of the suite shares) with
small delays set through the settings.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live import running, wait_healthy
from trust_client import Reply, post, rst_envelope

from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.runtime import Runtime
from sts.web.loopback import free_port
from timing import did_not_wait

MS = 0.001
# Generous: the machine is shared; a delay is a lower bound, the slack only bounds it from above.
SLACK = 1.5


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    init_home(path)
    return path


def _issue(url: str, user: str, password: str, *, digest: bool = False) -> tuple[Reply, float]:
    body = rst_envelope(user=user, password=password, applies_to=DEMO_RP_ENDPOINT, digest=digest)
    start = time.monotonic()
    reply = post(url, body)
    return reply, time.monotonic() - start


def _refused(reply: Reply) -> None:
    assert reply.status in (400, 500) and reply.fault_code is not None
    assert reply.fault_code[1] == "FailedAuthentication", reply.fault_code
    assert reply.fault_reason == "Authentication failed"


def test_the_delay_doubles_then_stays_at_the_cap(home: Path) -> None:
    with running(home, auth_throttle_free_failures=2, auth_throttle_base_delay_ms=100,
                 auth_throttle_max_delay_ms=400) as live:
        times = []
        for _ in range(7):
            reply, elapsed = _issue(live.sts_url, DEMO_USER, "wrong")
            _refused(reply)
            times.append(elapsed)
    # Two free failures, then 100, 200, 400 ms, then the cap: 400, 400 ms.
    for elapsed, expected in zip(times, (0, 0, 100, 200, 400, 400, 400), strict=True):
        assert expected * MS * 0.95 <= elapsed < expected * MS + SLACK, times
    assert max(times) < 0.4 + SLACK


def test_the_right_password_after_20_wrong_ones_gets_a_token(home: Path) -> None:
    cap = 150
    with running(home, auth_throttle_free_failures=3, auth_throttle_base_delay_ms=25,
                 auth_throttle_max_delay_ms=cap) as live:
        for _ in range(20):
            _refused(_issue(live.sts_url, DEMO_USER, "guess")[0])
        for digest in (False, True):
            reply, elapsed = _issue(live.sts_url, DEMO_USER, DEMO_PASSWORD, digest=digest)
            assert reply.status == 200, reply.fault_reason
            reply.token()
            # Still delayed (the count is high), but never more than the cap: no lock-out.
            assert elapsed < cap * MS + SLACK
        runtime = live.runtime
        assert isinstance(runtime, Runtime)
        throttled = runtime.audit.search(event="auth.throttled", actor=DEMO_USER)
    assert throttled and {r.outcome for r in throttled} == {"throttled"}
    detail = throttled[0].detail
    assert detail["remote"] == "127.0.0.1" and 0 < int(str(detail["delay_ms"])) <= cap
    assert DEMO_PASSWORD not in repr([r.detail for r in throttled]) and "guess" not in repr(throttled)


def test_a_success_resets_the_users_count(home: Path) -> None:
    # The delay is long enough that an undelayed request on a busy machine stays clearly below it.
    with running(home, auth_throttle_free_failures=1, auth_throttle_base_delay_ms=800,
                 auth_throttle_max_delay_ms=800) as live:
        _refused(_issue(live.sts_url, DEMO_USER, "wrong")[0])
        reply, elapsed = _issue(live.sts_url, DEMO_USER, DEMO_PASSWORD)
        assert reply.status == 200 and elapsed >= 0.8 * 0.95
        reply, elapsed = _issue(live.sts_url, DEMO_USER, DEMO_PASSWORD)
        assert reply.status == 200 and did_not_wait(elapsed, 0.8), elapsed


def test_unknown_user_and_wrong_password_get_the_same_fault_and_time(home: Path) -> None:
    # A realistic scrypt cost, so that the password check (not the noise) dominates the time compared.
    with running(home, password_hash_n=2**13, auth_throttle_free_failures=10_000) as live:
        runtime = live.runtime
        assert isinstance(runtime, Runtime)
        runtime.stores.users.add("carol", "right-password")
        runtime.stores.users.add("dave", "right-password")
        runtime.stores.users.set_disabled("dave", True)
        timings: dict[str, list[float]] = {"wrong": [], "unknown": [], "disabled": []}
        for round_ in range(7):
            for kind, user in (("wrong", "carol"), ("unknown", f"nobody-{round_}"), ("disabled", "dave")):
                for digest in (False, True):
                    reply, elapsed = _issue(live.sts_url, user, "not-it", digest=digest)
                    _refused(reply)
                    if not digest:
                        timings[kind].append(elapsed)
    wrong = statistics.median(timings["wrong"])
    for kind in ("unknown", "disabled"):
        ratio = statistics.median(timings[kind]) / wrong
        assert 0.5 < ratio < 2.0, (kind, timings)


def test_two_nodes_on_one_database_share_the_count(home: Path) -> None:
    options = {"auth_throttle_free_failures": 2, "auth_throttle_base_delay_ms": 400,
               "auth_throttle_max_delay_ms": 400}
    with running(home, **options) as first, running(home, **options) as second:
        assert first.runtime is not second.runtime
        for _ in range(2):
            _refused(_issue(first.sts_url, DEMO_USER, "wrong")[0])
        # The other node (its own process state, the same database) delays the next check.
        reply, elapsed = _issue(second.sts_url, DEMO_USER, DEMO_PASSWORD)
        assert reply.status == 200 and elapsed >= 0.4 * 0.95


def test_sts_serve_with_two_workers_shares_the_count(home: Path) -> None:
    port = free_port()
    env = {**os.environ, "STS_AUTH_THROTTLE_FREE_FAILURES": "2", "STS_AUTH_THROTTLE_BASE_DELAY_MS": "300",
           "STS_AUTH_THROTTLE_MAX_DELAY_MS": "300"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}/services/sts"
        wait_healthy(f"http://127.0.0.1:{port}", process)
        for _ in range(2):
            _refused(_issue(url, DEMO_USER, "wrong")[0])
        # Each request on a new connection, so both worker processes answer some: every one is delayed.
        times = [_issue(url, DEMO_USER, "wrong")[1] for _ in range(4)]
        assert all(t >= 0.3 * 0.95 for t in times), times
        reply, elapsed = _issue(url, DEMO_USER, DEMO_PASSWORD)
        assert reply.status == 200 and 0.3 * 0.95 <= elapsed < 0.3 + SLACK
    finally:
        process.terminate()
        process.communicate(timeout=20)
