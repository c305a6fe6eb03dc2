"""The unsigned SAML 2.0 assertion (SAML 2.0 core §2.3-§2.7, WSS SAML Token Profile 1.1): bearer or holder-of-key.

Written unprefixed (``<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">``) as AD FS does: some clients
find the token only in that form. The element order is the XSD's: Issuer, (Signature), Subject, Conditions,
AttributeStatement, AuthnStatement.

Holder-of-key (SAML 2.0 profiles §3.1): the SubjectConfirmationData is ``xsi:type="KeyInfoConfirmationDataType"``,
unprefixed so that the QName resolves through the default namespace, which exclusive c14n always keeps; ``xsi``
is declared on the Assertion.
"""

from __future__ import annotations

from typing import Final

from lxml import etree
from lxml.builder import ElementMaker

from sts import ns
from sts.model import AssertionContent, Claim
from sts.uris import CM_BEARER_20, CM_HOLDER_OF_KEY_20, KEY_INFO_CONFIRMATION_DATA_TYPE, NAMEID_UNSPECIFIED
from sts.xmltime import format_datetime

_E: Final = ElementMaker(namespace=ns.SAML2, nsmap={None: ns.SAML2})
_E_XSI: Final = ElementMaker(namespace=ns.SAML2, nsmap={None: ns.SAML2, "xsi": ns.XSI})
# The delegation condition's xsi:type names a type by the `del` prefix, so `del` is declared on the Assertion.
_E_DEL: Final = ElementMaker(namespace=ns.SAML2, nsmap={None: ns.SAML2, "xsi": ns.XSI, "del": ns.DELEGATION})
_DEL: Final = ElementMaker(namespace=ns.DELEGATION)


def build_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> etree._Element:
    """The assertion element, ready to be signed with the Signature right after Issuer.

    With ``content.proof_key`` set the subject is confirmed holder-of-key by ``key_info`` (the proof key's
    ds:KeyInfo, see ``crypto.proof.proof_key_info``), which is then required.
    """
    maker = _E_DEL if content.delegates else (_E if content.proof_key is None else _E_XSI)
    assertion = maker.Assertion(
        _E.Issuer(content.issuer),
        _subject(content, key_info),
        _conditions(content),
        ID=content.assertion_id,
        IssueInstant=format_datetime(content.issue_instant),
        Version="2.0",
    )
    # A claim without values has nothing to say (and SAML 1.1 forbids an empty Attribute): left out in both.
    claims = tuple(c for c in content.claims if c.values)
    if claims:
        assertion.append(_attribute_statement(claims))
    assertion.append(_authn_statement(content))
    return assertion


def issuer_of(assertion: etree._Element) -> etree._Element:
    """The Issuer child, after which the enveloped Signature goes (SAML 2.0 core §5.4.1)."""
    issuer = assertion.find(ns.qn(ns.SAML2, "Issuer"))
    if issuer is None:
        raise ValueError("a SAML 2.0 assertion without Issuer")
    return issuer


def _subject(content: AssertionContent, key_info: etree._Element | None) -> etree._Element:
    return _E.Subject(
        _E.NameID(content.subject_name, Format=content.name_id_format), _subject_confirmation(content, key_info)
    )


def _subject_confirmation(content: AssertionContent, key_info: etree._Element | None) -> etree._Element:
    not_on_or_after = format_datetime(content.not_on_or_after)
    if content.proof_key is None:
        return _E.SubjectConfirmation(_E.SubjectConfirmationData(NotOnOrAfter=not_on_or_after), Method=CM_BEARER_20)
    if key_info is None:
        raise ValueError("a holder-of-key assertion needs the proof key's ds:KeyInfo")
    data = _E.SubjectConfirmationData(key_info, NotOnOrAfter=not_on_or_after)
    data.set(ns.qn(ns.XSI, "type"), KEY_INFO_CONFIRMATION_DATA_TYPE)
    return _E.SubjectConfirmation(data, Method=CM_HOLDER_OF_KEY_20)


def _conditions(content: AssertionContent) -> etree._Element:
    conditions = _E.Conditions(
        NotBefore=format_datetime(content.not_before),
        NotOnOrAfter=format_datetime(content.not_on_or_after),
    )
    if content.delegates:
        conditions.append(_delegation_restriction(content))
    audiences = dict.fromkeys((content.audience, *content.additional_audiences))
    conditions.append(_E.AudienceRestriction(*(_E.Audience(a) for a in audiences)))
    return conditions


def _delegation_restriction(content: AssertionContent) -> etree._Element:
    """SAML V2.0 Condition for Delegation Restriction: who acted for the subject, oldest first."""
    condition = _E.Condition(*(
        _DEL.Delegate(_E.NameID(d.name, Format=NAMEID_UNSPECIFIED), DelegationInstant=format_datetime(d.instant))
        for d in content.delegates
    ))
    condition.set(ns.qn(ns.XSI, "type"), "del:DelegationRestrictionType")
    return condition


def _attribute_statement(claims: tuple[Claim, ...]) -> etree._Element:
    # Name only, no NameFormat: what AD FS emits and what WIF-style relying parties map back to claim types.
    return _E.AttributeStatement(
        *(_E.Attribute(*(_E.AttributeValue(v) for v in claim.values), Name=claim.uri) for claim in claims)
    )


def _authn_statement(content: AssertionContent) -> etree._Element:
    return _E.AuthnStatement(
        _E.AuthnContext(_E.AuthnContextClassRef(content.authn_method.saml20)),
        AuthnInstant=format_datetime(content.authn_instant),
    )
