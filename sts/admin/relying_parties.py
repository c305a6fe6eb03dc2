"""Relying parties: add (from a certificate or from metadata), update, roll over the certificate, remove.

Every operation takes what an administrator typed (short claim and algorithm names, seconds, certificate bytes),
checks all of it, applies the change and records one audit entry (``rp.add``, ``rp.update``, ``rp.rollover``,
``rp.remove``) with the relying party before and after as plain data: endpoint, token type, claims, algorithms,
the certificates' subject, fingerprint and expiry, never key material. A refusal is audited with its reason.

Claims go through the claim dictionary: ``emailaddress`` is stored as its URI, an unknown short name is refused
(the message lists the known ones), a URI outside the dictionary is kept with a warning. Legacy algorithms go
through :func:`sts.admin.algorithms.check_legacy`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sts.admin.algorithms import (DATA_ENCRYPTIONS, KEY_TRANSPORTS, KEY_TYPES, SIGNATURES, TOKEN_TYPES,
                                  AlgorithmChoice, check_legacy, choose, short_name)
from sts.admin.base import (Actor, AdminContext, Change, Conflict, InvalidFields, InvalidInput, NotFound,
                            record_change, refusals_audited)
from sts.admin.certificates import certificate_pem, read_certificate, summarize_pem
from sts.admin.rp_metadata import RpMetadata, load_rp_metadata, read_rp_metadata
from sts.model import ANY_CLAIM, RelyingParty
from sts.claim_dictionary import UnknownClaimName, resolve_claim
from sts.store.relying_parties import check_endpoint

T = TypeVar("T")


@dataclass(frozen=True)
class RelyingPartyPolicy:
    """A relying party's policy as an administrator gives it. ``None`` leaves a field as it is (update) or at its
    default (add). Claims are short names or URIs; algorithms and types their short names (``rsa-sha256``)."""

    match_prefix: bool | None = None
    token_type: str | None = None
    required_claims: tuple[str, ...] | None = None
    permitted_claims: tuple[str, ...] | None = None  # empty or "*": any claim
    encrypt: bool | None = None
    default_lifetime: int | None = None  # seconds; the settings' default when a new party leaves it out
    max_lifetime: int | None = None
    refuse_long_lifetime: bool | None = None
    name_id_claim: str | None = None  # "" clears it
    signature: str | None = None
    data_encryption: str | None = None
    key_transport: str | None = None
    allowed_token_types: tuple[str, ...] | None = None  # empty or "any": any
    allowed_key_types: tuple[str, ...] | None = None
    additional_audiences: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rollover:
    """A certificate rollover: tokens are encrypted for ``certificate`` from ``switch_at`` on.

    ``certificate`` None with a time moves the scheduled switch; ``cancel`` drops the scheduled certificate."""

    certificate: bytes | None = None
    switch_at: datetime | None = None
    cancel: bool = False


@dataclass(frozen=True)
class RelyingPartyChange:
    """What an operation left: the relying party as stored now, and the warnings the actor should read."""

    relying_party: RelyingParty
    warnings: tuple[str, ...] = ()


# -- reading ---------------------------------------------------------------------------------------------------


def list_relying_parties(ctx: AdminContext) -> list[RelyingParty]:
    """Every relying party, by endpoint."""
    return ctx.stores.relying_parties.list()


def get_relying_party(ctx: AdminContext, endpoint: str) -> RelyingParty:
    """The relying party registered under ``endpoint`` (normalised), or NotFound."""
    party = ctx.stores.relying_parties.get(endpoint)
    if party is None:
        raise NotFound(f"no relying party with endpoint {endpoint}", field="endpoint")
    return party


def relying_party_data(party: RelyingParty) -> dict[str, object]:
    """A relying party as plain data (the audit record's before/after, JSON): no key material."""
    cert, next_cert = summarize_pem(party.cert_pem), summarize_pem(party.next_cert_pem)
    return {
        "endpoint": party.endpoint,
        "match_prefix": party.match_prefix,
        "token_type": party.token_type.short,
        "encrypt": party.encrypt,
        "certificate": cert.as_data() if cert else None,
        "required_claims": list(party.required_claims),
        "permitted_claims": list(party.permitted_claims),
        "name_id_claim": party.name_id_claim,
        "default_lifetime": int(party.default_lifetime.total_seconds()),
        "max_lifetime": int(party.max_lifetime.total_seconds()),
        "refuse_long_lifetime": party.refuse_long_lifetime,
        **_algorithms(party).named(),
        "allowed_token_types": [t.short for t in party.allowed_token_types],
        "allowed_key_types": [short_name(KEY_TYPES, k) for k in party.allowed_key_types],
        "additional_audiences": list(party.additional_audiences),
        "next_certificate": next_cert.as_data() if next_cert else None,
        "next_cert_from": party.next_cert_from.isoformat() if party.next_cert_from else None,
    }


# -- changes ---------------------------------------------------------------------------------------------------


def add_relying_party(ctx: AdminContext, actor: Actor, endpoint: str, *, certificate: bytes | None = None,
                      policy: RelyingPartyPolicy = RelyingPartyPolicy(),
                      allow_legacy: bool = False) -> RelyingPartyChange:
    """Register a relying party at ``endpoint``, its tokens encrypted for ``certificate`` (PEM or DER) unless the
    policy turns encryption off. Event ``rp.add``."""
    subject = endpoint.strip()
    with refusals_audited(ctx, actor, "rp.add", subject):
        errors: dict[str, str] = {}
        _attempt(errors, lambda: _check_new_endpoint(subject))
        cert = None if certificate is None else _attempt(
            errors, lambda: certificate_pem(read_certificate(certificate, ctx.clock(), field="cert")))
        return _add(ctx, actor, subject, cert, policy, allow_legacy, errors)


def add_relying_party_from_metadata(ctx: AdminContext, actor: Actor, source: str | bytes, *,
                                    endpoint: str | None = None, certificate: bytes | None = None,
                                    policy: RelyingPartyPolicy = RelyingPartyPolicy(),
                                    allow_legacy: bool = False) -> RelyingPartyChange:
    """Register the relying party that WS-Federation or SAML 2.0 SP metadata describes: ``source`` is the
    document, or a file path or http(s) URL to read it from. ``endpoint`` overrides the entityID, ``certificate``
    the metadata's certificate. The claims the metadata requests become the party's required claims (and, with
    its optional ones, the permitted set) unless ``policy`` names claims itself. Whatever is wrong with the
    metadata is ONE message for the field ``metadata``. Event ``rp.add``."""
    label = source if isinstance(source, str) else "uploaded metadata"
    with refusals_audited(ctx, actor, "rp.add", (endpoint or label).strip()):
        try:
            document = load_rp_metadata(source) if isinstance(source, str) else source
            metadata = read_rp_metadata(document)
        except ValueError as exc:
            raise InvalidInput(f"the metadata cannot be used: {exc}", field="metadata") from None
        errors: dict[str, str] = {}
        if certificate is not None:
            cert = _attempt(errors, lambda: certificate_pem(read_certificate(certificate, ctx.clock(), field="cert")))
        else:
            try:
                cert = certificate_pem(read_certificate(metadata.cert_pem, ctx.clock(), field="metadata"))
            except InvalidInput as exc:
                raise InvalidInput(f"the certificate in the metadata: {exc.message}", field="metadata") from None
        subject = (endpoint or "").strip() or metadata.endpoint
        _attempt(errors, lambda: _check_new_endpoint(subject))
        return _add(ctx, actor, subject, cert, _with_requested_claims(policy, metadata), allow_legacy, errors)


def update_relying_party(ctx: AdminContext, actor: Actor, endpoint: str,
                         policy: RelyingPartyPolicy = RelyingPartyPolicy(), *, certificate: bytes | None = None,
                         rollover: Rollover | None = None, allow_legacy: bool = False) -> RelyingPartyChange:
    """Change what is given and nothing else: the policy, the certificate (replaced now), a rollover. All of it is
    checked before anything is stored. Event ``rp.update`` for the policy and certificate, ``rp.rollover`` for
    the next certificate (one entry each, only for what changed)."""
    with refusals_audited(ctx, actor, "rp.update" if rollover is None else "rp.rollover", endpoint):
        before = get_relying_party(ctx, endpoint)
        errors: dict[str, str] = {}
        warnings: list[str] = []
        rollover_warnings: list[str] = []
        changed = _apply_policy(before, policy, errors, warnings)
        if certificate is not None:
            pem = _attempt(errors, lambda: certificate_pem(read_certificate(certificate, ctx.clock(), field="cert")))
            changed = replace(changed, cert_pem=pem or changed.cert_pem)
        if rollover is not None:
            changed = _attempt(errors, lambda: _apply_rollover(ctx, changed, rollover, rollover_warnings)) or changed
        if changed.encrypt and not changed.cert_pem:
            errors.setdefault("cert", _NEEDS_CERT)
        if errors:
            raise InvalidFields(errors)
        warnings[:0] = check_legacy(_algorithms(changed), subject=before.endpoint, opted_in=allow_legacy,
                                    before=_algorithms(before))
        ctx.stores.relying_parties.update(changed)
    _record_update(ctx, actor, before, changed, tuple(warnings), tuple(rollover_warnings))
    return RelyingPartyChange(changed, tuple(dict.fromkeys([*warnings, *rollover_warnings])))


def roll_over_certificate(ctx: AdminContext, actor: Actor, endpoint: str, certificate: bytes,
                          switch_at: datetime) -> RelyingPartyChange:
    """Schedule the relying party's next certificate: its tokens are encrypted for it from ``switch_at`` on, so
    the party can install the new key first. Event ``rp.rollover``."""
    return update_relying_party(ctx, actor, endpoint, rollover=Rollover(certificate, switch_at))


def cancel_certificate_rollover(ctx: AdminContext, actor: Actor, endpoint: str) -> RelyingPartyChange:
    """Drop the scheduled next certificate. Event ``rp.rollover``."""
    return update_relying_party(ctx, actor, endpoint, rollover=Rollover(cancel=True))


def remove_relying_party(ctx: AdminContext, actor: Actor, endpoint: str) -> RelyingParty:
    """Remove the relying party: the next token request for it is refused. Event ``rp.remove``."""
    with refusals_audited(ctx, actor, "rp.remove", endpoint):
        party = get_relying_party(ctx, endpoint)
        if not ctx.stores.relying_parties.remove(party.endpoint):
            raise NotFound(f"no relying party with endpoint {endpoint}", field="endpoint")
    record_change(ctx.audit, actor, Change("rp.remove", party.endpoint, relying_party_data(party), None))
    return party


# -- the steps -------------------------------------------------------------------------------------------------

_NEEDS_CERT = "a certificate is needed to encrypt tokens (give one, or turn encryption off)"


def _add(ctx: AdminContext, actor: Actor, endpoint: str, cert_pem: bytes | None, policy: RelyingPartyPolicy,
         allow_legacy: bool, errors: dict[str, str]) -> RelyingPartyChange:
    """The common end of both adds: defaults, policy, checks, the store, the audit record."""
    settings = ctx.settings
    base = RelyingParty(endpoint=endpoint, cert_pem=cert_pem,
                        default_lifetime=timedelta(seconds=settings.default_lifetime_seconds),
                        max_lifetime=timedelta(seconds=settings.max_lifetime_seconds))
    warnings: list[str] = []
    party = _apply_policy(base, policy, errors, warnings)
    if party.encrypt and party.cert_pem is None:
        errors.setdefault("cert", _NEEDS_CERT)
    if errors:
        raise InvalidFields(errors)
    warnings[:0] = check_legacy(_algorithms(party), subject=endpoint, opted_in=allow_legacy)
    existing = ctx.stores.relying_parties.get(endpoint)
    if existing is not None:
        raise Conflict(f"a relying party with endpoint {existing.endpoint} already exists", field="endpoint")
    try:
        ctx.stores.relying_parties.add(party)
    except ValueError as exc:  # a concurrent add of the same endpoint
        raise Conflict(str(exc), field="endpoint") from None
    final = tuple(dict.fromkeys(warnings))
    record_change(ctx.audit, actor, Change("rp.add", endpoint, None, relying_party_data(party), final))
    return RelyingPartyChange(party, final)


def _with_requested_claims(policy: RelyingPartyPolicy, metadata: RpMetadata) -> RelyingPartyPolicy:
    """The metadata's requested claims as the policy, unless the administrator gave claims themselves."""
    if not metadata.claims or policy.required_claims or policy.permitted_claims:
        return policy
    required = tuple(c.uri for c in metadata.claims if c.required)
    optional = tuple(c.uri for c in metadata.claims if not c.required)
    return replace(policy, required_claims=required, permitted_claims=(required + optional) if optional else None)


def _check_new_endpoint(endpoint: str) -> None:
    if not endpoint:
        raise InvalidInput("give the relying party's endpoint (its AppliesTo URL or urn: URI)", field="endpoint")
    try:
        check_endpoint(endpoint)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="endpoint") from None


