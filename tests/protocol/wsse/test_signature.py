"""verify_message: what a WS-Security signature covers, decided by identity; every refusal pinned to its fault."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from signing import make_client, reparse, rst_root, security_of, zeep_sign
from sts import ns
from sts.errors import (
    AuthenticationBadElements,
    FailedAuthentication,
    FailedCheck,
    SecurityHeaderError,
    UnsupportedAlgorithm,
    UnsupportedSecurityToken,
)
from sts.uris import SignatureAlgorithm, SoapVersion
from sts.protocol.wsse.build import sign_envelope
from sts.protocol.wsse.signature import (
    AlgorithmPolicy,
    CertificateReference,
    IssuerSerialReference,
    KeyReference,
    SkiReference,
    ThumbprintReference,
    TrustedKey,
    parse_issuer_name,
    verify_message,
)

STRICT = AlgorithmPolicy.strict()
S12 = ns.SOAP12
WST = ns.WST13


@pytest.fixture(scope="module")
def client() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key, cert, _ = make_client("client")
    return key, cert


def trust(cert: x509.Certificate, *, allow_sha1: bool = False) -> Callable[[KeyReference], TrustedKey]:
    def resolve(reference: KeyReference) -> TrustedKey:
        return TrustedKey(cert, allow_sha1)

    return resolve


def signed(client: tuple[rsa.RSAPrivateKey, x509.Certificate], soap: SoapVersion = SoapVersion.SOAP12,
           **options: object) -> etree._Element:
    root = rst_root(soap)
    sign_envelope(root, client[0], client[1], **options)  # type: ignore[arg-type]
    return reparse(root)


def verify(root: etree._Element, cert: x509.Certificate, *, allowed: AlgorithmPolicy = STRICT,
           allow_sha1: bool = False, now: datetime | None = None) -> object:
    return verify_message(root, security_of(root), resolve=trust(cert, allow_sha1=allow_sha1), allowed=allowed,
                          now=now or datetime.now(UTC))


def body_of(root: etree._Element) -> etree._Element:
    body = root.find(f"{{{etree.QName(root).namespace}}}Body")
    assert body is not None
    return body


# --- accepted ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("soap", [SoapVersion.SOAP12, SoapVersion.SOAP11])
def test_valid_signature_covers_body_and_timestamp(client, soap) -> None:
    root = signed(client, soap)
    result = verify_message(root, security_of(root), resolve=trust(client[1]), allowed=STRICT, now=datetime.now(UTC))
    assert result.body_signed and result.timestamp_signed
    assert result.certificate == client[1]
    assert result.signature_method is SignatureAlgorithm.RSA_SHA256
    assert len(result.signed_ids) == 2
    # The RST is read from signxml's re-parsed Body, not from the input tree.
    assert result.signed_body is not body_of(root)
    assert result.signed_body[0].tag == f"{{{WST}}}RequestSecurityToken"
    assert result.signed_body[0].findtext(".//{*}Address") == "https://rp.example/"


@pytest.mark.parametrize("style", ["bst", "ski", "thumbprint", "issuer-serial"])
def test_key_reference_styles_reach_the_resolver(client, style) -> None:
    seen: list[KeyReference] = []

    def resolve(reference: KeyReference) -> TrustedKey:
        seen.append(reference)
        return TrustedKey(client[1])

    root = signed(client, key_reference=style)
    verify_message(root, security_of(root), resolve=resolve, allowed=STRICT, now=datetime.now(UTC))
    expected = {"bst": CertificateReference, "ski": SkiReference, "thumbprint": ThumbprintReference,
                "issuer-serial": IssuerSerialReference}[style]
    assert [type(r) for r in seen] == [expected]
    if isinstance(seen[0], CertificateReference):
        assert seen[0].certificate == client[1]


def test_zeep_binary_signature_sha256_is_accepted(client, tmp_path: Path) -> None:
    root = zeep_sign(rst_root(timestamp=True), client[0], client[1], tmp_path)
    result = verify(root, client[1])
    assert result.body_signed and result.timestamp_signed  # type: ignore[attr-defined]


def test_zeep_default_sha1_needs_the_client_to_be_allowed(client, tmp_path: Path) -> None:
    root = zeep_sign(rst_root(timestamp=True), client[0], client[1], tmp_path, sha256=False)
    with pytest.raises(UnsupportedAlgorithm):
        verify(root, client[1])
    verify(root, client[1], allow_sha1=True)


def test_issuer_names_in_openssl_spelling() -> None:
    name = parse_issuer_name("CN=client, O=Example\\, Inc.")
    assert name is not None and name.rfc4514_string() == "CN=client,O=Example\\, Inc."
    assert parse_issuer_name("not a name") is None


# --- tampering ---------------------------------------------------------------------------------------------------


def test_tampered_body_fails_check(client) -> None:
    root = signed(client)
    address = root.find(".//{*}EndpointReference/{*}Address")
    assert address is not None
    address.text = "https://evil.example/"
    with pytest.raises(FailedCheck):
        verify(root, client[1])


def test_tampered_timestamp_fails_check(client) -> None:
    root = signed(client)
    expires = security_of(root).find(f"{{{ns.WSU}}}Timestamp/{{{ns.WSU}}}Expires")
    assert expires is not None
    expires.text = "2099-01-01T00:00:00Z"
    with pytest.raises(FailedCheck):
        verify(root, client[1])


def test_signature_by_another_key_fails_check(client) -> None:
    other_key, _, _ = make_client("other")
    root = signed((other_key, client[1]))  # claims the registered certificate, signs with another key
    with pytest.raises(FailedCheck):
        verify(root, client[1])


def test_body_not_referenced(client) -> None:
    with pytest.raises(AuthenticationBadElements) as err:
        verify(signed(client, sign_body=False), client[1])
    assert err.value.public_reason.endswith("Body")


def test_timestamp_not_referenced(client) -> None:
    with pytest.raises(AuthenticationBadElements) as err:
        verify(signed(client, sign_timestamp=False), client[1])
    assert err.value.public_reason.endswith("Timestamp")


def test_unsigned_request(client) -> None:
    root = rst_root(timestamp=True)
    with pytest.raises(FailedAuthentication):
        verify(root, client[1])


# --- wrapping ----------------------------------------------------------------------------------------------------


def _attacker_body(root: etree._Element) -> etree._Element:
    """Put an unsigned Body asking for another audience where the signed one was; return the signed one."""
    original = body_of(root)
    forged = etree.Element(original.tag)
    forged.append(rst_root(applies_to="https://evil.example/").find(f"{{{S12}}}Body")[0])  # type: ignore[index]
    original.addnext(forged)
    root.remove(original)
    return original


def _new_header_wrapper(root: etree._Element) -> etree._Element:
    header = root.find(f"{{{S12}}}Header")
    assert header is not None
    return etree.SubElement(header, "{urn:evil}Wrapper")


def _security_header_wrapper(root: etree._Element) -> etree._Element:
    return etree.SubElement(security_of(root), "{urn:evil}Wrapper")


def _signature_object(root: etree._Element) -> etree._Element:
    signature = security_of(root).find(f"{{{ns.DS}}}Signature")
    assert signature is not None
    return etree.SubElement(signature, f"{{{ns.DS}}}Object")


@pytest.mark.parametrize("hiding_place", [_new_header_wrapper, _security_header_wrapper, _signature_object],
                         ids=["new-header", "security-header", "signature-object"])
def test_signed_body_moved_elsewhere(client, hiding_place: Callable[[etree._Element], etree._Element]) -> None:
    root = signed(client)
    original = _attacker_body(root)
    hiding_place(root).append(original)
    with pytest.raises(FailedCheck):
        verify(reparse(root), client[1])


def test_attacker_body_with_the_same_id_is_a_duplicate(client) -> None:
    root = signed(client)
    original = _attacker_body(root)
    body_id = original.get(f"{{{ns.WSU}}}Id")
    body_of(root).set(f"{{{ns.WSU}}}Id", str(body_id))
    _new_header_wrapper(root).append(original)
    with pytest.raises(FailedCheck):
        verify(reparse(root), client[1])


def test_id_repointed_to_an_attacker_body(client) -> None:
    root = signed(client)
    original = _attacker_body(root)
    body_id = original.attrib.pop(f"{{{ns.WSU}}}Id")
    body_of(root).set(f"{{{ns.WSU}}}Id", body_id)
    _new_header_wrapper(root).append(original)
    with pytest.raises(FailedCheck):
        verify(reparse(root), client[1])


def test_id_in_a_foreign_namespace_cannot_redirect_signxml(client) -> None:
    """signxml looks up any attribute named Id; the identity check makes both lookups agree."""
    root = signed(client)
    original = _attacker_body(root)
    body_id = original.attrib.pop(f"{{{ns.WSU}}}Id")
    original.set("{urn:evil}Id", body_id)  # signxml would find this one ...
    body_of(root).set("ID", body_id)  # ... xmlsafe.id_map this one
    _new_header_wrapper(root).append(original)
    with pytest.raises(FailedCheck):
        verify(reparse(root), client[1])


def test_signed_timestamp_moved_out_of_the_security_header(client) -> None:
    root = signed(client)
    security = security_of(root)
    timestamp = security.find(f"{{{ns.WSU}}}Timestamp")
    assert timestamp is not None
    fresh = copy.deepcopy(timestamp)
    del fresh.attrib[f"{{{ns.WSU}}}Id"]
    timestamp.addnext(fresh)
    _new_header_wrapper(root).append(timestamp)
    with pytest.raises(FailedCheck):
        verify(reparse(root), client[1])


def test_duplicate_id_anywhere_fails_check(client) -> None:
    root = signed(client)
    token_id = security_of(root).find(f"{{{ns.WSSE}}}BinarySecurityToken").get(f"{{{ns.WSU}}}Id")  # type: ignore[union-attr]
    etree.SubElement(root.find(f"{{{S12}}}Header"), "{urn:x}Other", Id=str(token_id))  # type: ignore[arg-type]
    with pytest.raises(FailedCheck):
        verify(reparse(root), client[1])


def test_two_signatures_are_refused(client) -> None:
    root = signed(client)
    signature = security_of(root).find(f"{{{ns.DS}}}Signature")
    security_of(root).append(copy.deepcopy(signature))  # type: ignore[arg-type]
    with pytest.raises(SecurityHeaderError):
        verify(root, client[1])


# --- algorithms and keys -----------------------------------------------------------------------------------------


def test_sha1_refused_unless_allowed(client) -> None:
    root = signed(client, algorithm=SignatureAlgorithm.RSA_SHA1)
    with pytest.raises(UnsupportedAlgorithm):
        verify(root, client[1])
    verify(root, client[1], allowed=STRICT.with_sha1())
    verify(root, client[1], allow_sha1=True)


@pytest.mark.parametrize("where,algorithm,error", [
    ("c14n", "http://www.w3.org/2006/12/xml-c14n11", UnsupportedAlgorithm),
    ("transform", "http://www.w3.org/TR/1999/REC-xpath-19991116", UnsupportedAlgorithm),
    # allowed by XML-DSig (tests/protocol/wsse/test_signature_layouts.py), but not what was signed here
    ("c14n", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", FailedCheck),
    ("transform", "http://www.w3.org/2000/09/xmldsig#enveloped-signature", FailedCheck),
])
def test_other_canonicalizations_and_transforms_are_refused(client, where, algorithm, error) -> None:
    root = signed(client)
    signed_info = security_of(root).find(f"{{{ns.DS}}}Signature/{{{ns.DS}}}SignedInfo")
    assert signed_info is not None
    path = "CanonicalizationMethod" if where == "c14n" else "Reference/{*}Transforms/{*}Transform"
    signed_info.find(f"{{{ns.DS}}}{path}").set("Algorithm", algorithm)  # type: ignore[union-attr]
    with pytest.raises(error):
        verify(root, client[1])


@pytest.mark.parametrize("uri", ["", "#xpointer(/)", "http://evil.example/doc"])
def test_non_id_reference_uris_are_refused(client, uri) -> None:
    root = signed(client)
    reference = security_of(root).find(f".//{{{ns.DS}}}Reference")
    assert reference is not None
    reference.set("URI", uri)
    with pytest.raises(FailedCheck):
        verify(root, client[1])


def test_keyvalue_only_key_is_refused(client) -> None:
    root = signed(client)
    key_info = security_of(root).find(f"{{{ns.DS}}}Signature/{{{ns.DS}}}KeyInfo")
    assert key_info is not None
    for child in list(key_info):
        key_info.remove(child)
    numbers = client[1].public_key().public_numbers()  # type: ignore[union-attr]
    rsa_value = etree.SubElement(etree.SubElement(key_info, f"{{{ns.DS}}}KeyValue"), f"{{{ns.DS}}}RSAKeyValue")
    etree.SubElement(rsa_value, f"{{{ns.DS}}}Modulus").text = str(numbers.n)
    with pytest.raises(UnsupportedSecurityToken):
        verify(root, client[1])


def test_token_reference_must_name_a_token_of_this_header(client) -> None:
    root = signed(client)
    reference = security_of(root).find(f".//{{{ns.WSSE}}}SecurityTokenReference/{{{ns.WSSE}}}Reference")
    assert reference is not None
    reference.set("URI", "#" + str(body_of(root).get(f"{{{ns.WSU}}}Id")))
    with pytest.raises(UnsupportedSecurityToken):
        verify(root, client[1])


def test_unregistered_certificate_is_failed_authentication(client) -> None:
    root = signed(client)

    def nobody(reference: KeyReference) -> TrustedKey:
        raise FailedAuthentication("not registered")

    with pytest.raises(FailedAuthentication):
        verify_message(root, security_of(root), resolve=nobody, allowed=STRICT, now=datetime.now(UTC))


def test_expired_or_not_yet_valid_certificate_is_failed_authentication(client) -> None:
    root = signed(client)
    with pytest.raises(FailedAuthentication):
        verify(root, client[1], now=datetime.now(UTC) + timedelta(days=400))
    with pytest.raises(FailedAuthentication):
        verify(root, client[1], now=datetime.now(UTC) - timedelta(days=1))


def test_expired_signing_certificate(tmp_path: Path) -> None:
    key, cert, _ = make_client("old", not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    with pytest.raises(FailedAuthentication):
        verify(signed((key, cert)), cert)
