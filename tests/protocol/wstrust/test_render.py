"""Issue answers rendered from a copied skeleton: every value where it belongs, nothing shared between answers."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from sts import ns
from sts.model import IssuedToken, RequestSecurityTokenResponse
from sts.protocol.wstrust.render import issue_response_bytes, render_collection, render_issue_response, render_rstr
from sts.protocol.xmlbytes import serialised
from sts.uris import TokenType, TrustVersion

NOW = datetime(2026, 12, 3, 5, 30, 0, 123456, tzinfo=timezone.utc)
VERSIONS = pytest.mark.parametrize("version", list(TrustVersion), ids=lambda v: v.name)


def _response(version: TrustVersion, token_id: str, applies_to: str, *, context: str | None = None,
              token_type: TokenType = TokenType.SAML20) -> RequestSecurityTokenResponse:
    element = etree.Element("{urn:token}Token", nsmap={"t": "urn:token"}, ID=token_id)
    token = IssuedToken(token_id=token_id, token_type=token_type, xml=etree.tostring(element), encrypted=False, created=NOW,
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


# --- the Issue answer as bytes (issue_response_bytes): the same bytes as the tree, shape by shape -----------------

def _token_like_ours(token_id: str) -> etree._Element:
    """A token shaped like the ones we issue where it matters to serialisation: a default namespace (SAML 2.0's
    EncryptedAssertion), prefixed children, and prefixes the RSTR declares too (wsse, wsu) declared again inside."""
    token = etree.Element(ns.qn(ns.SAML2, "EncryptedAssertion"), nsmap={None: ns.SAML2})
    data = etree.SubElement(token, ns.qn(ns.XENC, "EncryptedData"), nsmap={"xenc": ns.XENC}, Id=token_id)
    info = etree.SubElement(data, ns.qn(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    reference = etree.SubElement(info, ns.qn(ns.WSSE, "SecurityTokenReference"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    reference.set(ns.qn(ns.WSU, "Id"), "r-1")
    etree.SubElement(etree.SubElement(data, ns.qn(ns.XENC, "CipherData")), ns.qn(ns.XENC, "CipherValue")).text = "QUJD" * 300
    return token


_SHAPES = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(context="ctx-1"), id="context"),
    pytest.param(dict(context='a "quoted" & <odd>\tcontext\r\n'), id="context-to-escape"),
    pytest.param(dict(request_type=False), id="no-request-type"),
    pytest.param(dict(key_type=True), id="key-type"),
    pytest.param(dict(applies_to="https://rp.test/app?x=1&y=<2>"), id="address-to-escape"),
    pytest.param(dict(policy_ns=ns.WSP15), id="policy-1.5"),
    pytest.param(dict(token_type=TokenType.SAML11), id="saml11"),
    pytest.param(dict(token_id="_ünïcødé"), id="non-ascii-id"),
]


def _shaped(version: TrustVersion, *, context: str | None = None, request_type: bool = True, key_type: bool = False,
            applies_to: str = "https://rp.test/", policy_ns: str | None = None, token_type: TokenType = TokenType.SAML20,
            token_id: str = "_b7") -> RequestSecurityTokenResponse:
    token = IssuedToken(token_id=token_id, token_type=token_type, xml=serialised(_token_like_ours(token_id)),
                        encrypted=True, created=NOW, expires=NOW + timedelta(minutes=5), applies_to=applies_to,
                        subject="alice", token_hash="")
    return RequestSecurityTokenResponse(
        version=version, token=token, token_type_uri=token_type.value, applies_to_ns=policy_ns, context=context,
        request_type_uri=version.uri("Issue") if request_type else None,
        key_type_uri=version.uri("Bearer") if key_type else None)


def _canonical(document: bytes) -> bytes:
    return bytes(etree.tostring(etree.fromstring(document), method="c14n", exclusive=True))


@VERSIONS
@pytest.mark.parametrize("shape", _SHAPES)
def test_the_issue_answer_as_bytes_is_the_tree_serialised(version: TrustVersion, shape: dict[str, object]) -> None:
    """Byte for byte, except that the token keeps every namespace declaration it was made with: moved into the
    tree's RSTR, lxml drops those the RSTR declares too (wsse, wsu here). The same document: the canonical forms
    are equal."""
    as_bytes = issue_response_bytes(_shaped(version, **shape))  # type: ignore[arg-type]
    as_tree = serialised(render_issue_response(_shaped(version, **shape)))  # type: ignore[arg-type]
    assert as_bytes is not None
    assert _canonical(as_bytes) == _canonical(as_tree)
    token = _shaped(version, **shape).token.xml  # type: ignore[arg-type]
    assert as_bytes.count(token) == 1  # the token as it was made, self-contained
    without_redeclared = token.replace(b' xmlns:wsse="' + ns.WSSE.encode() + b'"', b"").replace(
        b' xmlns:wsu="' + ns.WSU.encode() + b'"', b"")
    assert as_bytes.replace(token, without_redeclared) == as_tree


@VERSIONS
def test_answers_of_one_shape_share_nothing_but_the_template(version: TrustVersion) -> None:
    first = issue_response_bytes(_shaped(version, token_id="_first", applies_to="https://one.test/"))
    second = issue_response_bytes(_shaped(version, token_id="_second", applies_to="https://two.test/"))
    assert first is not None and second is not None
    assert b"_first" in first and b"_second" not in first and b"https://one.test/" in first
    assert b"_second" in second and b"_first" not in second and b"https://two.test/" in second


def test_an_answer_with_a_proof_key_is_left_to_the_tree() -> None:
    response = dataclasses.replace(_shaped(TrustVersion.WST13), proof=object())  # type: ignore[arg-type]
    assert issue_response_bytes(response) is None


@pytest.mark.parametrize("field", ["context", "applies_to"])
def test_a_value_xml_cannot_carry_is_refused_by_both_renderers(field: str) -> None:
    bad = {field: "urn:a\x01b"}
    with pytest.raises(ValueError, match="XML compatible"):
        render_issue_response(_shaped(TrustVersion.WST13, **bad))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="XML compatible"):
        issue_response_bytes(_shaped(TrustVersion.WST13, **bad))  # type: ignore[arg-type]
