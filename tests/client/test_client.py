"""The WS-Trust client (sts.client.trust) against the live STS over real HTTP on loopback, and on recorded RSTRs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from client_servers import Recorder, serve
from live import free_port
from signing import make_client
from sts import ns
from sts.client.trust import (
    IssuedTokenResult,
    ResponseError,
    TransportError,
    TrustClient,
    TrustFault,
    UsernameCredentials,
    X509Credentials,
    parse_response,
)
from sts.config import load_settings
from sts.tokens.crypto.encryption import decrypt_element, decrypt_key
from sts.tokens.crypto.keys import load_private_key
from sts.errors import FailedAuthentication, InvalidScope, RequestFailed, StsError
from sts.uris import KeyType, SoapVersion, TokenType, TrustVersion
from sts.runtime import open_stores
from paths import FIXTURES  # type: ignore[import-not-found]

RECORDED = FIXTURES / "recorded"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"


def _client(live_sts, demo, **options) -> TrustClient:
    credentials = UsernameCredentials(demo["user"], demo["password"], digest=options.pop("digest", False))
    return TrustClient(f"{live_sts.sts_url}?wsdl", credentials=credentials, **options)


def _rp_view(live_sts, result: IssuedTokenResult) -> tuple[etree._Element, bytes | None]:
    """What the relying party sees: the decrypted assertion and the proof key in its SubjectConfirmation."""
    rp_key = load_private_key((live_sts.home / "demo" / "rp.key").read_bytes())
    token = result.token_element()
    encrypted = token[0] if etree.QName(token).localname == "EncryptedAssertion" else token
    assertion = decrypt_element(encrypted, rp_key)  # type: ignore[arg-type]
    encrypted_key = assertion.find(f".//{{{ns.XENC}}}EncryptedKey")
    return assertion, decrypt_key(encrypted_key, rp_key) if encrypted_key is not None else None  # type: ignore[arg-type]


@pytest.mark.parametrize("version", list(TrustVersion))
@pytest.mark.parametrize("soap", list(SoapVersion))
@pytest.mark.parametrize("digest", [False, True])
def test_issue_validate_renew_cancel_through_the_wsdl(live_sts, demo, version, soap, digest) -> None:
    client = _client(live_sts, demo, version=version, soap=soap, digest=digest)
    assert client.soap is soap and client.endpoint == live_sts.sts_url
    result = client.issue(demo["rp"], claims=[GIVENNAME], lifetime=timedelta(minutes=10))
    assert result.version is version and result.applies_to == demo["rp"]
    assert abs(result.lifetime.expires - result.lifetime.created - timedelta(minutes=10)) < timedelta(seconds=5)
    assert etree.QName(result.token_element()).localname == "EncryptedAssertion"
    assert result.token_id and result.token_id == result.attached_reference.token_id
    assert b"KeyIdentifier" in result.unattached_reference.xml
    assert result.proof_key is None
    assertion, _ = _rp_view(live_sts, result)
    assert assertion.get("ID") == result.token_id and "Alice" in etree.tostring(assertion).decode()

    status = client.validate(result)
    assert status.valid and status.code == version.uri("status/valid") and status.reason
    renewed = client.renew(result.token_id)
    assert renewed.token_id != result.token_id
    assert not client.validate(result.token_id).valid
    client.cancel(renewed)
    cancelled = client.validate(renewed)
    assert not cancelled.valid and "cancel" in (cancelled.reason or "")


def test_issue_with_token_type_and_validate_and_exchange(live_sts, demo) -> None:
    client = _client(live_sts, demo)
    result = client.issue(demo["rp"], token_type="saml11")
    assert TokenType(result.token_type) is TokenType.SAML11
    assertion, _ = _rp_view(live_sts, result)
    assert assertion.tag == f"{{{ns.SAML1}}}Assertion"


@pytest.mark.parametrize("version", list(TrustVersion))
def test_symmetric_key_with_entropy_equals_what_the_relying_party_decrypts(live_sts, demo, version) -> None:
    result = _client(live_sts, demo, version=version).issue(demo["rp"], key_type=KeyType.SYMMETRIC)
    assert result.key_type is KeyType.SYMMETRIC and result.proof_key is not None and len(result.proof_key) == 32
    assert b"ComputedKey" in result.raw
    assert _rp_view(live_sts, result)[1] == result.proof_key


def test_symmetric_key_chosen_by_the_sts(live_sts, demo) -> None:
    result = _client(live_sts, demo).issue(demo["rp"], key_type="symmetric", entropy=False, key_size=128)
    assert b"ComputedKey" not in result.raw and len(result.proof_key) == 16
    assert _rp_view(live_sts, result)[1] == result.proof_key


@pytest.fixture(scope="module")
def x509(sts_home: Path) -> X509Credentials:
    key, cert, pem = make_client("client-lib-test")
    stores = open_stores(load_settings(sts_home))
    if stores.clients.get("client-lib-test") is None:
        stores.clients.add("client-lib-test", pem, [(GIVENNAME, "Robot")])
    return X509Credentials(key, cert)


def test_x509_signed_requests(live_sts, demo, x509) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=x509)
    result = client.issue(demo["rp"], claims=[GIVENNAME])
    assertion, _ = _rp_view(live_sts, result)
    assert assertion.findtext(f".//{{{ns.SAML2}}}NameID") == "client-lib-test"
    assert client.validate(result).valid
    client.cancel(result.token_id)


def test_x509_symmetric_proof_key_encrypted_for_the_client(live_sts, demo, x509) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=x509, soap=SoapVersion.SOAP11)
    sts_chosen = client.issue(demo["rp"], key_type="symmetric", entropy=False)
    assert b"EncryptedKey" in sts_chosen.raw.split(b"RequestedProofToken")[1]
    assert _rp_view(live_sts, sts_chosen)[1] == sts_chosen.proof_key
    computed = client.issue(demo["rp"], key_type="symmetric")
    assert _rp_view(live_sts, computed)[1] == computed.proof_key


def test_x509_public_key_token(live_sts, demo, x509) -> None:
    result = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=x509).issue(demo["rp"], key_type="public")
    assert result.key_type is KeyType.PUBLIC_KEY and result.proof_key is None
    assertion, _ = _rp_view(live_sts, result)
    der = x509.certificate.public_bytes(Encoding.DER)
    import base64
    assert base64.b64encode(der).decode() in etree.tostring(assertion).decode()


def test_public_key_needs_a_certificate(live_sts, demo) -> None:
    with pytest.raises(ValueError, match="X509Credentials"):
        _client(live_sts, demo).issue(demo["rp"], key_type="public")


@pytest.mark.parametrize("soap", list(SoapVersion))
def test_wrong_password_is_a_typed_fault(live_sts, demo, soap) -> None:
    client = TrustClient(f"{live_sts.sts_url}?wsdl", soap=soap, credentials=UsernameCredentials("alice", "nope"))
    with pytest.raises(FailedAuthentication) as caught:
        client.issue(demo["rp"])
    err = caught.value
    assert isinstance(err, TrustFault) and isinstance(err, StsError)
    assert err.fault_code == (ns.WST13, "FailedAuthentication") and err.fault_reason == "Authentication failed"
    assert err.error_class is FailedAuthentication and str(err) == "wst:FailedAuthentication: Authentication failed"


def test_unknown_applies_to_is_invalid_scope(live_sts, demo) -> None:
    with pytest.raises(InvalidScope) as caught:
        _client(live_sts, demo, version=TrustVersion.WST2005).issue("https://unknown.example/")
    assert caught.value.fault_code == (ns.WST2005, "InvalidScope")
    assert caught.value.fault_reason.endswith("https://unknown.example/")


def test_connection_refused_is_a_transport_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/sts"
    with pytest.raises(TransportError, match="connection refused"):
        TrustClient(url + "?wsdl")
    with pytest.raises(TransportError, match="connection refused"):
        TrustClient.for_endpoint(url).issue("https://service-a.example/")


def test_non_soap_502_is_a_transport_error() -> None:
    recorder = Recorder(post_body=b"<html><body>Bad Gateway</body></html>", status=502, content_type="text/html")
    with serve(recorder) as server, pytest.raises(TransportError) as caught:
        TrustClient.for_endpoint(server.url + "/sts").issue("https://service-a.example/")
    assert "HTTP 502" in str(caught.value) and "not a SOAP reply" in str(caught.value)
    assert "Bad Gateway" in str(caught.value)


def test_unexpected_soap_body_is_a_response_error() -> None:
    body = f'<s:Envelope xmlns:s="{ns.SOAP12}"><s:Body><x:Other xmlns:x="urn:x"/></s:Body></s:Envelope>'.encode()
    with serve(Recorder(post_body=body)) as server, pytest.raises(ResponseError, match="WS-Trust"):
        TrustClient.for_endpoint(server.url + "/sts").issue("https://service-a.example/")


@pytest.mark.parametrize("version", list(TrustVersion))
def test_for_endpoint_at_the_adfs_paths(live_sts, demo, version) -> None:
    path = "13" if version is TrustVersion.WST13 else "2005"
    client = TrustClient.for_endpoint(f"{live_sts.base_url}/adfs/services/trust/{path}/usernamemixed",
                                      version=version, credentials=UsernameCredentials(demo["user"], demo["password"]))
    result = client.issue(demo["rp"], key_type="bearer")
    assert client.validate(result).valid
    client.cancel(result)


def test_the_sent_message_has_addressing_and_a_zulu_digest(live_sts, demo) -> None:
    """What goes on the wire: wsa:Action/MessageID/To from the WSDL and a digest Created ending in Z."""
    sent: list[bytes] = []
    client = _client(live_sts, demo, digest=True)
    post_xml = client.transport.post_xml

    def spy(address, envelope, headers):
        sent.append(etree.tostring(envelope))
        return post_xml(address, envelope, headers)

    client.transport.post_xml = spy
    client.issue(demo["rp"])
    root = etree.fromstring(sent[0])
    assert root.findtext(f".//{{{ns.WSA}}}Action") == f"{ns.WST13}/RST/Issue"
    assert root.findtext(f".//{{{ns.WSA}}}To") == live_sts.sts_url
    assert root.findtext(f".//{{{ns.WSU}}}Created").endswith("Z")


# --- recorded RSTRs, no HTTP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path,version,token_ns", [
    ("adal-python/adfs-wstrust13-soap12-rstrc-issue-saml11-bearer.xml", TrustVersion.WST13, ns.SAML1),
    ("adal-python/adfs-wstrust13-soap12-rstrc-issue-saml11-bearer-msonline.xml", TrustVersion.WST13, ns.SAML1),
    ("adal-node/adfs-wstrust2005-soap12-rstr-issue-saml11-bearer.xml", TrustVersion.WST2005, ns.SAML1),
    ("adal-node/pingfed-wstrust13-soap12-rstrc-issue-saml11-bearer.xml", TrustVersion.WST13, ns.SAML1),
])
def test_recorded_rstrs_parse(path, version, token_ns) -> None:
    result = parse_response((RECORDED / path).read_bytes())
    assert result.version is version
    token = result.token_element()
    assert etree.QName(token).namespace == token_ns
    assert result.token_id == token.get("AssertionID")
    assert result.lifetime.created is not None and result.lifetime.expires > result.lifetime.created
    assert result.proof_key is None and result.token_type


@pytest.mark.parametrize("path,version", [("apache-cxf/tfim-wstrust13-rstrc-issue-trimmed.xml", TrustVersion.WST13),
                                          ("apache-cxf/tfim-wstrust2005-rstrc-issue-trimmed.xml", TrustVersion.WST2005)])
def test_recorded_tfim_rstrs_parse(path, version) -> None:
    data = (RECORDED / path).read_bytes()
    with pytest.raises(ResponseError, match="RequestedSecurityToken"):
        parse_response(data)  # trimmed: the token was cut out of the recording
    result = parse_response(data, require_token=False)
    assert result.version is version and result.token == b""
    assert result.applies_to == "https://nssstg1.msvcs.example.com/FIM/sps/spwsfstd/wsf"
    assert result.lifetime.expires - result.lifetime.created == timedelta(minutes=5)


def test_recorded_faults_come_back_typed() -> None:
    with pytest.raises(FailedAuthentication) as caught:
        parse_response((RECORDED / "apache-cxf/wstrust2005-soap12-fault-failedauthentication.xml").read_bytes())
    assert caught.value.fault_code == (ns.WST2005, "FailedAuthentication")
    assert caught.value.fault_reason == "Authentication Failure"
    with pytest.raises(RequestFailed) as adfs:
        parse_response((RECORDED / "msal-python/adfs-wstrust13-soap12-fault-requestfailed-MSIS3127.xml")
                       .read_bytes().strip())
    assert adfs.value.fault_reason.startswith("MSIS3127")
