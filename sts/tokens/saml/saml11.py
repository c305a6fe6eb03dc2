"""The unsigned SAML 1.1 assertion (SAML 1.1 core §2.3-§2.4, WSS SAML Token Profile 1.1): bearer or holder-of-key.

``saml:`` is declared on the Assertion so the token stays self-contained when copied out of the RSTR. The
Signature, added later, goes last (the 1.1 XSD puts ds:Signature after the statements). Holder-of-key (SAML 1.1
core §2.4.2.3): ``ds:KeyInfo`` follows ConfirmationMethod inside every statement's SubjectConfirmation.
"""

from __future__ import annotations

import copy
from typing import Final

from lxml import etree
from lxml.builder import ElementMaker

from sts import ns
from sts.model import AssertionContent, Claim
from sts.uris import CM_BEARER_11, CM_HOLDER_OF_KEY_11
from sts.xmltime import format_datetime

_E: Final = ElementMaker(namespace=ns.SAML1, nsmap={"saml": ns.SAML1})


def build_assertion(content: AssertionContent, key_info: etree._Element | None = None) -> etree._Element:
    """The assertion element, ready to be signed with the Signature appended last.

    With ``content.proof_key`` set the subject is confirmed holder-of-key by ``key_info`` (the proof key's
    ds:KeyInfo, see ``crypto.proof.proof_key_info``), which is then required.
    """
    if content.proof_key is not None and key_info is None:
        raise ValueError("a holder-of-key assertion needs the proof key's ds:KeyInfo")
    assertion = _E.Assertion(
        _conditions(content),
        MajorVersion="1",
        MinorVersion="1",
        AssertionID=content.assertion_id,
        Issuer=content.issuer,
        IssueInstant=format_datetime(content.issue_instant),
    )
    # The 1.1 XSD requires at least one AttributeValue per Attribute: claims without values are left out.
    claims = tuple(c for c in content.claims if c.values)
    if claims:
        assertion.append(_attribute_statement(content, claims, key_info))
    assertion.append(_authentication_statement(content, key_info))
    return assertion


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


def _conditions(content: AssertionContent) -> etree._Element:
    return _E.Conditions(
        _E.AudienceRestrictionCondition(*(_E.Audience(a) for a in audiences(content))),
        NotBefore=format_datetime(content.not_before),
        NotOnOrAfter=format_datetime(content.not_on_or_after),
    )


def _subject(content: AssertionContent, key_info: etree._Element | None) -> etree._Element:
    # Every 1.1 subject statement repeats the Subject (there is no assertion-level Subject in SAML 1.1).
    if content.proof_key is None or key_info is None:
        confirmation = _E.SubjectConfirmation(_E.ConfirmationMethod(CM_BEARER_11))
    else:
        confirmation = _E.SubjectConfirmation(_E.ConfirmationMethod(CM_HOLDER_OF_KEY_11), copy.deepcopy(key_info))
    return _E.Subject(_E.NameIdentifier(content.subject_name, Format=content.name_id_format), confirmation)


def _attribute(claim: Claim) -> etree._Element:
    namespace, name = split_claim_uri(claim.uri)
    return _E.Attribute(
        *(_E.AttributeValue(v) for v in claim.values), AttributeName=name, AttributeNamespace=namespace
    )


def _attribute_statement(
    content: AssertionContent, claims: tuple[Claim, ...], key_info: etree._Element | None
) -> etree._Element:
    return _E.AttributeStatement(_subject(content, key_info), *(_attribute(c) for c in claims))


def _authentication_statement(content: AssertionContent, key_info: etree._Element | None) -> etree._Element:
    return _E.AuthenticationStatement(
        _subject(content, key_info),
        AuthenticationMethod=content.authn_method.saml11,
        AuthenticationInstant=format_datetime(content.authn_instant),
    )
