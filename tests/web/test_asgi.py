"""End to end over real HTTP on loopback: every WS-Trust × SOAP × SAML version × encrypted/not, verified twice."""

from __future__ import annotations

import functools
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree

from peers import pyxmlsec_decrypt, signxml_verify, xmlsec1_decrypt, xmlsec1_verify
from sts import ns
from sts.tokens.crypto.encryption import decrypt_element
from sts.tokens.crypto.keys import load_private_key
from sts.model import RelyingParty
from sts.uris import SAML11_PROFILE, SAML20_PROFILE, SoapVersion, TokenType, TrustVersion
from sts.runtime import open_stores
from sts.config import load_settings
from interop.xsd import validator
from trust_client import post, rst_envelope

PLAIN_RP = "https://plain.example/app"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"


@pytest.fixture(scope="module")
def plain_rp(sts_home: Path) -> str:
    stores = open_stores(load_settings(sts_home))
    if stores.relying_parties.lookup(PLAIN_RP) is None:
        stores.relying_parties.add(RelyingParty(endpoint=PLAIN_RP, encrypt=False, token_type=TokenType.SAML11))
    return PLAIN_RP


def _signing_cert(home: Path) -> bytes:
    """The certificate exactly as `sts cert` prints it: the only thing the verifiers are given."""
    return _cert_from_cli(str(home))


@functools.cache
def _cert_from_cli(home: str) -> bytes:
    out = subprocess.run([sys.executable, "-m", "sts", "--home", home, "cert"], check=True, capture_output=True)
    return out.stdout


@pytest.mark.parametrize("version", list(TrustVersion))
@pytest.mark.parametrize("soap", list(SoapVersion))
@pytest.mark.parametrize("token_type", list(TokenType))
@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_issue_matrix(live_sts, demo, plain_rp, version, soap, token_type, encrypted) -> None:
    applies_to = demo["rp"] if encrypted else plain_rp
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=applies_to, version=version,
                        soap=soap, token_type_uri=token_type.value,
                        claims=((GIVENNAME, False),))
    reply = post(live_sts.sts_url, body, soap)
    assert reply.status == 200, reply.fault_reason
    assert reply.content_type.startswith(soap.content_type.split(";")[0])
    wst = version.value
    body_el = reply.root.find(f"{{{soap.value}}}Body")[0]
    if version is TrustVersion.WST13:
        assert body_el.tag == f"{{{wst}}}RequestSecurityTokenResponseCollection"
        rstr = body_el[0]
        assert reply.findtext("*/wsa:Action") == f"{wst}/RSTRC/IssueFinal"
    else:
        rstr = body_el
        assert reply.findtext("*/wsa:Action") == f"{wst}/RSTR/Issue"
    assert rstr.tag == f"{{{wst}}}RequestSecurityTokenResponse"
    validator().validate(reply.root)  # everything we emit is schema-valid (SOAP, WS-Trust, wsse, xenc, SAML)
    assert rstr.findtext(f"{{{wst}}}TokenType") == token_type.value
    assert rstr.find(f"{{{wst}}}Lifetime/{{{ns.WSU}}}Expires") is not None
    token = reply.token()
    if encrypted:
        key_pem = (live_sts.home / "demo" / "rp.key").read_bytes()
        expected_wrapper = "EncryptedAssertion" if token_type is TokenType.SAML20 else "EncryptedData"
        assert etree.QName(token).localname == expected_wrapper
        assertion = xmlsec1_decrypt(token, key_pem)
        again = decrypt_element(token if expected_wrapper == "EncryptedData" else token[0],
                                load_private_key(key_pem))
        assert etree.tostring(again, method="c14n", exclusive=True) == etree.tostring(assertion, method="c14n", exclusive=True)
        assert pyxmlsec_decrypt(token, key_pem).get("ID" if token_type is TokenType.SAML20 else "AssertionID")
    else:
        assertion = token
    assert etree.QName(assertion).namespace == token_type.value
    validator().validate(assertion)
    cert = _signing_cert(live_sts.home)
    signed = signxml_verify(assertion, cert)
    xmlsec1_verify(assertion, cert)
    assert "Alice" in etree.tostring(signed).decode()
    assertion_id = assertion.get("ID") or assertion.get("AssertionID")
    key_ids = rstr.findall(f".//{{{ns.WSSE}}}KeyIdentifier")
    assert [k.text for k in key_ids] == [assertion_id, assertion_id]
    assert key_ids[0].get("ValueType") == token_type.key_identifier_value_type


