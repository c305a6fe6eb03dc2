"""Holder-of-key tokens and X.509-signed requests over real HTTP on loopback."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from peers import signxml_verify
from signing import make_client, zeep_sign
from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.config import load_settings
from sts.tokens.crypto.encryption import decrypt_element, decrypt_key
from sts.tokens.crypto.keys import load_private_key
from sts.tokens.crypto.proof import p_sha1
from sts.protocol.soap import build_envelope
from sts.uris import RequestType, SoapVersion, TokenType, TrustVersion
from sts.runtime import open_stores
from sts.protocol.wsse.build import build_security_header, sign_envelope
from sts.protocol.wstrust.render import render_rst
from sts.protocol.xmlsafe import parse
from trust_client import Reply, post, rst_envelope

WST = ns.WST13
PSHA1 = f"{WST}/CK/PSHA1"
SYMMETRIC = f"{WST}/SymmetricKey"
PUBLIC = f"{WST}/PublicKey"


def _el(local: str, text: str | None = None, namespace: str = WST, **attrib: str) -> etree._Element:
    element = etree.Element(f"{{{namespace}}}{local}", **attrib)
    element.text = text
    return element


def _entropy(secret: bytes) -> etree._Element:
    entropy = _el("Entropy")
    entropy.append(_el("BinarySecret", base64.b64encode(secret).decode(), Type=f"{WST}/Nonce"))
    return entropy


def _use_key(cert_der: bytes) -> etree._Element:
    use_key = _el("UseKey")
    key_info = etree.SubElement(use_key, f"{{{ns.DS}}}KeyInfo", nsmap={"ds": ns.DS})
    data = etree.SubElement(key_info, f"{{{ns.DS}}}X509Data")
    etree.SubElement(data, f"{{{ns.DS}}}X509Certificate").text = base64.b64encode(cert_der).decode()
    return use_key


def _rp_key(live) -> object:
    return load_private_key((live.home / "demo" / "rp.key").read_bytes())


def _proof_key_in_token(reply: Reply, rp_key: object) -> tuple[etree._Element, bytes]:
    """What the relying party does: decrypt the token, then the proof key in its SubjectConfirmation."""
    encrypted = reply.token()
    assertion = decrypt_element(encrypted[0] if etree.QName(encrypted).localname == "EncryptedAssertion"
                                else encrypted, rp_key)  # type: ignore[arg-type]
    encrypted_key = assertion.find(f".//{{{ns.XENC}}}EncryptedKey")
    return assertion, decrypt_key(encrypted_key, rp_key)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", list(TrustVersion))
@pytest.mark.parametrize("token_type", list(TokenType))
def test_symmetric_key_computed_from_both_entropies(live_sts, demo, version, token_type) -> None:
    wst = version.value
    client_entropy = os.urandom(32)
    extra = (_el("KeySize", "256", wst), _entropy_for(version, client_entropy),
             _el("ComputedKeyAlgorithm", f"{wst}/CK/PSHA1", wst))
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], version=version,
                        token_type_uri=token_type.value, key_type_uri=f"{wst}/SymmetricKey", extra=extra)
    reply = post(live_sts.sts_url, body)
    assert reply.status == 200, reply.fault_reason
    rstr = reply.root.find(f".//{{{wst}}}RequestSecurityTokenResponse")
    assert rstr.findtext(f"{{{wst}}}RequestedProofToken/{{{wst}}}ComputedKey") == f"{wst}/CK/PSHA1"
    server_entropy = base64.b64decode(rstr.findtext(f"{{{wst}}}Entropy/{{{wst}}}BinarySecret"))
    client_key = p_sha1(client_entropy, server_entropy, 32)
    assertion, rp_proof_key = _proof_key_in_token(reply, _rp_key(live_sts))
    assert rp_proof_key == client_key
    signxml_verify(assertion, load_settings(live_sts.home).signing_cert_path.read_bytes())
    method = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key" if token_type is TokenType.SAML20 else \
        "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
    assert method in etree.tostring(assertion).decode()


def _entropy_for(version: TrustVersion, secret: bytes) -> etree._Element:
    entropy = _el("Entropy", namespace=version.value)
    entropy.append(_el("BinarySecret", base64.b64encode(secret).decode(), version.value, Type=version.uri("Nonce")))
    return entropy


def test_symmetric_key_generated_by_the_sts(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"],
                        key_type_uri=SYMMETRIC)
    reply = post(live_sts.sts_url, body)
    assert reply.status == 200, reply.fault_reason
    secret = base64.b64decode(reply.findtext(".//trust:RequestedProofToken/trust:BinarySecret"))
    assert len(secret) == 32
    assert _proof_key_in_token(reply, _rp_key(live_sts))[1] == secret
    record = open_stores(load_settings(live_sts.home)).tokens.get(reply.findtext(".//wsse:KeyIdentifier"))
    assert record.details["key_type"] == "holder-of-key"
    assert base64.b64encode(secret).decode() not in str(record.details)


@pytest.mark.parametrize("size,fault", [("64", "BadRequest"), ("1024", "BadRequest")])
def test_key_size_out_of_range(live_sts, demo, size, fault) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"],
                        key_type_uri=SYMMETRIC, extra=(_el("KeySize", size),))
    reply = post(live_sts.sts_url, body)
    assert reply.fault_code == (WST, fault) and reply.fault_reason.endswith("KeySize")


def test_unsupported_computed_key_algorithm(live_sts, demo) -> None:
    extra = (_entropy(os.urandom(32)), _el("ComputedKeyAlgorithm", f"{WST}/CK/HASH"))
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"],
                        key_type_uri=SYMMETRIC, extra=extra)
    assert post(live_sts.sts_url, body).fault_code == (WST, "BadRequest")


def test_proof_key_never_in_clear_off_loopback(sts_home, demo) -> None:
    from live import start_server

    live, server, thread = start_server(sts_home, loopback_bind=False)
    try:
        body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], digest=True,
                            key_type_uri=SYMMETRIC)
        reply = post(live.sts_url, body)
        assert reply.fault_code == (WST, "RequestFailed")
        assert "proof key" in reply.fault_reason
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- X.509-signed requests ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(sts_home: Path):
    key, cert, pem = make_client("payments-service")
    stores = open_stores(load_settings(sts_home))
    if stores.clients.get("payments-service") is None:
        stores.clients.add("payments-service", pem,
                           [("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Payments")])
    return key, cert


def _signed_request(demo, key, cert, *, extra=(), applies_to=None, claims=()) -> etree._Element:
    version = TrustVersion.WST13
    rst = render_rst(version, applies_to=applies_to or demo["rp"], extra=extra, claims=claims)
    headers = render_request_headers(RequestType.ISSUE.request_action(version))
    root = parse(build_envelope(SoapVersion.SOAP12, rst, headers))
    sign_envelope(root, key, cert)
    return root


def test_signed_request_from_a_registered_client(live_sts, demo, client) -> None:
    key, cert = client
    givenname = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
    reply = post(live_sts.sts_url, etree.tostring(_signed_request(demo, key, cert, claims=((givenname, False),))))
    assert reply.status == 200, reply.fault_reason
    assertion, _ = _decrypted(reply, live_sts)
    assert assertion.findtext(f".//{{{ns.SAML2}}}NameID") == "payments-service"
    assert assertion.findtext(f".//{{{ns.SAML2}}}AuthnContextClassRef").endswith(":X509")
    assert "Payments" in etree.tostring(assertion).decode()


def _decrypted(reply: Reply, live) -> tuple[etree._Element, None]:
    encrypted = reply.token()
    return decrypt_element(encrypted[0], _rp_key(live)), None  # type: ignore[arg-type]


def test_zeep_signed_request_is_accepted(live_sts, demo, client, tmp_path) -> None:
    key, cert = client
    version = TrustVersion.WST13
    rst = render_rst(version, applies_to=demo["rp"])
    headers = render_request_headers(RequestType.ISSUE.request_action(version))
    root = parse(build_envelope(SoapVersion.SOAP12, rst, headers))
    security = build_security_header("unused", "unused")
    security.remove(security.find(f"{{{ns.WSSE}}}UsernameToken"))
    root.find(f"{{{ns.SOAP12}}}Header").append(security)
    reply = post(live_sts.sts_url, etree.tostring(zeep_sign(root, key, cert, tmp_path)))
    assert reply.status == 200, reply.fault_reason


def test_unregistered_certificate_fails(live_sts, demo) -> None:
    key, cert, _ = make_client("stranger")
    reply = post(live_sts.sts_url, etree.tostring(_signed_request(demo, key, cert)))
    assert reply.fault_code == (WST, "FailedAuthentication")


def test_wrapped_signed_request_fails(live_sts, demo, client) -> None:
    """Signature wrapping: the signed Body moved into the header, an attacker's Body in its place."""
    key, cert = client
    root = _signed_request(demo, key, cert)
    body = root.find(f"{{{ns.SOAP12}}}Body")
    header = root.find(f"{{{ns.SOAP12}}}Header")
    root.remove(body)
    wrapper = etree.SubElement(header, "{urn:attacker}Wrapper")
    wrapper.append(body)
    evil = etree.SubElement(root, f"{{{ns.SOAP12}}}Body")
    evil.append(render_rst(TrustVersion.WST13, applies_to="https://plain.example/app"))
    reply = post(live_sts.sts_url, etree.tostring(root))
    assert reply.fault_code == (ns.WSSE, "FailedCheck")


