"""The audit trail: pipeline events over real HTTP, filters, no secrets, never raising into a request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from live import LiveServer, start_server
from sts.store.audit import AuditTrail
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, init_home
from sts.runtime import Runtime
from sts.xmltime import utcnow
from trust_client import post, rst_envelope


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    init_home(tmp_path)
    server_live, server, thread = start_server(tmp_path)
    yield server_live
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)


def _trail(live: LiveServer) -> AuditTrail:
    runtime = live.runtime
    assert isinstance(runtime, Runtime)
    return runtime.audit


def test_issue_fault_and_auth_failure_are_recorded(live: LiveServer) -> None:
    ok = post(live.sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT))
    assert ok.status == 200
    scope = post(live.sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to="https://no.example/"))
    assert scope.status != 200
    bad = post(live.sts_url, rst_envelope(user="alice", password="not-the-password-xyz", applies_to=DEMO_RP_ENDPOINT))
    assert bad.status != 200
    trail = _trail(live)
    records = trail.search()
    assert [(r.event, r.actor, r.outcome) for r in records] == [
        ("auth-failed", "alice", "wst:FailedAuthentication"),
        ("issue", "alice", "wst:InvalidScope"),
        ("issue", "alice", "ok"),
    ]
    assert records[2].subject == DEMO_RP_ENDPOINT
    assert all("not-the-password-xyz" not in repr(r) for r in records)
    assert [r.outcome for r in trail.search(event="issue", outcome="ok")] == ["ok"]
    assert len(trail.search(outcome="fault")) == 2
    assert [r.event for r in trail.search(actor="alice", limit=1)] == ["auth-failed"]
    assert trail.search(since=utcnow() + timedelta(minutes=1)) == []


def test_console_events_prefix_filter_and_secret_details_dropped(tmp_path: Path) -> None:
    init_home(tmp_path, demo=False)
    from sts.config import load_settings
    from sts.runtime import open_stores

    stores = open_stores(load_settings(tmp_path))
    trail = AuditTrail(stores.engine)
    trail.record("console.login", actor="admin", outcome="ok", detail={"password": "pw", "remote": "127.0.0.1",
                                                                        "nested": {"secret": 1, "at": utcnow()}})
    trail.record("console.rp.add", actor="admin", outcome="ok", subject="https://rp.example/")
    trail.record("issue", actor="bob", outcome="ok")
    found = trail.search(event="console.*")
    assert [r.event for r in found] == ["console.rp.add", "console.login"]
    assert found[1].detail["remote"] == "127.0.0.1" and "password" not in found[1].detail
    assert "secret" not in found[1].detail["nested"]  # type: ignore[operator]
    stores.close()


def test_record_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    init_home(tmp_path, demo=False)
    from sts.config import load_settings
    from sts.runtime import open_stores

    stores = open_stores(load_settings(tmp_path))
    trail = AuditTrail(stores.engine)
    with stores.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_log")
    with caplog.at_level(logging.ERROR, logger="sts.store.audit"):
        trail.record("issue", actor="x", outcome="ok")  # logged, not raised
    stores.close()
    (logged,) = [r for r in caplog.records if r.name == "sts.store.audit"]
    assert logged.getMessage() == "could not record audit event issue" and logged.exc_info is not None
