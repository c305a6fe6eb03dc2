"""Issue 13 item 5, the service half: fault reasons that say what happened, ExpiredData for an expired ActAs or
OnBehalfOf token, UseKey as a reference to the signing token, and the Audience rule (over in-memory fakes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from sts.errors import (
    BadRequest,
    ExpiredSecurityToken,
    InvalidSecurityToken,
    RevokedSecurityToken,
    UnknownSecurityToken,
)
from sts.model import RelyingParty, RequestSecurityToken, TokenTarget, UseKey
from sts.service.token_service import audience_for
from sts.tokens.crypto.keys import SigningKey
from sts.uris import KeyType, RequestType, TrustVersion
from tests.service.conftest import RP, Fakes, MakeService, principal


def rst(request_type: RequestType = RequestType.ISSUE, /, **fields: object) -> RequestSecurityToken:
    fields.setdefault("applies_to", RP)
    return RequestSecurityToken(version=TrustVersion.WST13, request_type=request_type, **fields)  # type: ignore[arg-type]


def _issue(make_service: MakeService) -> str:
    return make_service().issue(rst(), principal()).token.token_id


def test_an_expired_act_as_token_is_expired_data(make_service: MakeService, fakes: Fakes) -> None:
    token_id = _issue(make_service)
    fakes.clock.advance(timedelta(hours=1))  # past the 30-minute default lifetime
    for field in ("act_as", "on_behalf_of"):
        with pytest.raises(ExpiredSecurityToken) as raised:
            make_service().issue(rst(**{field: TokenTarget(token_id)}), principal("portal"))
        assert (raised.value.code, raised.value.public_reason) == ("ExpiredData", "The security token has expired")


def test_a_cancelled_act_as_token_is_revoked(make_service: MakeService, fakes: Fakes) -> None:
    token_id = _issue(make_service)
    make_service().cancel(rst(RequestType.CANCEL, cancel_target=TokenTarget(token_id)), principal())
    with pytest.raises(RevokedSecurityToken) as raised:
        make_service().issue(rst(act_as=TokenTarget(token_id)), principal("portal"))
    assert (raised.value.code, raised.value.public_reason) == ("InvalidSecurityToken",
                                                               "Security token has been revoked")


@pytest.mark.parametrize("binding", ["renew", "cancel", "act_as"])
def test_an_altered_target_is_not_called_revoked(make_service: MakeService, binding: str) -> None:
    altered = TokenTarget(unverified_token=etree.Element("Token", ID="_altered", Signed="no"))
    with pytest.raises(InvalidSecurityToken) as raised:
        _run(make_service, binding, altered)
    assert type(raised.value) is InvalidSecurityToken
    assert raised.value.public_reason == "The security token is invalid or was altered"


@pytest.mark.parametrize("binding", ["renew", "cancel", "act_as"])
def test_a_sound_but_unrecorded_target_is_unknown(make_service: MakeService, binding: str) -> None:
    unknown = TokenTarget(unverified_token=etree.Element("Token", ID="_never_issued", Signed="yes"))
    with pytest.raises(UnknownSecurityToken) as raised:
        _run(make_service, binding, unknown)
    assert raised.value.public_reason == "The security token was not issued by this STS"


def _run(make_service: MakeService, binding: str, target: TokenTarget) -> object:
    service = make_service()
    if binding == "renew":
        return service.renew(rst(RequestType.RENEW, renew_target=target), principal())
    if binding == "cancel":
        return service.cancel(rst(RequestType.CANCEL, cancel_target=target), principal())
    return service.issue(rst(act_as=target), principal("portal"))


def test_use_key_referring_to_the_signing_token_binds_its_certificate(
    make_service: MakeService, fakes: Fakes, requester_key: SigningKey
) -> None:
    request = rst(key_type=KeyType.PUBLIC_KEY, use_key=UseKey(token_reference="X509-1"))
    make_service().issue(request, principal(), requester_cert=requester_key.certificate)
    proof_key = fakes.provider.built[-1][0].proof_key
    assert proof_key is not None and proof_key.certificate_der == requester_key.certificate.public_bytes(
        serialization.Encoding.DER)


def test_use_key_referring_to_a_token_of_an_unsigned_request_is_refused(make_service: MakeService) -> None:
    request = rst(key_type=KeyType.PUBLIC_KEY, use_key=UseKey(token_reference="X509-1"))
    with pytest.raises(BadRequest) as raised:
        make_service().issue(request, principal())
    assert "UseKey SecurityTokenReference without a request signature" in raised.value.public_reason


@pytest.mark.parametrize(("applies_to", "audience"), [
    ("https://plain.example/", "https://plain.example/"),
    ("HTTPS://PLAIN.example", "https://plain.example/"),        # case of scheme and host, trailing slash
    ("https://plain.example:443/", "https://plain.example/"),   # default port
    (None, "https://plain.example/"),
    ("https://plain.example/app/one", "https://plain.example/app/one"),  # a --prefix party: what was asked for
    ("https://PLAIN.example/App", "https://PLAIN.example/App"),  # the path is case-sensitive: not this party
])
def test_the_audience_is_the_registered_identifier_on_a_normalised_match(applies_to: str | None,
                                                                          audience: str) -> None:
    assert audience_for(applies_to, RelyingParty("https://plain.example/", match_prefix=True)) == audience
