"""msal's own WS-Trust client (the code it runs against AD FS) against our AD FS-compatible endpoints."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import msal.wstrust_request
import msal.wstrust_response
import pytest
import requests
from lxml import etree

from peers import signxml_verify, xmlsec1_verify
from sts import ns
from sts.config import load_settings
from sts.model import RelyingParty
from sts.uris import TokenType
from sts.runtime import open_stores
from sts.xmltime import format_datetime, utcnow
from trust_client import post

MSONLINE = "urn:federation:MicrosoftOnline"
RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"


@pytest.fixture(scope="module")
def msonline_rp(sts_home: Path) -> str:
    stores = open_stores(load_settings(sts_home))
    if stores.relying_parties.lookup(MSONLINE) is None:
        stores.relying_parties.add(RelyingParty(endpoint=MSONLINE, encrypt=False, token_type=TokenType.SAML11))
    return MSONLINE


@pytest.mark.parametrize("path", ["/adfs/services/trust/13/usernamemixed", "/adfs/services/trust/2005/usernamemixed"])
def test_msal_send_request_and_parse_response(live_sts, demo, msonline_rp, path) -> None:
    with requests.Session() as session:
        result = msal.wstrust_request.send_request(
            demo["user"], demo["password"], msonline_rp, live_sts.base_url + path, None, session)
    assert result["type"] == "urn:oasis:names:tc:SAML:1.0:assertion"
    # msal cuts the token out by regex: it must still verify on its own (self-contained namespaces).
    token = etree.fromstring(result["token"])
    cert = load_settings(live_sts.home).signing_cert_path.read_bytes()
    signxml_verify(token, cert)
    xmlsec1_verify(token, cert)


def test_msal_parses_our_fault(live_sts, msonline_rp) -> None:
    with requests.Session() as session, pytest.raises(RuntimeError) as info:
        msal.wstrust_request.send_request("alice", "wrong password", msonline_rp,
                                          live_sts.base_url + "/adfs/services/trust/13/usernamemixed", None, session)
    assert "FailedAuthentication" in str(info.value) and "Authentication failed" in str(info.value)


@pytest.mark.parametrize("template,path", [
    ("adal-python/adal-wstrust13-soap12-rst-issue-usernametoken-bearer.TEMPLATE.xml",
     "/adfs/services/trust/13/usernamemixed"),
    ("adal-node/adal-wstrust2005-soap12-rst-issue-usernametoken-noproofkey.TEMPLATE.xml",
     "/adfs/services/trust/2005/usernamemixed"),
])
def test_recorded_adal_templates(live_sts, demo, msonline_rp, template, path) -> None:
    now = utcnow()
    text = (RECORDED / template).read_text()
    for placeholder, value in {
        "%MESSAGE_ID%": f"urn:uuid:{uuid.uuid4()}", "%WSTRUST_ENDPOINT%": live_sts.base_url + path,
        "%CREATED%": format_datetime(now), "%EXPIRES%": format_datetime(now + timedelta(minutes=10)),
        "%USERNAME%": demo["user"], "%PASSWORD%": demo["password"], "%APPLIES_TO%": msonline_rp,
    }.items():
        text = text.replace(placeholder, value)
    assert "%" not in text.replace("%20", "")
    reply = post(live_sts.base_url + path, text.encode())
    assert reply.status == 200, reply.fault_reason
    assert reply.token().tag == f"{{{ns.SAML1}}}Assertion"
