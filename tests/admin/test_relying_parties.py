"""The relying-party operations of the admin core, without HTTP: every operation and every refusal, real SQLite."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from signing import key_pem, make_client
from sts.admin import relying_parties as core
from sts.admin.base import (Actor, AdminContext, ConfirmationRequired, Conflict, InvalidFields, InvalidInput, NotFound,
                            field_errors)
from sts.admin.relying_parties import RelyingPartyPolicy, Rollover
from sts.model import ANY_CLAIM
from sts.claim_dictionary import BY_NAME
from sts.store.audit import AuditRecord, AuditTrail
from sts.tokens.crypto.keys import fingerprint_sha256, load_certificate
from sts.uris import DataEncryption, KeyType, SignatureAlgorithm, TokenType

RP = "https://rp.example/app"
EMAIL = BY_NAME["emailaddress"].uri
GIVEN = BY_NAME["givenname"].uri

LastAudit = Callable[[str], AuditRecord]


@dataclass(frozen=True)
class Certs:
    current: bytes
    next: bytes
    short: bytes  # valid for 10 days
    expired: bytes
    private_key: bytes


@pytest.fixture(scope="module")
def certs() -> Certs:
    key, _, current = make_client("rp.example")
    _, _, following = make_client("rp.example next")
    _, _, short = make_client("short.example", days=10)
    _, _, expired = make_client("old.example", not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    return Certs(current, following, short, expired, key_pem(key))


def _add(ctx: AdminContext, actor: Actor, certs: Certs, endpoint: str = RP, **policy: object) -> core.RelyingPartyChange:
    return core.add_relying_party(ctx, actor, endpoint, certificate=certs.current,
                                  policy=RelyingPartyPolicy(**policy))  # type: ignore[arg-type]


def _fields(refused: pytest.ExceptionInfo[InvalidFields]) -> dict[str, str]:
    return refused.value.errors


# -- add from a certificate -----------------------------------------------------------------------------------


def test_add_stores_the_party_with_the_settings_defaults_and_audits_it(ctx: AdminContext, actor: Actor,
                                                                         certs: Certs, last_audit: LastAudit) -> None:
    change = _add(ctx, actor, certs, required_claims=("emailaddress",))
    stored = ctx.stores.relying_parties.get(RP)
    assert stored == change.relying_party and change.warnings == ()
    assert stored is not None and stored.encrypt and stored.cert_pem is not None
    assert stored.required_claims == (EMAIL,) and stored.permitted_claims == (ANY_CLAIM,)
    assert stored.default_lifetime == timedelta(seconds=ctx.settings.default_lifetime_seconds)
    assert stored.max_lifetime == timedelta(seconds=ctx.settings.max_lifetime_seconds)
    record = last_audit("rp.add")
    assert (record.actor, record.outcome, record.subject) == ("root", "ok", RP)
    assert record.detail["before"] is None
    after = record.detail["after"]
    assert after["required_claims"] == [EMAIL] and after["signature"] == "rsa-sha256"
    assert after["certificate"]["fingerprint"] == fingerprint_sha256(load_certificate(certs.current))
    assert "BEGIN CERTIFICATE" not in str(record.detail)  # a summary, never the certificate itself


def test_add_takes_der_and_stores_pem(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    der = load_certificate(certs.current).public_bytes(Encoding.DER)
    change = core.add_relying_party(ctx, actor, "urn:example:rp", certificate=der)
    assert change.relying_party.cert_pem is not None
    assert change.relying_party.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_add_with_every_policy_field(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    change = _add(ctx, actor, certs, match_prefix=True, token_type="saml11", permitted_claims=("givenname", EMAIL),
                  default_lifetime=60, max_lifetime=600, refuse_long_lifetime=True, name_id_claim="emailaddress",
                  signature="ecdsa-sha256", data_encryption="aes128-gcm", allowed_token_types=("saml11",),
                  allowed_key_types=("bearer", "public"), additional_audiences=("urn:extra:aud", "urn:extra:aud"))
    party = change.relying_party
    assert party.match_prefix and party.token_type is TokenType.SAML11 and party.refuse_long_lifetime
    assert party.permitted_claims == (GIVEN, EMAIL) and party.name_id_claim == EMAIL
    assert (party.default_lifetime, party.max_lifetime) == (timedelta(seconds=60), timedelta(seconds=600))
    assert party.signature_algorithm is SignatureAlgorithm.ECDSA_SHA256
    assert party.data_encryption is DataEncryption.AES128_GCM
    assert party.allowed_token_types == (TokenType.SAML11,)
    assert party.allowed_key_types == (KeyType.BEARER, KeyType.PUBLIC_KEY)
    assert party.additional_audiences == ("urn:extra:aud",)


def test_add_without_encryption_needs_no_certificate(ctx: AdminContext, actor: Actor) -> None:
    change = core.add_relying_party(ctx, actor, "https://plain.example/", policy=RelyingPartyPolicy(encrypt=False))
    assert not change.relying_party.encrypt and change.relying_party.cert_pem is None


def test_a_default_lifetime_over_the_cap_is_capped_with_a_warning(ctx: AdminContext, actor: Actor,
                                                                    certs: Certs) -> None:
    change = _add(ctx, actor, certs, default_lifetime=900, max_lifetime=600)
    assert change.relying_party.default_lifetime == timedelta(seconds=600)
    assert any("longer than the cap" in w for w in change.warnings)


# -- claims through the dictionary ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bogusclaimname", "email"])
def test_an_unknown_short_claim_name_is_refused_listing_the_known_ones(ctx: AdminContext, actor: Actor,
                                                                       certs: Certs, name: str) -> None:
    with pytest.raises(InvalidFields) as refused:
        _add(ctx, actor, certs, required_claims=(name,))
    message = _fields(refused)["required_claims"]
    assert f"unknown claim name {name!r}" in message and "emailaddress" in message and "givenname" in message
    assert ctx.stores.relying_parties.get(RP) is None


def test_a_uri_outside_the_dictionary_is_kept_with_a_warning(ctx: AdminContext, actor: Actor, certs: Certs,
                                                             last_audit: LastAudit) -> None:
    change = _add(ctx, actor, certs, required_claims=("urn:c:age",), permitted_claims=("urn:c:age", "*"))
    assert change.relying_party.required_claims == ("urn:c:age",)
    assert change.relying_party.permitted_claims == (ANY_CLAIM,)
    assert len(change.warnings) == 1 and "urn:c:age is not in the claim dictionary" in change.warnings[0]
    assert last_audit("rp.add").detail["warnings"] == list(change.warnings)


@pytest.mark.parametrize("field", ["permitted_claims", "name_id_claim"])
def test_every_claim_field_goes_through_the_dictionary(ctx: AdminContext, actor: Actor, certs: Certs,
                                                       field: str) -> None:
    value: object = ("mail",) if field == "permitted_claims" else "mail"
    with pytest.raises(InvalidFields) as refused:
        core.add_relying_party(ctx, actor, RP, certificate=certs.current,
                               policy=RelyingPartyPolicy(**{field: value}))  # type: ignore[arg-type]
    assert "unknown claim name 'mail'" in _fields(refused)[field]


# -- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint, message", [
    ("not/a/url", "must be an absolute URL"),
    ("/relative", "must be an absolute URL"),
    ("https://has space.example/", "without whitespace"),
    ("", "give the relying party's endpoint"),
])
def test_a_bad_endpoint_is_refused(ctx: AdminContext, actor: Actor, certs: Certs, endpoint: str,
                                   message: str) -> None:
    with pytest.raises(InvalidFields) as refused:
        _add(ctx, actor, certs, endpoint=endpoint)
    assert message in _fields(refused)["endpoint"]


@pytest.mark.parametrize("which, message", [
    ("garbage", "not a PEM or DER X.509 certificate"),
    ("expired", "the certificate expired"),
    ("private_key", "this is a private key"),
    ("empty", "the certificate is empty"),
    ("huge", "too large for a certificate"),
])
def test_a_bad_certificate_is_refused(ctx: AdminContext, actor: Actor, certs: Certs, which: str,
                                      message: str) -> None:
    data = {"garbage": b"not a certificate", "expired": certs.expired, "private_key": certs.private_key,
            "empty": b"  \n", "huge": b"x" * 300_000}[which]
    with pytest.raises(InvalidFields) as refused:
        core.add_relying_party(ctx, actor, RP, certificate=data)
    assert message in _fields(refused)["cert"]
    assert ctx.stores.relying_parties.get(RP) is None


def test_encryption_without_a_certificate_is_refused(ctx: AdminContext, actor: Actor) -> None:
    with pytest.raises(InvalidFields) as refused:
        core.add_relying_party(ctx, actor, RP)
    assert "a certificate is needed to encrypt tokens" in _fields(refused)["cert"]


def test_every_bad_field_is_reported_at_once(ctx: AdminContext, actor: Actor, last_audit: LastAudit) -> None:
    policy = RelyingPartyPolicy(token_type="saml3", signature="md5", max_lifetime=0, allowed_key_types=("gold",),
                                additional_audiences=("not a uri",), required_claims=("nope",))
    with pytest.raises(InvalidFields) as refused:
        core.add_relying_party(ctx, actor, "nope", certificate=b"junk", policy=policy)
    assert set(_fields(refused)) == {"endpoint", "cert", "token_type", "signature", "max_lifetime",
                                     "allowed_key_types", "additional_audiences", "required_claims"}
    assert "use one of saml20, saml11" in _fields(refused)["token_type"]
    record = last_audit("rp.add")
    assert record.outcome == "refused" and record.actor == "root" and record.detail["reason"]


def test_a_duplicate_endpoint_is_a_conflict_even_spelled_differently(ctx: AdminContext, actor: Actor,
                                                                      certs: Certs) -> None:
    _add(ctx, actor, certs)
    with pytest.raises(Conflict, match="already exists") as refused:
        _add(ctx, actor, certs, endpoint="HTTPS://RP.example:443/app/")
    assert refused.value.field == "endpoint"


# -- the legacy-algorithm rule --------------------------------------------------------------------------------


@pytest.mark.parametrize("field, name", [("signature", "rsa-sha1"), ("key_transport", "rsa-1_5"),
                                         ("data_encryption", "aes256-cbc"), ("data_encryption", "aes128-cbc")])
def test_a_legacy_algorithm_needs_the_opt_in(ctx: AdminContext, actor: Actor, certs: Certs,
                                             last_audit: LastAudit, field: str, name: str) -> None:
    with pytest.raises(ConfirmationRequired) as refused:
        _add(ctx, actor, certs, **{field: name})
    assert refused.value.field == field and "legacy algorithm" in refused.value.message and refused.value.risk
    assert ctx.stores.relying_parties.get(RP) is None
    change = core.add_relying_party(ctx, actor, RP, certificate=certs.current,
                                    policy=RelyingPartyPolicy(**{field: name}), allow_legacy=True)  # type: ignore[arg-type]
    assert change.warnings == (f"legacy algorithm {name} for {RP}: {refused.value.risk}",)
    assert last_audit("rp.add").detail["warnings"] == list(change.warnings)


def test_keeping_a_legacy_algorithm_needs_no_new_opt_in(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    core.add_relying_party(ctx, actor, RP, certificate=certs.current,
                           policy=RelyingPartyPolicy(signature="rsa-sha1"), allow_legacy=True)
    change = core.update_relying_party(ctx, actor, RP, RelyingPartyPolicy(signature="rsa-sha1", max_lifetime=60))
    assert change.warnings == () and change.relying_party.max_lifetime == timedelta(seconds=60)
    with pytest.raises(ConfirmationRequired):  # another legacy algorithm is a new choice
        core.update_relying_party(ctx, actor, RP, RelyingPartyPolicy(key_transport="rsa-1_5"))


# -- update ---------------------------------------------------------------------------------------------------


def test_update_changes_only_what_is_given_and_audits_the_difference(ctx: AdminContext, actor: Actor, certs: Certs,
                                                                      last_audit: LastAudit) -> None:
    before = _add(ctx, actor, certs, required_claims=("givenname",), token_type="saml11").relying_party
    change = core.update_relying_party(ctx, actor, RP, RelyingPartyPolicy(required_claims=("emailaddress",)))
    assert change.relying_party.required_claims == (EMAIL,)
    assert change.relying_party.token_type is TokenType.SAML11 and change.relying_party.cert_pem == before.cert_pem
    record = last_audit("rp.update")
    assert record.detail["before"] == {"endpoint": RP, "required_claims": [GIVEN]}
    assert record.detail["after"] == {"endpoint": RP, "required_claims": [EMAIL]}


def test_update_replaces_the_certificate_and_clears_lists(ctx: AdminContext, actor: Actor, certs: Certs,
                                                          last_audit: LastAudit) -> None:
    _add(ctx, actor, certs, additional_audiences=("urn:a:b",), allowed_token_types=("saml20",))
    change = core.update_relying_party(ctx, actor, RP, RelyingPartyPolicy(
        additional_audiences=(), allowed_token_types=("any",), name_id_claim=""), certificate=certs.next)
    assert change.relying_party.additional_audiences == () and change.relying_party.allowed_token_types == ()
    assert load_certificate(change.relying_party.cert_pem or b"").subject.rfc4514_string().endswith("rp.example next")
    after = last_audit("rp.update").detail["after"]
    assert "rp.example next" in after["certificate"]["subject"]


def test_update_refusals(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    with pytest.raises(NotFound, match="no relying party with endpoint https://nope.example/"):
        core.update_relying_party(ctx, actor, "https://nope.example/", RelyingPartyPolicy(encrypt=False))
    core.add_relying_party(ctx, actor, RP, policy=RelyingPartyPolicy(encrypt=False))
    with pytest.raises(InvalidFields) as refused:
        core.update_relying_party(ctx, actor, RP, RelyingPartyPolicy(encrypt=True, required_claims=("bogus",)))
    assert set(_fields(refused)) == {"cert", "required_claims"}
    stored = ctx.stores.relying_parties.get(RP)
    assert stored is not None and not stored.encrypt and stored.required_claims == ()  # nothing applied


# -- certificate rollover -------------------------------------------------------------------------------------


def test_rollover_schedules_the_next_certificate(ctx: AdminContext, actor: Actor, certs: Certs, now: datetime,
                                                 last_audit: LastAudit, trail: AuditTrail) -> None:
    _add(ctx, actor, certs)
    switch = now + timedelta(days=2)
    change = core.roll_over_certificate(ctx, actor, RP, certs.next, switch)
    party = change.relying_party
    assert party.next_cert_from == switch and party.encryption_cert_pem(switch) == party.next_cert_pem
    assert party.encryption_cert_pem(now) == party.cert_pem and change.warnings == ()
    record = last_audit("rp.rollover")
    assert record.detail["before"] == {"endpoint": RP, "next_certificate": None, "next_cert_from": None}
    assert record.detail["after"]["next_cert_from"] == switch.isoformat()
    assert "rp.example next" in record.detail["after"]["next_certificate"]["subject"]
    assert not trail.search(event="rp.update")
    cancelled = core.cancel_certificate_rollover(ctx, actor, RP).relying_party
    assert cancelled.next_cert_pem is None and cancelled.next_cert_from is None


def test_rollover_at_a_past_time_switches_at_once_with_a_warning(ctx: AdminContext, actor: Actor, certs: Certs,
                                                                 now: datetime) -> None:
    _add(ctx, actor, certs)
    change = core.roll_over_certificate(ctx, actor, RP, certs.next, now - timedelta(seconds=1))
    assert change.relying_party.encryption_cert_pem(now) == change.relying_party.next_cert_pem
    assert len(change.warnings) == 1 and "encrypted for the next certificate at once" in change.warnings[0]


def test_rollover_refusals(ctx: AdminContext, actor: Actor, certs: Certs, now: datetime) -> None:
    _add(ctx, actor, certs)
    with pytest.raises(InvalidFields) as no_time:
        core.update_relying_party(ctx, actor, RP, rollover=Rollover(certs.next))
    assert "go together" in _fields(no_time)["next_cert_from"]
    with pytest.raises(InvalidFields) as no_cert:
        core.update_relying_party(ctx, actor, RP, rollover=Rollover(switch_at=now + timedelta(days=1)))
    assert "no next certificate is scheduled" in _fields(no_cert)["next_cert"]
    with pytest.raises(InvalidFields) as too_late:
        core.roll_over_certificate(ctx, actor, RP, certs.short, now + timedelta(days=30))
    assert "before the switch time" in _fields(too_late)["next_cert_from"]
    with pytest.raises(InvalidFields) as expired:
        core.roll_over_certificate(ctx, actor, RP, certs.expired, now + timedelta(days=1))
    assert "expired" in _fields(expired)["next_cert"]
    with pytest.raises(NotFound):
        core.roll_over_certificate(ctx, actor, "https://nope.example/", certs.next, now + timedelta(days=1))


def test_moving_the_switch_time_keeps_the_next_certificate(ctx: AdminContext, actor: Actor, certs: Certs,
                                                            now: datetime) -> None:
    _add(ctx, actor, certs)
    first = core.roll_over_certificate(ctx, actor, RP, certs.next, now + timedelta(days=2)).relying_party
    moved = core.update_relying_party(ctx, actor, RP, rollover=Rollover(switch_at=now + timedelta(days=3)))
    assert moved.relying_party.next_cert_pem == first.next_cert_pem
    assert moved.relying_party.next_cert_from == now + timedelta(days=3)


# -- remove ---------------------------------------------------------------------------------------------------


def test_remove_deletes_and_audits_the_party_as_it_was(ctx: AdminContext, actor: Actor, certs: Certs,
                                                       last_audit: LastAudit) -> None:
    _add(ctx, actor, certs)
    removed = core.remove_relying_party(ctx, actor, "https://RP.example/app/")
    assert removed.endpoint == RP and ctx.stores.relying_parties.get(RP) is None
    record = last_audit("rp.remove")
    assert record.detail["before"]["endpoint"] == RP and record.detail["after"] is None
    with pytest.raises(NotFound):
        core.remove_relying_party(ctx, actor, RP)
    assert last_audit("rp.remove").outcome == "refused"


def test_list_and_get(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    _add(ctx, actor, certs)
    core.add_relying_party(ctx, actor, "urn:a:b", policy=RelyingPartyPolicy(encrypt=False))
    assert [p.endpoint for p in core.list_relying_parties(ctx)] == [RP, "urn:a:b"]
    assert core.get_relying_party(ctx, RP).endpoint == RP
    with pytest.raises(NotFound):
        core.get_relying_party(ctx, "urn:no:such")


# -- add from metadata ----------------------------------------------------------------------------------------


def _metadata(entity_id: str, cert_pem: bytes) -> bytes:
    der = base64.b64encode(load_certificate(cert_pem).public_bytes(Encoding.DER)).decode()
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">'
            f'<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der}'
            f'</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>'
            f'<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="https://sp.example/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>').encode()


def test_add_from_metadata_document_and_file(ctx: AdminContext, actor: Actor, certs: Certs,
                                             tmp_path: Path, last_audit: LastAudit) -> None:
    change = core.add_relying_party_from_metadata(ctx, actor, _metadata("https://sp.example/", certs.current),
                                                  policy=RelyingPartyPolicy(token_type="saml11"))
    assert change.relying_party.endpoint == "https://sp.example/" and change.relying_party.cert_pem is not None
    assert change.relying_party.token_type is TokenType.SAML11
    assert last_audit("rp.add").subject == "https://sp.example/"
    path = tmp_path / "sp.xml"
    path.write_bytes(_metadata("urn:sp:file", certs.current))
    named = core.add_relying_party_from_metadata(ctx, actor, str(path), endpoint="urn:sp:override")
    assert named.relying_party.endpoint == "urn:sp:override"


RP_METADATA = Path(__file__).resolve().parents[2] / "fixtures" / "rp-metadata"
IDENTITY = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"


def test_metadata_claims_become_the_policy(ctx: AdminContext, actor: Actor, last_audit: LastAudit) -> None:
    """fed:ClaimTypesRequested: Optional="false" or absent is required, Optional="true" only permitted."""
    change = core.add_relying_party_from_metadata(ctx, actor, str(RP_METADATA / "wsfed-claims-requested.xml"))
    party = change.relying_party
    assert party.endpoint == "https://claims-rp.example/app/"
    assert party.required_claims == (f"{IDENTITY}/givenname", f"{IDENTITY}/emailaddress")
    assert party.permitted_claims == (f"{IDENTITY}/givenname", f"{IDENTITY}/emailaddress",
                                      "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
    assert change.warnings == ()
    assert last_audit("rp.add").detail["after"]["required_claims"] == list(party.required_claims)


def test_saml_requested_attributes_go_through_the_claim_dictionary(ctx: AdminContext, actor: Actor) -> None:
    """md:RequestedAttribute isRequired; a URI outside the dictionary is kept, with the dictionary's warning."""
    change = core.add_relying_party_from_metadata(ctx, actor, str(RP_METADATA / "saml-sp-requested-attributes.xml"))
    assert change.relying_party.required_claims == (f"{IDENTITY}/surname", "urn:example:employee-number")
    assert f"{IDENTITY}/upn" in change.relying_party.permitted_claims
    assert any("urn:example:employee-number" in w and "claim dictionary" in w for w in change.warnings)


