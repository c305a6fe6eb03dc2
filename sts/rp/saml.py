"""Reading a verified SAML 1.1 or 2.0 assertion, and trust from WS-Federation metadata (for ``sts.rp.verifier``).

Every reader here is handed only the element ``verify_assertion`` returned (what the signature covers); failures
are ``TokenRejected``. ``TokenVerifier`` in ``sts.rp.verifier`` is the only caller.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml.verifier import SignatureConfiguration, XMLVerifier

from sts import ns
from sts.protocol import xmlsafe
from sts.model import Delegate
from sts.rp.verified_token import _MAX_BYTES, PublicKey, TokenRejected, VerifiedToken, parse_time

# --- reading the signed assertion (only ever the element verify_assertion returned) -------------------------

_KeyDecrypter = Callable[[etree._Element], bytes]


def _s2(local: str) -> str:
    return ns.qn(ns.SAML2, local)


def _s1(local: str) -> str:
    return ns.qn(ns.SAML1, local)


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return "".join(element.itertext()).strip()


def _required_time(text: str | None, what: str) -> datetime:
    value = parse_time(text, what)
    if value is None:
        raise TokenRejected(f"the token has no {what}", "malformed")
    return value


@dataclass(frozen=True)
class _Proof:
    key: bytes | None = None
    certificate: x509.Certificate | None = None
    public_key: PublicKey | None = None


def _read_proof(key_info: etree._Element | None, decrypt: _KeyDecrypter) -> _Proof:
    """The holder-of-key proof key named by a SubjectConfirmation's ds:KeyInfo."""
    if key_info is None:
        raise TokenRejected("a holder-of-key confirmation without ds:KeyInfo", "malformed")
    encrypted_key = key_info.find(ns.qn(ns.XENC, "EncryptedKey"))
    if encrypted_key is not None:
        return _Proof(key=decrypt(encrypted_key))
    cert_text = key_info.findtext(f"{{{ns.DS}}}X509Data/{{{ns.DS}}}X509Certificate")
    if cert_text:
        cert = x509.load_der_x509_certificate(base64.b64decode("".join(cert_text.split()), validate=True))
        public = cert.public_key()
        if not isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            raise TokenRejected("the proof certificate's key is neither RSA nor EC", "malformed")
        return _Proof(certificate=cert, public_key=public)
    rsa_value = key_info.find(f"{{{ns.DS}}}KeyValue/{{{ns.DS}}}RSAKeyValue")
    if rsa_value is not None:
        modulus = int.from_bytes(base64.b64decode("".join((rsa_value.findtext(f"{{{ns.DS}}}Modulus") or "").split())), "big")
        exponent = int.from_bytes(base64.b64decode("".join((rsa_value.findtext(f"{{{ns.DS}}}Exponent") or "").split())), "big")
        return _Proof(public_key=rsa.RSAPublicNumbers(exponent, modulus).public_key())
    raise TokenRejected("the holder-of-key KeyInfo names no key this verifier understands", "malformed")


def _merge_claims(pairs: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, tuple[str, ...]]:
    claims: dict[str, tuple[str, ...]] = {}
    for uri, values in pairs:
        claims[uri] = claims.get(uri, ()) + values
    return claims


_ISSUER, _SUBJECT, _NAME_ID, _CONDITIONS = _s2("Issuer"), _s2("Subject"), _s2("NameID"), _s2("Conditions")
_CONFIRMATION, _CONFIRMATION_DATA = _s2("SubjectConfirmation"), _s2("SubjectConfirmationData")
_CONDITION, _AUDIENCE_RESTRICTION, _AUDIENCE = _s2("Condition"), _s2("AudienceRestriction"), _s2("Audience")
_AUTHN, _AUTHN_CONTEXT, _CLASS_REF = _s2("AuthnStatement"), _s2("AuthnContext"), _s2("AuthnContextClassRef")
_ATTRIBUTE_STATEMENT, _ATTRIBUTE, _ATTRIBUTE_VALUE = _s2("AttributeStatement"), _s2("Attribute"), _s2("AttributeValue")
_DELEGATE, _XSI_TYPE, _DS_KEY_INFO = ns.qn(ns.DELEGATION, "Delegate"), ns.qn(ns.XSI, "type"), ns.qn(ns.DS, "KeyInfo")


def _by_tag(parent: etree._Element | None) -> dict[object, list[etree._Element]]:
    """Tag -> the children with it, in document order: one pass instead of one ElementPath ``find`` per name."""
    grouped: dict[object, list[etree._Element]] = {}
    if parent is not None:
        for child in parent:
            grouped.setdefault(child.tag, []).append(child)
    return grouped


def _first(grouped: dict[object, list[etree._Element]], tag: str) -> etree._Element | None:
    found = grouped.get(tag)
    return found[0] if found else None