@pytest.mark.parametrize("uri,expected", [(SAML11_PROFILE, SAML11_PROFILE), (SAML20_PROFILE, SAML20_PROFILE),
                                          (None, "urn:oasis:names:tc:SAML:2.0:assertion")])
def test_token_type_is_echoed_in_the_clients_form(live_sts, demo, uri, expected) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], token_type_uri=uri)
    reply = post(live_sts.sts_url, body)
    assert reply.findtext(".//trust:TokenType") == expected


def test_no_token_type_gets_the_rps_default(live_sts, demo, plain_rp) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=plain_rp)
    reply = post(live_sts.sts_url, body)
    assert reply.findtext(".//trust:TokenType") == "urn:oasis:names:tc:SAML:1.0:assertion"
    assert etree.QName(reply.token()).namespace == ns.SAML1


@pytest.mark.parametrize("key_type", [None, "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"])
def test_rstr_echoes_request_type_and_the_requested_key_type_last_as_adfs_does(live_sts, demo, plain_rp,
                                                                               key_type) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=plain_rp,
                        version=TrustVersion.WST2005, key_type_uri=key_type)
    reply = post(live_sts.sts_url, body)
    rstr = reply.find(".//t:RequestSecurityTokenResponse")
    assert rstr is not None
    children = [etree.QName(c).localname for c in rstr]
    assert children[0] == "TokenType" and children[-1] == ("KeyType" if key_type else "RequestType")
    assert reply.findtext(".//t:RequestType") == "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue"
    assert reply.findtext(".//t:KeyType") == key_type


@pytest.mark.parametrize("path", ["/adfs/services/trust/13/usernamemixed", "/adfs/services/trust/2005/usernamemixed"])
def test_adfs_paths(live_sts, demo, path) -> None:
    version = TrustVersion.WST13 if "/13/" in path else TrustVersion.WST2005
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], version=version)
    assert post(live_sts.base_url + path, body).status == 200


def test_digest_password_end_to_end(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], digest=True)
    assert post(live_sts.sts_url, body).status == 200
    replay = post(live_sts.sts_url, body)
    assert replay.fault_code == (ns.WSSE, "MessageExpired")


def test_wrong_content_type_is_415(live_sts) -> None:
    response = httpx.post(live_sts.sts_url, content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 415


def test_healthz(live_sts) -> None:
    response = httpx.get(live_sts.base_url + "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    for checks in ("database", "database,directory", "directory"):  # every known name, alone and together
        assert httpx.get(live_sts.base_url + "/healthz", params={"checks": checks}).status_code == 200


@pytest.mark.parametrize("checks", ["databse", "database,ldap", "", "database,", "Database", "directory;database"])
def test_healthz_refuses_a_check_it_does_not_know(live_sts, checks: str) -> None:
    # A misspelt probe would otherwise be green without the check it meant to ask for.
    response = httpx.get(live_sts.base_url + "/healthz", params={"checks": checks})
    assert response.status_code == 400 and response.json()["status"] == "bad request"
    assert "known: database, directory" in response.json()["reason"], response.text


def test_issued_token_is_recorded(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"])
    reply = post(live_sts.sts_url, body)
    token_id = reply.findtext(".//wsse:KeyIdentifier")
    record = open_stores(load_settings(live_sts.home)).tokens.get(token_id)
    assert record is not None and record.subject == demo["user"] and record.applies_to == demo["rp"]


def test_no_lifetime_gets_the_rps_default(live_sts, demo) -> None:
    from sts.xmltime import parse_datetime

    reply = post(live_sts.sts_url, rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"]))
    created = parse_datetime(reply.findtext(".//trust:Lifetime/wsu:Created"))
    expires = parse_datetime(reply.findtext(".//trust:Lifetime/wsu:Expires"))
    assert expires - created == timedelta(minutes=30)


def test_unregistered_audience_when_allowed_gets_an_unencrypted_token(sts_home, demo) -> None:
    from live import start_server

    live, server, thread = start_server(sts_home, allow_unregistered_audiences=True)
    try:
        reply = post(live.sts_url, rst_envelope(user=demo["user"], password=demo["password"],
                                                applies_to="https://anyone.example/"))
        assert reply.status == 200
        assertion = reply.token()
        assert etree.QName(assertion).localname == "Assertion"
        signxml_verify(assertion, _signing_cert(sts_home))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
