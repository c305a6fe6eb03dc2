"""Audit queries, without HTTP: filters by actor, action (or prefix), time window and outcome; readable detail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sts.admin import users
from sts.admin.audit import AuditQuery, parse_time, search_audit, summarise
from sts.admin.base import Actor, AdminContext, InvalidInput
from sts.config import Settings
from sts.store.database import open_database
from sts.store.passwords import PasswordHasher, SecretBox

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves: each audited change gets its own minute."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(tmp_path: Path, clock: Clock) -> Iterator[AdminContext]:
    stores = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                           secret_box=SecretBox(bytes(range(32))))
    context = AdminContext.for_stores(stores, Settings(home=tmp_path), clock=clock)
    users.add_user(context, Actor("cli:ops"), "alice", "pw")                 # 12:00 user.add ok
    clock.now += timedelta(minutes=1)
    users.set_disabled(context, Actor.console("root"), "alice", True)        # 12:01 user.update ok
    clock.now += timedelta(minutes=1)
    with pytest.raises(InvalidInput):
        users.add_admin(context, Actor.console("root"), "eve", "short")      # 12:02 admin.add refused
    context.audit.record("issue", actor="alice", outcome="wst:InvalidScope", subject="https://x.example/")
    yield context
    stores.close()


def events(ctx: AdminContext, **filters: str) -> list[str]:
    return [e.event for e in search_audit(ctx, AuditQuery.from_text(filters, START + timedelta(hours=1)))]


def test_newest_first_and_filters(ctx: AdminContext) -> None:
    assert events(ctx) == ["issue", "admin.add", "user.update", "user.add"]
    assert events(ctx, actor="cli:ops") == ["user.add"]
    assert events(ctx, action="user.*") == ["user.update", "user.add"]
    assert events(ctx, event="user.add") == ["user.add"]
    assert events(ctx, outcome="refused") == ["admin.add"]
    assert events(ctx, outcome="fault") == ["issue", "admin.add"]
    assert events(ctx, since="2026-03-01T12:01:00", until="2026-03-01T12:01:30+00:00") == ["user.update"]
    assert events(ctx, limit="1") == ["issue"]


def test_spans_back_from_now(ctx: AdminContext) -> None:
    assert events(ctx, since="30m") == []  # "now" is 13:00 in these queries
    assert len(events(ctx, since="2h")) == 4


def test_entry_as_json_and_summary(ctx: AdminContext) -> None:
    update = search_audit(ctx, AuditQuery(action="user.update"))[0]
    data = update.to_dict()
    assert data["action"] == data["event"] == "user.update" and data["actor"] == "root"
    assert data["at"] == "2026-03-01T12:01:00+00:00"
    assert update.summary == "disabled: false → true"
    added = search_audit(ctx, AuditQuery(action="user.add"))[0]
    assert added.summary == "created: name=alice"
    claims = {"http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ["a", "b"], "urn:x": ["1"]}
    assert summarise({"before": {"claims": {}}, "after": {"claims": claims}, "warnings": ["w"]}) == \
        "claims: {} → {role=a|b, urn:x=1}; warning: w"
    assert summarise({"reason": "no", "field": "password"}) == "reason=no field=password"


@pytest.mark.parametrize(("values", "field"), [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-01"}, "until"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
    ({"limit": "none"}, "limit"),
])
def test_bad_filters_name_their_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AuditQuery.from_text(values, START)
    assert caught.value.field == field


def test_parse_time() -> None:
    assert parse_time("2026-03-01T10:00", "since", START) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("7d", "since", START) == START - timedelta(days=7)
    assert parse_time("", "since", START) is None
