"""WSDL, MEX and federation metadata as served by the running STS, read by independent code."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import msal.mex
import msal.wstrust_request
import pytest
import requests
import zeep
from lxml import etree
from signxml import XMLVerifier

from live import LiveServer, make_tls_files, start_server
from sts import ns
from sts.config import load_settings
from sts.model import RelyingParty
from sts.uris import TokenType
from sts.runtime import open_stores
from trust_client import post, rst_envelope

MSONLINE = "urn:federation:MicrosoftOnline"
TRANSFER_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"


@pytest.fixture(scope="module")
def tls_sts(sts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    stores = open_stores(load_settings(sts_home))
    if stores.relying_parties.lookup(MSONLINE) is None:
        stores.relying_parties.add(RelyingParty(endpoint=MSONLINE, encrypt=False, token_type=TokenType.SAML11))
    cert, key = make_tls_files(tmp_path_factory.mktemp("tls"))
    live, server, thread = start_server(sts_home, ssl=(cert, key), loopback_bind=False)
    yield live, cert
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)


def test_msal_finds_the_endpoint_in_mex_and_gets_a_token_over_tls(tls_sts, demo) -> None:
    live, cafile = tls_sts
    with requests.Session() as session:
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
        session.verify = cafile
        endpoint = msal.mex.send_request(f"{live.base_url}/adfs/services/trust/mex", session)
        assert endpoint["address"] == f"{live.base_url}/adfs/services/trust/13/usernamemixed"
        assert endpoint["action"] == msal.mex.Mex.ACTION_13
        result = msal.wstrust_request.send_request(demo["user"], demo["password"], MSONLINE, endpoint["address"],
                                                   endpoint["action"], session)
    assert result["type"] == "urn:oasis:names:tc:SAML:1.0:assertion"
    assert b"AssertionID" in result["token"]


@pytest.mark.parametrize("path", ["/services/sts/mex", "/adfs/services/trust/mex"])
def test_mex_answers_ws_transfer_get(live_sts, path) -> None:
    body = (f"<s:Envelope xmlns:s='{ns.SOAP12}' xmlns:a='{ns.WSA}'><s:Header><a:Action s:mustUnderstand='1'>"
            f"{TRANSFER_GET}</a:Action><a:MessageID>urn:uuid:1</a:MessageID></s:Header><s:Body/></s:Envelope>")
    reply = post(live_sts.base_url + path, body.encode())
    assert reply.status == 200
    assert reply.findtext("*/wsa:Action") == TRANSFER_GET + "Response"
    assert reply.findtext("*/wsa:RelatesTo") == "urn:uuid:1"
    assert reply.root.find(f".//{{{ns.MEX}}}Metadata") is not None


def test_mex_get_is_a_wsdl_with_both_usernamemixed_endpoints(live_sts) -> None:
    doc = etree.fromstring(httpx.get(live_sts.base_url + "/adfs/services/trust/mex").content)
    assert doc.tag == f"{{{ns.WSDL}}}definitions"
    text = etree.tostring(doc).decode()
    assert "/adfs/services/trust/13/usernamemixed" in text and "/adfs/services/trust/2005/usernamemixed" in text


def test_zeep_loads_the_wsdl_from_the_sts_alone(live_sts) -> None:
    client = zeep.Client(f"{live_sts.sts_url}?wsdl")
    operations = {op for service in client.wsdl.services.values() for port in service.ports.values()
                  for op in port.binding._operations}
    assert {"Issue", "Renew", "Cancel", "Validate"} <= operations


def test_unknown_xsd_is_404(live_sts) -> None:
    assert httpx.get(live_sts.sts_url, params={"xsd": "../../etc/passwd"}).status_code == 404


def test_federation_metadata_is_signed_by_the_sts_key(live_sts) -> None:
    document = httpx.get(live_sts.base_url + "/FederationMetadata/2007-06/FederationMetadata.xml").content
    cert = load_settings(live_sts.home).signing_cert_path.read_bytes()
    XMLVerifier().verify(document, x509_cert=cert.decode())
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "md.xml").write_bytes(document)
        Path(tmp, "sts.crt").write_bytes(cert)
        subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", f"{tmp}/sts.crt", "--enabled-key-data",
                        "key-name", "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
                        f"{tmp}/md.xml"], check=True, capture_output=True)
    root = etree.fromstring(document)
    endpoint = root.find(f".//{{{ns.FED}}}SecurityTokenServiceEndpoint//{{{ns.WSA}}}Address")
    assert endpoint is not None and endpoint.text == live_sts.sts_url


def test_password_text_over_plain_http_refused_off_loopback(sts_home, demo) -> None:
    live, server, thread = start_server(sts_home, loopback_bind=False)
    try:
        text = post(live.sts_url, rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"]))
        assert text.fault_code == (ns.WSSE, "InvalidSecurity")
        assert "secure transport" in text.fault_reason
        digest = post(live.sts_url, rst_envelope(user=demo["user"], password=demo["password"],
                                                 applies_to=demo["rp"], digest=True))
        assert digest.status == 200
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