def _grandchildren(grouped: dict[object, list[etree._Element]], tag: str, inner: str) -> list[etree._Element]:
    """What ElementPath's ``tag/inner`` finds: each ``inner`` child of each ``tag`` child, in document order."""
    return [child for parent in grouped.get(tag, ()) for child in parent if child.tag == inner]


def _read_saml20(signed: etree._Element, decrypt: _KeyDecrypter) -> VerifiedToken:
    parts = _by_tag(signed)
    issuer = _text(_first(parts, _ISSUER))
    if not issuer:
        raise TokenRejected("the assertion has no Issuer", "malformed")
    subject = _first(parts, _SUBJECT)
    of_subject = _by_tag(subject)
    name_id = _first(of_subject, _NAME_ID)
    if name_id is None or not _text(name_id):
        raise TokenRejected("the assertion has no Subject/NameID", "malformed")
    conditions = _first(parts, _CONDITIONS)
    if conditions is None:
        raise TokenRejected("the assertion has no Conditions", "malformed")
    of_conditions = _by_tag(conditions)
    confirmations = of_subject.get(_CONFIRMATION, [])
    method, proof = None, _Proof()
    for confirmation in confirmations:
        method = method or confirmation.get("Method")
        data = confirmation.find(_CONFIRMATION_DATA)
        if confirmation.get("Method", "").endswith(":cm:holder-of-key"):
            method = confirmation.get("Method")
            proof = _read_proof(data.find(_DS_KEY_INFO) if data is not None else None, decrypt)
            break
    not_on_or_after = _required_time(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter")
    for confirmation in confirmations:
        data = confirmation.find(_CONFIRMATION_DATA)
        limit = parse_time(data.get("NotOnOrAfter") if data is not None else None, "SubjectConfirmationData NotOnOrAfter")
        if limit is not None and limit < not_on_or_after:
            not_on_or_after = limit
    delegates: list[Delegate] = []
    for condition in of_conditions.get(_CONDITION, ()):
        kind = condition.get(_XSI_TYPE, "")
        if not kind.endswith("DelegationRestrictionType"):
            raise TokenRejected(f"unknown condition {kind or '?'}", "malformed")
        for delegate in condition.iterfind(_DELEGATE):
            instant = parse_time(delegate.get("DelegationInstant"), "DelegationInstant") or not_on_or_after
            delegates.append(Delegate(_text(delegate.find(_NAME_ID)) or "", instant))
    authn = _first(parts, _AUTHN)
    class_refs = _grandchildren(_by_tag(authn), _AUTHN_CONTEXT, _CLASS_REF)
    return VerifiedToken(
        token_id=signed.get("ID", ""),
        version="2.0",
        issuer=issuer,
        subject=_text(name_id) or "",
        subject_format=name_id.get("Format"),
        claims=_merge_claims(
            (a.get("Name", ""), tuple(_text(v) or "" for v in a if v.tag == _ATTRIBUTE_VALUE))
            for a in _grandchildren(parts, _ATTRIBUTE_STATEMENT, _ATTRIBUTE)
        ),
        not_before=parse_time(conditions.get("NotBefore"), "Conditions NotBefore"),
        not_on_or_after=not_on_or_after,
        audiences=tuple(_text(a) or "" for a in _grandchildren(of_conditions, _AUDIENCE_RESTRICTION, _AUDIENCE)),
        authn_method=(_text(class_refs[0]) if class_refs else None) if authn is not None else None,
        authn_instant=parse_time(authn.get("AuthnInstant"), "AuthnInstant") if authn is not None else None,
        confirmation_method=method,
        proof_key=proof.key,
        proof_certificate=proof.certificate,
        delegates=tuple(delegates),
        proof_public_key=proof.public_key,
    )


def claim_uri_11(namespace: str, name: str) -> str:
    """The claim URI of a SAML 1.1 attribute: AttributeNamespace + '/' + AttributeName (':' for a URN namespace)."""
    if not namespace:
        return name
    return f"{namespace}{'/' if '/' in namespace else ':'}{name}"


_S1_CONDITIONS, _S1_SUBJECT, _S1_NAME_IDENTIFIER = _s1("Conditions"), _s1("Subject"), _s1("NameIdentifier")
_S1_CONFIRMATION, _S1_CONFIRMATION_METHOD = _s1("SubjectConfirmation"), _s1("ConfirmationMethod")
_S1_AUTHN, _S1_ATTRIBUTE_STATEMENT = _s1("AuthenticationStatement"), _s1("AttributeStatement")
_S1_ATTRIBUTE, _S1_ATTRIBUTE_VALUE = _s1("Attribute"), _s1("AttributeValue")
_S1_AUDIENCE_RESTRICTION, _S1_AUDIENCE = _s1("AudienceRestrictionCondition"), _s1("Audience")


def _child(parent: etree._Element, tag: str) -> etree._Element | None:
    """The first child with ``tag`` (what ``find(tag)`` returns, without ElementPath)."""
    return next((child for child in parent if child.tag == tag), None)


def _read_saml11(signed: etree._Element, decrypt: _KeyDecrypter) -> VerifiedToken:
    issuer = (signed.get("Issuer") or "").strip()
    if not issuer:
        raise TokenRejected("the assertion has no Issuer", "malformed")
    parts = _by_tag(signed)
    conditions = _first(parts, _S1_CONDITIONS)
    if conditions is None:
        raise TokenRejected("the assertion has no Conditions", "malformed")
    subjects = [child for statement in signed for child in statement if child.tag == _S1_SUBJECT]
    names = {_text(_child(s, _S1_NAME_IDENTIFIER)) for s in subjects}
    if not subjects or len(names) != 1 or not next(iter(names)):
        raise TokenRejected("the assertion's statements do not name one subject", "malformed")
    name_id = _child(subjects[0], _S1_NAME_IDENTIFIER)
    method, proof = None, _Proof()
    for subject in subjects:
        confirmation = _child(subject, _S1_CONFIRMATION)
        if confirmation is None:
            continue
        this = _text(_child(confirmation, _S1_CONFIRMATION_METHOD))
        method = method or this
        if this and this.endswith(":cm:holder-of-key") and proof == _Proof():
            method = this
            proof = _read_proof(confirmation.find(_DS_KEY_INFO), decrypt)
    authn = _first(parts, _S1_AUTHN)
    return VerifiedToken(
        token_id=signed.get("AssertionID", ""),
        version="1.1",
        issuer=issuer,
        subject=next(iter(names)) or "",
        subject_format=name_id.get("Format") if name_id is not None else None,
        claims=_merge_claims(
            (claim_uri_11(a.get("AttributeNamespace", ""), a.get("AttributeName", "")),
             tuple(_text(v) or "" for v in a if v.tag == _S1_ATTRIBUTE_VALUE))
            for a in _grandchildren(parts, _S1_ATTRIBUTE_STATEMENT, _S1_ATTRIBUTE)
        ),
        not_before=parse_time(conditions.get("NotBefore"), "Conditions NotBefore"),
        not_on_or_after=_required_time(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter"),
        audiences=tuple(_text(a) or "" for a in _grandchildren(_by_tag(conditions), _S1_AUDIENCE_RESTRICTION,
                                                              _S1_AUDIENCE)),
        authn_method=authn.get("AuthenticationMethod") if authn is not None else None,
        authn_instant=parse_time(authn.get("AuthenticationInstant"), "AuthenticationInstant") if authn is not None else None,
        confirmation_method=method,
        proof_key=proof.key,
        proof_certificate=proof.certificate,
        proof_public_key=proof.public_key,
    )


# --- trust from WS-Federation metadata ------------------------------------------------------------------------


def _metadata_signing_certificates(
    source: str | bytes, pinned: x509.Certificate | None
) -> tuple[x509.Certificate, ...]:
    """The signing KeyDescriptors' certificates of a metadata document (its signature checked when pinned)."""
    return read_federation_metadata(source, pinned)[0]


def read_federation_metadata(
    source: str | bytes, pinned: x509.Certificate | None
) -> tuple[tuple[x509.Certificate, ...], str | None]:
    """The signing certificates and the entityID (the STS's issuer) of a metadata document (URL or bytes).

    With ``pinned`` the document's signature must verify with it, and both are read from what it covers.
    """
    if isinstance(source, str):
        import httpx  # noqa: PLC0415

        response = httpx.get(source, timeout=30, follow_redirects=False)
        response.raise_for_status()
        source = response.content
    root = xmlsafe.parse(source, max_bytes=_MAX_BYTES)
    if pinned is not None:
        root_id = root.get("ID")
        if not root_id:
            raise ValueError("the metadata has no ID to sign")
        try:
            xmlsafe.id_map(root)
            result = XMLVerifier().verify(
                etree.tostring(root), x509_cert=pinned, id_attribute="ID",
                expect_config=SignatureConfiguration(location="./", expect_references=1),
            )
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"the metadata signature does not verify with the pinned certificate: {exc}") from None
        signed = result[0].signed_xml if isinstance(result, list) else result.signed_xml
        if signed is None or signed.get("ID") != root_id:
            raise ValueError("the metadata signature does not cover the document")
        root = signed
    certificates: list[x509.Certificate] = []
    for descriptor in root.iter(ns.qn(ns.MD, "KeyDescriptor")):
        if descriptor.get("use", "signing") != "signing":
            continue
        for text in descriptor.iterfind(f"{{{ns.DS}}}KeyInfo/{{{ns.DS}}}X509Data/{{{ns.DS}}}X509Certificate"):
            der = base64.b64decode("".join((text.text or "").split()))
            cert = x509.load_der_x509_certificate(der)
            if cert not in certificates:
                certificates.append(cert)
    if not certificates:
        raise ValueError("the metadata names no signing certificate")
    entity_id = (root.get("entityID") or "").strip() if root.tag == ns.qn(ns.MD, "EntityDescriptor") else ""
    return tuple(certificates), entity_id or None
