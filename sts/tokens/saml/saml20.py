"""The unsigned SAML 2.0 assertion (SAML 2.0 core §2.3-§2.7, WSS SAML Token Profile 1.1): bearer or holder-of-key.

Written unprefixed (``<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">``) as AD FS does: some clients
find the token only in that form. The element order is the XSD's: Issuer, (Signature), Subject, Conditions,
AttributeStatement, AuthnStatement.

Holder-of-key (SAML 2.0 profiles §3.1): the SubjectConfirmationData is ``xsi:type="KeyInfoConfirmationDataType"``,
unprefixed so that the QName resolves through the default namespace, which exclusive c14n always keeps; ``xsi``
is declared on the Assertion.

The fixed part of the assertion (every element but the claims and extra audiences) is built once per namespace
form and copied per token: lxml copies a small tree in C, several times faster than building it element by element.
"""

from __future__ import annotations

from typing import Final

from lxml import etree
from lxml.builder import ElementMaker

from sts import ns
from sts.model import AssertionContent, Claim
from sts.uris import CM_BEARER_20, CM_HOLDER_OF_KEY_20, KEY_INFO_CONFIRMATION_DATA_TYPE, NAMEID_UNSPECIFIED
from sts.xmltime import format_datetime

_NSMAP: Final[dict[str | None, str]] = {None: ns.SAML2}
_NSMAP_XSI: Final[dict[str | None, str]] = {None: ns.SAML2, "xsi": ns.XSI}
# The delegation condition's xsi:type names a type by the `del` prefix, so `del` is declared on the Assertion.
_NSMAP_DEL: Final[dict[str | None, str]] = {None: ns.SAML2, "xsi": ns.XSI, "del": ns.DELEGATION}
_E: Final = ElementMaker(namespace=ns.SAML2, nsmap=_NSMAP)
_DEL: Final = ElementMaker(namespace=ns.DELEGATION)
_XSI_TYPE: Final = ns.qn(ns.XSI, "type")


def _saml(local: str) -> str:
    return ns.qn(ns.SAML2, local)


_ATTRIBUTE: Final = _saml("Attribute")
_ATTRIBUTE_VALUE: Final = _saml("AttributeValue")
_AUDIENCE: Final = _saml("Audience")


def _skeleton(nsmap: dict[str | None, str]) -> etree._Element:
    """Issuer, Subject, Conditions and AuthnStatement with every attribute in its final order, values empty.

    Positions are fixed (see ``build_assertion``); the attribute order is the serialised order.
    """
    sub = etree.SubElement
    assertion = etree.Element(_saml("Assertion"), nsmap=nsmap, ID="", IssueInstant="", Version="2.0")
    sub(assertion, _saml("Issuer"))
    subject = sub(assertion, _saml("Subject"))
    sub(subject, _saml("NameID"), Format="")
    confirmation = sub(subject, _saml("SubjectConfirmation"), Method=CM_BEARER_20)
    sub(confirmation, _saml("SubjectConfirmationData"), NotOnOrAfter="")
    conditions = sub(assertion, _saml("Conditions"), NotBefore="", NotOnOrAfter="")
    sub(sub(conditions, _saml("AudienceRestriction")), _AUDIENCE)
    statement = sub(assertion, _saml("AuthnStatement"), AuthnInstant="")
    sub(sub(statement, _saml("AuthnContext")), _saml("AuthnContextClassRef"))
    return assertion


_SKELETONS: Final = {id(m): _skeleton(m) for m in (_NSMAP, _NSMAP_XSI, _NSMAP_DEL)}


def build_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> etree._Element:
    """The assertion element, ready to be signed with the Signature right after Issuer.

    With ``content.proof_key`` set the subject is confirmed holder-of-key by ``key_info`` (the proof key's
    ds:KeyInfo, see ``crypto.proof.proof_key_info``), which is then required.
    """
    if content.proof_key is not None and key_info is None:
        raise ValueError("a holder-of-key assertion needs the proof key's ds:KeyInfo")
    nsmap = _NSMAP_DEL if content.delegates else (_NSMAP if content.proof_key is None else _NSMAP_XSI)
    # lxml's __copy__ copies the whole tree in C (copy.deepcopy adds Python bookkeeping around the same call).
    assertion = _SKELETONS[id(nsmap)].__copy__()
    issuer, subject, conditions, authn_statement = assertion
    name_id, confirmation = subject
    confirmation_data = confirmation[0]
    audience = conditions[0][0]
    assertion.set("ID", content.assertion_id)
    assertion.set("IssueInstant", format_datetime(content.issue_instant))
    issuer.text = content.issuer
    name_id.text = content.subject_name
    name_id.set("Format", content.name_id_format)
    not_on_or_after = format_datetime(content.not_on_or_after)
    confirmation_data.set("NotOnOrAfter", not_on_or_after)
    if content.proof_key is not None:
        confirmation.set("Method", CM_HOLDER_OF_KEY_20)
        confirmation_data.append(key_info)
        confirmation_data.set(_XSI_TYPE, KEY_INFO_CONFIRMATION_DATA_TYPE)
    conditions.set("NotBefore", format_datetime(content.not_before))
    conditions.set("NotOnOrAfter", not_on_or_after)
    if content.delegates:
        conditions.insert(0, _delegation_restriction(content))
    audience.text = content.audience
    for additional in dict.fromkeys(content.additional_audiences):
        if additional != content.audience:
            etree.SubElement(audience.getparent(), _AUDIENCE).text = additional
    authn_statement.set("AuthnInstant", format_datetime(content.authn_instant))
    authn_statement[0][0].text = content.authn_method.saml20
    # A claim without values has nothing to say (and SAML 1.1 forbids an empty Attribute): left out in both.
    claims = tuple(c for c in content.claims if c.values)
    if claims:
        authn_statement.addprevious(_attribute_statement(claims))
    return assertion


def issuer_of(assertion: etree._Element) -> etree._Element:
    """The Issuer child, after which the enveloped Signature goes (SAML 2.0 core §5.4.1)."""
    issuer = assertion.find(ns.qn(ns.SAML2, "Issuer"))
    if issuer is None:
        raise ValueError("a SAML 2.0 assertion without Issuer")
    return issuer


def _delegation_restriction(content: AssertionContent) -> etree._Element:
    """SAML V2.0 Condition for Delegation Restriction: who acted for the subject, oldest first."""
    condition = _E.Condition(*(
        _DEL.Delegate(_E.NameID(d.name, Format=NAMEID_UNSPECIFIED), DelegationInstant=format_datetime(d.instant))
        for d in content.delegates
    ))
    condition.set(_XSI_TYPE, "del:DelegationRestrictionType")
    return condition


def _attribute_statement(claims: tuple[Claim, ...]) -> etree._Element:
    # Name only, no NameFormat: what AD FS emits and what WIF-style relying parties map back to claim types.
    sub = etree.SubElement
    statement = etree.Element(_saml("AttributeStatement"), nsmap=_NSMAP)
    for claim in claims:
        attribute = sub(statement, _ATTRIBUTE, Name=claim.uri)
        for value in claim.values:
            sub(attribute, _ATTRIBUTE_VALUE).text = value
    return statement