def _apply_policy(party: RelyingParty, policy: RelyingPartyPolicy, errors: dict[str, str],
                  warnings: list[str]) -> RelyingParty:
    """``party`` with every given policy field checked and applied; errors land in ``errors`` by field."""
    changes: dict[str, object] = {}
    for field, (attribute, parse) in _policy_fields(warnings).items():
        value = getattr(policy, field)
        if value is None:
            continue
        try:
            changes[attribute] = parse(value)
        except InvalidInput as exc:
            errors.setdefault(exc.field or field, exc.message)
    changed = replace(party, **changes)  # type: ignore[arg-type]
    if changed.default_lifetime <= changed.max_lifetime:
        return changed
    if policy.default_lifetime is not None:
        warnings.append(f"the default lifetime {int(changed.default_lifetime.total_seconds())}s is longer than "
                        f"the cap: {int(changed.max_lifetime.total_seconds())}s is used")
    return replace(changed, default_lifetime=changed.max_lifetime)


def _policy_fields(warnings: list[str]) -> dict[str, tuple[str, Callable[[Any], object]]]:
    """Policy field -> (RelyingParty attribute, how its input is checked and converted)."""
    return {
        "match_prefix": ("match_prefix", bool),
        "encrypt": ("encrypt", bool),
        "refuse_long_lifetime": ("refuse_long_lifetime", bool),
        "token_type": ("token_type", lambda v: choose(TOKEN_TYPES, v, field="token_type", what="token type")),
        "signature": ("signature_algorithm",
                      lambda v: choose(SIGNATURES, v, field="signature", what="signature algorithm")),
        "data_encryption": ("data_encryption",
                            lambda v: choose(DATA_ENCRYPTIONS, v, field="data_encryption", what="data encryption")),
        "key_transport": ("key_transport",
                          lambda v: choose(KEY_TRANSPORTS, v, field="key_transport", what="key transport")),
        "required_claims": ("required_claims", lambda v: _claims(v, "required_claims", warnings)),
        "permitted_claims": ("permitted_claims", lambda v: _permitted(v, warnings)),
        "name_id_claim": ("name_id_claim", lambda v: _name_id_claim(v, warnings)),
        "default_lifetime": ("default_lifetime", lambda v: _lifetime(v, "default_lifetime")),
        "max_lifetime": ("max_lifetime", lambda v: _lifetime(v, "max_lifetime")),
        "allowed_token_types": ("allowed_token_types",
                                lambda v: _types(v, TOKEN_TYPES, "allowed_token_types", "token type")),
        "allowed_key_types": ("allowed_key_types", lambda v: _types(v, KEY_TYPES, "allowed_key_types", "key type")),
        "additional_audiences": ("additional_audiences", _audiences),
    }


