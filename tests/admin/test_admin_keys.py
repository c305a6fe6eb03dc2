"""The keys operations of the admin core: list, schedule a rollover, the minimum lead time and its overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from sts.admin.base import Actor, AdminContext, ConfirmationRequired, InvalidInput
from sts.admin.keys import (EVENT, Override, Rollover, list_keys, schedule_rollover, upcoming_switches)
from sts.store.audit import AuditRecord, AuditTrail
from sts.tokens.crypto.keys import fingerprint_sha256, generate_key_and_cert, load_certificate
from sts.tokens.keyring import LEGACY_ID


@pytest.fixture
def keys_ctx(ctx: AdminContext) -> AdminContext:
    """The context's home with its first signing key (what `sts init` makes)."""
    key_pem, cert_pem = generate_key_and_cert("sts signing")
    ctx.settings.signing_key_path.parent.mkdir(parents=True, exist_ok=True)
    ctx.settings.signing_key_path.write_bytes(key_pem)
    ctx.settings.signing_cert_path.write_bytes(cert_pem)
    return ctx


def _in_use(ctx: AdminContext) -> bytes:
    return ctx.settings.signing_cert_path.read_bytes()


def test_list_keys_shows_the_first_key_active(keys_ctx: AdminContext) -> None:
    (entry,) = list_keys(keys_ctx)
    assert (entry.id, entry.state, entry.retire_after) == (LEGACY_ID, "active", None)
    assert entry.fingerprint == fingerprint_sha256(load_certificate(_in_use(keys_ctx)))


def test_default_switch_is_the_minimum_lead_ahead_and_audited(
        keys_ctx: AdminContext, actor: Actor, now: datetime, last_audit: Callable[[str], AuditRecord]) -> None:
    first = list_keys(keys_ctx)[0]
    done = schedule_rollover(keys_ctx, actor, Rollover())
    assert done.active_from == now + timedelta(hours=24) and done.replaces == LEGACY_ID and done.warnings == ()
    assert {e.id: e.state for e in list_keys(keys_ctx)} == {LEGACY_ID: "active", done.key_id: "next"}
    record = last_audit(EVENT)
    assert (record.actor, record.outcome, record.subject) == ("root", "ok", done.key_id)
    before, after = record.detail["before"], record.detail["after"]
    assert before == {"keys": [{"id": LEGACY_ID, "fingerprint": first.fingerprint, "state": "active",
                                "active_from": first.active_from.isoformat(), "retire_after": None}]}
    assert isinstance(after, dict)
    assert (after["scheduled"], after["fingerprint"], after["switch_at"]) == (
        done.key_id, done.fingerprint, done.active_from.isoformat())
    assert (after["replaces"], after["replaces_fingerprint"], after["override"]) == (
        LEGACY_ID, first.fingerprint, None)
    assert after["overlap_days"] == 7
    assert [k["id"] for k in after["keys"]] == [LEGACY_ID, done.key_id]


def test_a_past_switch_is_refused_and_nothing_changes(
        keys_ctx: AdminContext, actor: Actor, now: datetime, trail: AuditTrail) -> None:
    in_use = _in_use(keys_ctx)
    with pytest.raises(ConfirmationRequired) as refused:
        schedule_rollover(keys_ctx, actor, Rollover(at=now - timedelta(days=1)))
    assert "is not in the future" in refused.value.message and refused.value.field == "at"
    assert "will reject every token" in refused.value.risk and "24 h" in refused.value.risk
    assert [e.id for e in list_keys(keys_ctx)] == [LEGACY_ID]
    assert _in_use(keys_ctx) == in_use
    (record,) = trail.search(event=EVENT)
    assert (record.actor, record.outcome) == ("root", "refused")
    assert "not in the future" in str(record.detail["reason"])


def test_a_switch_sooner_than_the_minimum_lead_is_refused(keys_ctx: AdminContext, actor: Actor,
                                                          now: datetime) -> None:
    with pytest.raises(ConfirmationRequired) as refused:
        schedule_rollover(keys_ctx, actor, Rollover(at=now + timedelta(hours=2)))
    assert refused.value.message == (
        f"the switch time {(now + timedelta(hours=2)).isoformat()} is 2 h from now, sooner than the minimum lead "
        "time of 24 h (setting rollover_min_lead_seconds) that relying parties need to fetch the metadata listing "
        "the new key")
    assert [e.id for e in list_keys(keys_ctx)] == [LEGACY_ID]


