"""Issue answers rendered from a copied skeleton: every value where it belongs, nothing shared between answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from sts import ns
from sts.model import IssuedToken, RequestSecurityTokenResponse
from sts.protocol.wstrust.render import render_collection, render_issue_response, render_rstr
from sts.uris import TokenType, TrustVersion

NOW = datetime(2026, 12, 3, 5, 30, 0, 123456, tzinfo=timezone.utc)
VERSIONS = pytest.mark.parametrize("version", list(TrustVersion), ids=lambda v: v.name)


def _response(version: TrustVersion, token_id: str, applies_to: str, *, context: str | None = None,
              token_type: TokenType = TokenType.SAML20) -> RequestSecurityTokenResponse:
    element = etree.Element("{urn:token}Token", nsmap={"t": "urn:token"}, ID=token_id)
    token = IssuedToken(token_id=token_id, token_type=token_type, element=element, encrypted=False, created=NOW,
                        expires=NOW + timedelta(hours=1), applies_to=applies_to, subject="alice", token_hash="")
    return RequestSecurityTokenResponse(version=version, token=token, token_type_uri=token_type.value,
                                        context=context, request_type_uri=version.uri("Issue"))


def _values(rstr: etree._Element, version: TrustVersion) -> dict[str, object]:
    wst = version.value
    return {
        "context": rstr.get("Context"),
        "token_type": rstr.findtext(ns.qn(wst, "TokenType")),
        "created": rstr.findtext(f"{ns.qn(wst, 'Lifetime')}/{ns.qn(ns.WSU, 'Created')}"),
        "expires": rstr.findtext(f"{ns.qn(wst, 'Lifetime')}/{ns.qn(ns.WSU, 'Expires')}"),
        "address": rstr.findtext(f".//{ns.qn(ns.WSA, 'Address')}"),
        "token": [t.get("ID") for t in rstr.find(ns.qn(wst, "RequestedSecurityToken"))],
        "references": [k.text for k in rstr.iter(ns.qn(ns.WSSE, "KeyIdentifier"))],
        "value_types": {k.get("ValueType") for k in rstr.iter(ns.qn(ns.WSSE, "KeyIdentifier"))},
        "request_type": rstr.findtext(ns.qn(wst, "RequestType")),
    }


@VERSIONS
def test_every_value_lands_in_its_place(version: TrustVersion) -> None:
    body = render_issue_response(_response(version, "_a1", "https://rp.test/", context="c-1"))
    rstr = body if version is TrustVersion.WST2005 else body[0]
    assert _values(rstr, version) == {
        "context": "c-1",
        "token_type": TokenType.SAML20.value,
        "created": "2026-12-03T05:30:00.123Z",
        "expires": "2026-12-03T06:30:00.123Z",
        "address": "https://rp.test/",
        "token": ["_a1"],
        "references": ["_a1", "_a1"],
        "value_types": {TokenType.SAML20.key_identifier_value_type},
        "request_type": version.uri("Issue"),
    }


@VERSIONS
def test_answers_share_nothing_through_the_skeleton(version: TrustVersion) -> None:
    first = render_issue_response(_response(version, "_a1", "https://rp.test/", context="c-1"))
    before = etree.tostring(first)
    second = render_issue_response(_response(version, "_b2", "https://other.test/"))
    saml11 = render_rstr(_response(version, "_c3", "https://rp.test/", token_type=TokenType.SAML11))
    assert etree.tostring(first) == before
    rstr = second if version is TrustVersion.WST2005 else second[0]
    assert _values(rstr, version)["context"] is None
    assert _values(rstr, version)["token"] == ["_b2"]
    assert _values(saml11, version)["value_types"] == {TokenType.SAML11.key_identifier_value_type}


@VERSIONS
def test_a_batch_collects_rendered_rstrs(version: TrustVersion) -> None:
    rstrs = [render_rstr(_response(version, f"_{i}", "https://rp.test/")) for i in range(3)]
    collection = render_collection(version, rstrs)
    assert [_values(r, version)["token"] for r in collection] == [["_0"], ["_1"], ["_2"]]