def _apply_rollover(ctx: AdminContext, party: RelyingParty, rollover: Rollover, warnings: list[str]) -> RelyingParty:
    if rollover.cancel:
        return replace(party, next_cert_pem=None, next_cert_from=None)
    now = ctx.clock()
    next_pem = party.next_cert_pem
    if rollover.certificate is not None:
        next_pem = certificate_pem(read_certificate(rollover.certificate, now, field="next_cert"))
        if rollover.switch_at is None:
            raise InvalidInput("give the time from which the next certificate is used (the next certificate and "
                               "its switch time go together)", field="next_cert_from")
    elif next_pem is None:
        raise InvalidInput("no next certificate is scheduled: give one (the next certificate and its switch time "
                           "go together)", field="next_cert")
    switch_at = rollover.switch_at or party.next_cert_from
    if switch_at is None or switch_at.tzinfo is None:
        raise InvalidInput("the switch time needs a time zone (UTC when none is typed)", field="next_cert_from")
    summary = summarize_pem(next_pem)
    if summary is not None and switch_at >= summary.not_after:
        raise InvalidInput(f"the next certificate expires on {summary.not_after.isoformat()}, before the switch "
                           f"time", field="next_cert_from")
    if switch_at <= now and (rollover.certificate is not None or switch_at != party.next_cert_from):
        warnings.append(f"the switch time {switch_at.isoformat()} is not in the future: tokens for "
                        f"{party.endpoint} are encrypted for the next certificate at once")
    return replace(party, next_cert_pem=next_pem, next_cert_from=switch_at)