def test_the_short_lead_override_takes_a_past_time_as_now(
        keys_ctx: AdminContext, actor: Actor, now: datetime, last_audit: Callable[[str], AuditRecord]) -> None:
    done = schedule_rollover(keys_ctx, actor, Rollover(at=now - timedelta(days=1), override=Override.SHORT_LEAD,
                                                       overlap=timedelta(days=1)))
    assert done.active_from == now  # not yesterday: the replaced key stays published a full overlap from now
    (warning,) = done.warnings
    assert "accepted (allow-short-lead)" in warning and "reject every token" in warning
    states = {e.id: (e.state, e.retire_after) for e in list_keys(keys_ctx)}
    assert states == {LEGACY_ID: ("retired-published", now + timedelta(days=1)), done.key_id: ("active", None)}
    record = last_audit(EVENT)
    assert record.detail["warnings"] == [warning]
    assert isinstance(record.detail["after"], dict) and record.detail["after"]["override"] == "allow-short-lead"
    # The certificate file relying parties are pointed at now holds the key that signs.
    assert fingerprint_sha256(load_certificate(_in_use(keys_ctx))) == done.fingerprint


def test_now_switches_at_once_with_its_warning(keys_ctx: AdminContext, actor: Actor, now: datetime) -> None:
    done = schedule_rollover(keys_ctx, actor, Rollover(override=Override.NOW))
    assert done.active_from == now
    assert done.warnings[0].startswith("the new key signs at once")
    assert {e.id: e.state for e in list_keys(keys_ctx)}[done.key_id] == "active"


def test_the_console_confirmation_accepts_a_near_switch(keys_ctx: AdminContext, now: datetime,
                                                        last_audit: Callable[[str], AuditRecord]) -> None:
    done = schedule_rollover(keys_ctx, Actor.console("ada"), Rollover(at=now + timedelta(minutes=90),
                                                                      override=Override.CONFIRMED))
    assert done.active_from == now + timedelta(minutes=90)
    assert "is 1.5 h from now" in done.warnings[0]
    record = last_audit(EVENT)
    assert record.actor == "ada" and isinstance(record.detail["after"], dict)
    assert record.detail["after"]["override"] == "confirmed"


def test_a_test_setting_shortens_the_lead_but_never_allows_the_past(keys_ctx: AdminContext, actor: Actor,
                                                                    now: datetime) -> None:
    quick = replace(keys_ctx, settings=replace(keys_ctx.settings, rollover_min_lead_seconds=0))
    done = schedule_rollover(quick, actor, Rollover(at=now + timedelta(seconds=1)))
    assert done.warnings == ()
    with pytest.raises(ConfirmationRequired):
        schedule_rollover(quick, actor, Rollover(at=now - timedelta(seconds=1)))


def test_imported_keys_and_bad_input(keys_ctx: AdminContext, actor: Actor, now: datetime, trail: AuditTrail) -> None:
    key_pem, cert_pem = generate_key_and_cert("imported")
    at = now + timedelta(days=2)
    done = schedule_rollover(keys_ctx, actor, Rollover(at=at, key_pem=key_pem, cert_pem=cert_pem))
    assert done.fingerprint == fingerprint_sha256(load_certificate(cert_pem))
    other_key, _ = generate_key_and_cert("other")
    cases = [
        (Rollover(at=at, key_pem=other_key, cert_pem=cert_pem), "does not belong", "key"),
        (Rollover(at=at, key_pem=b"not a key"), "", "key"),
        (Rollover(at=at, cert_pem=cert_pem), "a certificate needs its private key", "key"),
        (Rollover(at=at, overlap=timedelta(days=-1)), "must not be negative", "overlap"),
        (Rollover(at=at.replace(tzinfo=None)), "time zone", "at"),
    ]
    for request, text, field in cases:
        with pytest.raises(InvalidInput) as refused:
            schedule_rollover(keys_ctx, actor, request)
        assert text in refused.value.message and refused.value.field == field
    assert len(list_keys(keys_ctx)) == 2
    assert [r.outcome for r in trail.search(event=EVENT)] == ["refused"] * len(cases) + ["ok"]


def test_no_signing_key_is_a_clear_error(ctx: AdminContext) -> None:
    with pytest.raises(InvalidInput, match="run `sts init` first"):
        list_keys(ctx)


def test_upcoming_switches_for_the_dashboard(keys_ctx: AdminContext, actor: Actor, now: datetime) -> None:
    assert upcoming_switches(keys_ctx) == []
    far = schedule_rollover(keys_ctx, actor, Rollover(at=now + timedelta(days=30)))
    assert upcoming_switches(keys_ctx) == []  # beyond a week: nothing to warn about yet
    soon = schedule_rollover(keys_ctx, actor, Rollover(at=now + timedelta(days=2)))
    near = schedule_rollover(keys_ctx, actor, Rollover(at=now + timedelta(hours=3), override=Override.CONFIRMED))
    switches = upcoming_switches(keys_ctx)
    assert [(s.new.id, s.old.id, s.within_lead) for s in switches] == [
        (near.key_id, LEGACY_ID, True), (soon.key_id, near.key_id, False)]
    assert switches[0].at == now + timedelta(hours=3)
    assert far.key_id not in {s.new.id for s in switches}
