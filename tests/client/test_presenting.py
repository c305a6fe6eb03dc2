"""Presenting a token (sts.client.presenting): in wsse:Security of a zeep call, signed with the proof key; HTTP header."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import zeep
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from client_servers import Recorder, serve
from signing import make_client
from sts import ns
from sts.client.trust import TrustClient, UsernameCredentials, X509Credentials
from sts.config import load_settings
from sts.client.presenting import HMAC_SHA1, HMAC_SHA256, IssuedTokenPlugin, authorization_header
from sts.runtime import open_stores

ECHO_WSDL = b"""<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:echo" targetNamespace="urn:echo">
  <types><xs:schema targetNamespace="urn:echo" elementFormDefault="qualified">
    <xs:element name="Echo" type="xs:string"/><xs:element name="EchoResponse" type="xs:string"/>
  </xs:schema></types>
  <message name="In"><part name="body" element="tns:Echo"/></message>
  <message name="Out"><part name="body" element="tns:EchoResponse"/></message>
  <portType name="EchoPort"><operation name="Echo"><input message="tns:In"/><output message="tns:Out"/></operation>
  </portType>
  <binding name="EchoBinding" type="tns:EchoPort">
    <soap12:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <operation name="Echo"><soap12:operation soapAction="urn:echo/Echo"/>
      <input><soap12:body use="literal"/></input><output><soap12:body use="literal"/></output></operation>
  </binding>
  <service name="Echo"><port name="EchoPort" binding="tns:EchoBinding">
    <soap12:address location="ADDRESS"/></port></service>
</definitions>"""
ECHO_REPLY = (f'<s:Envelope xmlns:s="{ns.SOAP12}"><s:Body><EchoResponse xmlns="urn:echo">ok</EchoResponse>'
              "</s:Body></s:Envelope>").encode()


def _call_echo(plugin: IssuedTokenPlugin) -> etree._Element:
    """Call the loopback echo service through zeep with the plugin; return the request it received."""
    recorder = Recorder(post_body=ECHO_REPLY, content_type="application/soap+xml; charset=utf-8")
    with serve(recorder) as server:
        recorder.get_body = ECHO_WSDL.replace(b"ADDRESS", f"{server.url}/echo".encode())
        client = zeep.Client(server.url + "/echo?wsdl", plugins=[plugin])
        assert client.service.Echo("hello") == "ok"
    return etree.fromstring(recorder.requests[-1][1])


def _check_signature(root: etree._Element, verify) -> etree._Element:
    """Recompute each Reference digest and hand exc-c14n(SignedInfo) + SignatureValue to ``verify``."""
    signature = root.find(f".//{{{ns.WSSE}}}Security/{{{ns.DS}}}Signature")
    signed_info = signature.find(f"{{{ns.DS}}}SignedInfo")
    ids = {element.get(f"{{{ns.WSU}}}Id"): element for element in root.iter()
           if element.get(f"{{{ns.WSU}}}Id")}
    covered = set()
    for reference in signed_info.iter(f"{{{ns.DS}}}Reference"):
        target = ids[reference.get("URI")[1:]]
        digest = hashlib.sha256(etree.tostring(target, method="c14n", exclusive=True)).digest()
        assert base64.b64decode(reference.findtext(f"{{{ns.DS}}}DigestValue")) == digest
        covered.add(etree.QName(target).localname)
    assert covered == {"Body", "Timestamp"}
    value = base64.b64decode(signature.findtext(f"{{{ns.DS}}}SignatureValue"))
    verify(etree.tostring(signed_info, method="c14n", exclusive=True), value,
           signed_info.find(f"{{{ns.DS}}}SignatureMethod").get("Algorithm"))
    return signature


def _security(root: etree._Element) -> etree._Element:
    security = root.find(f"{{{ns.SOAP12}}}Header/{{{ns.WSSE}}}Security")
    assert security is not None and security.get(f"{{{ns.SOAP12}}}mustUnderstand") == "1"
    return security


def test_bearer_token_lands_in_the_security_header_unsigned(live_sts, demo) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=UsernameCredentials(demo["user"], demo["password"]))
    result = client.issue(demo["rp"])
    root = _call_echo(IssuedTokenPlugin(result))
    security = _security(root)
    assert [etree.QName(child).localname for child in security] == ["Timestamp", "EncryptedAssertion"]
    assert etree.tostring(security[1], method="c14n", exclusive=True) == \
        etree.tostring(result.token_element(), method="c14n", exclusive=True)


@pytest.mark.parametrize("method,digest", [(HMAC_SHA1, hashlib.sha1), (HMAC_SHA256, hashlib.sha256)])
def test_symmetric_token_signs_body_and_timestamp_with_the_proof_key(live_sts, demo, method, digest) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=UsernameCredentials(demo["user"], demo["password"]))
    result = client.issue(demo["rp"], key_type="symmetric")
    root = _call_echo(IssuedTokenPlugin(result, signature_method=method))

    def verify(data: bytes, value: bytes, algorithm: str) -> None:
        assert algorithm == method
        assert hmac.compare_digest(hmac.new(result.proof_key, data, digest).digest(), value)

    signature = _check_signature(root, verify)
    key_id = signature.find(f"{{{ns.DS}}}KeyInfo/{{{ns.WSSE}}}SecurityTokenReference/{{{ns.WSSE}}}KeyIdentifier")
    assert key_id.text == result.token_id and key_id.get("ValueType").endswith("#SAMLID")
    assert [etree.QName(c).localname for c in _security(root)] == ["Timestamp", "EncryptedAssertion", "Signature"]


def test_public_key_token_signs_with_the_client_key(live_sts, demo, sts_home) -> None:
    key, cert, pem = make_client("presenting-test")
    stores = open_stores(load_settings(sts_home))
    if stores.clients.get("presenting-test") is None:
        stores.clients.add("presenting-test", pem, [])
    result = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=X509Credentials(key, cert)).issue(
        demo["rp"], key_type="public", token_type="saml11")
    with pytest.raises(ValueError, match="private key"):
        _call_echo(IssuedTokenPlugin(result))
    root = _call_echo(IssuedTokenPlugin(result, private_key=key))

    def verify(data: bytes, value: bytes, algorithm: str) -> None:
        assert algorithm.endswith("rsa-sha256")
        cert.public_key().verify(value, data, padding.PKCS1v15(), hashes.SHA256())

    signature = _check_signature(root, verify)
    assert signature.find(f".//{{{ns.WSSE}}}KeyIdentifier").get("ValueType").endswith("#SAMLAssertionID")


def test_sign_with_proof_key_false_leaves_it_unsigned(live_sts, demo) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=UsernameCredentials(demo["user"], demo["password"]))
    result = client.issue(demo["rp"], key_type="symmetric")
    root = _call_echo(IssuedTokenPlugin(result, sign_with_proof_key=False))
    assert _security(root).find(f"{{{ns.DS}}}Signature") is None


def test_authorization_header(live_sts, demo) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=UsernameCredentials(demo["user"], demo["password"]))
    result = client.issue(demo["rp"])
    header = authorization_header(result)
    scheme, _, value = header["Authorization"].partition(" ")
    assert scheme == "SAML" and base64.b64decode(value) == result.token
