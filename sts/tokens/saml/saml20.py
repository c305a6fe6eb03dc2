"""The unsigned SAML 2.0 assertion (SAML 2.0 core §2.3-§2.7, WSS SAML Token Profile 1.1): bearer or holder-of-key.

Written unprefixed (``<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">``) as AD FS does: some clients
find the token only in that form. The element order is the XSD's: Issuer, (Signature), Subject, Conditions,
AttributeStatement, AuthnStatement.

Holder-of-key (SAML 2.0 profiles §3.1): the SubjectConfirmationData is ``xsi:type="KeyInfoConfirmationDataType"``,
unprefixed so that the QName resolves through the default namespace, which exclusive c14n always keeps; ``xsi``
is declared where it is used, on the SubjectConfirmationData.

The assertion is written directly in its exclusive-c14n form (``canonical_assertion``): the digest is taken over
the bytes that are sent, with no tree to build and no canonicalisation pass. The tests hold that form to lxml's
c14n of the parsed bytes, for every shape and for hostile values.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from sts import ns
from sts.model import AssertionContent
from sts.protocol.xmlsafe import parse_trusted
from sts.tokens.crypto import canonical
from sts.tokens.crypto.canonical import SignableParts
from sts.uris import CM_BEARER_20, CM_HOLDER_OF_KEY_20, KEY_INFO_CONFIRMATION_DATA_TYPE, NAMEID_UNSPECIFIED
from sts.xmltime import format_datetime

_ROOT: Final = f'<Assertion xmlns="{ns.SAML2}"'
#: Declared on the sent root of a delegated assertion only: the Condition's xsi:type value names a type by the
#: ``del`` prefix, which exclusive c14n does not see as used there (it is declared where Delegate uses it).
_DEL_DECLARATION: Final = f' xmlns:del="{ns.DELEGATION}"'


def canonical_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> SignableParts:
    """The assertion's canonical bytes around the place of its Signature (right after Issuer).

    With ``content.proof_key`` set the subject is confirmed holder-of-key by ``key_info`` (the proof key's
    ds:KeyInfo, see ``crypto.proof.proof_key_info``), which is then required.
    """
    if content.proof_key is not None and key_info is None:
        raise ValueError("a holder-of-key assertion needs the proof key's ds:KeyInfo")
    text, attribute = canonical.text, canonical.attribute
    not_on_or_after = format_datetime(content.not_on_or_after)
    root = (f' ID="{attribute(content.assertion_id)}" IssueInstant="{format_datetime(content.issue_instant)}"'
            f' Version="2.0">')
    issuer = f"<Issuer>{text(content.issuer)}</Issuer>"
    parts = [
        f'<Subject><NameID Format="{attribute(content.name_id_format)}">{text(content.subject_name)}</NameID>',
        _confirmation(content, key_info, not_on_or_after),
        f'</Subject><Conditions NotBefore="{format_datetime(content.not_before)}" NotOnOrAfter="{not_on_or_after}">',
    ]
    if content.delegates:
        parts.append(_delegation_restriction(content))
    parts.append(f"<AudienceRestriction><Audience>{text(content.audience)}</Audience>")
    for additional in dict.fromkeys(content.additional_audiences):
        if additional != content.audience:
            parts.append(f"<Audience>{text(additional)}</Audience>")
    parts.append("</AudienceRestriction></Conditions>")
    # A claim without values has nothing to say (and SAML 1.1 forbids an empty Attribute): left out in both.
    claims = [c for c in content.claims if c.values]
    if claims:
        parts.append("<AttributeStatement>")
        # Name only, no NameFormat: what AD FS emits and what WIF-style relying parties map back to claim types.
        for claim in claims:
            parts.append(f'<Attribute Name="{attribute(claim.uri)}">')
            parts.extend(f"<AttributeValue>{text(value)}</AttributeValue>" for value in claim.values)
            parts.append("</Attribute>")
        parts.append("</AttributeStatement>")
    parts.append(f'<AuthnStatement AuthnInstant="{format_datetime(content.authn_instant)}"><AuthnContext>'
                 f"<AuthnContextClassRef>{text(content.authn_method.saml20)}</AuthnContextClassRef></AuthnContext>"
                 "</AuthnStatement></Assertion>")
    head = f"{_ROOT}{root}{issuer}".encode()
    sent_head = f"{_ROOT}{_DEL_DECLARATION}{root}{issuer}".encode() if content.delegates else head
    return SignableParts(head=head, tail="".join(parts).encode(), sent_head=sent_head)


def build_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> etree._Element:
    """The assertion as an element (``canonical_assertion`` parsed), ready to be signed after its Issuer."""
    parts = canonical_assertion(content, key_info)
    return parse_trusted(parts.sent_head + parts.tail)


def issuer_of(assertion: etree._Element) -> etree._Element:
    """The Issuer child, after which the enveloped Signature goes (SAML 2.0 core §5.4.1)."""
    issuer = assertion.find(ns.qn(ns.SAML2, "Issuer"))
    if issuer is None:
        raise ValueError("a SAML 2.0 assertion without Issuer")
    return issuer


def _confirmation(content: AssertionContent, key_info: etree._Element | None, not_on_or_after: str) -> str:
    if content.proof_key is None or key_info is None:
        return (f'<SubjectConfirmation Method="{CM_BEARER_20}"><SubjectConfirmationData '
                f'NotOnOrAfter="{not_on_or_after}"></SubjectConfirmationData></SubjectConfirmation>')
    # Holder-of-key (SAML 2.0 profiles §3.1): the type is unprefixed, so it resolves through the default namespace,
    # which exclusive c14n always keeps. The KeyInfo's own c14n is its c14n here: it uses only its own prefixes.
    key = etree.tostring(key_info, method="c14n", exclusive=True, with_comments=False).decode()
    return (f'<SubjectConfirmation Method="{CM_HOLDER_OF_KEY_20}"><SubjectConfirmationData xmlns:xsi="{ns.XSI}" '
            f'NotOnOrAfter="{not_on_or_after}" xsi:type="{KEY_INFO_CONFIRMATION_DATA_TYPE}">{key}'
            "</SubjectConfirmationData></SubjectConfirmation>")


def _delegation_restriction(content: AssertionContent) -> str:
    """SAML V2.0 Condition for Delegation Restriction: who acted for the subject, oldest first."""
    delegates = "".join(
        f'<del:Delegate xmlns:del="{ns.DELEGATION}" DelegationInstant="{format_datetime(d.instant)}">'
        f'<NameID Format="{NAMEID_UNSPECIFIED}">{canonical.text(d.name)}</NameID></del:Delegate>'
        for d in content.delegates
    )
    return (f'<Condition xmlns:xsi="{ns.XSI}" xsi:type="del:DelegationRestrictionType">{delegates}'
            "</Condition>")
