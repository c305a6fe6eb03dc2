"""The SAML 1.1 assertion: shape, AD FS-style attribute names and validity against the official XSD."""

from __future__ import annotations

import dataclasses

import pytest
from lxml import etree

from sts.tokens.crypto.signing import XmlSigner
from sts.model import Claim
from sts.tokens.saml.saml11 import build_assertion, split_claim_uri
from sts.uris import CM_BEARER_11, AuthnMethod, SignatureAlgorithm

S = "{urn:oasis:names:tc:SAML:1.0:assertion}"


def test_prefixed_and_self_contained(content) -> None:
    data = etree.tostring(build_assertion(content))
    assert data.startswith(b'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" ')


def test_header_attributes(content) -> None:
    assertion = build_assertion(content)
    assert assertion.attrib == {
        "MajorVersion": "1",
        "MinorVersion": "1",
        "AssertionID": content.assertion_id,
        "Issuer": content.issuer,
        "IssueInstant": "2026-11-28T00:00:00.123Z",
    }


def test_children_in_xsd_order(content) -> None:
    names = [etree.QName(child).localname for child in build_assertion(content)]
    assert names == ["Conditions", "AttributeStatement", "AuthenticationStatement"]


def test_conditions(content) -> None:
    conditions = build_assertion(content).find(f"{S}Conditions")
    assert conditions.get("NotBefore") == "2026-11-28T00:00:00.123Z"
    assert conditions.get("NotOnOrAfter") == "2026-11-28T01:00:00.123Z"
    assert conditions.findtext(f"{S}AudienceRestrictionCondition/{S}Audience") == content.audience


def test_both_statements_carry_the_bearer_subject(content) -> None:
    assertion = build_assertion(content)
    for statement in ("AttributeStatement", "AuthenticationStatement"):
        subject = assertion.find(f"{S}{statement}/{S}Subject")
        identifier = subject.find(f"{S}NameIdentifier")
        assert (identifier.text, identifier.get("Format")) == (content.subject_name, content.name_id_format)
        assert subject.findtext(f"{S}SubjectConfirmation/{S}ConfirmationMethod") == CM_BEARER_11


def test_attributes_split_like_adfs(content) -> None:
    attributes = build_assertion(content).findall(f"{S}AttributeStatement/{S}Attribute")
    assert [(a.get("AttributeNamespace"), a.get("AttributeName")) for a in attributes] == [
        ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims", "name"),
        ("http://schemas.microsoft.com/ws/2008/06/identity/claims", "role"),
        ("urn:oid", "0.9.2342.19200300.100.1.3"),
    ]
    assert [v.text for v in attributes[1]] == ["admins", "users"]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://a/b/c", ("http://a/b", "c")),
        ("urn:x:y", ("urn:x", "y")),
        ("http://a/b/", ("http://a/b", "")),
        ("plain", ("", "plain")),
    ],
)
def test_split_claim_uri(uri, expected) -> None:
    assert split_claim_uri(uri) == expected


def test_claims_without_values_are_left_out(content, saml11_schema) -> None:
    claims = (Claim("http://a/b/empty", ()),)
    assertion = build_assertion(dataclasses.replace(content, claims=claims))
    assert assertion.find(f"{S}AttributeStatement") is None
    saml11_schema.validate(etree.tostring(assertion).decode())


@pytest.mark.parametrize("method", list(AuthnMethod))
def test_authentication_statement(method, content) -> None:
    statement = build_assertion(dataclasses.replace(content, authn_method=method)).find(
        f"{S}AuthenticationStatement"
    )
    assert statement.get("AuthenticationMethod") == method.saml11
    assert statement.get("AuthenticationInstant") == "2026-11-27T23:59:59.123Z"


@pytest.mark.parametrize("claims", [True, False])
def test_unsigned_is_xsd_valid(claims, content, saml11_schema) -> None:
    assertion = build_assertion(content if claims else dataclasses.replace(content, claims=()))
    saml11_schema.validate(etree.tostring(assertion).decode())


@pytest.mark.parametrize("algorithm", list(SignatureAlgorithm), ids=lambda a: a.name)
def test_signed_is_xsd_valid(algorithm, content, saml11_schema, signing_key, ec_signing_key) -> None:
    key = ec_signing_key if algorithm is SignatureAlgorithm.ECDSA_SHA256 else signing_key
    assertion = build_assertion(content)
    XmlSigner(key, algorithm).sign(assertion, content.assertion_id)
    assert etree.QName(assertion[-1]).localname == "Signature"
    saml11_schema.validate(etree.tostring(assertion).decode())
