"""Differential test of token signatures: our one-pass verifier answers as signxml's XMLVerifier did (issue 14).

``sts.tokens.verification.verify_assertion`` verifies an assertion's enveloped signature itself (one c14n of
SignedInfo, one of the assertion without its Signature, one public-key operation). Before, it handed the
assertion to signxml. Here the tokens our STS issues (SAML 1.1 and 2.0, RSA and ECDSA) and their tampered variants
(a changed attribute value, text or Id, a moved or wrapped signature, an extra assertion, comments injected,
namespace changes, SignedInfo and KeyInfo edits, an expired pinned certificate) and re-signed variants (with an
ec:InclusiveNamespaces prefix list) go to both: the profile checks they share (``check_signature_shape``) then
signxml (the oracle, configured as the old path was) against our path. They must accept and refuse the same variants, and where both accept return the same signed bytes.
``xmlsec1 --verify`` is asked too where a token is its own document: whatever we accept it must verify, and the
purely cryptographic tampers it must refuse as well (it knows nothing of SAML's profile, so it is laxer there).

Each token stands in three places: as its own document (the relying party), inside an RST (Validate by value:
the ancestors' namespaces are in scope) and encrypted for the relying party (decrypted first). ``make test`` runs
every tamper on every token as its own document and a rotating cover of the other places; ``make differential``
(DIFFERENTIAL=full) runs the whole product.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from signxml.verifier import SignatureConfiguration, XMLVerifier

from assertion_content import make_content
from sts import ns
from sts.model import Claim
from sts.tokens.crypto.encryption import encrypt_element
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner, default_algorithm
from sts.tokens.saml import saml11, saml20
from sts.tokens.verification import (ASSERTION_ID, AlgorithmAllowList, TokenRejected, check_signature_shape,
                                     decrypt_token, verify_assertion)
from sts.uris import EXC_C14N
from tally import FULL

NOW = datetime(2030, 1, 2, 12, 0, tzinfo=timezone.utc)
LATER = datetime(2040, 1, 2, tzinfo=timezone.utc)  # after every certificate made here expires
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
DS = f"{{{ns.DS}}}"
KINDS = ("saml20-rsa", "saml20-ec", "saml11-rsa", "saml11-ec")
PLACES = ("document", "in-rst", "encrypted")
SAML1_ASSERTION = ns.qn(ns.SAML1, "Assertion")
DSIG11 = "http://www.w3.org/2009/xmldsig11#"


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey
    ec: SigningKey
    other: SigningKey  # another STS: its certificate in KeyInfo must not be trusted
    rp: SigningKey
    workdir: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    made = Keys(SigningKey.from_pem(*generate_key_and_cert("sts")),
                SigningKey.from_pem(*generate_key_and_cert("sts", ec=True)),
                SigningKey.from_pem(*generate_key_and_cert("sts")),
                SigningKey.from_pem(*generate_key_and_cert("rp")),
                tmp_path_factory.mktemp("token-differential"))
    yield made


def issue(keys: Keys, kind: str) -> etree._Element:
    """A token as our STS signs it (the same builders and signer as Issue)."""
    key = keys.ec if kind.endswith("-ec") else keys.rsa
    content = make_content(now=NOW, assertion_id=random_id(), issuer="https://sts.example/", subject_name="alice",
                           audience="https://rp.example/", claims=(Claim(GIVENNAME, ("Alice",)),))
    if kind.startswith("saml20"):
        assertion = saml20.build_assertion(content)
        XmlSigner(key, default_algorithm(key)).sign(assertion, content.assertion_id,
                                                    after=saml20.issuer_of(assertion))
    else:
        assertion = saml11.build_assertion(content)
        XmlSigner(key, default_algorithm(key)).sign(assertion, content.assertion_id)
    return assertion


# --- the tampers: each changes a freshly issued assertion in place ---------------------------------------------------


def _first_text(a: etree._Element, local: str) -> etree._Element:
    return next(e for e in a.iter() if isinstance(e.tag, str) and etree.QName(e).localname == local and e.text)


def _signature(a: etree._Element) -> etree._Element:
    return a.find(f"{DS}Signature")


def _set_text(local: str, value: str) -> Callable[[etree._Element, Keys], None]:
    def change(a: etree._Element, keys: Keys) -> None:
        _first_text(a, local).text = value
    return change


def _comment_in(local: str) -> Callable[[etree._Element, Keys], None]:
    """A comment splits the text: c14n without comments digests the same bytes (signed content unchanged)."""
    def inject(a: etree._Element, keys: Keys) -> None:
        element = next(e for e in a.iter() if isinstance(e.tag, str) and etree.QName(e).localname == local)
        text = element.text or ""
        element.text = text[:3]
        comment = etree.Comment("x")
        comment.tail = text[3:]
        element.insert(0, comment)
    return inject


def _condition_time(a: etree._Element, keys: Keys) -> None:
    conditions = next(e for e in a.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "Conditions")
    conditions.set("NotOnOrAfter", "2099-01-01T00:00:00Z")


def _change_id(a: etree._Element, keys: Keys) -> None:
    a.set(ASSERTION_ID[a.tag], "_evil")


def _retarget_reference(a: etree._Element, keys: Keys) -> None:
    a.set(ASSERTION_ID[a.tag], "_evil")
    _signature(a).find(f"{DS}SignedInfo/{DS}Reference").set("URI", "#_evil")


def _move_signature_last(a: etree._Element, keys: Keys) -> None:
    a.append(_signature(a))


def _move_signature_down(a: etree._Element, keys: Keys) -> None:
    child = next(e for e in a if isinstance(e.tag, str) and e.tag != f"{DS}Signature" and len(e))
    child.append(_signature(a))


def _wrap_in_evil_root(a: etree._Element, keys: Keys) -> None:
    """XSW: an evil assertion (another subject, same Id) holds the signed original; its Signature stays put."""
    original = copy.deepcopy(a)
    a.remove(_signature(a))
    _first_text(a, "NameIdentifier" if a.tag == SAML1_ASSERTION else "NameID").text = "mallory"
    holder = etree.SubElement(a, f"{{{etree.QName(a).namespace}}}Advice")
    holder.append(original)
    a.insert(len(a) - 1, original.find(f"{DS}Signature"))


def _extra_assertion(a: etree._Element, keys: Keys) -> None:
    evil = copy.deepcopy(a)
    evil.remove(_signature(evil))
    evil.set(ASSERTION_ID[a.tag], "_second")
    etree.SubElement(a, f"{{{etree.QName(a).namespace}}}Advice").append(evil)


def _change_namespace(a: etree._Element, keys: Keys) -> None:
    issuer = next(e for e in a.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "Conditions")
    issuer.tag = "{urn:example:evil}Conditions"


def _signature_value_byte(a: etree._Element, keys: Keys) -> None:
    value = _signature(a).find(f"{DS}SignatureValue")
    value.text = ("B" if value.text[0] != "B" else "C") + value.text[1:]


def _signature_value_wrapped(a: etree._Element, keys: Keys) -> None:
    value = _signature(a).find(f"{DS}SignatureValue")
    value.text = "\n".join(value.text[i:i + 64] for i in range(0, len(value.text), 64))


def _digest_value_byte(a: etree._Element, keys: Keys) -> None:
    value = _signature(a).find(f"{DS}SignedInfo/{DS}Reference/{DS}DigestValue")
    value.text = ("B" if value.text[0] != "B" else "C") + value.text[1:]


def _signed_info_comment(a: etree._Element, keys: Keys) -> None:
    _comment_in("DigestValue")(_signature(a), keys)


def _signed_info_extra_element(a: etree._Element, keys: Keys) -> None:
    etree.SubElement(_signature(a).find(f"{DS}SignedInfo"), f"{DS}Extra")


def _swap_transforms(a: etree._Element, keys: Keys) -> None:
    transforms = _signature(a).find(f"{DS}SignedInfo/{DS}Reference/{DS}Transforms")
    transforms.append(transforms[0])


def _sha1_digest(a: etree._Element, keys: Keys) -> None:
    _signature(a).find(f"{DS}SignedInfo/{DS}Reference/{DS}DigestMethod").set(
        "Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")


def _other_certificate_in_keyinfo(a: etree._Element, keys: Keys) -> None:
    _signature(a).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate").text = keys.other.cert_b64


def _signed_by_other_key(a: etree._Element, keys: Keys) -> None:
    a.remove(_signature(a))
    XmlSigner(keys.other).sign(a, a.get(ASSERTION_ID[a.tag]),
                               after=saml20.issuer_of(a) if a.tag != SAML1_ASSERTION else None)


def _key_value(matching: bool) -> Callable[[etree._Element, Keys], None]:
    """A KeyValue beside the X509Data: the token's own key, or another one (an ambiguous KeyInfo)."""
    def add(a: etree._Element, keys: Keys) -> None:
        ec_token = _signature(a).find(f"{DS}SignedInfo/{DS}SignatureMethod").get("Algorithm", "").find("ecdsa") >= 0
        named = keys.other if not matching else keys.ec if ec_token else keys.rsa
        key_value = etree.SubElement(_signature(a).find(f"{DS}KeyInfo"), f"{DS}KeyValue")
        public = named.certificate.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            value = etree.SubElement(key_value, f"{{{DSIG11}}}ECKeyValue")
            etree.SubElement(value, f"{{{DSIG11}}}NamedCurve", URI="urn:oid:1.2.840.10045.3.1.7")
            etree.SubElement(value, f"{{{DSIG11}}}PublicKey").text = base64.b64encode(public.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).decode()
            return
        numbers = public.public_numbers()  # type: ignore[union-attr]
        value = etree.SubElement(key_value, f"{DS}RSAKeyValue")
        for name, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
            etree.SubElement(value, f"{DS}{name}").text = base64.b64encode(
                number.to_bytes((number.bit_length() + 7) // 8, "big")).decode()
    return add


def _prefix_list_resigned(a: etree._Element, keys: Keys, *, on_signed_info: bool = False) -> None:
    """Genuine, not tampered: signed again with ec:InclusiveNamespaces PrefixList="xs" on the Reference's c14n (as
    Shibboleth and others sign). The assertion does not declare xs: inside an RST that does, the prefix list pulls
    the RST's declaration into the canonical bytes, and the digest no longer matches. ``on_signed_info``: on
    SignedInfo's CanonicalizationMethod too, which the XML-DSig schema signxml validates against refuses (its
    wildcard there is strict and knows no ec: element), so both verifiers refuse it."""
    signature = _signature(a)
    reference = signature.find(f"{DS}SignedInfo/{DS}Reference")
    etree.SubElement(reference.find(f"{DS}Transforms")[1], f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList="xs")
    if on_signed_info:
        etree.SubElement(signature.find(f"{DS}SignedInfo/{DS}CanonicalizationMethod"),
                         f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList="xs")
    work = copy.deepcopy(a)
    work.remove(_signature(work))
    digested = etree.tostring(work, method="c14n", exclusive=True, inclusive_ns_prefixes=["xs"])
    reference.find(f"{DS}DigestValue").text = base64.b64encode(hashlib.sha256(digested).digest()).decode()
    signed_info = etree.tostring(signature.find(f"{DS}SignedInfo"), method="c14n", exclusive=True,
                                 inclusive_ns_prefixes=["xs"] if on_signed_info else None)
    method = signature.find(f"{DS}SignedInfo/{DS}SignatureMethod").get("Algorithm", "")
    private = (keys.ec if "ecdsa" in method else keys.rsa).private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s_ = decode_dss_signature(private.sign(signed_info, ec.ECDSA(hashes.SHA256())))
        value = r.to_bytes(32, "big") + s_.to_bytes(32, "big")  # XML-DSig 1.1: r || s
    else:
        value = private.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    signature.find(f"{DS}SignatureValue").text = base64.b64encode(value).decode()


def _object_in_signature(a: etree._Element, keys: Keys) -> None:
    etree.SubElement(etree.SubElement(_signature(a), f"{DS}Object"), "{urn:example}Anything").text = "unsigned"


def _whitespace_between_children(a: etree._Element, keys: Keys) -> None:
    a[0].tail = (a[0].tail or "") + "\n  "


def _whitespace_after_signature(a: etree._Element, keys: Keys) -> None:
    """Text after the Signature stays when the enveloped transform removes it: the digest changes."""
    _signature(a).tail = "x"


def _no_signature(a: etree._Element, keys: Keys) -> None:
    a.remove(_signature(a))


TAMPERS: dict[str, Callable[[etree._Element, Keys], None]] = {
    "genuine": lambda a, keys: None,
    "attribute-value": _set_text("AttributeValue", "Mallory"),
    "subject-text": _set_text("NameID", "mallory"),
    "condition-time": _condition_time,
    "assertion-id": _change_id,
    "reference-retargeted": _retarget_reference,
    "signature-moved-last": _move_signature_last,
    "signature-moved-down": _move_signature_down,
    "wrapped-in-evil-root": _wrap_in_evil_root,
    "extra-assertion-inside": _extra_assertion,
    "comment-in-subject": _comment_in("NameID"),
    "comment-in-attribute-value": _comment_in("AttributeValue"),
    "comment-in-digest-value": _signed_info_comment,
    "unused-namespace": lambda a, keys: None,  # on the serialised form, see BYTE_TAMPERS
    "prefix-renamed": lambda a, keys: None,
    "namespace-changed": _change_namespace,
    "signature-value-byte": _signature_value_byte,
    "signature-value-wrapped": _signature_value_wrapped,
    "digest-value-byte": _digest_value_byte,
    "signed-info-extra-element": _signed_info_extra_element,
    "transforms-swapped": _swap_transforms,
    "sha1-digest": _sha1_digest,
    "other-certificate-in-keyinfo": _other_certificate_in_keyinfo,
    "signed-by-other-key": _signed_by_other_key,
    "matching-key-value": _key_value(True),
    "other-key-value": _key_value(False),
    "object-in-signature": _object_in_signature,
    "prefix-list-resigned": _prefix_list_resigned,
    "signed-info-prefix-list": lambda a, keys: _prefix_list_resigned(a, keys, on_signed_info=True),
    "whitespace-added": _whitespace_between_children,
    "text-after-signature": _whitespace_after_signature,
    "unsigned": _no_signature,
}
#: Tampers of the signed bytes or values: xmlsec1, which knows nothing of SAML, must refuse them too.
XMLSEC1_REFUSES = frozenset({"attribute-value", "subject-text", "condition-time", "signature-value-byte",
                             "digest-value-byte", "signed-by-other-key", "whitespace-added", "text-after-signature",
                             "namespace-changed", "prefix-renamed"})


def _unused_namespace(data: bytes, prefix: str) -> bytes:
    """An unused declaration on the apex: exclusive c14n leaves it out, so the signed bytes are unchanged."""
    tag = f"<{prefix}:Assertion " if prefix else "<Assertion "
    return data.replace(tag.encode(), f'{tag}xmlns:unused="urn:x" '.encode(), 1)


def _rename_prefix(data: bytes, prefix: str) -> bytes:
    """The same names under another prefix: the canonical bytes (and so the digest) change. (SAML 2.0 tokens use
    the default namespace: there the Issuer gets a prefix of its own.)"""
    if not prefix:
        return data.replace(b"<Issuer", f'<p:Issuer xmlns:p="{ns.SAML2}"'.encode(), 1).replace(
            b"</Issuer>", b"</p:Issuer>", 1)
    return (data.replace(f"<{prefix}:".encode(), b"<renamed:").replace(f"</{prefix}:".encode(), b"</renamed:")
            .replace(f"xmlns:{prefix}=".encode(), b"xmlns:renamed="))


#: Tampers of the serialised token (lxml cannot add or rename a namespace declaration in place).
BYTE_TAMPERS: dict[str, Callable[[bytes, str], bytes]] = {
    "unused-namespace": _unused_namespace, "prefix-renamed": _rename_prefix}


def _apply(kind: str, tamper: str, keys: Keys) -> etree._Element:
    """A fresh token of ``kind`` with ``tamper`` applied, as the root of its own document."""
    assertion = issue(keys, kind)
    change = TAMPERS[tamper]
    if kind.startswith("saml11") and tamper == "subject-text":
        change = _set_text("NameIdentifier", "mallory")
    if kind.startswith("saml11") and tamper == "comment-in-subject":
        change = _comment_in("NameIdentifier")
    change(assertion, keys)
    data = etree.tostring(assertion)
    if tamper in BYTE_TAMPERS:
        data = BYTE_TAMPERS[tamper](data, assertion.prefix or "")
    return etree.fromstring(data)


def _place(assertion: etree._Element, place: str, keys: Keys) -> etree._Element:
    """The element the verifier is handed: the assertion itself, inside an RST, or decrypted from its encryption."""
    if place == "document":
        return assertion
    if place == "in-rst":
        # As a client sends it: the token's bytes inside an RST that declares namespaces of its own.
        rst = (f'<wst:RequestSecurityToken xmlns:wst="{ns.WST13}" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
               f'xmlns:dsx="{ns.DS}" xmlns="urn:example:default"><wst:ValidateTarget>').encode()
        data = rst + etree.tostring(assertion) + b"</wst:ValidateTarget></wst:RequestSecurityToken>"
        return etree.fromstring(data).find(f".//{{{ns.WST13}}}ValidateTarget")[0]
    encrypted = encrypt_element(assertion, keys.rp.certificate)
    return decrypt_token(etree.fromstring(etree.tostring(encrypted)), keys.rp.private_key, AlgorithmAllowList())


# --- the verdicts ----------------------------------------------------------------------------------------------------


def ours(assertion: etree._Element, key: SigningKey, when: datetime) -> str:
    try:
        signed = verify_assertion(assertion, [key.certificate], AlgorithmAllowList(), when=when)
    except TokenRejected as rejected:
        return f"refused:{rejected.code}"
    return "accepted:" + etree.tostring(signed, method="c14n").decode()


def signxml_oracle(assertion: etree._Element, key: SigningKey, when: datetime) -> str:
    """The path before issue 14: the profile checks, then signxml's XMLVerifier with the pinned certificate."""
    algorithms = AlgorithmAllowList()
    id_attribute = ASSERTION_ID[assertion.tag]
    try:
        check_signature_shape(assertion, assertion.get(id_attribute) or "", algorithms)
    except TokenRejected as rejected:
        return f"refused:{rejected.code}"
    config = SignatureConfiguration(require_x509=True, location="./", expect_references=1,
                                    signature_methods=algorithms.signxml_methods,
                                    digest_algorithms=algorithms.signxml_digests, verification_time=when)
    try:
        result = XMLVerifier().verify(etree.tostring(assertion), x509_cert=key.certificate,
                                      id_attribute=id_attribute, expect_config=config)
    except Exception:  # noqa: BLE001 - signxml, lxml and cryptography each raise their own
        return "refused:signature"
    signed = result.signed_xml  # type: ignore[union-attr]
    if signed is None or signed.tag != assertion.tag or signed.get(id_attribute) != assertion.get(id_attribute):
        return "refused:signature"
    return "accepted:" + etree.tostring(signed, method="c14n").decode()


def xmlsec1(assertion: etree._Element, key: SigningKey, workdir: Path, name: str) -> bool:
    id_attr = ASSERTION_ID[assertion.tag]
    path, cert = workdir / f"{name}.xml", workdir / f"{name}.crt"
    path.write_bytes(etree.tostring(assertion))
    cert.write_bytes(key.certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["xmlsec1", "--verify", f"--id-attr:{id_attr}", f"{etree.QName(assertion).namespace}:Assertion",
         "--enabled-key-data", "key-name", "--pubkey-cert-pem", str(cert), str(path)],
        capture_output=True, timeout=30, check=False)
    return result.returncode == 0


def _cases() -> list[tuple[str, str]]:
    """Every kind in every place under DIFFERENTIAL=full; else every kind as its own document, and the other
    places each for two of the kinds (rotating, so each kind and place meet)."""
    cases = [(kind, place) for kind in KINDS for place in PLACES]
    if FULL:
        return cases
    return [(k, p) for k, p in cases if p == "document" or (KINDS.index(k) + PLACES.index(p)) % 2 == 0]


@pytest.mark.parametrize(("kind", "place"), _cases(), ids=[f"{k}-{p}" for k, p in _cases()])
def test_our_token_verifier_answers_as_signxml(keys: Keys, kind: str, place: str) -> None:
    key = keys.ec if kind.endswith("-ec") else keys.rsa
    disagreements, verdicts = [], {}
    for tamper in TAMPERS:
        try:
            assertion = _place(_apply(kind, tamper, keys), place, keys)
        except TokenRejected as shared:  # decrypt_token's own checks (a duplicate Id): before either verifier
            verdicts[(tamper, NOW)] = f"refused:{shared.code}"
            continue
        for when in (NOW, LATER) if tamper == "genuine" else (NOW,):
            mine, oracle = ours(assertion, key, when), signxml_oracle(assertion, key, when)
            verdicts[(tamper, when)] = mine
            if mine.split(":")[0] != oracle.split(":")[0] or (mine.startswith("accepted") and mine != oracle):
                disagreements.append(f"{tamper} at {when:%Y}: ours={mine[:60]} signxml={oracle[:60]}")
    assert not disagreements, "\n".join(disagreements)
    # The verdicts themselves, so that two verifiers agreeing on nonsense cannot pass.
    assert verdicts[("genuine", NOW)].startswith("accepted:")
    assert verdicts[("genuine", LATER)] == "refused:signature"  # the pinned certificate expired by then
    for tamper in ("unused-namespace", "signature-value-wrapped", "other-certificate-in-keyinfo",
                   "matching-key-value", "object-in-signature", "comment-in-digest-value"):
        assert verdicts[(tamper, NOW)].startswith("accepted:"), tamper
    assert "mallory" not in verdicts[("comment-in-subject", NOW)]
    assert "<!--" not in verdicts[("comment-in-attribute-value", NOW)]  # comments are not signed, not returned
    for tamper in XMLSEC1_REFUSES | {"wrapped-in-evil-root", "extra-assertion-inside", "assertion-id",
                                     "reference-retargeted", "signature-moved-down", "other-key-value",
                                     "signed-info-extra-element", "transforms-swapped", "sha1-digest", "unsigned",
                                     "signed-info-prefix-list"}:
        assert verdicts[(tamper, NOW)].startswith("refused:"), tamper
    assert verdicts[("sha1-digest", NOW)] == "refused:algorithm"
    # A prefix list is honoured: as signed, the token verifies; where an ancestor declares the prefix, not.
    assert verdicts[("prefix-list-resigned", NOW)].startswith("refused:" if place == "in-rst" else "accepted:")
    assert verdicts[("unsigned", NOW)] == "refused:unsigned"


@pytest.mark.parametrize("kind", KINDS)
def test_xmlsec1_verifies_what_we_accept_and_refuses_the_cryptographic_tampers(keys: Keys, kind: str) -> None:
    key = keys.ec if kind.endswith("-ec") else keys.rsa
    wrong = []
    for tamper in TAMPERS:
        assertion = _apply(kind, tamper, keys)
        accepted = ours(assertion, key, NOW).startswith("accepted:")
        if accepted or tamper in XMLSEC1_REFUSES:
            by_xmlsec1 = xmlsec1(assertion, key, keys.workdir, f"{kind}-{tamper}")
            if by_xmlsec1 != accepted:
                wrong.append(f"{tamper}: ours={'accepted' if accepted else 'refused'} xmlsec1={by_xmlsec1}")
    assert not wrong, "\n".join(wrong)