def test_second_body_inserted_fails(live_sts, demo, client) -> None:
    key, cert = client
    root = _signed_request(demo, key, cert)
    body = root.find(f"{{{ns.SOAP12}}}Body")
    evil = etree.Element(f"{{{ns.SOAP12}}}Body")
    evil.append(render_rst(TrustVersion.WST13, applies_to="https://plain.example/app"))
    body.addprevious(evil)
    reply = post(live_sts.sts_url, etree.tostring(root))
    assert reply.fault_code == (WST, "InvalidRequest")  # two soap:Body elements are not an envelope


def test_tampered_signed_body_fails(live_sts, demo, client) -> None:
    key, cert = client
    root = _signed_request(demo, key, cert)
    address = root.find(f".//{{{ns.WSA}}}EndpointReference/{{{ns.WSA}}}Address")
    address.text = "https://plain.example/app"
    assert post(live_sts.sts_url, etree.tostring(root)).fault_code == (ns.WSSE, "FailedCheck")


def test_public_key_token_with_proof_of_possession(live_sts, demo, client) -> None:
    key, cert = client
    cert_der = cert.public_bytes(Encoding.DER)
    root = _signed_request(demo, key, cert, extra=(_el("KeyType", PUBLIC), _use_key(cert_der)))
    reply = post(live_sts.sts_url, etree.tostring(root))
    assert reply.status == 200, reply.fault_reason
    assertion, _ = _decrypted(reply, live_sts)
    confirmed = assertion.findtext(f".//{{{ns.SAML2}}}SubjectConfirmationData//{{{ns.DS}}}X509Certificate")
    assert base64.b64decode(confirmed) == cert_der
    assert reply.root.find(f".//{{{WST}}}RequestedProofToken") is None


