"""The unsigned SAML 1.1 assertion (SAML 1.1 core §2.3-§2.4, WSS SAML Token Profile 1.1): bearer or holder-of-key.

``saml:`` is declared on the Assertion so the token stays self-contained when copied out of the RSTR. The
Signature, added later, goes last (the 1.1 XSD puts ds:Signature after the statements). Holder-of-key (SAML 1.1
core §2.4.2.3): ``ds:KeyInfo`` follows ConfirmationMethod inside every statement's SubjectConfirmation.

The fixed part (Conditions and the AuthenticationStatement with its Subject) is built once and copied per token.
"""

from __future__ import annotations

import copy
from typing import Final

from lxml import etree

from sts import ns
from sts.model import AssertionContent, Claim
from sts.tokens.crypto.canonical import SignableParts
from sts.uris import CM_BEARER_11, CM_HOLDER_OF_KEY_11
from sts.xmltime import format_datetime

_NSMAP: Final = {"saml": ns.SAML1}


def _saml(local: str) -> str:
    return ns.qn(ns.SAML1, local)


_ATTRIBUTE: Final = _saml("Attribute")
_ATTRIBUTE_VALUE: Final = _saml("AttributeValue")
_AUDIENCE: Final = _saml("Audience")


def _skeleton() -> etree._Element:
    """Conditions and AuthenticationStatement/Subject, every attribute in its final order, values empty."""
    sub = etree.SubElement
    assertion = etree.Element(_saml("Assertion"), nsmap=_NSMAP, MajorVersion="1", MinorVersion="1",
                              AssertionID="", Issuer="", IssueInstant="")
    conditions = sub(assertion, _saml("Conditions"), NotBefore="", NotOnOrAfter="")
    sub(sub(conditions, _saml("AudienceRestrictionCondition")), _AUDIENCE)
    statement = sub(assertion, _saml("AuthenticationStatement"), AuthenticationMethod="", AuthenticationInstant="")
    subject = sub(statement, _saml("Subject"))
    sub(subject, _saml("NameIdentifier"), Format="")
    sub(sub(subject, _saml("SubjectConfirmation")), _saml("ConfirmationMethod")).text = CM_BEARER_11
    return assertion


_SKELETON: Final = _skeleton()


def build_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> etree._Element:
    """The assertion element, ready to be signed with the Signature appended last.

    With ``content.proof_key`` set the subject is confirmed holder-of-key by ``key_info`` (the proof key's
    ds:KeyInfo, see ``crypto.proof.proof_key_info``), which is then required.
    """
    if content.proof_key is not None and key_info is None:
        raise ValueError("a holder-of-key assertion needs the proof key's ds:KeyInfo")
    # lxml's __copy__ copies the whole tree in C (copy.deepcopy adds Python bookkeeping around the same call).
    assertion = _SKELETON.__copy__()
    conditions, statement = assertion
    subject = statement[0]
    name_identifier, confirmation = subject
    assertion.set("AssertionID", content.assertion_id)
    assertion.set("Issuer", content.issuer)
    assertion.set("IssueInstant", format_datetime(content.issue_instant))
    conditions.set("NotBefore", format_datetime(content.not_before))
    conditions.set("NotOnOrAfter", format_datetime(content.not_on_or_after))
    restriction = conditions[0]
    audience_list = audiences(content)
    restriction[0].text = audience_list[0]
    for additional in audience_list[1:]:
        etree.SubElement(restriction, _AUDIENCE).text = additional
    statement.set("AuthenticationMethod", content.authn_method.saml11)
    statement.set("AuthenticationInstant", format_datetime(content.authn_instant))
    name_identifier.text = content.subject_name
    name_identifier.set("Format", content.name_id_format)
    if content.proof_key is not None and key_info is not None:
        confirmation[0].text = CM_HOLDER_OF_KEY_11
        confirmation.append(copy.deepcopy(key_info))
    # The 1.1 XSD requires at least one AttributeValue per Attribute: claims without values are left out.
    claims = tuple(c for c in content.claims if c.values)
    if claims:
        # Every 1.1 subject statement repeats the Subject (there is no assertion-level Subject in SAML 1.1).
        statement.addprevious(_attribute_statement(copy.deepcopy(subject), claims))
    return assertion


def canonical_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> SignableParts:
    """The assertion's exclusive c14n split at the place of its Signature: last, before the closing tag."""
    canonical_form = etree.tostring(build_assertion(content, key_info), method="c14n", exclusive=True,
                                    with_comments=False)
    end = canonical_form.rindex(b"</")
    return SignableParts(head=canonical_form[:end], tail=canonical_form[end:], sent_head=canonical_form[:end])


def split_claim_uri(uri: str) -> tuple[str, str]:
    """(AttributeNamespace, AttributeName) of a claim URI, split at its last ``/`` as AD FS and WIF do.

    WIF rebuilds the claim type as ``namespace + "/" + name``. A URI without ``/`` (a URN) is split at its
    last ``:`` instead, so that a URN's name is not empty.
    """
    namespace, _, name = uri.rpartition("/" if "/" in uri else ":")
    return namespace, name


def audiences(content: AssertionContent) -> list[str]:
    """The token's audience and the relying party's additional ones, each once, in order."""
    return list(dict.fromkeys((content.audience, *content.additional_audiences)))


def _attribute_statement(subject: etree._Element, claims: tuple[Claim, ...]) -> etree._Element:
    sub = etree.SubElement
    statement = etree.Element(_saml("AttributeStatement"), nsmap=_NSMAP)
    statement.append(subject)
    for claim in claims:
        namespace, name = split_claim_uri(claim.uri)
        attribute = sub(statement, _ATTRIBUTE, AttributeName=name, AttributeNamespace=namespace)
        for value in claim.values:
            sub(attribute, _ATTRIBUTE_VALUE).text = value
    return statement