def _record_update(ctx: AdminContext, actor: Actor, before: RelyingParty, after: RelyingParty,
                   warnings: tuple[str, ...], rollover_warnings: tuple[str, ...]) -> None:
    """One ``rp.update`` for the policy and certificate, one ``rp.rollover`` for the next certificate; each with
    only the fields that changed (nothing changed: one ``rp.update`` saying so)."""
    old, new = relying_party_data(before), relying_party_data(after)
    rollover_keys = ("next_certificate", "next_cert_from")
    policy_changed = [k for k in new if k not in rollover_keys and old[k] != new[k]]
    rollover_changed = [k for k in rollover_keys if old[k] != new[k]]
    if rollover_changed:
        record_change(ctx.audit, actor, Change("rp.rollover", after.endpoint, _pick(old, rollover_changed),
                                               _pick(new, rollover_changed), rollover_warnings))
    if policy_changed or not rollover_changed:
        record_change(ctx.audit, actor, Change("rp.update", after.endpoint, _pick(old, policy_changed),
                                               _pick(new, policy_changed), warnings))


def _pick(data: Mapping[str, object], keys: Iterable[str]) -> dict[str, object]:
    return {"endpoint": data["endpoint"], **{k: data[k] for k in keys}}


def _algorithms(party: RelyingParty) -> AlgorithmChoice:
    return AlgorithmChoice(party.signature_algorithm, party.data_encryption, party.key_transport)


