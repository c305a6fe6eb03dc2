"""SecurityTokenService over in-memory fakes and a fixed clock: every binding's decisions and faults.

No HTTP, no SQLite, no XML parsing: typed requests in, typed responses out (the wire is tests/wstrust's and
tests/test_pipeline.py's business).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

import sts.service
from sts import ns
from sts.errors import (
    BadRequest,
    FailedAuthentication,
    InsecureProofDelivery,
    InvalidRequest,
    InvalidScope,
    InvalidSecurityToken,
    InvalidTimeRange,
    RenewNeeded,
    RequestFailed,
    UnableToRenew,
)
from sts.model import (
    Claim,
    ClaimRequest,
    Entropy,
    Lifetime,
    RelyingParty,
    Renewing,
    RequestSecurityToken,
    TokenDetails,
    TokenTarget,
    UseKey,
)
from sts.service.claims import StoreClaimsSource
from sts.tokens.crypto.encryption import decrypt_key_bytes
from sts.tokens.crypto.keys import SigningKey
from sts.tokens.crypto.proof import p_sha1
from sts.uris import AuthnMethod, KeyTransport, KeyType, RequestType, TokenType, TrustVersion
from tests.service.conftest import (
    EMAIL,
    GIVENNAME,
    RP,
    SURNAME,
    T0,
    Claims,
    Fakes,
    MakeService,
    principal,
)

WST13 = TrustVersion.WST13


def rst(request_type: RequestType = RequestType.ISSUE, /, **fields: object) -> RequestSecurityToken:
    fields.setdefault("applies_to", RP)
    return RequestSecurityToken(version=WST13, request_type=request_type, **fields)  # type: ignore[arg-type]


def issue(make_service: MakeService, **fields: object) -> str:
    """Issue a bearer token for alice; its id."""
    return make_service().issue(rst(**fields), principal()).token.token_id


# --- Issue ----------------------------------------------------------------------------------------------------


def test_issue_decides_content_and_records_a_typed_record(make_service: MakeService, fakes: Fakes) -> None:
    response = make_service().issue(rst(claims=(ClaimRequest(EMAIL),), context="ctx-1"), principal())
    content, rp, token_type = fakes.provider.built[-1]
    assert (token_type, content.audience, content.subject_name, content.issue_instant) == (
        TokenType.SAML20, RP, "alice", T0)
    assert (content.not_before, content.not_on_or_after) == (T0, T0 + timedelta(minutes=30))
    assert content.claims == (Claim(GIVENNAME, ("Alice",)), Claim(EMAIL, ("alice@example.org",)))
    assert (response.context, response.token_type_uri, response.proof) == ("ctx-1", TokenType.SAML20.value, None)
    # The element the provider built is what the response carries: not serialised and parsed again.
    assert response.token.element.get("ID") == content.assertion_id
    record = fakes.tokens.get(response.token.token_id)
    assert record is not None and record.requester == "alice"
    assert isinstance(record.details, TokenDetails)
    assert (record.details.identity, record.details.holder_of_key, record.details.claims) == (
        "alice", False, content.claims)
    assert record.details["key_type"] == "bearer"  # the stored JSON form keeps its keys


def test_batch_issue_echoes_the_batch_request_type(make_service: MakeService) -> None:
    response = make_service().issue(rst(batch=True), principal())
    assert response.request_type_uri == WST13.uri("BatchIssue")


def test_issue_of_another_request_type_is_a_bad_request(make_service: MakeService) -> None:
    with pytest.raises(BadRequest):
        make_service().issue(rst(RequestType.VALIDATE), principal())


def test_unknown_applies_to_is_invalid_scope_and_a_missing_one_invalid(make_service: MakeService) -> None:
    with pytest.raises(InvalidScope) as raised:
        make_service().issue(rst(applies_to="https://elsewhere.test/"), principal())
    assert raised.value.detail == "https://elsewhere.test/"
    with pytest.raises(InvalidRequest):
        make_service().issue(rst(applies_to=None), principal())


def test_unregistered_audiences_when_the_policy_allows_them(make_service: MakeService, fakes: Fakes) -> None:
    from sts.service.token_service import IssuePolicy

    service = make_service(policy=IssuePolicy(issuer="https://sts.test/", allow_unregistered_audiences=True))
    assert service.issue(rst(applies_to="https://open.test/"), principal()).token.applies_to == "https://open.test/"


@pytest.mark.parametrize(("created", "expires", "postdating", "detail"), [
    (T0 + timedelta(hours=1), None, False, "Created"),
    (None, T0 - timedelta(minutes=1), False, "Expires"),
    (T0, T0, False, "Expires"),
])
def test_lifetimes_that_cannot_be_honoured_are_invalid_time_range(
    make_service: MakeService, created: datetime | None, expires: datetime | None, postdating: bool, detail: str
) -> None:
    with pytest.raises(InvalidTimeRange) as raised:
        make_service().issue(rst(lifetime=Lifetime(created, expires), allow_postdating=postdating), principal())
    assert raised.value.detail == detail


def test_a_long_lifetime_is_clamped_or_refused_by_the_rp(make_service: MakeService, fakes: Fakes) -> None:
    long = Lifetime(T0, T0 + timedelta(days=3))
    response = make_service().issue(rst(lifetime=long), principal())
    assert response.token.expires == T0 + timedelta(hours=8)
    fakes.registry.parties[RP] = replace(fakes.registry.parties[RP], refuse_long_lifetime=True)
    with pytest.raises(InvalidTimeRange):
        make_service().issue(rst(lifetime=long), principal())


def test_postdating_is_honoured_when_asked(make_service: MakeService) -> None:
    later = T0 + timedelta(hours=1)
    response = make_service().issue(rst(lifetime=Lifetime(later, None), allow_postdating=True), principal())
    assert response.token.created == later


def test_a_missing_required_claim_fails_naming_the_claim(make_service: MakeService, fakes: Fakes) -> None:
    fakes.registry.parties[RP] = replace(fakes.registry.parties[RP], required_claims=(SURNAME,))
    with pytest.raises(RequestFailed) as raised:
        make_service().issue(rst(), principal())
    assert raised.value.detail == SURNAME


def test_optional_claims_are_left_out_and_required_ones_fail(make_service: MakeService) -> None:
    response = make_service().issue(rst(claims=(ClaimRequest(SURNAME, optional=True),)), principal())
    assert [c.uri for c in response.token.claims] == [GIVENNAME]
    with pytest.raises(RequestFailed) as raised:
        make_service().issue(rst(claims=(ClaimRequest(SURNAME),)), principal())
    assert raised.value.detail == SURNAME


def test_the_claims_source_is_the_one_given(make_service: MakeService) -> None:
    source = Claims(Claim("urn:example:tier", ("gold",)))
    response = make_service(claims=source).issue(rst(), principal())
    assert source.asked == ["alice"] and response.token.claims == (Claim("urn:example:tier", ("gold",)),)


def test_the_default_is_the_user_store_as_the_store_claims_source_reads_it(
    make_service: MakeService, fakes: Fakes
) -> None:
    request = rst(claims=(ClaimRequest(EMAIL), ClaimRequest(SURNAME, optional=True)))
    default = make_service().issue(request, principal()).token.claims
    explicit = make_service(claims=StoreClaimsSource(fakes.users)).issue(request, principal()).token.claims
    assert default == explicit == (Claim(GIVENNAME, ("Alice",)), Claim(EMAIL, ("alice@example.org",)))


@pytest.mark.parametrize("name", ["nobody", "mallory"])
def test_a_vanished_or_disabled_user_fails_authentication(make_service: MakeService, name: str) -> None:
    with pytest.raises(FailedAuthentication):
        make_service().issue(rst(), principal(name))


def test_token_and_key_types_the_rp_does_not_accept(make_service: MakeService, fakes: Fakes) -> None:
    fakes.registry.parties[RP] = replace(fakes.registry.parties[RP], allowed_token_types=(TokenType.SAML11,),
                                         allowed_key_types=(KeyType.BEARER,))
    with pytest.raises(BadRequest) as raised:
        make_service().issue(rst(token_type=TokenType.SAML20), principal())
    assert raised.value.detail == "TokenType"
    with pytest.raises(BadRequest) as raised:
        make_service().issue(rst(token_type=TokenType.SAML11, key_type=KeyType.SYMMETRIC), principal())
    assert raised.value.detail == "KeyType"


def test_an_algorithm_the_rp_does_not_use_is_a_bad_request(make_service: MakeService) -> None:
    with pytest.raises(BadRequest) as raised:
        make_service().issue(rst(algorithms=(("SignatureAlgorithm", "urn:weak"),)), principal())
    assert raised.value.detail == "SignatureAlgorithm"


# --- proof keys -----------------------------------------------------------------------------------------------


def test_symmetric_key_in_clear_over_a_secure_channel(make_service: MakeService, fakes: Fakes) -> None:
    response = make_service().issue(rst(key_type=KeyType.SYMMETRIC), principal(), secure_channel=True)
    content = fakes.provider.built[-1][0]
    assert response.proof is not None and response.proof.binary_secret == b"\x07" * 32
    assert content.proof_key is not None and content.proof_key.symmetric_key == b"\x07" * 32
    assert fakes.tokens.get(response.token.token_id).details.holder_of_key  # type: ignore[union-attr]


def test_symmetric_key_over_plain_http_without_a_certificate_is_refused(make_service: MakeService) -> None:
    with pytest.raises(InsecureProofDelivery):
        make_service().issue(rst(key_type=KeyType.SYMMETRIC), principal(), secure_channel=False)


def test_the_key_for_a_requester_certificate_is_encrypted_in_the_decision(
    make_service: MakeService, requester_key: SigningKey
) -> None:
    response = make_service().issue(rst(key_type=KeyType.SYMMETRIC), principal(),
                                    requester_cert=requester_key.certificate, secure_channel=False)
    proof = response.proof
    assert proof is not None and proof.encrypted is not None and proof.binary_secret is None
    assert decrypt_key_bytes(proof.encrypted.cipher_value, requester_key.private_key,
                             KeyTransport.RSA_OAEP_MGF1P) == b"\x07" * 32


def test_computed_key_from_requester_entropy(make_service: MakeService, fakes: Fakes) -> None:
    client = b"\x01" * 32
    response = make_service().issue(rst(key_type=KeyType.SYMMETRIC, entropy=Entropy(binary_secret=client)),
                                    principal(), secure_channel=True)
    assert response.proof is not None and response.proof.server_entropy == b"\x07" * 32
    assert fakes.provider.built[-1][0].proof_key.symmetric_key == p_sha1(client, b"\x07" * 32, 32)  # type: ignore[union-attr]


def test_holder_of_key_without_the_encryption_key_is_a_bad_request(make_service: MakeService) -> None:
    with pytest.raises(BadRequest):
        make_service(proof_keys=None).issue(rst(key_type=KeyType.SYMMETRIC), principal(), secure_channel=True)


def test_a_public_key_must_be_proven_by_the_request_signature(
    make_service: MakeService, requester_key: SigningKey
) -> None:
    use_key = UseKey(certificate_der=requester_key.cert_der)
    request = rst(key_type=KeyType.PUBLIC_KEY, use_key=use_key)
    with pytest.raises(FailedAuthentication) as raised:
        make_service().issue(request, principal())
    assert raised.value.detail == "UseKey"
    response = make_service().issue(request, principal(), requester_cert=requester_key.certificate)
    assert response.proof is None and response.token.token_id


# --- Validate -------------------------------------------------------------------------------------------------


def test_validate_by_reference_and_by_element(make_service: MakeService, fakes: Fakes) -> None:
    token_id = issue(make_service)
    service = make_service()
    by_reference = service.validate(rst(RequestType.VALIDATE, validate_target=TokenTarget(token_id)), principal())
    assert by_reference.status.valid and by_reference.issued is None
    element = etree.Element("Token", ID=token_id, Signed="yes")
    by_element = service.validate(rst(RequestType.VALIDATE, validate_target=TokenTarget(unverified_token=element)),
                                  principal())
    assert by_element.status.valid


def test_validate_answers_invalid_never_a_fault_for_a_bad_token(make_service: MakeService, fakes: Fakes) -> None:
    service = make_service()
    forged = TokenTarget(unverified_token=etree.Element("Token", ID="_x"))
    assert service.validate(rst(RequestType.VALIDATE, validate_target=forged), principal()).status.reason == (
        "the token is not signed by this STS or was altered")
    token_id = issue(make_service)
    fakes.clock.advance(timedelta(hours=1))
    status = service.validate(rst(RequestType.VALIDATE, validate_target=TokenTarget(token_id)), principal()).status
    assert (status.valid, status.reason) == (False, "The token has expired")


def test_validate_without_a_target_is_invalid(make_service: MakeService) -> None:
    with pytest.raises(InvalidRequest) as raised:
        make_service().validate(rst(RequestType.VALIDATE), principal())
    assert raised.value.detail == "ValidateTarget"


def test_validate_and_exchange_issues_for_the_requested_audience(make_service: MakeService) -> None:
    token_id = issue(make_service)
    answer = make_service().validate(
        rst(RequestType.VALIDATE, validate_target=TokenTarget(token_id), token_type=TokenType.SAML11), principal())
    assert answer.status.valid and answer.issued is not None
    assert answer.issued.token.token_type is TokenType.SAML11 and answer.issued.token.token_id != token_id


# --- Renew ----------------------------------------------------------------------------------------------------


def test_renew_issues_a_new_token_and_supersedes_the_old(make_service: MakeService, fakes: Fakes) -> None:
    token_id = issue(make_service)
    fakes.clock.advance(timedelta(minutes=10))
    renewed = make_service().renew(rst(RequestType.RENEW, renew_target=TokenTarget(token_id)), principal())
    new = fakes.tokens.get(renewed.token.token_id)
    assert new is not None and (new.renewal_count, new.issued) == (1, T0 + timedelta(minutes=10))
    assert new.details.claims == fakes.tokens.get(token_id).details.claims  # type: ignore[union-attr]
    assert fakes.tokens.get(token_id).status == "renewed"  # type: ignore[union-attr]
    with pytest.raises(UnableToRenew):
        make_service().renew(rst(RequestType.RENEW, renew_target=TokenTarget(token_id)), principal())


def test_a_renewal_that_loses_the_race_mints_and_records_nothing(make_service: MakeService, fakes: Fakes,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    token_id = issue(make_service)
    recorded, built = len(fakes.tokens.records), len(fakes.provider.built)
    service = make_service()
    # Another node renews the token between this node's read and its claim on the token.
    read = fakes.tokens.get
    monkeypatch.setattr(fakes.tokens, "get", lambda wanted: (fakes.tokens.transition(wanted, "valid", "renewed"),
                                                             replace(read(wanted), status="valid"))[1])  # type: ignore[arg-type]
    with pytest.raises(UnableToRenew, match="changed while being renewed"):
        service.renew(rst(RequestType.RENEW, renew_target=TokenTarget(token_id)), principal())
    assert (len(fakes.tokens.records), len(fakes.provider.built)) == (recorded, built)


def test_a_renewal_that_fails_after_its_claim_leaves_the_token_valid(make_service: MakeService, fakes: Fakes,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    token_id = issue(make_service)

    def broken(*args: object) -> None:
        raise RuntimeError("the signer failed")

    monkeypatch.setattr(fakes.provider, "issue", broken)
    with pytest.raises(RuntimeError):
        make_service().renew(rst(RequestType.RENEW, renew_target=TokenTarget(token_id)), principal())
    assert fakes.tokens.get(token_id).status == "valid"  # type: ignore[union-attr]


def test_an_expired_token_needs_renewing_ok(make_service: MakeService, fakes: Fakes) -> None:
    plain = issue(make_service)
    late_ok = issue(make_service, renewing=Renewing(allow=True, ok=True))
    fakes.clock.advance(timedelta(minutes=40))
    with pytest.raises(RenewNeeded):
        make_service().renew(rst(RequestType.RENEW, renew_target=TokenTarget(plain)), principal())
    assert make_service().renew(rst(RequestType.RENEW, renew_target=TokenTarget(late_ok)), principal())


@pytest.mark.parametrize("case", ["allow-false", "other-requester", "holder-of-key"])
def test_renewals_that_are_refused(make_service: MakeService, case: str) -> None:
    fields: dict[str, object] = {}
    if case == "allow-false":
        fields["renewing"] = Renewing(allow=False)
    if case == "holder-of-key":
        fields["key_type"] = KeyType.SYMMETRIC
    token_id = make_service().issue(rst(**fields), principal(), secure_channel=True).token.token_id
    who = principal("portal") if case == "other-requester" else principal()
    with pytest.raises(UnableToRenew):
        make_service().renew(rst(RequestType.RENEW, renew_target=TokenTarget(token_id)), who)


def test_renewing_a_token_this_sts_did_not_sign_is_an_invalid_security_token(make_service: MakeService) -> None:
    forged = TokenTarget(unverified_token=etree.Element("Token", ID="_forged"))
    with pytest.raises(InvalidSecurityToken):
        make_service().renew(rst(RequestType.RENEW, renew_target=forged), principal())


def test_an_issue_only_service_refuses_the_other_bindings(make_service: MakeService) -> None:
    with pytest.raises(BadRequest):
        make_service(resolver=None).renew(rst(RequestType.RENEW, renew_target=TokenTarget("_1")), principal())


# --- Cancel ---------------------------------------------------------------------------------------------------


def test_cancel_by_the_requester_or_an_admin_only(make_service: MakeService, fakes: Fakes) -> None:
    token_id = issue(make_service)
    with pytest.raises(RequestFailed) as raised:
        make_service().cancel(rst(RequestType.CANCEL, cancel_target=TokenTarget(token_id)), principal("portal"))
    assert raised.value.detail == "CancelTarget"
    answer = make_service().cancel(rst(RequestType.CANCEL, cancel_target=TokenTarget(token_id), context="c"),
                                   principal("admin"))
    assert answer.context == "c" and fakes.tokens.get(token_id).status == "cancelled"  # type: ignore[union-attr]
    # Cancelling again is not an error; validating says why the token is no longer good.
    make_service().cancel(rst(RequestType.CANCEL, cancel_target=TokenTarget(token_id)), principal())
    status = make_service().validate(rst(RequestType.VALIDATE, validate_target=TokenTarget(token_id)), principal())
    assert status.status.reason == "The token was cancelled"


# --- ActAs / OnBehalfOf ---------------------------------------------------------------------------------------


def test_act_as_a_recorded_token_issues_for_its_subject(make_service: MakeService, fakes: Fakes) -> None:
    token_id = issue(make_service)
    fakes.clock.advance(timedelta(minutes=1))
    response = make_service().issue(rst(act_as=TokenTarget(token_id)), principal("portal"))
    content = fakes.provider.built[-1][0]
    assert content.subject_name == "alice" and [d.name for d in content.delegates] == ["portal"]
    record = fakes.tokens.get(response.token.token_id)
    assert record is not None and (record.requester, record.details.identity, record.details.delegation) == (
        "portal", "alice", "ActAs")


def test_on_behalf_of_a_username_token_checks_its_password(make_service: MakeService, fakes: Fakes) -> None:
    def username_token(password: str) -> TokenTarget:
        token = etree.Element(ns.qn(ns.WSSE, "UsernameToken"))
        etree.SubElement(token, ns.qn(ns.WSSE, "Username")).text = "alice"
        etree.SubElement(token, ns.qn(ns.WSSE, "Password")).text = password
        return TokenTarget(unverified_token=token)

    make_service().issue(rst(on_behalf_of=username_token("wonderland")), principal("portal"))
    assert fakes.provider.built[-1][0].authn_method is AuthnMethod.PASSWORD
    with pytest.raises(FailedAuthentication):
        make_service().issue(rst(on_behalf_of=username_token("guess")), principal("portal"))


def test_delegation_refusals(make_service: MakeService) -> None:
    token_id = issue(make_service)
    with pytest.raises(RequestFailed) as raised:
        make_service().issue(rst(act_as=TokenTarget(token_id)), principal())  # alice may not delegate
    assert raised.value.detail == "ActAs"
    with pytest.raises(BadRequest):
        make_service().issue(rst(act_as=TokenTarget(token_id), on_behalf_of=TokenTarget(token_id)),
                             principal("portal"))
    forged = TokenTarget(unverified_token=etree.Element("Token", ID="_forged"))
    with pytest.raises(InvalidSecurityToken):
        make_service().issue(rst(on_behalf_of=forged), principal("portal"))


def test_the_decisions_never_import_the_renderer() -> None:
    """Building the RSTR is the protocol layer's: no module of sts.service imports a wstrust renderer."""
    service_dir = Path(sts.service.__file__).parent
    for path in service_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("sts.protocol.wstrust.render", "sts.protocol.wstrust.proof")), path


def test_a_relying_party_without_encryption_still_gets_a_token(make_service: MakeService, fakes: Fakes) -> None:
    fakes.registry.parties["https://plain.test/"] = RelyingParty("https://plain.test/", encrypt=False)
    assert make_service().issue(rst(applies_to="https://plain.test/"), principal()).token.claims == ()