def test_public_key_without_proof_of_possession_fails(live_sts, demo, client) -> None:
    _, cert = client
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"],
                        key_type_uri=PUBLIC, extra=(_use_key(cert.public_bytes(Encoding.DER)),))
    reply = post(live_sts.sts_url, body)
    assert reply.fault_code == (WST, "FailedAuthentication")


def test_client_entropy_encrypted_for_the_sts_encryption_certificate(live_sts, demo) -> None:
    """The requester encrypts its entropy for the STS certificate published in the federation metadata."""
    import httpx

    from sts.tokens.crypto.encryption import encrypt_key_for
    from sts.tokens.crypto.keys import load_certificate

    document = etree.fromstring(httpx.get(live_sts.base_url + "/FederationMetadata/2007-06/FederationMetadata.xml").content)
    descriptor = document.find(f".//{{{ns.MD}}}KeyDescriptor[@use='encryption']")
    cert_b64 = descriptor.findtext(f".//{{{ns.DS}}}X509Certificate")
    sts_encryption_cert = load_certificate(base64.b64decode(cert_b64))
    client_entropy = os.urandom(32)
    entropy = _el("Entropy")
    entropy.append(encrypt_key_for(sts_encryption_cert, client_entropy))
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], key_type_uri=SYMMETRIC,
                        extra=(entropy, _el("ComputedKeyAlgorithm", PSHA1)))
    reply = post(live_sts.sts_url, body)
    assert reply.status == 200, reply.fault_reason
    server_entropy = base64.b64decode(reply.findtext(".//trust:Entropy/trust:BinarySecret"))
    assert _proof_key_in_token(reply, _rp_key(live_sts))[1] == p_sha1(client_entropy, server_entropy, 32)


def test_entropy_encrypted_for_another_certificate_is_refused(live_sts, demo) -> None:
    from sts.tokens.crypto.encryption import encrypt_key_for

    _, stranger, _ = make_client("not-the-sts")
    entropy = _el("Entropy")
    entropy.append(encrypt_key_for(stranger, os.urandom(32)))
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], key_type_uri=SYMMETRIC,
                        extra=(entropy,))
    reply = post(live_sts.sts_url, body)
    assert reply.fault_code == (WST, "BadRequest") and reply.fault_reason.endswith("Entropy")
