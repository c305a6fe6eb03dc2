"""The SAML 2.0 assertion: shape, times and validity against the official XSD (signed and unsigned)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from lxml import etree

from sts import ns
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.saml.saml20 import build_assertion, issuer_of
from sts.uris import CM_BEARER_20, AuthnMethod, SignatureAlgorithm

S = "{urn:oasis:names:tc:SAML:2.0:assertion}"


def test_unprefixed_and_self_contained(content) -> None:
    data = etree.tostring(build_assertion(content))
    assert data.startswith(b'<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ')


def test_header_attributes(content) -> None:
    assertion = build_assertion(content)
    assert assertion.get("ID") == content.assertion_id
    assert assertion.get("Version") == "2.0"
    assert assertion.get("IssueInstant") == "2026-11-28T00:00:00.123Z"


def test_children_in_xsd_order(content) -> None:
    names = [etree.QName(child).localname for child in build_assertion(content)]
    assert names == ["Issuer", "Subject", "Conditions", "AttributeStatement", "AuthnStatement"]


def test_subject_and_conditions(content) -> None:
    assertion = build_assertion(content)
    name_id = assertion.find(f"{S}Subject/{S}NameID")
    assert (name_id.text, name_id.get("Format")) == (content.subject_name, content.name_id_format)
    confirmation = assertion.find(f"{S}Subject/{S}SubjectConfirmation")
    assert confirmation.get("Method") == CM_BEARER_20
    assert confirmation.find(f"{S}SubjectConfirmationData").get("NotOnOrAfter") == "2026-11-28T01:00:00.123Z"
    conditions = assertion.find(f"{S}Conditions")
    assert conditions.get("NotBefore") == "2026-11-28T00:00:00.123Z"
    assert conditions.get("NotOnOrAfter") == "2026-11-28T01:00:00.123Z"
    assert conditions.findtext(f"{S}AudienceRestriction/{S}Audience") == content.audience


def test_attributes_carry_name_only(content) -> None:
    attributes = build_assertion(content).findall(f"{S}AttributeStatement/{S}Attribute")
    assert [a.attrib for a in attributes] == [{"Name": c.uri} for c in content.claims]
    assert [v.text for v in attributes[1]] == ["admins", "users"]


def test_no_claims_no_attribute_statement(content) -> None:
    assertion = build_assertion(dataclasses.replace(content, claims=()))
    assert assertion.find(f"{S}AttributeStatement") is None


@pytest.mark.parametrize("method", list(AuthnMethod))
def test_authn_statement(method, content) -> None:
    statement = build_assertion(dataclasses.replace(content, authn_method=method)).find(f"{S}AuthnStatement")
    assert statement.get("AuthnInstant") == "2026-11-27T23:59:59.123Z"
    assert statement.findtext(f"{S}AuthnContext/{S}AuthnContextClassRef") == method.saml20


def test_times_are_utc_milliseconds(content) -> None:
    data = etree.tostring(build_assertion(content)).decode()
    for value in re.findall(r'(?:Instant|NotBefore|NotOnOrAfter)="([^"]+)"', data):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value)


def test_issuer_of(content) -> None:
    assertion = build_assertion(content)
    assert issuer_of(assertion) is assertion[0]
    assertion.remove(assertion[0])
    with pytest.raises(ValueError):
        issuer_of(assertion)


@pytest.mark.parametrize("claims", [True, False])
def test_unsigned_is_xsd_valid(claims, content, saml20_schema) -> None:
    assertion = build_assertion(content if claims else dataclasses.replace(content, claims=()))
    saml20_schema.validate(etree.tostring(assertion).decode())


@pytest.mark.parametrize("algorithm", list(SignatureAlgorithm), ids=lambda a: a.name)
def test_signed_is_xsd_valid(algorithm, content, saml20_schema, signing_key, ec_signing_key) -> None:
    key = ec_signing_key if algorithm is SignatureAlgorithm.ECDSA_SHA256 else signing_key
    assertion = build_assertion(content)
    XmlSigner(key, algorithm).sign(assertion, content.assertion_id, after=issuer_of(assertion))
    assert etree.QName(assertion[1]).namespace == ns.DS
    saml20_schema.validate(etree.tostring(assertion).decode())


def test_special_characters_are_escaped(content, saml20_schema) -> None:
    claims = (dataclasses.replace(content.claims[0], values=("<b>&'\"</b>",)),)
    assertion = build_assertion(dataclasses.replace(content, claims=claims, subject_name="a&b<c>"))
    reparsed = etree.fromstring(etree.tostring(assertion))
    assert reparsed.findtext(f"{S}Subject/{S}NameID") == "a&b<c>"
    assert reparsed.findtext(f".//{S}AttributeValue") == "<b>&'\"</b>"
    saml20_schema.validate(etree.tostring(assertion).decode())