def _claims(texts: Iterable[str], field: str, warnings: list[str]) -> tuple[str, ...]:
    """Claim URIs from short names or URIs, in order and once each; an unknown short name is refused."""
    uris = []
    for text in texts:
        if not text.strip():
            continue
        try:
            claim = resolve_claim(text)
        except (UnknownClaimName, ValueError) as exc:
            raise InvalidInput(str(exc), field=field) from None
        if claim.warning and claim.warning not in warnings:
            warnings.append(claim.warning)
        uris.append(claim.uri)
    return tuple(dict.fromkeys(uris))


def _name_id_claim(text: str, warnings: list[str]) -> str | None:
    """The NameID claim's URI; an empty text clears it."""
    return _claims((text,), "name_id_claim", warnings)[0] if text.strip() else None


def _permitted(texts: Iterable[str], warnings: list[str]) -> tuple[str, ...]:
    wanted = [t for t in texts if t.strip()]
    if not wanted or any(t.strip() == ANY_CLAIM for t in wanted):
        return (ANY_CLAIM,)
    return _claims(wanted, "permitted_claims", warnings)


def _lifetime(seconds: int, field: str) -> timedelta:
    if seconds < 1:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number of seconds, at least 1", field=field)
    return timedelta(seconds=seconds)


def _types(names: Iterable[str], table: Mapping[str, T], field: str, what: str) -> tuple[T, ...]:
    wanted = [n for n in names if n.strip()]
    if any(n.strip().lower() == "any" for n in wanted):
        return ()
    return tuple(dict.fromkeys(_choose_any(table, n, field, what) for n in wanted))


def _choose_any(table: Mapping[str, T], text: str, field: str, what: str) -> T:
    value = table.get(text.strip().lower())
    if value is None:
        raise InvalidInput(f"unknown {what} {text!r}: use one of {', '.join(table)}, or any", field=field)
    return value


def _audiences(audiences: Iterable[str]) -> tuple[str, ...]:
    result = []
    for audience in (a.strip() for a in audiences):
        if not audience:
            continue
        try:
            check_endpoint(audience)
        except ValueError:
            raise InvalidInput(f"audience {audience!r} is not an absolute URL or urn: URI",
                               field="additional_audiences") from None
        result.append(audience)
    return tuple(dict.fromkeys(result))


def _attempt(errors: dict[str, str], step: Callable[[], T]) -> T | None:
    """Run one field's check; its InvalidInput goes into ``errors`` (the first per field) so a form shows all."""
    try:
        return step()
    except InvalidInput as exc:
        errors.setdefault(exc.field or "form", exc.message)
        return None


__all__ = ["RelyingPartyChange", "RelyingPartyPolicy", "Rollover", "add_relying_party",
           "add_relying_party_from_metadata", "cancel_certificate_rollover", "get_relying_party",
           "list_relying_parties", "relying_party_data", "remove_relying_party", "roll_over_certificate",
           "update_relying_party"]