def test_claims_given_by_the_administrator_win_over_the_metadata(ctx: AdminContext, actor: Actor) -> None:
    change = core.add_relying_party_from_metadata(ctx, actor, str(RP_METADATA / "wsfed-claims-requested.xml"),
                                                  policy=RelyingPartyPolicy(required_claims=("surname",)))
    assert change.relying_party.required_claims == (f"{IDENTITY}/surname",)


@pytest.mark.parametrize("source, message", [
    (b"<x/>", "no md:EntityDescriptor"),
    (b"not xml", "not readable XML metadata"),
    ("/no/such/metadata.xml", "cannot read /no/such/metadata.xml"),
    ("ftp://example/metadata.xml", "cannot read"),
])
def test_a_failed_metadata_import_is_one_message(ctx: AdminContext, actor: Actor, source: str | bytes,
                                                 message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        core.add_relying_party_from_metadata(ctx, actor, source)
    assert field_errors(refused.value) == {"metadata": refused.value.message}
    assert message in refused.value.message and refused.value.message.startswith("the metadata cannot be used")


def test_metadata_with_an_expired_certificate_is_one_message(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    with pytest.raises(InvalidInput) as refused:
        core.add_relying_party_from_metadata(ctx, actor, _metadata("https://sp.example/", certs.expired))
    assert list(field_errors(refused.value)) == ["metadata"]
    assert "the certificate in the metadata: the certificate expired" in refused.value.message


def test_relying_party_data_carries_no_key_material(ctx: AdminContext, actor: Actor, certs: Certs) -> None:
    party = _add(ctx, actor, certs).relying_party
    data = core.relying_party_data(party)
    assert "cert_pem" not in data and "BEGIN" not in str(data)
    assert data["certificate"]["subject"].endswith("rp.example")  # type: ignore[index]
