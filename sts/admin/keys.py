"""The STS signing keys: list them, schedule a rollover (one rule for the CLI, the console and the JSON API).

A rollover publishes the next key in the federation metadata at once and makes it sign from its switch time.
A relying party that has not fetched the metadata listing the new key by then rejects every token, so the switch
must lie at least ``rollover_min_lead_seconds`` (default 24 h) ahead. A sooner or past switch is refused with
``ConfirmationRequired``; only an explicit override (``sts keys rollover --now`` or ``--allow-short-lead``, the
console's confirmation) accepts it, and the audit record names the override and the risk accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sts.admin.base import (Actor, AdminContext, Change, ConfirmationRequired, InvalidInput, record_change,
                            record_refusal)
from sts.tokens.keyring import KeyEntry, ScheduledKeys

EVENT = "keys.rollover"
DEFAULT_OVERLAP = timedelta(days=7)
#: The dashboard announces a switch this far ahead at least (or the minimum lead time, when that is longer).
NEAR_SWITCH = timedelta(days=7)


class Override(Enum):
    """How an administrator accepted a switch sooner than the minimum lead time."""

    NOW = "now"  # `sts keys rollover --now`: the new key signs at once
    SHORT_LEAD = "allow-short-lead"  # `--allow-short-lead`: the given --at stands, even if near or past
    CONFIRMED = "confirmed"  # the console's confirmation checkbox


@dataclass(frozen=True)
class Rollover:
    """What to schedule. ``at`` None: ``now`` + the minimum lead (or now, with ``Override.NOW``)."""

    at: datetime | None = None
    overlap: timedelta = DEFAULT_OVERLAP
    key_pem: bytes | None = None  # None: a new RSA-2048 key is generated
    cert_pem: bytes | None = None  # None: a self-signed certificate is made for key_pem
    override: Override | None = None


@dataclass(frozen=True)
class Scheduled:
    """A scheduled key: its id and fingerprint, when it signs, the key it replaces, the warning accepted."""

    key_id: str
    fingerprint: str
    active_from: datetime
    replaces: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Switch:
    """An upcoming switch, for the dashboard: ``new`` signs instead of ``old`` at ``at``."""

    new: KeyEntry
    old: KeyEntry
    at: datetime
    within_lead: bool  # sooner than the minimum lead time: relying parties may not have the new key yet


def keyring_for(ctx: AdminContext) -> ScheduledKeys:
    """The keyring where ``key_source`` says: the home's files, the shared database or the HSM (front-ends with a
    long-lived one pass it to the operations instead). A rollover scheduled through a database keyring is in the
    database at once: every node publishes the new key from then, and signs with it from its switch time."""
    from sts.tokens.key_store import KeySourceError, open_keyring  # noqa: PLC0415

    path = ctx.settings.signing_key_path
    if ctx.settings.key_source == "files" and not path.exists():
        raise InvalidInput(f"no signing key at {path}: run `sts init` first")
    try:
        return open_keyring(ctx.settings, ctx.stores.engine, clock=ctx.clock)
    except KeySourceError as exc:
        raise InvalidInput(str(exc)) from None


def list_keys(ctx: AdminContext, keyring: ScheduledKeys | None = None) -> list[KeyEntry]:
    """Every signing key with its schedule and state now."""
    return (keyring or keyring_for(ctx)).entries(ctx.clock())


def min_lead(ctx: AdminContext) -> timedelta:
    return max(ctx.settings.rollover_min_lead, timedelta(0))


def lead_risk(ctx: AdminContext) -> str:
    """What an administrator accepts by overriding the minimum lead time."""
    return (f"relying parties that have not fetched the federation metadata listing the new key (they need up to "
            f"{span(min_lead(ctx))}) will reject every token it signs until they refresh it")


def check_switch_time(ctx: AdminContext, at: datetime, override: Override | None,
                      now: datetime | None = None) -> tuple[datetime, tuple[str, ...]]:
    """The switch time to use and the warning accepted; ``ConfirmationRequired`` when it is too soon.

    A past time with an override means now: the overlap that keeps the replaced key published counts from the
    real switch, not from a moment already gone."""
    if at.tzinfo is None:
        raise InvalidInput("the switch time needs a time zone (UTC if in doubt)", field="at")
    now = now or ctx.clock()
    lead = min_lead(ctx)
    if override is Override.NOW and at <= now:
        problem = "the new key signs at once, before any relying party could fetch the metadata listing it"
    elif at <= now:
        problem = (f"the switch time {at.isoformat(timespec='seconds')} is not in the future: the new key would "
                   f"sign at once, before any relying party could fetch the metadata listing it")
    elif at < now + lead:
        problem = (f"the switch time {at.isoformat(timespec='seconds')} is {span(at - now)} from now, sooner than "
                   f"the minimum lead time of {span(lead)} (setting rollover_min_lead_seconds) that relying "
                   f"parties need to fetch the metadata listing the new key")
    else:
        return at, ()
    if override is None:
        raise ConfirmationRequired(problem, field="at", risk=lead_risk(ctx))
    return max(at, now), (f"{problem}; accepted ({override.value}): {lead_risk(ctx)}",)


def schedule_rollover(ctx: AdminContext, actor: Actor, request: Rollover, keyring: ScheduledKeys | None = None) -> Scheduled:
    """Schedule a new signing key after checking its switch time; audited as ``keys.rollover`` either way."""
    ring = keyring or keyring_for(ctx)
    try:
        return _schedule(ctx, actor, ring, request)
    except (InvalidInput, ConfirmationRequired) as error:
        record_refusal(ctx.audit, actor, EVENT, "signing key", error)
        raise


def upcoming_switches(ctx: AdminContext, keyring: ScheduledKeys | None = None) -> list[Switch]:
    """Switches due within ``NEAR_SWITCH`` or the minimum lead time (whichever is longer), soonest first."""
    ring = keyring or keyring_for(ctx)
    now = ctx.clock()
    horizon = now + max(NEAR_SWITCH, min_lead(ctx))
    entries = ring.entries(now)
    switches = []
    for new in sorted((e for e in entries if e.state == "next"), key=lambda e: e.active_from):
        if new.active_from > horizon:
            break
        earlier = [e for e in entries if e.active_from < new.active_from]
        old = max(earlier, key=lambda e: e.active_from) if earlier else new
        switches.append(Switch(new, old, new.active_from, new.active_from < now + min_lead(ctx)))
    return switches


# --- internals ---------------------------------------------------------------------------------------------------


def _schedule(ctx: AdminContext, actor: Actor, ring: ScheduledKeys, request: Rollover) -> Scheduled:
    if request.cert_pem is not None and request.key_pem is None:
        raise InvalidInput("a certificate needs its private key", field="key")
    if request.overlap < timedelta(0):
        raise InvalidInput("the overlap must not be negative", field="overlap")
    now = ctx.clock()
    if request.at is None:
        wanted = now if request.override is Override.NOW else now + min_lead(ctx)
    else:
        wanted = request.at
    active_from, warnings = check_switch_time(ctx, wanted, request.override, now)
    before = ring.entries(now)
    replaced = _signing_at(before, active_from)
    try:
        if request.key_pem is not None:
            key_id = ring.schedule(request.key_pem, request.cert_pem, active_from=active_from,
                                   overlap=request.overlap)
        else:
            key_id = ring.generate_and_schedule(active_from, request.overlap)
    except ValueError as exc:  # a key that does not load, a certificate that is not the key's
        raise InvalidInput(str(exc), field="key") from None
    after = ring.entries(now)
    new = next(e for e in after if e.id == key_id)
    record_change(ctx.audit, actor, Change(
        EVENT, key_id, before=_schedule_state(before),
        after={**_schedule_state(after), "scheduled": key_id, "fingerprint": new.fingerprint,
               "switch_at": active_from.isoformat(), "replaces": replaced.id,
               "replaces_fingerprint": replaced.fingerprint, "overlap_days": request.overlap / timedelta(days=1),
               "override": request.override.value if request.override else None},
        warnings=warnings))
    return Scheduled(key_id, new.fingerprint, active_from, replaced.id, warnings)


def _signing_at(entries: list[KeyEntry], moment: datetime) -> KeyEntry:
    """The key that signs at ``moment`` (as the keyring decides: the latest start not after it)."""
    started = [e for e in entries if e.active_from <= moment]
    return max(started, key=lambda e: e.active_from) if started else min(entries, key=lambda e: e.active_from)


def _describe(entry: KeyEntry) -> dict[str, object]:
    return {"id": entry.id, "fingerprint": entry.fingerprint, "active_from": entry.active_from.isoformat(),
            "retire_after": entry.retire_after.isoformat() if entry.retire_after else None, "state": entry.state}


def _schedule_state(entries: list[KeyEntry]) -> dict[str, object]:
    return {"keys": [_describe(e) for e in entries]}


def span(delta: timedelta) -> str:
    """A duration as an administrator says it: ``24 h``, ``1.5 h``, ``90 min``, ``3 days``, ``45 s``."""
    seconds = int(delta.total_seconds())
    for unit, name in ((86400, "days"), (3600, "h")):
        if seconds >= (2 * unit if unit == 86400 else unit):
            value = round(seconds / unit, 1)
            return f"{value:g} {name}"
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


__all__ = ["DEFAULT_OVERLAP", "EVENT", "NEAR_SWITCH", "Override", "Rollover", "Scheduled", "Switch", "span",
           "check_switch_time", "keyring_for", "lead_risk", "list_keys", "min_lead", "schedule_rollover",
           "upcoming_switches"]
