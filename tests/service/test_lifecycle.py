"""Validate, Renew and Cancel over real HTTP on loopback, for SAML 1.1/2.0 and WS-Trust 1.3/2005."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from sts import ns
from sts.config import load_settings
from sts.model import RelyingParty
from sts.uris import SoapVersion, TokenType, TrustVersion
from sts.runtime import open_stores
from sts.xmltime import format_datetime, utcnow
from trust_client import Reply, post, rst_envelope
from paths import FIXTURES  # type: ignore[import-not-found]

PLAIN_RP = "https://plain-lifecycle.example/"
OTHER_RP = "https://other-lifecycle.example/"


@pytest.fixture(scope="module", autouse=True)
def rps(sts_home: Path) -> None:
    stores = open_stores(load_settings(sts_home))
    for endpoint in (PLAIN_RP, OTHER_RP):
        if stores.relying_parties.lookup(endpoint) is None:
            stores.relying_parties.add(RelyingParty(endpoint=endpoint, encrypt=False))
    if stores.users.get("lifecycle-bob") is None:
        stores.users.add("lifecycle-bob", "builder", [("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Bob")])


def _request(live, demo, version, request_type, *, user=None, password=None, **options) -> Reply:
    body = rst_envelope(user=user or demo["user"], password=password or demo["password"], version=version,
                        request_type=request_type, digest=True, **options)
    return post(live.sts_url, body)


def _issue(live, demo, version, token_type, applies_to=PLAIN_RP, **options) -> Reply:
    reply = _request(live, demo, version, "Issue", applies_to=applies_to, token_type_uri=token_type.value, **options)
    assert reply.status == 200, reply.fault_reason
    return reply


def _status(reply: Reply, version: TrustVersion) -> tuple[str, str]:
    assert reply.status == 200, reply.fault_reason
    code = reply.root.findtext(f".//{{{version.value}}}Status/{{{version.value}}}Code")
    reason = reply.root.findtext(f".//{{{version.value}}}Status/{{{version.value}}}Reason")
    return code.rsplit("/", 1)[1], reason


def _validate(live, demo, version, target, **options) -> Reply:
    return _request(live, demo, version, "Validate", applies_to=None, targets={"ValidateTarget": target},
                    token_type_uri=version.uri("RSTR/Status"), **options)


def _token_id(reply: Reply) -> str:
    return reply.root.findtext(f".//{{{ns.WSSE}}}KeyIdentifier")


@pytest.mark.parametrize("version", list(TrustVersion))
@pytest.mark.parametrize("token_type", list(TokenType))
def test_full_lifecycle(live_sts, demo, version, token_type) -> None:
    issued = _issue(live_sts, demo, version, token_type)
    token = issued.token()
    assert _status(_validate(live_sts, demo, version, copy.deepcopy(token)), version)[0] == "valid"

    renewed = _request(live_sts, demo, version, "Renew", applies_to=None, targets={"RenewTarget": copy.deepcopy(token)})
    assert renewed.status == 200, renewed.fault_reason
    assert renewed.findtext("*/wsa:Action") == (
        version.uri("RSTR/RenewFinal") if version is TrustVersion.WST13 else version.uri("RSTR/Renew"))
    new_token = renewed.token()
    new_id = new_token.get("ID") or new_token.get("AssertionID")
    assert new_id != (token.get("ID") or token.get("AssertionID"))
    assert _status(_validate(live_sts, demo, version, copy.deepcopy(new_token)), version)[0] == "valid"
    code, reason = _status(_validate(live_sts, demo, version, copy.deepcopy(token)), version)
    assert code == "invalid" and "renewal" in reason

    cancelled = _request(live_sts, demo, version, "Cancel", applies_to=None,
                         targets={"CancelTarget": copy.deepcopy(new_token)})
    assert cancelled.status == 200, cancelled.fault_reason
    assert cancelled.root.find(f".//{{{version.value}}}RequestedTokenCancelled") is not None
    code, reason = _status(_validate(live_sts, demo, version, copy.deepcopy(new_token)), version)
    assert (code, reason) == ("invalid", "The token was cancelled")

    again = _request(live_sts, demo, version, "Renew", applies_to=None, targets={"RenewTarget": new_token})
    assert again.fault_code == (version.value, "UnableToRenew")


@pytest.mark.parametrize("version", list(TrustVersion))
def test_lifecycle_by_reference(live_sts, demo, version) -> None:
    token_id = _token_id(_issue(live_sts, demo, version, TokenType.SAML20))
    assert _status(_validate(live_sts, demo, version, token_id), version)[0] == "valid"
    renewed = _request(live_sts, demo, version, "Renew", applies_to=None, targets={"RenewTarget": token_id})
    new_id = _token_id(renewed)
    cancel = _request(live_sts, demo, version, "Cancel", applies_to=None, targets={"CancelTarget": new_id})
    assert cancel.status == 200
    assert _status(_validate(live_sts, demo, version, new_id), version)[0] == "invalid"


def test_encrypted_token_is_recognised_by_its_hash(live_sts, demo) -> None:
    version = TrustVersion.WST13
    issued = _issue(live_sts, demo, version, TokenType.SAML20, applies_to=demo["rp"])
    encrypted = issued.token()
    assert etree.QName(encrypted).localname == "EncryptedAssertion"
    assert _status(_validate(live_sts, demo, version, copy.deepcopy(encrypted)), version)[0] == "valid"
    cancel = _request(live_sts, demo, version, "Cancel", applies_to=None, targets={"CancelTarget": encrypted})
    assert cancel.status == 200
    assert _status(_validate(live_sts, demo, version, copy.deepcopy(encrypted)), version)[0] == "invalid"


def test_tampered_and_foreign_tokens_validate_invalid(live_sts, demo) -> None:
    version = TrustVersion.WST13
    token = _issue(live_sts, demo, version, TokenType.SAML20).token()
    tampered = copy.deepcopy(token)
    tampered.find(f".//{{{ns.SAML2}}}NameID").text = "mallory"
    code, reason = _status(_validate(live_sts, demo, version, tampered), version)
    assert code == "invalid" and "altered" in reason
    foreign = etree.fromstring((FIXTURES / "recorded/adal-python/"
                                "adfs-wstrust13-soap12-rstrc-issue-saml11-bearer.xml").read_bytes())
    assertion = foreign.find(f".//{{{ns.SAML1}}}Assertion")
    assert _status(_validate(live_sts, demo, version, assertion), version)[0] == "invalid"


def test_tampered_token_cannot_be_renewed_or_cancelled(live_sts, demo) -> None:
    version = TrustVersion.WST13
    token = _issue(live_sts, demo, version, TokenType.SAML20).token()
    token.find(f".//{{{ns.SAML2}}}NameID").text = "mallory"
    for binding, target in (("Renew", "RenewTarget"), ("Cancel", "CancelTarget")):
        reply = _request(live_sts, demo, version, binding, applies_to=None, targets={target: copy.deepcopy(token)})
        assert reply.fault_code == (version.value, "InvalidSecurityToken")


@pytest.mark.parametrize("binding,target", [("Validate", "ValidateTarget"), ("Renew", "RenewTarget"),
                                            ("Cancel", "CancelTarget")])
def test_unknown_reference_is_invalid_request(live_sts, demo, binding, target) -> None:
    reply = _request(live_sts, demo, TrustVersion.WST13, binding, applies_to=None, targets={target: "_nope"})
    assert reply.fault_code == (ns.WST13, "InvalidRequest")


@pytest.mark.parametrize("binding", ["Validate", "Renew", "Cancel"])
def test_missing_target_is_invalid_request(live_sts, demo, binding) -> None:
    reply = _request(live_sts, demo, TrustVersion.WST13, binding, applies_to=None)
    assert reply.fault_code == (ns.WST13, "InvalidRequest")


def test_someone_elses_token_cannot_be_cancelled_or_renewed(live_sts, demo) -> None:
    version = TrustVersion.WST13
    token_id = _token_id(_issue(live_sts, demo, version, TokenType.SAML20))
    cancel = _request(live_sts, demo, version, "Cancel", applies_to=None, targets={"CancelTarget": token_id},
                      user="lifecycle-bob", password="builder")
    assert cancel.fault_code == (ns.WST13, "RequestFailed")
    renew = _request(live_sts, demo, version, "Renew", applies_to=None, targets={"RenewTarget": token_id},
                     user="lifecycle-bob", password="builder")
    assert renew.fault_code == (ns.WST13, "UnableToRenew")
    assert _status(_validate(live_sts, demo, version, token_id), version)[0] == "valid"


def test_renewing_allow_false_is_honoured(live_sts, demo) -> None:
    version = TrustVersion.WST13
    token_id = _token_id(_issue(live_sts, demo, version, TokenType.SAML20, renewing=(False, False)))
    reply = _request(live_sts, demo, version, "Renew", applies_to=None, targets={"RenewTarget": token_id})
    assert reply.fault_code == (ns.WST13, "UnableToRenew")


def _expired_token(live_sts, demo, *, ok: bool) -> str:
    """Issue a token, then move its recorded expiry into the past (as if time had passed)."""
    version = TrustVersion.WST13
    token_id = _token_id(_issue(live_sts, demo, version, TokenType.SAML20, renewing=(True, ok)))
    tokens = open_stores(load_settings(live_sts.home)).tokens
    assert tokens.update(token_id, expires=utcnow() - timedelta(minutes=1))
    return token_id


def test_expired_token_renewable_only_with_ok(live_sts, demo) -> None:
    version = TrustVersion.WST13
    refused = _request(live_sts, demo, version, "Renew", applies_to=None,
                       targets={"RenewTarget": _expired_token(live_sts, demo, ok=False)})
    assert refused.fault_code == (ns.WST13, "RenewNeeded")
    accepted = _request(live_sts, demo, version, "Renew", applies_to=None,
                        targets={"RenewTarget": _expired_token(live_sts, demo, ok=True)})
    assert accepted.status == 200, accepted.fault_reason


def test_expired_token_validates_invalid(live_sts, demo) -> None:
    code, reason = _status(_validate(live_sts, demo, TrustVersion.WST13, _expired_token(live_sts, demo, ok=False)),
                           TrustVersion.WST13)
    assert (code, reason) == ("invalid", "The token has expired")


def test_validate_and_exchange(live_sts, demo) -> None:
    version = TrustVersion.WST13
    token = _issue(live_sts, demo, version, TokenType.SAML20).token()
    reply = _request(live_sts, demo, version, "Validate", applies_to=OTHER_RP,
                     targets={"ValidateTarget": token}, token_type_uri=TokenType.SAML11.value)
    assert _status(reply, version)[0] == "valid"
    exchanged = reply.token()
    assert exchanged.tag == f"{{{ns.SAML1}}}Assertion"
    assert exchanged.findtext(f".//{{{ns.SAML1}}}Audience") == OTHER_RP


def test_renew_with_a_new_lifetime_and_postdating(live_sts, demo) -> None:
    version = TrustVersion.WST13
    token_id = _token_id(_issue(live_sts, demo, version, TokenType.SAML20))
    now = utcnow()
    lifetime = (format_datetime(now), format_datetime(now + timedelta(minutes=5)))
    reply = _request(live_sts, demo, version, "Renew", applies_to=None, targets={"RenewTarget": token_id},
                     lifetime=lifetime)
    assert reply.status == 200
    from sts.xmltime import parse_datetime
    expires = parse_datetime(reply.findtext(".//trust:Lifetime/wsu:Expires"))
    assert abs((expires - now) - timedelta(minutes=5)) < timedelta(seconds=2)


def test_batch_issue_and_validate(live_sts, demo) -> None:
    from sts.protocol.addressing import render_request_headers
    from sts.protocol.soap import build_envelope
    from sts.protocol.wsse.build import build_security_header
    from sts.protocol.wstrust.render import render_rst

    version = TrustVersion.WST13
    collection = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenCollection")
    for applies_to in (PLAIN_RP, OTHER_RP):
        collection.append(render_rst(version, applies_to=applies_to, request_type="BatchIssue"))
    headers = render_request_headers(version.uri("RST/BatchIssue"))
    headers.append(build_security_header(demo["user"], demo["password"], digest=True))
    reply = post(live_sts.sts_url, build_envelope(SoapVersion.SOAP12, collection, headers))
    assert reply.status == 200, reply.fault_reason
    assert reply.findtext("*/wsa:Action") == version.uri("RSTRC/BatchIssueFinal")
    rstrs = reply.root.findall(f".//{{{ns.WST13}}}RequestSecurityTokenResponse")
    assert [r.findtext(f".//{{{ns.SAML2}}}Audience") for r in rstrs] == [PLAIN_RP, OTHER_RP]
    ids = [r.findtext(f".//{{{ns.WSSE}}}KeyIdentifier") for r in rstrs]

    collection = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenCollection")
    for token_id in (ids[0], ids[1]):
        collection.append(render_rst(version, applies_to=None, request_type="BatchValidate",
                                     targets={"ValidateTarget": token_id}))
    headers = render_request_headers(version.uri("RST/BatchValidate"))
    headers.append(build_security_header(demo["user"], demo["password"], digest=True))
    reply = post(live_sts.sts_url, build_envelope(SoapVersion.SOAP12, collection, headers))
    codes = [c.text for c in reply.root.iter(f"{{{ns.WST13}}}Code")]
    assert codes == [version.uri("status/valid")] * 2


def test_batch_with_an_unknown_applies_to_faults(live_sts, demo) -> None:
    from sts.protocol.soap import build_envelope
    from sts.protocol.wsse.build import build_security_header
    from sts.protocol.wstrust.render import render_rst

    collection = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenCollection")
    for applies_to in (PLAIN_RP, "https://unknown.example/"):
        collection.append(render_rst(TrustVersion.WST13, applies_to=applies_to, request_type="BatchIssue"))
    reply = post(live_sts.sts_url, build_envelope(
        SoapVersion.SOAP12, collection, [build_security_header(demo["user"], demo["password"], digest=True)]))
    assert reply.fault_code == (ns.WST13, "InvalidScope")


def test_token_admin_may_cancel_anyones_token(sts_home, demo) -> None:
    from live import start_server

    live, server, thread = start_server(sts_home, token_admins=("lifecycle-bob",))
    try:
        version = TrustVersion.WST13
        token_id = _token_id(_issue(live, demo, version, TokenType.SAML20))
        renew = _request(live, demo, version, "Renew", applies_to=None, targets={"RenewTarget": token_id},
                         user="lifecycle-bob", password="builder")
        assert renew.status == 200, renew.fault_reason
        renewed_id = _token_id(renew)
        cancel = _request(live, demo, version, "Cancel", applies_to=None, targets={"CancelTarget": renewed_id},
                          user="lifecycle-bob", password="builder")
        assert cancel.status == 200, cancel.fault_reason
        assert _status(_validate(live, demo, version, renewed_id), version) == ("invalid", "The token was cancelled")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
